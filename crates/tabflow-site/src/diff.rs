//! Differences between two sites, for `tabflow site diff` and for checks that a rollback
//! restored a site. What Tableau changes by itself is ignored: `now`, `updated_at`, users'
//! `last_login`, and usage (view counts, last views, datasource hits and last access).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::*;

/// One difference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// `added`, `removed` or `changed`.
    pub kind: String,
    /// `user`, `group`, `project`, `datasource`, `workbook`, `view`, `permission`,
    /// `default-permission`, `subscription`, `webhook`, `favorite`, `data-alert`.
    pub resource: String,
    pub id: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
}

/// Fields compared per resource: (name, value) pairs, with usage and clock fields left out
/// and lists that are sets sorted.
fn fields<T: Serialize>(item: &T, ignore: &[&str], sets: &[&str]) -> BTreeMap<String, Value> {
    let mut m = BTreeMap::new();
    if let Value::Object(o) = serde_json::to_value(item).expect("model serializes") {
        for (k, mut v) in o {
            if ignore.contains(&k.as_str()) {
                continue;
            }
            if sets.contains(&k.as_str())
                && let Value::Array(a) = &mut v
            {
                a.sort_by_key(|x| x.to_string());
            }
            m.insert(k, v);
        }
    }
    m
}

struct Differ {
    out: Vec<Change>,
}

impl Differ {
    fn compare<T: Serialize>(
        &mut self,
        resource: &str,
        a: &[T],
        b: &[T],
        key: impl Fn(&T) -> String,
        name: impl Fn(&T) -> String,
        ignore: &[&str],
        sets: &[&str],
    ) {
        let am: BTreeMap<String, &T> = a.iter().map(|x| (key(x), x)).collect();
        let bm: BTreeMap<String, &T> = b.iter().map(|x| (key(x), x)).collect();
        let keys: BTreeSet<&String> = am.keys().chain(bm.keys()).collect();
        for k in keys {
            match (am.get(k), bm.get(k)) {
                (Some(x), None) => self.out.push(Change {
                    kind: "removed".into(),
                    resource: resource.into(),
                    id: k.clone(),
                    name: name(x),
                    field: None,
                    before: Some(Value::Object(fields(x, ignore, sets).into_iter().collect())),
                    after: None,
                }),
                (None, Some(y)) => self.out.push(Change {
                    kind: "added".into(),
                    resource: resource.into(),
                    id: k.clone(),
                    name: name(y),
                    field: None,
                    before: None,
                    after: Some(Value::Object(fields(y, ignore, sets).into_iter().collect())),
                }),
                (Some(x), Some(y)) => {
                    let fx = fields(x, ignore, sets);
                    let fy = fields(y, ignore, sets);
                    let names: BTreeSet<&String> = fx.keys().chain(fy.keys()).collect();
                    for f in names {
                        let (vx, vy) = (fx.get(f), fy.get(f));
                        if vx != vy {
                            self.out.push(Change {
                                kind: "changed".into(),
                                resource: resource.into(),
                                id: k.clone(),
                                name: name(y),
                                field: Some(f.clone()),
                                before: vx.cloned(),
                                after: vy.cloned(),
                            });
                        }
                    }
                }
                (None, None) => {}
            }
        }
    }
}

