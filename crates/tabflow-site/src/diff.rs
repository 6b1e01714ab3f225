//! Differences between two sites, for `tabflow site diff` and for checks that a rollback
//! restored a site.
//!
//! Items are matched by id (permission rules by resource and grantee, default permissions by
//! project, content type and grantee, favorites by user and content), never by position, and
//! lists that are sets (group members, tags, a workbook's datasources) are compared as sets.
//! What Tableau changes by itself is ignored: `now`, `updated_at`, a workbook's `revision`,
//! users' `last_login`, usage (view counts, last views, datasource hits and last access), and
//! what running refreshes changes (a task's last run and failures in a row, the job history).
//! A permission rule without capabilities is the same as no rule.

use std::cell::OnceCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::*;

/// One difference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// `added`, `removed` or `changed`.
    pub kind: String,
    /// `site`, `user`, `group`, `project`, `datasource`, `workbook`, `flow`, `view`, `permission`,
    /// `default-permission`, `subscription`, `webhook`, `schedule`, `extract-refresh`, `favorite`,
    /// `data-alert`.
    pub resource: String,
    /// The item's id; for permission rules `kind:id kind:id` of resource and grantee.
    pub id: String,
    /// A readable name (the newer one when it changed).
    pub name: String,
    /// For `changed`: the field; `capabilities.<Name>` for one capability of a permission rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The field (or for `removed`, the whole item) before; `None` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
    /// The field (or for `added`, the whole item) after; `None` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
}

impl Change {
    fn new(kind: &str, resource: &str, id: String, name: String) -> Change {
        Change { kind: kind.into(), resource: resource.into(), id, name, field: None, before: None, after: None }
    }
}

/// How to compare one kind of item.
struct Rules<'r> {
    resource: &'r str,
    /// Fields left out (clock and usage).
    ignore: &'r [&'r str],
    /// Array fields compared as sets.
    sets: &'r [&'r str],
}

/// The item as compared: its JSON fields minus the ignored ones, with set-like lists sorted.
fn fields<T: Serialize>(item: &T, rules: &Rules<'_>) -> BTreeMap<String, Value> {
    let mut m = BTreeMap::new();
    if let Value::Object(o) = serde_json::to_value(item).expect("model serializes") {
        for (k, mut v) in o {
            if rules.ignore.contains(&k.as_str()) {
                continue;
            }
            if rules.sets.contains(&k.as_str())
                && let Value::Array(a) = &mut v
            {
                a.sort_by_key(|x| x.to_string());
                a.dedup();
            }
            m.insert(k, v);
        }
    }
    m
}

fn object(m: BTreeMap<String, Value>) -> Value {
    Value::Object(m.into_iter().collect())
}

/// Compares two collections matched by `key`; appends changes in key order.
fn compare<'x, T: Serialize + PartialEq + 'x>(
    out: &mut Vec<Change>,
    rules: &Rules<'_>,
    a: impl IntoIterator<Item = &'x T>,
    b: impl IntoIterator<Item = &'x T>,
    key: impl Fn(&T) -> String,
    name: impl Fn(&T) -> String,
) {
    let am: BTreeMap<String, &T> = a.into_iter().map(|x| (key(x), x)).collect();
    let bm: BTreeMap<String, &T> = b.into_iter().map(|x| (key(x), x)).collect();
    let keys: BTreeSet<&String> = am.keys().chain(bm.keys()).collect();
    for k in keys {
        match (am.get(k), bm.get(k)) {
            (Some(x), None) => {
                let mut c = Change::new("removed", rules.resource, k.clone(), name(x));
                c.before = Some(object(fields(*x, rules)));
                out.push(c);
            }
            (None, Some(y)) => {
                let mut c = Change::new("added", rules.resource, k.clone(), name(y));
                c.after = Some(object(fields(*y, rules)));
                out.push(c);
            }
            (Some(x), Some(y)) if x != y => {
                let (fx, fy) = (fields(*x, rules), fields(*y, rules));
                let names: BTreeSet<&String> = fx.keys().chain(fy.keys()).collect();
                for f in names {
                    let (vx, vy) = (fx.get(f), fy.get(f));
                    if vx != vy {
                        out.push(Change {
                            field: Some(f.clone()),
                            before: vx.cloned(),
                            after: vy.cloned(),
                            ..Change::new("changed", rules.resource, k.clone(), name(y))
                        });
                    }
                }
            }
            _ => {}
        }
    }
}

/// Names of everything that has an id, in either site (the newer name wins), for readable
/// permission, default-permission and favorite lines. Built on first use only.
struct Names<'s> {
    a: &'s Site,
    b: &'s Site,
    map: OnceCell<HashMap<&'s str, &'s str>>,
}

impl<'s> Names<'s> {
    fn new(a: &'s Site, b: &'s Site) -> Names<'s> {
        Names { a, b, map: OnceCell::new() }
    }

    fn build(&self) -> HashMap<&'s str, &'s str> {
        let mut m = HashMap::new();
        for s in [self.b, self.a] {
            let views = s.workbooks.iter().flat_map(|w| w.views.iter().map(|v| (v.id.as_str(), v.name.as_str())));
            let pairs = s
                .users
                .iter()
                .map(|x| (x.id.as_str(), x.name.as_str()))
                .chain(s.groups.iter().map(|x| (x.id.as_str(), x.name.as_str())))
                .chain(s.projects.iter().map(|x| (x.id.as_str(), x.name.as_str())))
                .chain(s.datasources.iter().map(|x| (x.id.as_str(), x.name.as_str())))
                .chain(s.workbooks.iter().map(|x| (x.id.as_str(), x.name.as_str())))
                .chain(s.flows.iter().map(|x| (x.id.as_str(), x.name.as_str())))
                .chain(views);
            for (id, name) in pairs {
                m.entry(id).or_insert(name);
            }
        }
        m
    }

    /// The name of `id`, or the id itself when neither site has it.
    fn get<'i>(&'i self, id: &'i str) -> &'i str {
        self.map.get_or_init(|| self.build()).get(id).copied().unwrap_or(id)
    }
}

