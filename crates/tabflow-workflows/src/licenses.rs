//! License reclamation (`reclaim-licenses`): users with no sign-in for N days (90 by
//! default) lose their license — their site role becomes Unlicensed, or one level lower
//! (Creator → Explorer, Explorer / Explorer (can publish) → Viewer). Administrators, service
//! accounts and the exclusions the request names (users or groups) keep theirs. The plan lists
//! what each user owns and what happens to it (content stays theirs and keeps working; a
//! flow's owner needs a Creator license), and counts the licenses freed by type. Each
//! change is a `site_role` change of one user, undone exactly (the old role put back).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use tabflow_plan::intent::{LicenseAction, Reclaim};
use tabflow_plan::plan::{Change, Item, Step, StepKind};
use tabflow_site::User;

use crate::builder::Builder;

/// Default: no sign-in for this many days.
pub const DEFAULT_INACTIVE_DAYS: u32 = 90;

/// Names that mark an account used by a program, not a person.
const SERVICE_MARKERS: &[&str] = &["svc", "service", "bot", "api", "integration", "automation", "system"];

/// A service account: its name or full name says so ("svc-etl", "Tableau Bridge Service").
fn is_service(u: &User) -> bool {
    let words = |s: &str| -> Vec<String> {
        s.to_lowercase().split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_string).collect()
    };
    words(&u.name).iter().chain(words(&u.full_name).iter()).any(|w| SERVICE_MARKERS.contains(&w.as_str()))
}

fn is_admin(role: &str) -> bool {
    role.starts_with("SiteAdministrator") || role == "ServerAdministrator"
}

/// The role a user is lowered to, or `None` when the action leaves it as it is.
fn lowered(role: &str, action: LicenseAction) -> Option<&'static str> {
    match action {
        LicenseAction::Unlicense => (role != "Unlicensed").then_some("Unlicensed"),
        LicenseAction::Downgrade => match role {
            "Creator" => Some("Explorer"),
            "Explorer" | "ExplorerCanPublish" => Some("Viewer"),
            _ => None,
        },
    }
}

/// The license a site role uses (what a reclaimed user frees).
fn license(role: &str) -> &'static str {
    match role {
        "Creator" | "SiteAdministratorCreator" | "ServerAdministrator" => "Creator",
        "Explorer" | "ExplorerCanPublish" | "SiteAdministratorExplorer" => "Explorer",
        "Viewer" => "Viewer",
        _ => "none",
    }
}

/// The licenses a plan frees, one bar per license type (every type shown, zero or not).
fn freed_chart(freed: &BTreeMap<&str, usize>, verb: &str) -> crate::chart::Chart {
    let bars = ["Creator", "Explorer", "Viewer"]
        .into_iter()
        .map(|t| crate::chart::Bar { label: t.into(), value: freed.get(t).copied().unwrap_or(0) as u64, marked: false })
        .collect();
    crate::chart::Chart {
        kind: "bars".into(),
        title: "Licenses freed by type".into(),
        x_label: "license type".into(),
        y_label: "licenses freed".into(),
        bars,
        cutoff: None,
        note: format!(
            "What the users to {verb} hold today: a downgraded user frees the license of their old role and takes the one below it."
        ),
    }
}

