//! Unit tests of the generator: well-formed sites of every size, the demo's stories, determinism.

use std::collections::{BTreeSet, HashMap, HashSet};

use super::*;

/// Ids of the top-level project `name` and all its descendants (the top one first).
fn tree(s: &Site, name: &str) -> Vec<String> {
    let top = s.projects.iter().find(|p| p.name == name && p.parent_id.is_none()).unwrap();
    crate::Index::new(s).subtree(&top.id).into_iter().map(str::to_string).collect()
}

fn is_luid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.iter().map(|p| p.len()).collect::<Vec<_>>() == [8, 4, 4, 4, 12]
        && s.chars().all(|c| c == '-' || c.is_ascii_digit() || ('a'..='f').contains(&c))
}

/// Checks every generated site must pass, whatever its size.
fn well_formed(s: &Site) {
    s.check().unwrap();
    assert_eq!(s.now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true), DEMO_NOW);
    let mut ids = vec![s.site.id.as_str()];
    ids.extend(s.users.iter().map(|x| x.id.as_str()));
    ids.extend(s.groups.iter().map(|x| x.id.as_str()));
    ids.extend(s.projects.iter().map(|x| x.id.as_str()));
    ids.extend(s.datasources.iter().flat_map(|x| [x.id.as_str(), x.connection.id.as_str()]));
    ids.extend(
        s.workbooks.iter().flat_map(|w| std::iter::once(w.id.as_str()).chain(w.views.iter().map(|v| v.id.as_str()))),
    );
    ids.extend(s.subscriptions.iter().map(|x| x.id.as_str()));
    ids.extend(s.flows.iter().map(|x| x.id.as_str()));
    for id in ids {
        assert!(is_luid(id), "{id:?} is not LUID-shaped");
    }
    // Nothing in the future.
    for w in &s.workbooks {
        assert!(w.created_at <= w.updated_at && w.updated_at <= s.now, "{}", w.name);
        assert!(w.last_viewed_at().is_none_or(|t| t <= s.now && t >= w.created_at - Duration::days(1)));
        assert!((1..=6).contains(&w.views.len()));
    }
    for f in &s.flows {
        assert!(f.created_at <= f.updated_at && f.updated_at <= s.now, "flow {}", f.name);
    }
    let mut flow_names = BTreeSet::new();
    for f in &s.flows {
        assert!(flow_names.insert((&f.project_id, &f.name)), "flow {} twice in a project", f.name);
    }
    // Names unique within a project, content URLs unique site-wide.
    let mut names = BTreeSet::new();
    let mut urls = BTreeSet::new();
    for (p, n, u) in s
        .workbooks
        .iter()
        .map(|w| (&w.project_id, &w.name, &w.content_url))
        .chain(s.datasources.iter().map(|d| (&d.project_id, &d.name, &d.content_url)))
    {
        assert!(names.insert((p, n)), "name {n} twice in a project");
        assert!(urls.insert(u), "content URL {u} twice");
    }
    // One rule per (resource, grantee); references that check() does not cover.
    let mut pairs = BTreeSet::new();
    for r in &s.permissions {
        assert!(pairs.insert((&r.resource, &r.grantee)), "duplicate rule {r:?}");
        assert!(!r.capabilities.is_empty());
    }
    let views: BTreeSet<&str> = s.workbooks.iter().flat_map(|w| w.views.iter().map(|v| v.id.as_str())).collect();
    let workbooks: BTreeSet<&str> = s.workbooks.iter().map(|w| w.id.as_str()).collect();
    for sub in &s.subscriptions {
        let ok = match sub.content.kind.as_str() {
            "view" => views.contains(sub.content.id.as_str()),
            "workbook" => workbooks.contains(sub.content.id.as_str()),
            _ => false,
        };
        assert!(ok, "subscription {} points at nothing", sub.subject);
    }
    for a in &s.data_alerts {
        assert!(views.contains(a.view_id.as_str()));
    }
    // Admin Insights: present, and nothing depends on it.
    let insights = tree(s, "Admin Insights");
    let names: Vec<&str> =
        s.datasources.iter().filter(|d| insights.contains(&d.project_id)).map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["Site Content", "TS Events", "TS Users"]);
    let insight_ids: Vec<&String> =
        s.datasources.iter().filter(|d| insights.contains(&d.project_id)).map(|d| &d.id).collect();
    assert!(!s.workbooks.iter().any(|w| w.datasource_ids.iter().any(|d| insight_ids.contains(&d))));
}