/// An item of `b` that re-creates an item of `a` under a new id (a rollback re-created a
/// deleted account, or a subscription with it, or re-published a purged workbook or
/// datasource from its saved file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recreated {
    /// `user`, `workbook`, `datasource`, `subscription` or `extract-refresh`.
    pub resource: String,
    pub name: String,
    /// The id in `a`.
    pub before_id: String,
    /// The id in `b`.
    pub after_id: String,
}

/// Rewrites `b` so that items re-created under new ids compare as the items of `a` they
/// replace: a user of `b` whose id is not in `a` but whose name is (case-insensitively) the
/// name of a user of `a` that is gone from `b`; workbooks and datasources by project and
/// name; extract refresh tasks by content, schedule (or own schedule) and type; then
/// subscriptions the same way, by user, content and subject. Every reference to a
/// mapped user (owners, group members, grants, subscriptions, favorites, alerts, webhooks) or
/// item (grants, subscriptions, favorites, alerts, workbook connections) is rewritten. Answers what was mapped, so a
/// diff can say it rather than hide it.
pub fn match_recreated(a: &Site, b: &mut Site) -> Vec<Recreated> {
    let mut out = vec![];
    let a_ids: BTreeSet<&str> = a.users.iter().map(|u| u.id.as_str()).collect();
    let b_ids: BTreeSet<String> = b.users.iter().map(|u| u.id.clone()).collect();
    let gone: HashMap<String, &User> =
        a.users.iter().filter(|u| !b_ids.contains(&u.id)).map(|u| (u.name.to_lowercase(), u)).collect();
    let mut map: HashMap<String, String> = HashMap::new();
    for u in b.users.iter().filter(|u| !a_ids.contains(u.id.as_str())) {
        if let Some(old) = gone.get(&u.name.to_lowercase()) {
            map.insert(u.id.clone(), old.id.clone());
            out.push(Recreated {
                resource: "user".into(),
                name: u.name.clone(),
                before_id: old.id.clone(),
                after_id: u.id.clone(),
            });
        }
    }
    if !map.is_empty() {
        let fix = |id: &mut String| {
            if let Some(n) = map.get(id.as_str()) {
                *id = n.clone();
            }
        };
        b.users.iter_mut().for_each(|u| fix(&mut u.id));
        b.groups.iter_mut().flat_map(|g| g.members.iter_mut()).for_each(fix);
        b.projects.iter_mut().for_each(|p| fix(&mut p.owner_id));
        b.datasources.iter_mut().for_each(|d| fix(&mut d.owner_id));
        b.workbooks.iter_mut().for_each(|w| fix(&mut w.owner_id));
        b.flows.iter_mut().for_each(|f| fix(&mut f.owner_id));
        b.permissions.iter_mut().filter(|r| r.grantee.kind == "user").for_each(|r| fix(&mut r.grantee.id));
        b.default_permissions.iter_mut().filter(|r| r.grantee.kind == "user").for_each(|r| fix(&mut r.grantee.id));
        b.subscriptions.iter_mut().for_each(|s| fix(&mut s.user_id));
        b.webhooks.iter_mut().for_each(|h| fix(&mut h.owner_id));
        b.favorites.iter_mut().for_each(|f| fix(&mut f.user_id));
        for al in &mut b.data_alerts {
            fix(&mut al.owner_id);
            al.recipients.iter_mut().for_each(fix);
        }
    }
    // Workbooks and datasources re-published from a saved file (a rollback of a purged staged
    // delete): a new id whose type, project and name are those of an item gone from `b`. Views
    // follow by name. Creation date, size and connection ids are the re-published file's by
    // nature, so they compare as the original's; everything else (content URL, owner, tags, grants)
    // still shows when it differs.
    let mut moved: HashMap<String, String> = HashMap::new();
    {
        let b_ids: BTreeSet<String> = b.workbooks.iter().map(|w| w.id.clone()).collect();
        let a_ids: BTreeSet<&str> = a.workbooks.iter().map(|w| w.id.as_str()).collect();
        let mut gone: HashMap<(String, String), &Workbook> = a
            .workbooks
            .iter()
            .filter(|w| !b_ids.contains(&w.id))
            .map(|w| ((w.project_id.clone(), w.name.to_lowercase()), w))
            .collect();
        for w in b.workbooks.iter_mut().filter(|w| !a_ids.contains(w.id.as_str())) {
            let Some(old) = gone.remove(&(w.project_id.clone(), w.name.to_lowercase())) else { continue };
            out.push(Recreated {
                resource: "workbook".into(),
                name: w.name.clone(),
                before_id: old.id.clone(),
                after_id: w.id.clone(),
            });
            moved.insert(w.id.clone(), old.id.clone());
            w.id = old.id.clone();
            w.created_at = old.created_at;
            w.size = old.size;
            for v in &mut w.views {
                if let Some(ov) = old.views.iter().find(|x| x.name == v.name) {
                    moved.insert(v.id.clone(), ov.id.clone());
                    v.id = ov.id.clone();
                }
            }
        }
    }
    {
        let b_ids: BTreeSet<String> = b.datasources.iter().map(|d| d.id.clone()).collect();
        let a_ids: BTreeSet<&str> = a.datasources.iter().map(|d| d.id.as_str()).collect();
        let mut gone: HashMap<(String, String), &Datasource> = a
            .datasources
            .iter()
            .filter(|d| !b_ids.contains(&d.id))
            .map(|d| ((d.project_id.clone(), d.name.to_lowercase()), d))
            .collect();
        for d in b.datasources.iter_mut().filter(|d| !a_ids.contains(d.id.as_str())) {
            let Some(old) = gone.remove(&(d.project_id.clone(), d.name.to_lowercase())) else { continue };
            out.push(Recreated {
                resource: "datasource".into(),
                name: d.name.clone(),
                before_id: old.id.clone(),
                after_id: d.id.clone(),
            });
            moved.insert(d.id.clone(), old.id.clone());
            d.id = old.id.clone();
            d.created_at = old.created_at;
            d.size = old.size;
            d.connection.id = old.connection.id.clone();
        }
    }
    if !moved.is_empty() {
        let fix = |id: &mut String| {
            if let Some(n) = moved.get(id.as_str()) {
                *id = n.clone();
            }
        };
        b.permissions.iter_mut().for_each(|r| fix(&mut r.resource.id));
        b.subscriptions.iter_mut().for_each(|s| fix(&mut s.content.id));
        b.favorites.iter_mut().for_each(|f| fix(&mut f.content.id));
        b.data_alerts.iter_mut().for_each(|al| fix(&mut al.view_id));
        b.workbooks.iter_mut().flat_map(|w| w.datasource_ids.iter_mut()).for_each(fix);
        b.extract_refreshes.iter_mut().for_each(|t| fix(&mut t.target.id));
        b.refresh_jobs.iter_mut().for_each(|j| fix(&mut j.target.id));
    }
    out.extend(match_recreated_refreshes(a, b));
    // Subscriptions re-created for a user (any user: a rollback re-creates the ones a delete
    // took with it).
    let key = |s: &Subscription| (s.user_id.clone(), s.content.kind.clone(), s.content.id.clone(), s.subject.clone());
    let a_subs: BTreeSet<&str> = a.subscriptions.iter().map(|s| s.id.as_str()).collect();
    let b_subs: BTreeSet<String> = b.subscriptions.iter().map(|s| s.id.clone()).collect();
    let mut gone_subs: HashMap<_, Vec<&Subscription>> = HashMap::new();
    for s in a.subscriptions.iter().filter(|s| !b_subs.contains(&s.id)) {
        gone_subs.entry(key(s)).or_default().push(s);
    }
    for s in b.subscriptions.iter_mut().filter(|s| !a_subs.contains(s.id.as_str())) {
        if let Some(old) = gone_subs.get_mut(&key(s)).and_then(|v| v.pop()) {
            out.push(Recreated {
                resource: "subscription".into(),
                name: s.subject.clone(),
                before_id: old.id.clone(),
                after_id: s.id.clone(),
            });
            s.id = old.id.clone();
        }
    }
    out
}