/// Every difference from `a` to `b`, in a stable order.
pub fn diff(a: &Site, b: &Site) -> Vec<Change> {
    let mut d = Differ { out: vec![] };
    if a.site.id != b.site.id {
        d.out.push(Change {
            kind: "changed".into(),
            resource: "site".into(),
            id: b.site.id.clone(),
            name: b.site.name.clone(),
            field: Some("id".into()),
            before: Some(Value::String(a.site.id.clone())),
            after: Some(Value::String(b.site.id.clone())),
        });
    }
    d.compare("user", &a.users, &b.users, |u| u.id.clone(), |u| u.name.clone(), &["last_login"], &[]);
    d.compare("group", &a.groups, &b.groups, |g| g.id.clone(), |g| g.name.clone(), &[], &["members"]);
    d.compare("project", &a.projects, &b.projects, |p| p.id.clone(), |p| p.name.clone(), &["updated_at"], &[]);
    d.compare(
        "datasource",
        &a.datasources,
        &b.datasources,
        |x| x.id.clone(),
        |x| x.name.clone(),
        &["updated_at", "total_hits", "last_accessed_at"],
        &["tags"],
    );
    d.compare(
        "workbook",
        &a.workbooks,
        &b.workbooks,
        |x| x.id.clone(),
        |x| x.name.clone(),
        &["updated_at", "views", "revision"],
        &["tags", "datasource_ids", "fields_used"],
    );
    let views = |s: &Site| -> Vec<View> { s.workbooks.iter().flat_map(|w| w.views.iter().cloned()).collect() };
    d.compare(
        "view",
        &views(a),
        &views(b),
        |v| v.id.clone(),
        |v| v.name.clone(),
        &["total_views", "last_viewed_at"],
        &["tags"],
    );
    let live = |s: &Site| -> Vec<PermissionRule> {
        s.permissions.iter().filter(|r| !r.capabilities.is_empty()).cloned().collect()
    };
    d.compare(
        "permission",
        &live(a),
        &live(b),
        |r| format!("{}:{} {}:{}", r.resource.kind, r.resource.id, r.grantee.kind, r.grantee.id),
        |r| format!("{} {} on {} {}", r.grantee.kind, r.grantee.id, r.resource.kind, r.resource.id),
        &[],
        &[],
    );
    d.compare(
        "default-permission",
        &a.default_permissions,
        &b.default_permissions,
        |r| format!("{}:{} {}:{}", r.project_id, r.content_type, r.grantee.kind, r.grantee.id),
        |r| format!("{} defaults of project {}", r.content_type, r.project_id),
        &[],
        &[],
    );
    d.compare("subscription", &a.subscriptions, &b.subscriptions, |s| s.id.clone(), |s| s.subject.clone(), &[], &[]);
    d.compare("webhook", &a.webhooks, &b.webhooks, |h| h.id.clone(), |h| h.name.clone(), &[], &[]);
    d.compare(
        "favorite",
        &a.favorites,
        &b.favorites,
        |f| format!("{}:{}", f.user_id, f.content.id),
        |f| f.label.clone(),
        &[],
        &[],
    );
    d.compare(
        "data-alert",
        &a.data_alerts,
        &b.data_alerts,
        |x| x.id.clone(),
        |x| x.subject.clone(),
        &[],
        &["recipients"],
    );
    d.out
}

/// A readable summary, one line per change.
pub fn render_text(changes: &[Change]) -> String {
    if changes.is_empty() {
        return "no differences\n".into();
    }
    let mut s = String::new();
    let short = |v: &Option<Value>| -> String {
        match v {
            None => "(none)".into(),
            Some(v) => {
                let t = v.to_string();
                if t.len() > 120 {
                    format!("{}…", &t[..t.char_indices().nth(117).map(|(i, _)| i).unwrap_or(t.len())])
                } else {
                    t
                }
            }
        }
    };
    for c in changes {
        match c.kind.as_str() {
            "added" => s.push_str(&format!("+ {} {:?} ({})\n", c.resource, c.name, c.id)),
            "removed" => s.push_str(&format!("- {} {:?} ({})\n", c.resource, c.name, c.id)),
            _ => s.push_str(&format!(
                "~ {} {:?} ({}): {} {} -> {}\n",
                c.resource,
                c.name,
                c.id,
                c.field.as_deref().unwrap_or(""),
                short(&c.before),
                short(&c.after)
            )),
        }
    }
    s.push_str(&format!("{} difference{}\n", changes.len(), if changes.len() == 1 { "" } else { "s" }));
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::{Options, generate};

    #[test]
    fn identical_sites_have_no_differences() {
        let a = generate(&Options { scale: 200, seed: 1 });
        assert!(diff(&a, &a.clone()).is_empty());
        assert_eq!(render_text(&[]), "no differences\n");
    }

    #[test]
    fn ignores_clock_and_usage() {
        let a = generate(&Options { scale: 200, seed: 1 });
        let mut b = a.clone();
        b.shift_time_to(a.now + chrono::Duration::days(3));
        b.workbooks[0].views[0].total_views += 10;
        b.datasources[0].total_hits += 1;
        // shifting moves created_at too, which is a real difference: restore it
        for (x, y) in b.workbooks.iter_mut().zip(&a.workbooks) {
            x.created_at = y.created_at;
        }
        for (x, y) in b.datasources.iter_mut().zip(&a.datasources) {
            x.created_at = y.created_at;
        }
        for (x, y) in b.projects.iter_mut().zip(&a.projects) {
            x.created_at = y.created_at;
        }
        assert!(diff(&a, &b).is_empty(), "{:?}", diff(&a, &b));
    }

    #[test]
    fn move_permission_and_tag_changes() {
        let a = generate(&Options { scale: 200, seed: 1 });
        let mut b = a.clone();
        b.workbooks[5].project_id = b.projects[0].id.clone();
        b.workbooks[6].tags.reverse();
        b.permissions[0].capabilities.insert("Delete".into(), Mode::Deny);
        b.subscriptions.remove(0);
        let ch = diff(&a, &b);
        assert_eq!(ch.len(), 3, "{ch:?}");
        assert!(ch.iter().any(|c| c.resource == "workbook" && c.field.as_deref() == Some("project_id")));
        assert!(ch.iter().any(|c| c.resource == "permission" && c.kind == "changed"));
        assert!(ch.iter().any(|c| c.resource == "subscription" && c.kind == "removed"));
        assert!(render_text(&ch).contains("3 differences"));
    }
}