#[test]
fn same_seed_same_bytes() {
    let a = generate(&Options { scale: 500, seed: 3 }).to_json();
    assert_eq!(a, generate(&Options { scale: 500, seed: 3 }).to_json());
    assert_ne!(a, generate(&Options { scale: 500, seed: 4 }).to_json());
    assert_eq!(demo().to_json(), demo().to_json());
    assert_ne!(demo().to_json(), generate(&Options { scale: 0, seed: 2 }).to_json());
}

#[test]
fn demo_tells_the_story() {
    let s = demo();
    well_formed(&s);
    assert_eq!(s.workbooks.len(), 847);
    assert_eq!(s.users.len(), 120);
    assert!((55..=65).contains(&s.datasources.len()), "{} datasources", s.datasources.len());

    // Finance: nested projects, 23 workbooks unused for 90+ days.
    let fin = tree(&s, "Finance");
    assert!(fin.len() >= 4, "Finance has nested sub-projects");
    let depth3 = s.projects.iter().any(|p| p.name == "Year-End Close" && p.parent_id.as_ref() != Some(&fin[0]));
    assert!(depth3, "a third level under Finance");
    let cutoff = s.now - Duration::days(90);
    let in_fin: Vec<&Workbook> = s.workbooks.iter().filter(|w| fin.contains(&w.project_id)).collect();
    let stale: Vec<&&Workbook> =
        in_fin.iter().filter(|w| w.created_at < cutoff && w.last_viewed_at().is_none_or(|t| t < cutoff)).collect();
    assert!((15..=25).contains(&stale.len()), "Finance stale-90 count {}", stale.len());
    let never = stale.iter().filter(|w| w.last_viewed_at().is_none()).count();
    assert!((3..stale.len()).contains(&never), "some never viewed, the rest long ago: {never}");
    for w in stale.iter().filter(|w| w.last_viewed_at().is_some()) {
        let days = (s.now - w.last_viewed_at().unwrap()).num_days();
        assert!((91..=400).contains(&days), "{days}");
    }
    let recent = in_fin.iter().filter(|w| w.created_at > s.now - Duration::days(30) && w.total_views() == 0);
    assert!(recent.count() >= 2, "too recent to judge");
    let yesterday = in_fin.iter().filter(|w| w.last_viewed_at().is_some_and(|t| t > s.now - Duration::days(2)));
    assert!(yesterday.count() >= 3);

    // John Smith (Marketing) owns about 20 items; John Doe (Sales) makes "John" ambiguous.
    let john = s.users.iter().find(|u| u.name == "jsmith").unwrap();
    assert_eq!((john.full_name.as_str(), john.site_role.as_str()), ("John Smith", "Creator"));
    let owned = s.workbooks.iter().filter(|w| w.owner_id == john.id).count()
        + s.datasources.iter().filter(|d| d.owner_id == john.id).count();
    assert!((15..=25).contains(&owned), "John owns {owned}");
    let marketing = tree(&s, "Marketing");
    assert!(s.workbooks.iter().filter(|w| w.owner_id == john.id).all(|w| marketing.contains(&w.project_id)));
    assert!(s.projects.iter().any(|p| p.owner_id == john.id));
    assert!(s.subscriptions.iter().filter(|x| x.user_id == john.id).count() >= 2);
    assert!(s.data_alerts.iter().any(|a| a.owner_id == john.id));
    // Flows: about one per 40 workbooks, John owns one, every owner may own a flow.
    assert_eq!(s.flows.len(), 847 / 40);
    assert_eq!(s.flows.iter().filter(|f| f.owner_id == john.id).count(), 1);
    let creator = |id: &str| {
        let role = &s.users.iter().find(|u| u.id == id).unwrap().site_role;
        matches!(role.as_str(), "Creator" | "SiteAdministratorCreator" | "ServerAdministrator")
    };
    assert!(s.flows.iter().all(|f| creator(&f.owner_id)), "flow owners hold a Creator license");
    let group = |name: &str| s.groups.iter().find(|g| g.name == name).unwrap();
    assert!(group("Marketing").members.contains(&john.id));
    let doe = s.users.iter().find(|u| u.name == "jdoe").unwrap();
    assert!(group("Sales").members.contains(&doe.id) && !group("Marketing").members.contains(&doe.id));
    assert_eq!(s.users.iter().filter(|u| u.full_name.starts_with("John ")).count(), 2, "John is ambiguous");
    let admin = s.users.iter().find(|u| u.name == "admin").unwrap();
    assert_eq!(admin.site_role, "SiteAdministratorCreator");
    assert!(s.users.iter().any(|u| u.site_role == "Unlicensed"));
    assert!(s.users.iter().any(|u| u.last_login.is_some_and(|t| t < s.now - Duration::days(180))));
    assert_eq!(group("All Users").members.len(), s.users.len());

    // Duplicates: Finance has three groups (8 datasources), each with one certified member;
    // one group is built on the same custom SQL.
    let conn_key = |d: &Datasource| {
        let c = &d.connection;
        (c.kind.clone(), c.server.clone(), c.database.clone(), c.table.clone(), c.custom_sql.clone())
    };
    let mut dup_groups: BTreeMap<_, Vec<&Datasource>> = BTreeMap::new();
    for d in &s.datasources {
        dup_groups.entry(conn_key(d)).or_default().push(d);
    }
    let dup_groups: Vec<&Vec<&Datasource>> = dup_groups.values().filter(|v| v.len() > 1).collect();
    for g in &dup_groups {
        assert_eq!(g.iter().filter(|d| d.certified).count(), 1, "one certified in {:?}", g[0].name);
    }
    let in_fin_groups: Vec<_> = dup_groups.iter().filter(|g| g.iter().all(|d| fin.contains(&d.project_id))).collect();
    assert_eq!(in_fin_groups.len(), 3);
    assert_eq!(in_fin_groups.iter().map(|g| g.len()).sum::<usize>(), 8);
    assert!(in_fin_groups.iter().any(|g| g[0].connection.custom_sql.is_some()));
    assert!(dup_groups.len() >= 6, "duplicates elsewhere too");
    for d in &s.datasources {
        let insight = ["Site Content", "TS Events", "TS Users"].contains(&d.name.as_str());
        assert!(insight || (10..=30).contains(&d.fields.len()), "{} has {} fields", d.name, d.fields.len());
    }

    // Deprecated datasources: replacement exists and is certified; dependents exist; one
    // dependent of the GL uses a field the replacement lacks.
    let deprecated: Vec<&Datasource> =
        s.datasources.iter().filter(|d| d.tags.iter().any(|t| t == "deprecated")).collect();
    assert!(deprecated.len() >= 3);
    for d in &deprecated {
        let note = d.certification_note.as_deref().unwrap();
        let replacement = note.split('\'').nth(1).unwrap();
        let r = s.datasources.iter().find(|x| x.name == replacement).unwrap();
        assert!(r.certified);
        let missing = d.fields.iter().filter(|f| !r.fields.contains(f)).count();
        assert!(missing <= 1, "{} lacks {missing} fields of {}", r.name, d.name);
        assert!(s.workbooks.iter().filter(|w| w.datasource_ids.contains(&d.id)).count() >= 3, "{}", d.name);
    }
    let legacy = s.datasources.iter().find(|d| d.name == "Finance GL (legacy)").unwrap();
    let gl = s.datasources.iter().find(|d| d.name == "Finance General Ledger").unwrap();
    let incompatible = s
        .workbooks
        .iter()
        .filter(|w| w.datasource_ids.contains(&legacy.id) && w.fields_used.iter().any(|f| !gl.fields.contains(f)));
    assert_eq!(incompatible.count(), 1);
    // Workbooks use fields their datasources have.
    for w in s.workbooks.iter().filter(|w| !w.datasource_ids.contains(&legacy.id)) {
        for f in &w.fields_used {
            assert!(
                w.datasource_ids.iter().any(|id| s.datasources.iter().any(|d| d.id == *id && d.fields.contains(f)))
            );
        }
    }

    // Sensitive content, overly broad and Deny rules, explicit user grants, view rules.
    let sensitive = ["sensitive", "confidential", "PII", "restricted"];
    let tagged = |w: &&Workbook| w.tags.iter().any(|t| sensitive.contains(&t.as_str()));
    assert!(s.workbooks.iter().filter(tagged).count() >= 30);
    let all_users = group("All Users");
    let broad: Vec<&PermissionRule> = s
        .permissions
        .iter()
        .filter(|r| r.grantee.id == all_users.id && r.capabilities.get("Delete") == Some(&Mode::Allow))
        .collect();
    assert!(broad.len() >= 3);
    for r in &broad {
        assert!(s.workbooks.iter().filter(tagged).any(|w| w.id == r.resource.id));
    }
    let teams_with_broad = TEAMS
        .iter()
        .filter(|t| {
            let ids = tree(&s, t.name);
            broad.iter().any(|r| s.workbooks.iter().any(|w| w.id == r.resource.id && ids.contains(&w.project_id)))
        })
        .count();
    assert!(teams_with_broad >= 3, "broad rules in {teams_with_broad} teams");
    let contractors = group("Contractors");
    let confidential = s.projects.iter().find(|p| p.name == "Confidential").unwrap();
    assert!(s.permissions.iter().any(|r| r.resource.id == confidential.id
        && r.grantee.id == contractors.id
        && r.capabilities.get("Read") == Some(&Mode::Deny)));
    assert!(s.permissions.iter().filter(|r| r.resource.kind == "workbook" && r.grantee.kind == "user").count() >= 50);
    for kind in ["project", "workbook", "datasource", "view"] {
        assert!(s.permissions.iter().any(|r| r.resource.kind == kind), "rules on {kind}");
    }
    for r in s.permissions.iter().filter(|r| r.resource.kind == "view") {
        let w = s.workbooks.iter().find(|w| w.views.iter().any(|v| v.id == r.resource.id)).unwrap();
        assert!(!w.show_tabs, "view rules only where tabs are hidden");
    }
    assert!(!s.default_permissions.is_empty());
    assert!(s.projects.iter().any(|p| p.name == "Archive" && p.content_permissions == "LockedToProject"));
    assert!(s.projects.iter().any(|p| p.name == "default"));

    // Subscriptions, including on stale Finance workbooks; the rest of the extensions.
    assert_eq!(s.subscriptions.len(), 40);
    let stale_ids: Vec<&String> = stale.iter().map(|w| &w.id).collect();
    assert!(s.subscriptions.iter().any(|x| stale_ids.contains(&&x.content.id)));
    assert!(s.subscriptions.iter().any(|x| x.content.kind == "view"));
    assert!((2..=3).contains(&s.webhooks.len()));
    assert!(!s.favorites.is_empty() && !s.data_alerts.is_empty());
    let sheet_types: BTreeSet<&str> =
        s.workbooks.iter().flat_map(|w| w.views.iter().map(|v| v.sheet_type.as_str())).collect();
    assert_eq!(sheet_types, BTreeSet::from(["dashboard", "story", "view"]));
}