impl<'p, 'a> Builder<'p, 'a> {
    pub(crate) fn reclaim_licenses(&mut self, r: &Reclaim) {
        let site = self.p.site;
        let days = r.inactive_days.unwrap_or(DEFAULT_INACTIVE_DAYS);
        let action = r.action.unwrap_or(LicenseAction::Unlicense);
        let cutoff = self.p.now - chrono::Duration::days(i64::from(days));
        // Exclusions as written: a user's name, full name or email, or a group's name.
        let mut kept_ids: BTreeMap<String, String> = BTreeMap::new();
        let mut unknown = vec![];
        for x in r.exclude.iter().flatten().map(|x| x.trim()).filter(|x| !x.is_empty()) {
            let lower = x.to_lowercase();
            if let Some(g) = site.groups.iter().find(|g| g.name.to_lowercase() == lower) {
                for m in &g.members {
                    kept_ids.entry(m.clone()).or_insert_with(|| format!("member of the excluded group {}", g.name));
                }
            } else if let Some(u) = site.users.iter().find(|u| {
                u.name.to_lowercase() == lower || u.full_name.to_lowercase() == lower || u.email.to_lowercase() == lower
            }) {
                kept_ids.insert(u.id.clone(), "excluded by name".into());
            } else {
                unknown.push(x.to_string());
            }
        }
        if !unknown.is_empty() {
            self.ask(
                format!(
                    "No user or group is called {}. Who should keep their license? Give user names, emails or group names as they are on the site.",
                    unknown.iter().map(|u| format!("'{u}'")).collect::<Vec<_>>().join(", ")
                ),
                vec![],
                None,
            );
            return;
        }
        let mut owned: BTreeMap<&str, (usize, usize, usize)> = BTreeMap::new();
        for w in &site.workbooks {
            owned.entry(w.owner_id.as_str()).or_default().0 += 1;
        }
        for d in &site.datasources {
            owned.entry(d.owner_id.as_str()).or_default().1 += 1;
        }
        for f in &site.flows {
            owned.entry(f.owner_id.as_str()).or_default().2 += 1;
        }
        let mut inactive = vec![];
        let mut kept = vec![];
        let mut cands: Vec<Cand> = vec![];
        let mut freed: BTreeMap<&str, usize> = BTreeMap::new();
        for u in site.users.iter().filter(|u| u.last_login.is_none_or(|t| t < cutoff)) {
            let last = u.last_login.map(|t| t.date_naive().to_string()).unwrap_or_else(|| "never".into());
            let (wb, ds, fl) = owned.get(u.id.as_str()).copied().unwrap_or_default();
            let why_kept = if u.site_role == "Unlicensed" {
                Some("already Unlicensed".to_string())
            } else if is_admin(&u.site_role) {
                Some("administrator".to_string())
            } else if is_service(u) {
                Some("service account".to_string())
            } else if u.name == self.p.signed_in {
                Some("the signed-in user".to_string())
            } else {
                kept_ids.get(&u.id).cloned()
            };
            let to = if why_kept.is_some() { None } else { lowered(&u.site_role, action) };
            let what_happens = match (to, fl) {
                (Some(r), n) if n > 0 && r != "Creator" => format!(
                    "keeps {wb} workbooks and {ds} datasources (they keep working); {n} flows stay theirs but cannot run under a {r}: hand them over first"
                ),
                (Some(_), _) if wb + ds > 0 => {
                    format!("keeps {wb} workbooks and {ds} datasources; they stay theirs and keep working")
                }
                (Some(_), _) => "owns nothing".to_string(),
                (None, _) => String::new(),
            };
            inactive.push(json!({
                "user": u.name, "name": u.full_name, "site_role": u.site_role, "last_sign_in": last,
                "workbooks": wb, "datasources": ds, "flows": fl,
                "action": match (&why_kept, to) {
                    (Some(w), _) => format!("kept: {w}"),
                    (None, Some(r)) => format!("{} → {r}", u.site_role),
                    (None, None) => format!("kept: {} has no lower license", u.site_role),
                },
                "owned_content": what_happens,
            }));
            if let Some(w) = why_kept {
                kept.push(json!({"user": u.name, "site_role": u.site_role, "why": w}));
                continue;
            }
            let Some(to) = to else { continue };
            cands.push(Cand { user: u, to, last, owned: what_happens });
        }
        let verb = match action {
            LicenseAction::Unlicense => "unlicense",
            LicenseAction::Downgrade => "downgrade",
        };
        let notify = r.notify.unwrap_or(r.grace_days.is_some());
        // With a grace period: who is told now, who waits, whose grace has passed, and whose
        // notice no longer holds (they signed in since, or are kept now).
        let mut to_notify: Vec<&Cand> = vec![];
        let mut waiting = vec![];
        let mut dropped = vec![];
        let mut due: Vec<&Cand> = vec![];
        let mut due_notice: BTreeMap<&str, &crate::LicenseNotice> = BTreeMap::new();
        let act_after = r.grace_days.map(|g| self.p.now + chrono::Duration::days(i64::from(g)));
        if r.grace_days.is_some() {
            let notices: BTreeMap<&str, &crate::LicenseNotice> =
                self.p.license_notices.iter().map(|n| (n.user_id.as_str(), n)).collect();
            for c in &cands {
                // A notice holds while the user has not signed in since it was sent.
                match notices.get(c.user.id.as_str()).filter(|n| c.user.last_login.is_none_or(|t| t <= n.notified_at)) {
                    Some(n) if n.act_after <= self.p.now => {
                        due.push(c);
                        due_notice.insert(c.user.id.as_str(), n);
                    }
                    Some(n) => waiting.push(json!({
                        "user": c.user.name, "notified": n.notified_at.date_naive().to_string(),
                        "act_after": n.act_after.date_naive().to_string(), "notice_run": n.run_id,
                    })),
                    None => to_notify.push(c),
                }
            }
            for n in &self.p.license_notices {
                if cands.iter().any(|c| c.user.id == n.user_id && !to_notify.iter().any(|t| t.user.id == n.user_id)) {
                    continue;
                }
                let why = match site.users.iter().find(|u| u.id == n.user_id) {
                    None => "no longer on the site".to_string(),
                    Some(u) if u.last_login.is_some_and(|t| t > n.notified_at) => format!(
                        "signed in on {} after the notice of {}: keeps their license",
                        u.last_login.map(|t| t.date_naive().to_string()).unwrap_or_default(),
                        n.notified_at.date_naive()
                    ),
                    Some(_) => "no longer to be changed (kept now)".to_string(),
                };
                self.plan.notes.push(format!(
                    "{} was told on {} that their license would go; dropped: {why}.",
                    n.user_name,
                    n.notified_at.date_naive()
                ));
                dropped.push(json!({"user_id": n.user_id, "user": n.user_name, "notified": n.notified_at.date_naive().to_string(), "why": why}));
            }
        } else {
            due = cands.iter().collect();
        }
        for c in &due {
            *freed.entry(license(&c.user.site_role)).or_default() += 1;
        }
        let find = self.step_id();
        self.plan.steps.push(Step::new(
            find.clone(),
            StepKind::FindInactiveUsers,
            format!(
                "Find users with no sign-in for {days}+ days: {} found, {} to {verb}{}, {} kept",
                inactive.len(),
                cands.len(),
                match r.grace_days {
                    Some(g) => format!(
                        " ({} to warn now, {} waiting, {} past their {g}-day grace)",
                        to_notify.len(),
                        waiting.len(),
                        due.len()
                    ),
                    None => String::new(),
                },
                kept.len()
            ),
            vec![],
            vec![],
            vec![],
            json!({
                "inactive_days": days,
                "cutoff": cutoff.date_naive().to_string(),
                "action": verb,
                "inactive": inactive,
                "kept": kept,
                "licenses_freed": freed,
                "rule": "no sign-in since the cutoff, or never; administrators, service accounts, the signed-in user and the exclusions keep their license",
                "grace": r.grace_days.map(|g| json!({
                    "grace_days": g, "waiting": waiting, "dropped": dropped,
                    "site_id": self.p.site_ref.id,
                })),
            }),
        ));
        if let (Some(g), Some(when)) = (r.grace_days, act_after)
            && !to_notify.is_empty()
        {
            let when_day = when.date_naive().to_string();
            let recipients: Vec<Value> = to_notify
                .iter()
                .map(|c| {
                    let u = c.user;
                    json!({
                        "id": u.id, "name": u.full_name, "email": u.email, "user": u.name,
                        "site_role": u.site_role, "to": c.to, "act_after": when.to_rfc3339(),
                        "subject": format!("Tableau: your {} license goes on {when_day} unless you sign in", license(&u.site_role)),
                        "body": format!(
                            "Hello {},\n\nYou have not signed in to Tableau (site {}) since {}. Unless you sign in before {when_day}, your site role changes from {} to {}.\n\nWhat you own: {}.\n\nSign in before {when_day} to keep your license; ask your Tableau administrator if you need it kept.\n",
                            if u.full_name.is_empty() { &u.name } else { &u.full_name },
                            self.p.site_ref.content_url,
                            c.last,
                            u.site_role,
                            c.to,
                            c.owned,
                        ),
                    })
                })
                .collect();
            let items = to_notify
                .iter()
                .map(|c| Item {
                    kind: "user".into(),
                    id: c.user.id.clone(),
                    name: c.user.name.clone(),
                    reason: Some(format!(
                        "last sign-in {}; told now, {} → {} after {when_day} if still inactive; {}",
                        c.last, c.user.site_role, c.to, c.owned
                    )),
                    ..Item::default()
                })
                .collect();
            let s = self.step_id();
            self.plan.steps.push(Step::new(
                s,
                StepKind::NotifyOwners,
                format!(
                    "Warn {} inactive users that their license goes after {g} days ({when_day}) unless they sign in; recorded as pending (outbox; email when configured)",
                    to_notify.len()
                ),
                vec![find.clone()],
                items,
                vec![],
                json!({
                    "audience": "inactive-users",
                    "grace_days": g,
                    "act_after": when.to_rfc3339(),
                    "site_id": self.p.site_ref.id,
                    "recipients": recipients,
                }),
            ));
        }
        if due.is_empty() {
            if r.grace_days.is_none() || (to_notify.is_empty() && waiting.is_empty()) {
                self.plan
                    .notes
                    .push(format!("Nothing to do: no licensed user without a sign-in for {days} days can be {verb}d."));
            } else {
                self.plan.notes.push(format!(
                    "No role changes now: {} users are told and {} wait for their grace period to end.",
                    to_notify.len(),
                    waiting.len()
                ));
            }
            return;
        }
        let mut items = vec![];
        let mut changes = vec![];
        for c in &due {
            let u = c.user;
            let notice = due_notice.get(u.id.as_str()).map(|n| {
                format!("; told on {} (run {}), grace over, still no sign-in", n.notified_at.date_naive(), n.run_id)
            });
            items.push(Item {
                kind: "user".into(),
                id: u.id.clone(),
                name: u.name.clone(),
                reason: Some(format!(
                    "last sign-in {}; {} → {}; {}{}",
                    c.last,
                    u.site_role,
                    c.to,
                    c.owned,
                    notice.unwrap_or_default()
                )),
                ..Item::default()
            });
            changes.push(Change {
                item: u.id.clone(),
                field: "site_role".into(),
                before: json!(u.site_role),
                after: json!(c.to),
                before_id: None,
                after_id: None,
                after_ref: None,
            });
        }
        let told: Vec<Value> = if notify {
            due.iter()
                .map(|c| {
                    let u = c.user;
                    json!({
                        "id": u.id, "name": u.full_name, "email": u.email,
                        "subject": format!("Tableau: your site role is now {}", c.to),
                        "body": format!(
                            "Hello {},\n\nYou had not signed in to Tableau (site {}) since {}, so your site role changed from {} to {}.\n\nWhat you own: {}.\n\nAsk your Tableau administrator if you need your license back.\n",
                            if u.full_name.is_empty() { &u.name } else { &u.full_name },
                            self.p.site_ref.content_url,
                            c.last,
                            u.site_role,
                            c.to,
                            c.owned,
                        ),
                    })
                })
                .collect()
        } else {
            vec![]
        };
        let counts: Vec<String> = freed.iter().map(|(k, n)| format!("{n} {k}")).collect();
        let roles: BTreeSet<&str> = changes.iter().filter_map(|c| c.after.as_str()).collect();
        let n = items.len();
        let s = self.step_id();
        self.plan.steps.push(Step::new(
            s,
            StepKind::ChangeSiteRoles,
            format!(
                "Set {n} inactive users to {} (frees {}){}",
                roles.into_iter().collect::<Vec<_>>().join(" / "),
                counts.join(", "),
                if notify { "; each is told after the run" } else { "" }
            ),
            vec![find],
            items,
            changes,
            json!({
                "licenses_freed": freed,
                "undo": "restores each user's site role exactly",
                "notify": if notify { json!({"recipients": told}) } else { Value::Null },
                "grace": r.grace_days.map(|g| json!({"grace_days": g, "site_id": self.p.site_ref.id})),
                "chart": freed_chart(&freed, verb),
            }),
        ));
    }
}