/// Extract refresh tasks re-created under new ids (a rollback of a deleted or moved task: Tableau
/// gives the new task a new id): a task of `b` whose id is not in `a`, for the same content
/// (type and id), on the same Server schedule or with the same schedule of its own, of the same
/// type, as a task of `a` gone from `b`. Its id (and its jobs' task id) is rewritten to the old
/// one; what else differs (its priority) still shows.
fn match_recreated_refreshes(a: &Site, b: &mut Site) -> Vec<Recreated> {
    let key = |t: &ExtractRefresh| {
        let own = t.own_schedule.as_ref().map(|r| serde_json::to_string(r).unwrap_or_default()).unwrap_or_default();
        (t.target.kind.clone(), t.target.id.clone(), t.schedule_id.clone(), own, t.kind.clone())
    };
    let a_ids: BTreeSet<&str> = a.extract_refreshes.iter().map(|t| t.id.as_str()).collect();
    let b_ids: BTreeSet<String> = b.extract_refreshes.iter().map(|t| t.id.clone()).collect();
    let mut gone: HashMap<_, Vec<&ExtractRefresh>> = HashMap::new();
    for t in a.extract_refreshes.iter().filter(|t| !b_ids.contains(&t.id)) {
        gone.entry(key(t)).or_default().push(t);
    }
    let content = |kind: &str, id: &str| -> String {
        let name = match kind {
            "workbook" => a.workbooks.iter().find(|w| w.id == id).map(|w| w.name.as_str()),
            _ => a.datasources.iter().find(|d| d.id == id).map(|d| d.name.as_str()),
        };
        format!("{kind} {}", name.unwrap_or(id))
    };
    let mut out = vec![];
    let mut map: HashMap<String, String> = HashMap::new();
    for t in b.extract_refreshes.iter_mut().filter(|t| !a_ids.contains(t.id.as_str())) {
        if let Some(old) = gone.get_mut(&key(t)).and_then(|v| v.pop()) {
            out.push(Recreated {
                resource: "extract-refresh".into(),
                name: content(&t.target.kind, &t.target.id),
                before_id: old.id.clone(),
                after_id: t.id.clone(),
            });
            map.insert(t.id.clone(), old.id.clone());
            t.id = old.id.clone();
        }
    }
    for j in &mut b.refresh_jobs {
        if let Some(old) = map.get(&j.task_id) {
            j.task_id = old.clone();
        }
    }
    out
}