#[test]
fn scaled_site_counts() {
    let s = generate(&Options { scale: 1000, seed: 9 });
    well_formed(&s);
    assert_eq!(s.workbooks.len(), 1000);
    assert_eq!(s.users.len(), 200);
    assert!(s.groups.len() >= 200 / 50 + 6);
    assert!(s.projects.len() >= 10);
    assert!((60..=75).contains(&s.datasources.len()), "{}", s.datasources.len());
    assert!(s.workbooks.iter().all(|w| (1..=4).contains(&w.views.len())));
    assert!((1000..=2500).contains(&s.permissions.len()), "{}", s.permissions.len());
    assert_eq!(s.subscriptions.len(), 50);
    assert_eq!(s.flows.len(), 25);
    assert!(s.users.iter().any(|u| u.name == "jsmith"));
    assert_eq!(Site::from_json(&s.to_json()).unwrap(), s);

    // About one project per 200 workbooks, one group per 50 users.
    let big = generate(&Options { scale: 10_000, seed: 9 });
    well_formed(&big);
    assert!((45..=55).contains(&big.projects.len()), "{} projects", big.projects.len());
    assert!(big.groups.len() >= 2000 / 50);
}

#[test]
fn luids_are_lowercase_uuids() {
    let mut r = Rng(42);
    for _ in 0..100 {
        let id = r.luid();
        assert!(is_luid(&id), "{id}");
        assert_eq!(&id[14..15], "4");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"));
    }
}

