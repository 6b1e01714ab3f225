//! Effective permissions: what each user can really do on a workbook or datasource, computed
//! from a site read the way Tableau evaluates it (Permissions help page, "How permissions are
//! evaluated"):
//!
//! 1. Unlicensed users can do nothing.
//! 2. Site administrators, the content owner, the owner of the project or of a project above
//!    it, and project leaders (`ProjectLeader` allowed on the project or an ancestor, for the
//!    user or one of their groups) can do everything.
//! 3. Which rules apply: the content's own rules, or — when its project is locked
//!    (`LockedToProject`, also inherited by nested projects; `LockedToProjectWithoutNested`,
//!    only for content directly in that project) — the locking project's default rules for
//!    that content type.
//! 4. Per capability, a rule for the user wins over group rules; within the user's rules, or
//!    within the groups' rules, Deny beats Allow. No rule = not granted.
//! 5. The site role caps the result: Viewers never get more than viewing capabilities; an
//!    Explorer cannot overwrite or move content.
//!
//! Pure: it only reads a [`Site`].

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;
use tabflow_site::{Index, Mode, Site};

/// Capabilities a Viewer site role can hold.
pub const VIEWER_CAPS: &[&str] = &[
    "Read",
    "Filter",
    "ViewComments",
    "AddComment",
    "ExportImage",
    "ExportData",
    "ShareView",
    "ViewUnderlyingData",
    "RunExplainData",
    "Connect",
];
/// Capabilities an Explorer (without publishing) cannot hold.
const PUBLISHER_ONLY: &[&str] = &["Write", "Overwrite", "ChangeHierarchy", "ExportXml", "CreateRefreshMetrics"];

/// One rule as the evaluator needs it.
#[derive(Debug, Clone)]
struct Rule<'a> {
    grantee_kind: &'a str,
    grantee_id: &'a str,
    capabilities: &'a BTreeMap<String, Mode>,
}

/// Why a user holds (or lacks) a capability.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Grant {
    pub allowed: bool,
    /// "owner", "site administrator", "project leader", "user rule", "group 'X'",
    /// "denied by group 'X'", "capped by site role Viewer"...
    pub via: String,
}

/// Effective access of every user to one item: user id → capability → grant. Capabilities
/// nobody mentions are absent (not granted).
pub type Access = BTreeMap<String, BTreeMap<String, Grant>>;

/// Indexes of a site, built once for many items.
pub struct Evaluator<'a> {
    site: &'a Site,
    groups_of: HashMap<&'a str, Vec<(&'a str, &'a str)>>,
    rules_on: HashMap<&'a str, Vec<Rule<'a>>>,
    defaults: HashMap<(&'a str, &'a str), Vec<Rule<'a>>>,
    /// Lookups and the project tree.
    index: Index<'a>,
    /// All capability names that appear anywhere (the universe for "everything").
    all_caps: BTreeSet<String>,
}

fn content_type(kind: &str) -> &'static str {
    match kind {
        "datasource" => "datasources",
        "flow" => "flows",
        _ => "workbooks",
    }
}