/// Every difference from `a` to `b`, in a stable order: by resource kind (site, users, groups,
/// projects, datasources, workbooks, flows, views, permissions, default permissions, subscriptions,
/// webhooks, schedules, extract refresh tasks, favorites, data alerts), then by id, then by field.
pub fn diff(a: &Site, b: &Site) -> Vec<Change> {
    let mut out = Vec::new();
    let names = Names::new(a, b);

    for (field, x, y) in [
        ("id", &a.site.id, &b.site.id),
        ("name", &a.site.name, &b.site.name),
        ("content_url", &a.site.content_url, &b.site.content_url),
    ] {
        if x != y {
            out.push(Change {
                field: Some(field.into()),
                before: Some(Value::String(x.clone())),
                after: Some(Value::String(y.clone())),
                ..Change::new("changed", "site", b.site.id.clone(), b.site.name.clone())
            });
        }
    }

    let r = |resource, ignore, sets| Rules { resource, ignore, sets };
    let id_of = |id: &String| id.clone();
    compare(&mut out, &r("user", &["last_login"], &[]), &a.users, &b.users, |x| id_of(&x.id), |x| x.name.clone());
    compare(&mut out, &r("group", &[], &["members"]), &a.groups, &b.groups, |x| id_of(&x.id), |x| x.name.clone());
    compare(
        &mut out,
        &r("project", &["updated_at"], &[]),
        &a.projects,
        &b.projects,
        |x| id_of(&x.id),
        |x| x.name.clone(),
    );
    compare(
        &mut out,
        &r("datasource", &["updated_at", "total_hits", "last_accessed_at"], &["tags"]),
        &a.datasources,
        &b.datasources,
        |x| id_of(&x.id),
        |x| x.name.clone(),
    );
    compare(
        &mut out,
        &r("workbook", &["updated_at", "revision", "views"], &["tags", "datasource_ids", "fields_used"]),
        &a.workbooks,
        &b.workbooks,
        |x| id_of(&x.id),
        |x| x.name.clone(),
    );

    compare(&mut out, &r("flow", &["updated_at"], &["tags"]), &a.flows, &b.flows, |x| id_of(&x.id), |x| x.name.clone());

    // Views of workbooks in both sites (an added or removed workbook brings its views along).
    let in_a: HashMap<&str, &Workbook> = a.workbooks.iter().map(|w| (w.id.as_str(), w)).collect();
    let both: Vec<(&Workbook, &Workbook)> =
        b.workbooks.iter().filter_map(|w| in_a.get(w.id.as_str()).map(|x| (*x, w))).collect();
    let view_names: HashMap<&str, String> = both
        .iter()
        .filter(|(x, y)| x.views != y.views)
        .flat_map(|(x, y)| {
            x.views.iter().chain(&y.views).map(move |v| (v.id.as_str(), format!("{} / {}", y.name, v.name)))
        })
        .collect();
    compare(
        &mut out,
        &r("view", &["total_views", "last_viewed_at"], &["tags"]),
        both.iter().filter(|(x, y)| x.views != y.views).flat_map(|&(x, _)| &x.views),
        both.iter().filter(|(x, y)| x.views != y.views).flat_map(|&(_, y)| &y.views),
        |v| v.id.clone(),
        |v| view_names.get(v.id.as_str()).cloned().unwrap_or_else(|| v.name.clone()),
    );

    permissions(&mut out, a, b, &names);

    let grantee = |g: &GranteeRef| format!("{} {}", g.kind, names.get(&g.id));
    compare(
        &mut out,
        &r("default-permission", &[], &[]),
        &a.default_permissions,
        &b.default_permissions,
        |x| format!("{}:{} {}:{}", x.project_id, x.content_type, x.grantee.kind, x.grantee.id),
        |x| format!("{} defaults of project {} for {}", x.content_type, names.get(&x.project_id), grantee(&x.grantee)),
    );
    compare(
        &mut out,
        &r("subscription", &[], &[]),
        &a.subscriptions,
        &b.subscriptions,
        |x| id_of(&x.id),
        |x| x.subject.clone(),
    );
    compare(&mut out, &r("webhook", &[], &[]), &a.webhooks, &b.webhooks, |x| id_of(&x.id), |x| x.name.clone());
    // Server schedules (server-wide) and extract refresh tasks; when a task last ran and its
    // failures in a row change as refreshes run, and the job history is usage: left out.
    compare(
        &mut out,
        &r("schedule", &["updated_at"], &[]),
        &a.schedules,
        &b.schedules,
        |x| id_of(&x.id),
        |x| x.name.clone(),
    );
    compare(
        &mut out,
        &r("extract-refresh", &["last_run_at", "consecutive_failures"], &[]),
        &a.extract_refreshes,
        &b.extract_refreshes,
        |x| id_of(&x.id),
        |x| format!("{} {}", x.target.kind, names.get(&x.target.id)),
    );
    compare(
        &mut out,
        &r("favorite", &[], &[]),
        &a.favorites,
        &b.favorites,
        |x| format!("{} {}:{}", x.user_id, x.content.kind, x.content.id),
        |x| format!("{}: {}", names.get(&x.user_id), x.label),
    );
    compare(
        &mut out,
        &r("data-alert", &[], &["recipients"]),
        &a.data_alerts,
        &b.data_alerts,
        |x| id_of(&x.id),
        |x| x.subject.clone(),
    );
    let unread = not_read(a, b);
    out.retain(|c| !unread.iter().any(|u| covers(u, c)));
    out
}