/// A user whose role the plan lowers (now, or after a grace period).
struct Cand<'s> {
    user: &'s User,
    to: &'static str,
    /// The last sign-in day, or `never`.
    last: String,
    /// What they own and what happens to it.
    owned: String,
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use tabflow_plan::plan::StepKind;

    fn plan(params: serde_json::Value) -> tabflow_plan::plan::Plan {
        let site = tabflow_site::generate::demo();
        plan_on(&site, params)
    }

    fn plan_on(site: &tabflow_site::Site, params: serde_json::Value) -> tabflow_plan::plan::Plan {
        crate::plan_intent(site, "reclaim-licenses", params)
    }

    #[test]
    fn inactive_users_lose_their_license_admins_and_exclusions_keep_it() {
        let site = tabflow_site::generate::demo();
        let cutoff = site.now - chrono::Duration::days(90);
        // Expected, computed here from the site.
        let expected: Vec<&str> = site
            .users
            .iter()
            .filter(|u| u.last_login.is_none_or(|t| t < cutoff))
            .filter(|u| u.site_role != "Unlicensed" && !u.site_role.contains("Administrator") && u.name != "admin")
            .map(|u| u.name.as_str())
            .collect();
        assert!(!expected.is_empty(), "the demo has inactive users");
        let p = plan(json!({}));
        let change = p.steps.iter().find(|s| s.kind == StepKind::ChangeSiteRoles).expect("a change step");
        let mut got: Vec<&str> = change.items.iter().map(|i| i.name.as_str()).collect();
        got.sort();
        let mut want = expected.clone();
        want.sort();
        assert_eq!(got, want);
        assert!(change.changes.iter().all(|c| c.after == json!("Unlicensed")));
        assert_eq!(change.rollback, tabflow_plan::RollbackClass::Exact);
        let freed: usize =
            change.details["licenses_freed"].as_object().unwrap().values().map(|v| v.as_u64().unwrap() as usize).sum();
        assert_eq!(freed, expected.len());
        // The report's chart: a bar per license type, the same counts.
        let chart: crate::chart::Chart = serde_json::from_value(change.details["chart"].clone()).unwrap();
        let by_type: Vec<(&str, u64)> = chart.bars.iter().map(|b| (b.label.as_str(), b.value)).collect();
        let count = |t: &str| change.details["licenses_freed"][t].as_u64().unwrap_or(0);
        assert_eq!(
            by_type,
            [("Creator", count("Creator")), ("Explorer", count("Explorer")), ("Viewer", count("Viewer"))]
        );
        assert_eq!(chart.bars.iter().map(|b| b.value).sum::<u64>(), expected.len() as u64);

        // Excluding one by name keeps them; downgrading lowers one level.
        let first = want[0];
        let p = plan(json!({"exclude": [first], "action": "downgrade"}));
        let change = p.steps.iter().find(|s| s.kind == StepKind::ChangeSiteRoles);
        for c in change.map(|s| s.changes.as_slice()).unwrap_or_default() {
            let u = site.users.iter().find(|u| u.id == c.item).unwrap();
            assert_ne!(u.name, first);
            let want = if u.site_role == "Creator" { "Explorer" } else { "Viewer" };
            assert_eq!(c.after, json!(want), "{}", u.site_role);
        }
        let find = p.steps.iter().find(|s| s.kind == StepKind::FindInactiveUsers).unwrap();
        assert!(find.details["kept"].as_array().unwrap().iter().any(|k| k["user"] == first));

        // An exclusion that names nobody is asked about, never ignored.
        let p = plan(json!({"exclude": ["nobody-by-this-name"]}));
        assert!(p.steps.is_empty() && p.questions[0].text.contains("nobody-by-this-name"), "{:?}", p.questions);
    }
}