impl<'a> Evaluator<'a> {
    pub fn new(site: &'a Site) -> Evaluator<'a> {
        let mut groups_of: HashMap<&str, Vec<(&str, &str)>> = HashMap::new();
        for g in &site.groups {
            for m in &g.members {
                groups_of.entry(m.as_str()).or_default().push((g.id.as_str(), g.name.as_str()));
            }
        }
        let mut rules_on: HashMap<&str, Vec<Rule>> = HashMap::new();
        let mut all_caps: BTreeSet<String> = BTreeSet::new();
        for r in &site.permissions {
            all_caps.extend(r.capabilities.keys().cloned());
            rules_on.entry(r.resource.id.as_str()).or_default().push(Rule {
                grantee_kind: r.grantee.kind.as_str(),
                grantee_id: r.grantee.id.as_str(),
                capabilities: &r.capabilities,
            });
        }
        let mut defaults: HashMap<(&str, &str), Vec<Rule>> = HashMap::new();
        for r in &site.default_permissions {
            all_caps.extend(r.capabilities.keys().cloned());
            defaults.entry((r.project_id.as_str(), r.content_type.as_str())).or_default().push(Rule {
                grantee_kind: r.grantee.kind.as_str(),
                grantee_id: r.grantee.id.as_str(),
                capabilities: &r.capabilities,
            });
        }
        all_caps.remove("ProjectLeader");
        Evaluator { site, groups_of, rules_on, defaults, index: Index::new(site), all_caps }
    }

    /// An evaluator of `site` after a change to the rules this one evaluates: "everything"
    /// also holds this one's capability names, so that removing the only rule naming a
    /// capability does not count as a change of every administrator's and owner's access —
    /// and the users a change affects do not depend on rules of other items (whether they
    /// were read at all, issue #15).
    pub fn after<'b>(&self, site: &'b Site) -> Evaluator<'b> {
        let mut e = Evaluator::new(site);
        e.all_caps.extend(self.all_caps.iter().cloned());
        e
    }

    /// The project whose default rules govern content in `project_id`, if it is locked.
    pub fn locking_project(&self, project_id: &str) -> Option<&'a tabflow_site::Project> {
        let direct = self.index.project(project_id)?;
        match direct.content_permissions.as_str() {
            "LockedToProject" | "LockedToProjectWithoutNested" => return Some(direct),
            _ => {}
        }
        // A nested project inherits a full lock from an ancestor.
        self.index.ancestors(project_id).into_iter().find(|p| p.content_permissions == "LockedToProject")
    }

    /// Owners of `project_id` and its ancestors: a project owner has full access to the
    /// project's content and to its child projects.
    fn project_owners(&self, project_id: &str) -> BTreeSet<&'a str> {
        self.index.lineage(project_id).into_iter().map(|p| p.owner_id.as_str()).collect()
    }

    /// Users who lead `project_id` (or an ancestor): `ProjectLeader` allowed for them or
    /// one of their groups.
    fn leaders(&self, project_id: &str) -> BTreeSet<&'a str> {
        let mut out = BTreeSet::new();
        let ancestors = self.index.ancestors(project_id);
        for id in std::iter::once(project_id).chain(ancestors.iter().map(|p| p.id.as_str())) {
            for r in self.rules_on.get(id).into_iter().flatten() {
                if r.capabilities.get("ProjectLeader") == Some(&Mode::Allow) {
                    if r.grantee_kind == "user" {
                        out.insert(r.grantee_id);
                    } else if let Some(g) = self.index.group(r.grantee_id) {
                        out.extend(g.members.iter().map(String::as_str));
                    }
                }
            }
        }
        out
    }

    /// The rules that apply to an item: its own, or its locking project's defaults.
    fn rules_for(&self, kind: &str, id: &str, project_id: &str) -> (Vec<Rule<'a>>, Option<String>) {
        match self.locking_project(project_id) {
            Some(lock) => {
                let rules = self.defaults.get(&(lock.id.as_str(), content_type(kind))).cloned().unwrap_or_default();
                (rules, Some(lock.name.clone()))
            }
            None => (self.rules_on.get(id).cloned().unwrap_or_default(), None),
        }
    }

    /// Effective access of every licensed user to one workbook or datasource.
    pub fn access(&self, kind: &str, id: &str) -> Access {
        let (owner, project_id) = match kind {
            "datasource" => match self.site.datasources.iter().find(|d| d.id == id) {
                Some(d) => (d.owner_id.as_str(), d.project_id.as_str()),
                None => return Access::new(),
            },
            _ => match self.site.workbooks.iter().find(|w| w.id == id) {
                Some(w) => (w.owner_id.as_str(), w.project_id.as_str()),
                None => return Access::new(),
            },
        };
        let (rules, _) = self.rules_for(kind, id, project_id);
        let leaders = self.leaders(project_id);
        let project_owners = self.project_owners(project_id);
        let mut out = Access::new();
        for u in &self.site.users {
            if u.site_role == "Unlicensed" {
                continue;
            }
            let everything = |why: &str| -> BTreeMap<String, Grant> {
                self.all_caps.iter().map(|c| (c.clone(), Grant { allowed: true, via: why.to_string() })).collect()
            };
            let caps = if u.site_role.starts_with("SiteAdministrator") || u.site_role == "ServerAdministrator" {
                everything("site administrator")
            } else if u.id == owner {
                everything("owner")
            } else if project_owners.contains(u.id.as_str()) {
                everything("project owner")
            } else if leaders.contains(u.id.as_str()) {
                everything("project leader")
            } else {
                self.by_rules(&u.id, &rules)
            };
            let caps = cap_by_role(&u.site_role, caps);
            if !caps.is_empty() {
                out.insert(u.id.clone(), caps);
            }
        }
        out
    }

    fn by_rules(&self, user: &str, rules: &[Rule<'_>]) -> BTreeMap<String, Grant> {
        let groups: HashMap<&str, &str> = self.groups_of.get(user).into_iter().flatten().copied().collect();
        let mut user_rules: BTreeMap<&str, Mode> = BTreeMap::new();
        let mut group_rules: BTreeMap<&str, (Mode, &str)> = BTreeMap::new();
        for r in rules {
            if r.grantee_kind == "user" && r.grantee_id == user {
                for (c, m) in r.capabilities {
                    let e = user_rules.entry(c.as_str()).or_insert(*m);
                    if *m == Mode::Deny {
                        *e = Mode::Deny;
                    }
                }
            } else if r.grantee_kind == "group"
                && let Some(name) = groups.get(r.grantee_id)
            {
                for (c, m) in r.capabilities {
                    match group_rules.get(c.as_str()) {
                        Some((Mode::Deny, _)) => {}
                        _ if *m == Mode::Deny => {
                            group_rules.insert(c.as_str(), (Mode::Deny, name));
                        }
                        None => {
                            group_rules.insert(c.as_str(), (Mode::Allow, name));
                        }
                        Some(_) => {}
                    }
                }
            }
        }
        let mut out = BTreeMap::new();
        let caps: BTreeSet<&str> = user_rules.keys().chain(group_rules.keys()).copied().collect();
        for c in caps {
            if c == "ProjectLeader" {
                continue;
            }
            let g = match (user_rules.get(c), group_rules.get(c)) {
                (Some(Mode::Allow), _) => Grant { allowed: true, via: "user rule".into() },
                (Some(Mode::Deny), _) => Grant { allowed: false, via: "denied by a user rule".into() },
                (None, Some((Mode::Allow, g))) => Grant { allowed: true, via: format!("group '{g}'") },
                (None, Some((Mode::Deny, g))) => Grant { allowed: false, via: format!("denied by group '{g}'") },
                (None, None) => continue,
            };
            out.insert(c.to_string(), g);
        }
        out
    }
}