/// What either snapshot declares it could not read (`SiteInfo::not_read`), sorted: `site
/// diff` leaves these out and lists them.
pub fn not_read(a: &Site, b: &Site) -> Vec<String> {
    let set: BTreeSet<&String> = a.site.not_read.iter().chain(&b.site.not_read).collect();
    set.into_iter().cloned().collect()
}

/// Whether a declared `resource` or `resource.field` covers a change.
fn covers(declared: &str, c: &Change) -> bool {
    match declared.split_once('.') {
        None => c.resource == declared,
        Some((r, f)) => c.resource == r && c.kind == "changed" && c.field.as_deref() == Some(f),
    }
}

/// Permission rules: keyed by resource and grantee; a changed rule gives one change per
/// capability that differs (`capabilities.Write`: `"Allow"` -> `"Deny"`, absent = `None`).
fn permissions<'s>(out: &mut Vec<Change>, a: &'s Site, b: &'s Site, names: &Names<'s>) {
    type Key<'k> = (&'k ResourceRef, &'k GranteeRef);
    let live = |s: &'s Site| -> BTreeMap<Key<'s>, &'s PermissionRule> {
        s.permissions.iter().filter(|r| !r.capabilities.is_empty()).map(|r| ((&r.resource, &r.grantee), r)).collect()
    };
    let (am, bm) = (live(a), live(b));
    let keys: BTreeSet<&Key<'s>> = am.keys().chain(bm.keys()).collect();
    let caps = |r: &PermissionRule| -> Value {
        Value::Object(r.capabilities.iter().map(|(k, m)| (k.clone(), Value::String(m.as_str().into()))).collect())
    };
    for key in keys {
        let (resource, grantee) = *key;
        let id = format!("{}:{} {}:{}", resource.kind, resource.id, grantee.kind, grantee.id);
        let name =
            format!("{} {} on {} {}", grantee.kind, names.get(&grantee.id), resource.kind, names.get(&resource.id));
        match (am.get(key), bm.get(key)) {
            (Some(x), None) => {
                let mut c = Change::new("removed", "permission", id, name);
                c.before = Some(caps(x));
                out.push(c);
            }
            (None, Some(y)) => {
                let mut c = Change::new("added", "permission", id, name);
                c.after = Some(caps(y));
                out.push(c);
            }
            (Some(x), Some(y)) if x.capabilities != y.capabilities => {
                let capability_names: BTreeSet<&String> = x.capabilities.keys().chain(y.capabilities.keys()).collect();
                for cap in capability_names {
                    let (mx, my) = (x.capabilities.get(cap), y.capabilities.get(cap));
                    if mx != my {
                        out.push(Change {
                            field: Some(format!("capabilities.{cap}")),
                            before: mx.map(|m| Value::String(m.as_str().into())),
                            after: my.map(|m| Value::String(m.as_str().into())),
                            ..Change::new("changed", "permission", id.clone(), name.clone())
                        });
                    }
                }
            }
            _ => {}
        }
    }
}