#[cfg(test)]
mod grace_tests {
    use chrono::Duration;
    use serde_json::json;
    use tabflow_plan::intent::Intent;
    use tabflow_plan::plan::{SiteRef, StepKind};
    use tabflow_plan::policy::Policy;

    use crate::{LicenseNotice, Planner};

    fn plan_with(
        site: &tabflow_site::Site,
        params: serde_json::Value,
        notices: Vec<LicenseNotice>,
    ) -> tabflow_plan::plan::Plan {
        let policy = Policy::default();
        let p = Planner {
            site,
            site_ref: SiteRef { server: "demo".into(), content_url: "demo".into(), id: "s".into() },
            policy: &policy,
            signed_in: "admin".into(),
            now: site.now,
            answers: Default::default(),
            usage_source: "test".into(),
            learned: Default::default(),
            license_notices: notices,
        };
        let params = params.as_object().cloned().unwrap();
        crate::plan("reclaim", vec![Intent::from_parts("reclaim-licenses", params).unwrap()], &p)
    }

    #[test]
    fn with_grace_the_first_plan_warns_and_a_later_one_acts_on_those_still_inactive() {
        let mut site = tabflow_site::generate::demo();
        let now = site.now;
        // Without grace: who would lose their license now.
        let direct = plan_with(&site, json!({}), vec![]);
        let change = direct.steps.iter().find(|s| s.kind == StepKind::ChangeSiteRoles).unwrap();
        let mut want: Vec<String> = change.items.iter().map(|i| i.name.clone()).collect();
        want.sort();
        assert!(want.len() >= 2, "{want:?}");
        // Without grace nobody is told unless asked; with notify each changed user is.
        assert!(change.details["notify"].is_null());
        let told = plan_with(&site, json!({"notify": true}), vec![]);
        let c = told.steps.iter().find(|s| s.kind == StepKind::ChangeSiteRoles).unwrap();
        assert_eq!(c.details["notify"]["recipients"].as_array().unwrap().len(), want.len());

        // First plan with a 14-day grace: the same users are warned; no role changes.
        let first = plan_with(&site, json!({"grace_days": 14}), vec![]);
        assert!(first.steps.iter().all(|s| s.kind != StepKind::ChangeSiteRoles), "no role changes yet");
        assert!(first.steps.iter().all(|s| !s.is_write()));
        let warn = first.steps.iter().find(|s| s.kind == StepKind::NotifyOwners).expect("a warning step");
        assert_eq!(warn.details["audience"], "inactive-users");
        let mut warned: Vec<String> = warn.items.iter().map(|i| i.name.clone()).collect();
        warned.sort();
        assert_eq!(warned, want);
        let day = (now + Duration::days(14)).date_naive().to_string();
        for r in warn.details["recipients"].as_array().unwrap() {
            assert!(r["subject"].as_str().unwrap().contains(&day), "{r}");
            assert!(r["body"].as_str().unwrap().contains("What you own:"), "{r}");
        }

        // Twenty days later (their notices' grace over): one of them signed in meanwhile.
        let users = site.users.clone();
        let notice = |name: &str, ago: i64| {
            let u = users.iter().find(|u| u.name == name).unwrap();
            LicenseNotice {
                user_id: u.id.clone(),
                user_name: u.name.clone(),
                notified_at: now - Duration::days(ago),
                act_after: now - Duration::days(ago) + Duration::days(14),
                run_id: "run-1".into(),
            }
        };
        let back = want[0].clone();
        let notices: Vec<LicenseNotice> = want.iter().map(|n| notice(n, 20)).collect();
        site.users.iter_mut().find(|u| u.name == back).unwrap().last_login = Some(now - Duration::days(2));
        let later = plan_with(&site, json!({"grace_days": 14}), notices);
        let change = later.steps.iter().find(|s| s.kind == StepKind::ChangeSiteRoles).expect("acts now");
        let mut acted: Vec<String> = change.items.iter().map(|i| i.name.clone()).collect();
        acted.sort();
        assert_eq!(acted, want[1..].to_vec());
        assert!(change.items.iter().all(|i| i.reason.as_deref().unwrap().contains("grace over")));
        assert!(later.steps.iter().all(|s| s.kind != StepKind::NotifyOwners), "nobody new to warn");
        let find = later.steps.iter().find(|s| s.kind == StepKind::FindInactiveUsers).unwrap();
        let dropped = find.details["grace"]["dropped"].as_array().unwrap();
        assert_eq!(dropped.len(), 1);
        assert_eq!(dropped[0]["user"], back.as_str());
        assert!(dropped[0]["why"].as_str().unwrap().contains("signed in"));
        assert!(later.notes.iter().any(|n| n.contains(&back) && n.contains("dropped")), "{:?}", later.notes);
        // With grace, the users acted on are told by default.
        assert_eq!(change.details["notify"]["recipients"].as_array().unwrap().len(), want.len() - 1);

        // Notices still within their grace: they wait; nothing changes and nobody is told twice.
        let site = tabflow_site::generate::demo();
        let waiting = plan_with(&site, json!({"grace_days": 14}), want.iter().map(|n| notice(n, 3)).collect());
        assert!(waiting.steps.iter().all(|s| !s.is_write() && s.kind != StepKind::NotifyOwners));
        let find = waiting.steps.iter().find(|s| s.kind == StepKind::FindInactiveUsers).unwrap();
        assert_eq!(find.details["grace"]["waiting"].as_array().unwrap().len(), want.len());
    }
}