/// The site role's ceiling.
fn cap_by_role(role: &str, caps: BTreeMap<String, Grant>) -> BTreeMap<String, Grant> {
    let viewer = role == "Viewer";
    let explorer = matches!(role, "Explorer" | "SiteAdministratorExplorer") && !role.starts_with("SiteAdministrator");
    caps.into_iter()
        .map(|(c, g)| {
            let capped = g.allowed
                && ((viewer && !VIEWER_CAPS.contains(&c.as_str()))
                    || (explorer && PUBLISHER_ONLY.contains(&c.as_str())));
            if capped { (c, Grant { allowed: false, via: format!("capped by site role {role}") }) } else { (c, g) }
        })
        .collect()
}

/// Users who hold `capability` on the item (allowed).
pub fn holders<'x>(access: &'x Access, capability: &str) -> BTreeSet<&'x str> {
    access.iter().filter(|(_, caps)| caps.get(capability).is_some_and(|g| g.allowed)).map(|(u, _)| u.as_str()).collect()
}

/// Users whose allowed capabilities differ between two evaluations.
pub fn changed_users(before: &Access, after: &Access) -> BTreeSet<String> {
    let allowed = |a: &Access, u: &str| -> BTreeSet<String> {
        a.get(u).map(|c| c.iter().filter(|(_, g)| g.allowed).map(|(k, _)| k.clone()).collect()).unwrap_or_default()
    };
    before.keys().chain(after.keys()).filter(|u| allowed(before, u) != allowed(after, u)).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use tabflow_site::{
        DefaultPermissionRule, GranteeRef, Group, PermissionRule, Project, ResourceRef, SiteInfo, User, Workbook,
    };

    fn user(id: &str, role: &str) -> User {
        User {
            id: id.into(),
            name: id.into(),
            full_name: id.into(),
            email: format!("{id}@x"),
            site_role: role.into(),
            last_login: None,
            auth_setting: None,
        }
    }

    fn project(id: &str, parent: Option<&str>, cp: &str) -> Project {
        Project {
            id: id.into(),
            name: id.to_uppercase(),
            parent_id: parent.map(str::to_string),
            owner_id: "admin".into(),
            content_permissions: cp.into(),
            description: String::new(),
            created_at: None,
            updated_at: None,
        }
    }

    fn caps(list: &[(&str, Mode)]) -> BTreeMap<String, Mode> {
        list.iter().map(|(c, m)| (c.to_string(), *m)).collect()
    }

    fn rule(resource: &str, kind: &str, grantee_kind: &str, grantee: &str, c: &[(&str, Mode)]) -> PermissionRule {
        PermissionRule {
            resource: ResourceRef { kind: kind.into(), id: resource.into() },
            grantee: GranteeRef { kind: grantee_kind.into(), id: grantee.into() },
            capabilities: caps(c),
        }
    }

    fn site() -> Site {
        let wb = |id: &str, project: &str| {
            let mut w: Workbook = serde_json::from_value(serde_json::json!({
                "id": id, "name": id, "project_id": project, "owner_id": "owner", "tags": [], "size": 1,
                "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
                "datasource_ids": [], "views": []
            }))
            .unwrap();
            w.project_id = project.into();
            w
        };
        Site {
            format: "tabflow-site/1".into(),
            now: Utc::now(),
            site: SiteInfo { id: "s".into(), name: "s".into(), content_url: "s".into() },
            users: vec![
                user("admin", "SiteAdministratorCreator"),
                user("owner", "Creator"),
                user("ann", "Creator"),
                user("bob", "Viewer"),
                user("cat", "Explorer"),
                user("gone", "Unlicensed"),
                user("lead", "Creator"),
            ],
            groups: vec![
                Group {
                    id: "all".into(),
                    name: "All Users".into(),
                    members: ["admin", "owner", "ann", "bob", "cat", "gone", "lead"].map(String::from).into(),
                    minimum_site_role: None,
                },
                Group {
                    id: "fin".into(),
                    name: "Finance".into(),
                    members: vec!["ann".into(), "bob".into()],
                    minimum_site_role: None,
                },
            ],
            projects: vec![
                project("open", None, "ManagedByOwner"),
                project("locked", None, "LockedToProject"),
                project("child", Some("locked"), "ManagedByOwner"),
            ],
            datasources: vec![],
            workbooks: vec![wb("w1", "open"), wb("w2", "child")],
            permissions: vec![
                rule("w1", "workbook", "group", "all", &[("Read", Mode::Allow), ("Write", Mode::Allow)]),
                rule("w1", "workbook", "group", "fin", &[("Write", Mode::Deny), ("Delete", Mode::Allow)]),
                rule("w1", "workbook", "user", "ann", &[("Write", Mode::Allow)]),
                rule("w1", "workbook", "user", "gone", &[("Read", Mode::Allow)]),
                rule("open", "project", "user", "lead", &[("ProjectLeader", Mode::Allow)]),
                // Ignored: w2 sits in a locked project.
                rule("w2", "workbook", "group", "all", &[("Read", Mode::Allow)]),
            ],
            subscriptions: vec![],
            default_permissions: vec![DefaultPermissionRule {
                project_id: "locked".into(),
                content_type: "workbooks".into(),
                grantee: GranteeRef { kind: "group".into(), id: "fin".into() },
                capabilities: caps(&[("Read", Mode::Allow)]),
            }],
            webhooks: vec![],
            favorites: vec![],
            data_alerts: vec![],
            flows: vec![],
        }
    }

    #[test]
    fn tableau_order_user_over_group_deny_over_allow_roles_owner_leader() {
        let s = site();
        let e = Evaluator::new(&s);
        let a = e.access("workbook", "w1");
        // ann: user Allow beats the Finance group's Deny.
        assert_eq!(a["ann"]["Write"], Grant { allowed: true, via: "user rule".into() });
        assert!(a["ann"]["Delete"].allowed);
        // bob: Finance denies Write (Deny beats All Users' Allow); Viewer cannot Delete.
        assert_eq!(a["bob"]["Write"], Grant { allowed: false, via: "denied by group 'Finance'".into() });
        assert_eq!(a["bob"]["Delete"].via, "capped by site role Viewer");
        assert!(a["bob"]["Read"].allowed);
        // cat: Explorer, Write from All Users is capped.
        assert!(!a["cat"]["Write"].allowed && a["cat"]["Read"].allowed);
        // The owner, the admin and the project leader can do everything; Unlicensed nothing.
        for (u, why) in [("owner", "owner"), ("admin", "site administrator"), ("lead", "project leader")] {
            assert!(a[u].values().all(|g| g.allowed && g.via == why), "{u}: {:?}", a[u]);
        }
        assert!(!a.contains_key("gone"));
        // The project's owner can do everything (the site role still caps it).
        let mut t = s.clone();
        t.projects[0].owner_id = "ann".into();
        let b = Evaluator::new(&t).access("workbook", "w1");
        assert!(b["ann"].values().all(|g| g.allowed && g.via == "project owner"), "{:?}", b["ann"]);
        t.projects[0].owner_id = "cat".into();
        let c = Evaluator::new(&t).access("workbook", "w1");
        assert_eq!(c["cat"]["Write"].via, "capped by site role Explorer");
        assert_eq!(holders(&a, "Write"), ["admin", "ann", "lead", "owner"].into_iter().collect());
    }

    #[test]
    fn a_locked_project_and_its_nested_projects_use_the_default_rules() {
        let s = site();
        let e = Evaluator::new(&s);
        assert_eq!(e.locking_project("child").map(|p| p.id.as_str()), Some("locked"));
        let a = e.access("workbook", "w2");
        // All Users' explicit Read on w2 is ignored; Finance's default Read applies.
        assert!(a["ann"]["Read"].allowed && a["bob"]["Read"].allowed);
        assert!(!a.contains_key("cat"), "{:?}", a.get("cat"));
        let mut unlocked = s.clone();
        unlocked.projects[1].content_permissions = "LockedToProjectWithoutNested".into();
        let e = Evaluator::new(&unlocked);
        assert!(e.locking_project("child").is_none());
        assert!(e.access("workbook", "w2")["cat"]["Read"].allowed);
    }

    #[test]
    fn changed_users_finds_who_gains_or_loses() {
        let s = site();
        let before = Evaluator::new(&s).access("workbook", "w1");
        let mut t = s.clone();
        t.permissions.retain(|r| !(r.resource.id == "w1" && r.grantee.id == "all"));
        let after = Evaluator::new(&t).access("workbook", "w1");
        let changed = changed_users(&before, &after);
        assert!(changed.contains("cat") && changed.contains("bob") && !changed.contains("owner"), "{changed:?}");
    }
}
