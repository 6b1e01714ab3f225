//! Notifying owners: the recipients of a notice about content (its owners or its projects'
//! owners), listed in a `notify` step; sending belongs to the notifications feature.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::json;
use tabflow_plan::intent::Notify;
use tabflow_plan::plan::{Item, Step, StepKind};

use crate::builder::{Builder, text};

impl<'p, 'a> Builder<'p, 'a> {
    pub(crate) fn notify(&mut self, intent: &Notify) {
        let site = self.p.site;
        let content_owners = intent.audience == Some(tabflow_plan::intent::Audience::ContentOwners);
        if let Some(name) = text(&intent.project)
            && self.ground_project(name).is_none()
        {
            return;
        }
        // Who is told about which projects: project owners about the projects the plan's
        // write steps touch; content owners about the projects of their own items.
        let mut told: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        // project name → the first project of that name
        let mut projects_named: HashMap<&str, &tabflow_site::Project> = HashMap::new();
        if !content_owners {
            for p in &site.projects {
                projects_named.entry(p.name.as_str()).or_insert(p);
            }
        }
        for st in self.plan.steps.iter().filter(|s| s.is_write()) {
            for i in &st.items {
                let Some(project) = i.project.clone() else { continue };
                let who = if content_owners {
                    i.owner.as_ref().and_then(|o| self.user_named(o, true))
                } else {
                    projects_named.get(project.as_str()).and_then(|p| self.index.user(p.owner_id.as_str()))
                };
                if let Some(u) = who {
                    told.entry(u.id.clone()).or_default().insert(project);
                }
            }
        }
        let mut items = vec![];
        let mut recipients = vec![];
        for (uid, projects) in &told {
            let Some(u) = self.index.user(uid.as_str()) else { continue };
            items.push(Item {
                kind: "user".into(),
                id: u.id.clone(),
                name: u.name.clone(),
                reason: Some(format!(
                    "{} of {}",
                    if content_owners { "owns content in" } else { "owns" },
                    projects.iter().cloned().collect::<Vec<_>>().join(", ")
                )),
                ..Item::default()
            });
            recipients.push(json!({"id": u.id, "name": u.full_name, "email": u.email, "projects": projects}));
        }
        let depends: Vec<String> = self.plan.steps.iter().filter(|s| s.is_write()).map(|s| s.id.clone()).collect();
        let s = self.step_id();
        self.plan.steps.push(Step::new(
            s,
            StepKind::NotifyOwners,
            format!(
                "Tell {} {} what changed, after the run (outbox; email and webhook when configured)",
                recipients.len(),
                if content_owners { "content owners" } else { "project owners" }
            ),
            depends,
            items,
            vec![],
            json!({"recipients": recipients, "audience": if content_owners { "content-owners" } else { "project-owners" }}),
        ));
    }
}