/// Release builds only (`cargo test --release -p tabflow-site -- --nocapture`).
#[cfg(not(debug_assertions))]
#[test]
fn hundred_thousand_is_fast() {
    let t = std::time::Instant::now();
    let s = generate(&Options { scale: 100_000, seed: 1 });
    let took = t.elapsed();
    eprintln!("scale 100000: {took:?}");
    assert_eq!(s.workbooks.len(), 100_000);
    assert_eq!(s.users.len(), 20_000);
    assert!((6_500..=6_700).contains(&s.datasources.len()), "{}", s.datasources.len());
    assert!((450..=550).contains(&s.projects.len()), "{}", s.projects.len());
    assert_eq!(s.subscriptions.len(), 5_000);
    s.check().unwrap();
    // About 1 s on a shared 2-core machine; the bound catches accidental quadratic work
    // without failing on a busy CI box.
    assert!(took < std::time::Duration::from_secs(10), "took {took:?}");
}

#[test]
fn demo_extract_refreshes_tell_their_story() {
    let s = demo();
    let cutoff = s.now - Duration::days(90);
    let suspended: Vec<&str> = s.schedules.iter().filter(|x| x.state == "Suspended").map(|x| x.id.as_str()).collect();
    let tasks = &s.extract_refreshes;
    let failing = tasks.iter().filter(|t| t.consecutive_failures > 0).count();
    let on_suspended = tasks.iter().filter(|t| suspended.contains(&t.schedule_id.as_str())).count();
    let own = tasks.iter().filter(|t| t.own_schedule.is_some()).count();
    let wb: HashMap<&str, &Workbook> = s.workbooks.iter().map(|w| (w.id.as_str(), w)).collect();
    let unused_wb = tasks
        .iter()
        .filter_map(|t| wb.get(t.target.id.as_str()))
        .filter(|w| w.last_viewed_at().is_none_or(|v| v < cutoff) && w.created_at < cutoff)
        .count();
    let failed_jobs = s.refresh_jobs.iter().filter(|j| j.finish_code == 1).count();
    eprintln!(
        "schedules {} tasks {} (datasources {}) failing {failing} on_suspended {on_suspended} own {own} unused_wb {unused_wb} jobs {} failed_jobs {failed_jobs}",
        s.schedules.len(),
        tasks.len(),
        tasks.iter().filter(|t| t.target.kind == "datasource").count(),
        s.refresh_jobs.len()
    );
    assert_eq!(s.schedules.len(), 9);
    assert_eq!(failing, 4, "four failing refreshes");
    // One active schedule has only refreshes of workbooks nobody views (suspend-schedules);
    // the suspended one holds refreshes of content still viewed (resume-schedules).
    let all_unused: Vec<&str> = s
        .schedules
        .iter()
        .filter(|x| x.kind == "Extract" && x.state == "Active")
        .filter(|x| {
            let on: Vec<_> = tasks.iter().filter(|t| t.schedule_id == x.id).collect();
            !on.is_empty()
                && on.iter().all(|t| {
                    wb.get(t.target.id.as_str())
                        .is_some_and(|w| w.last_viewed_at().is_none_or(|v| v < cutoff) && w.created_at < cutoff)
                })
        })
        .map(|x| x.name.as_str())
        .collect();
    assert_eq!(all_unused, ["Archive reports (Saturday 5am)"]);
    assert_eq!(on_suspended, 3, "three refreshes on the suspended schedule");
    assert!(own > 0, "some tasks have a Cloud-style schedule of their own");
    assert!(unused_wb >= 5, "refreshes of workbooks nobody views: {unused_wb}");
    assert!(failed_jobs >= 4, "failed jobs in the history");
    // Every task names an existing target and schedule; jobs name their task.
    let ids: HashSet<&str> =
        s.workbooks.iter().map(|w| w.id.as_str()).chain(s.datasources.iter().map(|d| d.id.as_str())).collect();
    assert!(tasks.iter().all(|t| ids.contains(t.target.id.as_str())));
    let task_ids: HashSet<&str> = tasks.iter().map(|t| t.id.as_str()).collect();
    assert!(s.refresh_jobs.iter().all(|j| task_ids.contains(j.task_id.as_str())));
    assert_eq!(s.refresh_jobs.len(), 3 * tasks.len());
}