/// A readable summary, one line per change, then a count; `no differences` when empty.
///
/// ```text
/// ~ workbook "Q3 Forecast" (9c1e…): project_id "4f2a…" -> "b7d0…"
/// + permission "group All Users on workbook Payroll" (workbook:… group:…)
/// - subscription "Weekly pipeline" (31aa…)
/// 3 differences
/// ```
pub fn render_text(changes: &[Change]) -> String {
    if changes.is_empty() {
        return "no differences\n".into();
    }
    let short = |v: &Option<Value>| -> String {
        match v {
            None => "(none)".into(),
            Some(v) => {
                let t = v.to_string();
                match t.char_indices().nth(117) {
                    Some((cut, _)) if t.chars().count() > 120 => format!("{}…", &t[..cut]),
                    _ => t,
                }
            }
        }
    };
    let mut s = String::new();
    for c in changes {
        let line = match c.kind.as_str() {
            "added" => format!("+ {} {:?} ({})\n", c.resource, c.name, c.id),
            "removed" => format!("- {} {:?} ({})\n", c.resource, c.name, c.id),
            _ => format!(
                "~ {} {:?} ({}): {} {} -> {}\n",
                c.resource,
                c.name,
                c.id,
                c.field.as_deref().unwrap_or("?"),
                short(&c.before),
                short(&c.after)
            ),
        };
        s.push_str(&line);
    }
    s.push_str(&format!("{} difference{}\n", changes.len(), if changes.len() == 1 { "" } else { "s" }));
    s
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::generate::{Options, demo, generate};

    fn site() -> Site {
        generate(&Options { scale: 200, seed: 1 })
    }

    #[test]
    fn identical_sites_have_no_differences() {
        let a = site();
        assert_eq!(diff(&a, &a.clone()), vec![]);
        assert_eq!(render_text(&[]), "no differences\n");
        let d = demo();
        assert_eq!(diff(&d, &d.clone()), vec![]);
    }

    #[test]
    fn order_of_items_and_sets_does_not_matter() {
        let mut a = site();
        a.workbooks[0].tags = vec!["kpi".into(), "weekly".into(), "PII".into()];
        let mut b = a.clone();
        b.workbooks[0].tags.reverse();
        b.workbooks.reverse();
        b.permissions.reverse();
        b.subscriptions.reverse();
        for g in &mut b.groups {
            g.members.reverse();
        }
        for d in &mut b.datasources {
            d.tags.reverse();
        }
        assert_eq!(diff(&a, &b), vec![]);
    }

    #[test]
    fn ignores_clock_and_usage() {
        let a = site();
        let mut b = a.clone();
        b.shift_time_to(a.now + chrono::Duration::days(3));
        // Shifting moves created_at too, which is a real difference: put it back.
        for (x, y) in b.workbooks.iter_mut().zip(&a.workbooks) {
            x.created_at = y.created_at;
        }
        for (x, y) in b.datasources.iter_mut().zip(&a.datasources) {
            x.created_at = y.created_at;
        }
        for (x, y) in b.projects.iter_mut().zip(&a.projects) {
            x.created_at = y.created_at;
        }
        for (x, y) in b.flows.iter_mut().zip(&a.flows) {
            x.created_at = y.created_at;
        }
        for (x, y) in b.schedules.iter_mut().zip(&a.schedules) {
            x.created_at = y.created_at;
        }
        b.workbooks[0].views[0].total_views += 10;
        b.workbooks[1].revision += 1;
        b.datasources[0].total_hits += 1;
        b.users[3].last_login = None;
        assert_eq!(diff(&a, &b), vec![]);
    }

    #[test]
    fn a_flow_owner_change_is_one_change_and_its_tags_are_a_set() {
        let a = site();
        assert!(a.flows.len() >= 2, "generated sites have flows");
        let mut b = a.clone();
        b.flows[1].tags = vec!["x".into(), "y".into()];
        let mut a = a;
        a.flows[1].tags = vec!["y".into(), "x".into()];
        b.flows.reverse();
        assert_eq!(diff(&a, &b), vec![], "order and tag order do not matter");
        let f = a.flows[0].clone();
        let new_owner = a.users.iter().find(|u| u.id != f.owner_id).unwrap().id.clone();
        let bf = b.flows.iter_mut().find(|x| x.id == f.id).unwrap();
        bf.owner_id = new_owner.clone();
        bf.updated_at = b.now;
        let changes = diff(&a, &b);
        assert_eq!(
            changes,
            vec![Change {
                kind: "changed".into(),
                resource: "flow".into(),
                id: f.id.clone(),
                name: f.name.clone(),
                field: Some("owner_id".into()),
                before: Some(json!(f.owner_id)),
                after: Some(json!(new_owner)),
            }]
        );
        b.flows.retain(|x| x.id != f.id);
        let changes = diff(&a, &b);
        assert_eq!((changes.len(), changes[0].kind.as_str(), changes[0].resource.as_str()), (1, "removed", "flow"));
    }

    #[test]
    fn a_moved_workbook_is_one_change() {
        let a = site();
        let mut b = a.clone();
        let (from, to) =
            (a.workbooks[5].project_id.clone(), a.projects.iter().find(|p| p.name == "Archive").unwrap().id.clone());
        b.workbooks[5].project_id = to.clone();
        b.workbooks[5].updated_at = b.now;
        let changes = diff(&a, &b);
        assert_eq!(
            changes,
            vec![Change {
                kind: "changed".into(),
                resource: "workbook".into(),
                id: a.workbooks[5].id.clone(),
                name: a.workbooks[5].name.clone(),
                field: Some("project_id".into()),
                before: Some(json!(from)),
                after: Some(json!(to)),
            }]
        );
        let text = render_text(&changes);
        let line = format!(
            "~ workbook {:?} ({}): project_id {:?} -> {:?}\n",
            a.workbooks[5].name, a.workbooks[5].id, from, to
        );
        assert_eq!(text, format!("{line}1 difference\n"));
    }

    #[test]
    fn a_permission_change_is_one_change_per_capability() {
        let a = site();
        let mut b = a.clone();
        let k = a.permissions.iter().position(|r| r.capabilities.get("Read") == Some(&Mode::Allow)).unwrap();
        b.permissions[k].capabilities.insert("Read".into(), Mode::Deny);
        b.permissions[k].capabilities.insert("Delete".into(), Mode::Allow);
        let changes = diff(&a, &b);
        assert_eq!(changes.len(), 2, "{changes:?}");
        let fields: Vec<(&str, Option<&Value>, Option<&Value>)> =
            changes.iter().map(|c| (c.field.as_deref().unwrap(), c.before.as_ref(), c.after.as_ref())).collect();
        assert_eq!(
            fields,
            [
                ("capabilities.Delete", None, Some(&json!("Allow"))),
                ("capabilities.Read", Some(&json!("Allow")), Some(&json!("Deny")))
            ]
        );
        let r = &a.permissions[k];
        assert!(changes.iter().all(|c| c.resource == "permission" && c.kind == "changed"));
        assert_eq!(changes[0].id, format!("{}:{} {}:{}", r.resource.kind, r.resource.id, r.grantee.kind, r.grantee.id));
        // Readable: grantee and resource by name.
        let grantee = match r.grantee.kind.as_str() {
            "group" => a.groups.iter().find(|g| g.id == r.grantee.id).map(|g| &g.name),
            _ => a.users.iter().find(|u| u.id == r.grantee.id).map(|u| &u.name),
        };
        let expected = format!("{} {} on {}", r.grantee.kind, grantee.unwrap(), r.resource.kind);
        assert!(changes[0].name.starts_with(&expected), "{}", changes[0].name);

        // Emptying a rule removes it; a new rule is added.
        let mut c = a.clone();
        c.permissions[k].capabilities.clear();
        let user = a.users.iter().find(|u| u.name == "jsmith").unwrap();
        c.permissions.push(PermissionRule {
            resource: ResourceRef { kind: "workbook".into(), id: a.workbooks[0].id.clone() },
            grantee: GranteeRef { kind: "user".into(), id: user.id.clone() },
            capabilities: [("Write".to_string(), Mode::Allow)].into(),
        });
        let kinds: BTreeSet<String> = diff(&a, &c).iter().map(|x| format!("{} {}", x.kind, x.resource)).collect();
        assert_eq!(kinds, BTreeSet::from(["removed permission".to_string(), "added permission".to_string()]));
        let text = render_text(&diff(&a, &c));
        assert!(text.contains(&format!("+ permission \"user jsmith on workbook {}\"", a.workbooks[0].name)), "{text}");
    }

    #[test]
    fn added_and_removed_items() {
        let a = site();
        let mut b = a.clone();
        let gone = b.subscriptions.remove(0);
        let removed_workbook = b.workbooks.remove(7);
        b.webhooks.push(Webhook {
            id: "0d6d0a5e-1111-4222-8333-444455556666".into(),
            name: "New hook".into(),
            event: "workbook-created".into(),
            url: "https://hooks.example.com/x".into(),
            owner_id: a.users[0].id.clone(),
            enabled: true,
        });
        b.workbooks[0].views[0].name = "Renamed".into();
        let changes = diff(&a, &b);
        let summary: Vec<(&str, &str, &str)> =
            changes.iter().map(|c| (c.kind.as_str(), c.resource.as_str(), c.id.as_str())).collect();
        assert_eq!(
            summary,
            [
                ("removed", "workbook", removed_workbook.id.as_str()),
                ("changed", "view", b.workbooks[0].views[0].id.as_str()),
                ("removed", "subscription", gone.id.as_str()),
                ("added", "webhook", "0d6d0a5e-1111-4222-8333-444455556666"),
            ],
            "a removed workbook does not list its views"
        );
        assert_eq!(changes[1].name, format!("{} / Renamed", b.workbooks[0].name));
        let text = render_text(&changes);
        assert!(text.contains(&format!("- subscription {:?} ({})\n", gone.subject, gone.id)));
        assert!(text.contains("+ webhook \"New hook\""));
        assert!(text.ends_with("4 differences\n"));
        assert_eq!(diff(&a, &b), changes, "deterministic");
        // JSON round trip of a change.
        let back: Change = serde_json::from_str(&serde_json::to_string(&changes[1]).unwrap()).unwrap();
        assert_eq!(back, changes[1]);
    }

    #[test]
    fn a_recreated_account_and_its_subscriptions_compare_as_the_originals_when_asked() {
        let a = crate::generate::demo();
        let mut b = a.clone();
        let old = b.users.iter().find(|u| b.subscriptions.iter().any(|s| s.user_id == u.id)).unwrap().id.clone();
        let new = "0d6d0a5e-aaaa-4bbb-8ccc-444455556666".to_string();
        // What a rollback of the account's deletion leaves: a new id everywhere, and the
        // subscriptions re-created under new ids.
        let swap = |id: &mut String| {
            if *id == old {
                *id = new.clone();
            }
        };
        b.users.iter_mut().for_each(|u| swap(&mut u.id));
        b.groups.iter_mut().flat_map(|g| g.members.iter_mut()).for_each(swap);
        b.workbooks.iter_mut().for_each(|w| swap(&mut w.owner_id));
        b.permissions.iter_mut().for_each(|r| swap(&mut r.grantee.id));
        let mut n = 0;
        for s in b.subscriptions.iter_mut().filter(|s| s.user_id == old) {
            s.user_id = new.clone();
            s.id = format!("0d6d0a5e-0000-4000-8000-{n:012}");
            n += 1;
        }
        assert!(!diff(&a, &b).is_empty(), "without matching the new ids show");
        let mut m = b.clone();
        let rec = match_recreated(&a, &mut m);
        assert_eq!(diff(&a, &m), vec![], "matched: equal");
        assert_eq!(rec.iter().filter(|r| r.resource == "user").count(), 1);
        assert_eq!(rec.iter().filter(|r| r.resource == "subscription").count(), n);
        assert!(rec.iter().any(|r| r.before_id == old && r.after_id == new));
        // Anything else still shows: a real change is not hidden by the matching.
        let mut m2 = b.clone();
        m2.workbooks[0].name.push_str(" (renamed)");
        match_recreated(&a, &mut m2);
        assert_eq!(diff(&a, &m2).len(), 1);
        // A different account of another name is not matched.
        let mut m3 = b.clone();
        m3.users.iter_mut().find(|u| u.id == new).unwrap().name = "someone-else".into();
        assert!(match_recreated(&a, &mut m3).iter().all(|r| r.resource != "user"));
    }

    #[test]
    fn a_republished_workbook_compares_as_the_original_with_its_views_and_references() {
        let a = crate::generate::demo();
        let mut b = a.clone();
        let wi = b.workbooks.iter().position(|w| w.views.len() > 1).unwrap();
        let old = b.workbooks[wi].clone();
        let new_id = "0d6d0a5e-bbbb-4bbb-8bbb-444455556666".to_string();
        let mut view_ids = HashMap::new();
        {
            let w = &mut b.workbooks[wi];
            w.id = new_id.clone();
            w.created_at = chrono::Utc::now();
            w.size += 1;
            for (n, v) in w.views.iter_mut().enumerate() {
                let id = format!("0d6d0a5e-cccc-4ccc-8ccc-{n:012}");
                view_ids.insert(v.id.clone(), id.clone());
                v.id = id;
            }
        }
        let swap = |id: &mut String| {
            if *id == old.id {
                *id = new_id.clone();
            } else if let Some(v) = view_ids.get(id.as_str()) {
                *id = v.clone();
            }
        };
        b.permissions.iter_mut().for_each(|r| swap(&mut r.resource.id));
        b.subscriptions.iter_mut().for_each(|s| swap(&mut s.content.id));
        assert!(!diff(&a, &b).is_empty());
        let mut m = b.clone();
        let rec = match_recreated(&a, &mut m);
        assert_eq!(diff(&a, &m), vec![], "matched: equal");
        assert!(rec.iter().any(|r| r.resource == "workbook" && r.before_id == old.id && r.after_id == new_id));
        // Another project, or another name, is not the same workbook.
        let mut m2 = b.clone();
        m2.workbooks[wi].name.push_str(" (copy)");
        assert!(match_recreated(&a, &mut m2).iter().all(|r| r.resource != "workbook"));
        // A real change on the re-published workbook still shows.
        let mut m3 = b.clone();
        m3.workbooks[wi].tags.push("new-tag".into());
        match_recreated(&a, &mut m3);
        assert_eq!(diff(&a, &m3).len(), 1);
    }

    #[test]
    fn schedules_and_refresh_tasks_are_compared_and_a_recreated_task_matches_its_original() {
        let a = demo();
        // A suspended schedule is one change; its updated_at is the clock's.
        let mut b = a.clone();
        let si = b.schedules.iter().position(|s| s.state == "Active" && s.kind == "Extract").unwrap();
        b.schedules[si].state = "Suspended".into();
        b.schedules[si].updated_at = chrono::Utc::now();
        let d = diff(&a, &b);
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!((d[0].resource.as_str(), d[0].field.as_deref()), ("schedule", Some("state")));
        // Refreshes that ran: not a difference.
        let mut ran = a.clone();
        ran.extract_refreshes[0].last_run_at = Some(chrono::Utc::now());
        ran.extract_refreshes[0].consecutive_failures += 1;
        assert_eq!(diff(&a, &ran), vec![]);
        // Re-created tasks (a Server one and a Cloud-style one) under new ids: added and
        // removed, until matched; then equal, and said.
        let server = a.extract_refreshes.iter().position(|t| !t.schedule_id.is_empty()).unwrap();
        let cloud = a.extract_refreshes.iter().position(|t| t.own_schedule.is_some()).unwrap();
        let mut b = a.clone();
        for (n, i) in [server, cloud].into_iter().enumerate() {
            let t = &mut b.extract_refreshes[i];
            let new = format!("0d6d0a5e-dddd-4ddd-8ddd-{n:012}");
            for j in b.refresh_jobs.iter_mut().filter(|j| j.task_id == t.id) {
                j.task_id = new.clone();
            }
            t.id = new;
            t.last_run_at = None;
            t.consecutive_failures = 0;
        }
        assert_eq!(diff(&a, &b).iter().filter(|c| c.resource == "extract-refresh").count(), 4);
        let mut m = b.clone();
        let rec = match_recreated(&a, &mut m);
        assert_eq!(diff(&a, &m), vec![], "matched: equal");
        let mapped: Vec<&str> =
            rec.iter().filter(|r| r.resource == "extract-refresh").map(|r| r.before_id.as_str()).collect();
        assert_eq!(mapped.len(), 2);
        assert!(mapped.contains(&a.extract_refreshes[server].id.as_str()));
        assert!(mapped.contains(&a.extract_refreshes[cloud].id.as_str()));
        assert!(m.refresh_jobs.iter().all(|j| a.refresh_jobs.iter().any(|x| x.id == j.id && x.task_id == j.task_id)));
        // On another schedule (a move not undone) it is another task: not matched.
        let other = a
            .schedules
            .iter()
            .find(|s| s.kind == "Extract" && s.id != a.extract_refreshes[server].schedule_id)
            .unwrap();
        let mut m2 = b.clone();
        m2.extract_refreshes[server].schedule_id = other.id.clone();
        let rec = match_recreated(&a, &mut m2);
        assert_eq!(rec.iter().filter(|r| r.resource == "extract-refresh").count(), 1);
        assert_eq!(diff(&a, &m2).iter().filter(|c| c.resource == "extract-refresh").count(), 2);
        // A real change on a matched task (its priority) still shows.
        let mut m3 = b.clone();
        m3.extract_refreshes[server].priority += 1;
        match_recreated(&a, &mut m3);
        let d = diff(&a, &m3);
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].field.as_deref(), Some("priority"));
    }
}
