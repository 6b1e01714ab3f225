//! The phase-1 question corpus (`tests/data/questions.jsonl`): every question carries an
//! answer spec (what kind of fact, over which items, with which filters); the expected answer
//! is computed here from the generated site by plain iteration over `tabflow_site::Site` —
//! none of the query engine's code — and compared with what `query::answer` says.
//!
//! Spec shapes (one key per line's `expect`):
//! * `count`  — a filter; the answer's `total` is the number of items that pass.
//! * `list`   — a filter; the answer's first column is the names of the items that pass.
//! * `most`   — a filter plus `by` (owner, project, group, site_role), `n`, `fewest`: the
//!   first column is the groups with the top-n counts (ties at the cut included).
//! * `ranked` — a filter plus `by` (size, created, updated), `n`, `asc`: the first column is
//!   the items with the top-n values (ties at the cut included).
//! * `fact`   — `of` (workbook, datasource, flow, project, user), `name`, `field`: the column
//!   `field` of the rows is the values of the items with that name.
//! * `owner`  — `name`: the owner column is the owners of the items with that name.
//! * `uses`   — `name`: the datasource column is the published datasources of the workbooks
//!   with that name.
//! * `top_viewed` — a filter plus `n`: the workbooks with the most views, in order.
//!
//! Filter keys: `of`, `project` (any case; includes sub-projects), `owner` (user name or full
//! name), `tag`, `role` (creator, explorer, viewer, unlicensed, admin), `certified`, `group`,
//! `created_within`/`older_than`/`updated_within`/`updated_before` (days), `without`
//! (workbooks, datasources, flows, content, tags, members, subscriptions, groups),
//! `suspended`, `never_signed_in`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use tabflow_site::Site;
use tabflow_workflows::query;

struct Oracle<'a> {
    site: &'a Site,
    parent: HashMap<&'a str, Option<&'a str>>,
    pname: HashMap<&'a str, &'a str>,
    uname: HashMap<&'a str, &'a str>,
}

impl<'a> Oracle<'a> {
    fn new(site: &'a Site) -> Self {
        Oracle {
            site,
            parent: site.projects.iter().map(|p| (p.id.as_str(), p.parent_id.as_deref())).collect(),
            pname: site.projects.iter().map(|p| (p.id.as_str(), p.name.as_str())).collect(),
            uname: site.users.iter().map(|u| (u.id.as_str(), u.name.as_str())).collect(),
        }
    }

    fn path(&self, id: &str) -> String {
        let mut parts = vec![];
        let mut cur = Some(id);
        while let Some(c) = cur {
            parts.push(self.pname.get(c).copied().unwrap_or(c));
            cur = self.parent.get(c).copied().flatten();
        }
        parts.reverse();
        parts.join(" / ")
    }

    fn under(&self, id: &str, root: &str) -> bool {
        let mut cur = Some(id);
        while let Some(c) = cur {
            if c == root {
                return true;
            }
            cur = self.parent.get(c).copied().flatten();
        }
        false
    }

    /// The project named `name` (any case); a top-level one when names repeat.
    fn project_id(&self, name: &str) -> &'a str {
        let all: Vec<_> = self.site.projects.iter().filter(|p| p.name.eq_ignore_ascii_case(name)).collect();
        let p =
            all.iter().find(|p| p.parent_id.is_none()).or(all.first()).unwrap_or_else(|| panic!("no project {name}"));
        p.id.as_str()
    }

    fn user_id(&self, name: &str) -> &'a str {
        self.site
            .users
            .iter()
            .find(|u| u.name.eq_ignore_ascii_case(name) || u.full_name.eq_ignore_ascii_case(name))
            .map(|u| u.id.as_str())
            .unwrap_or_else(|| panic!("no user {name}"))
    }

    fn user(&self, id: &str) -> String {
        self.uname.get(id).copied().unwrap_or(id).to_string()
    }
}

fn day(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d").to_string()
}

fn roles(word: &str) -> &'static [&'static str] {
    match word {
        "creator" => &["Creator", "SiteAdministratorCreator", "ServerAdministrator"],
        "explorer" => &["Explorer", "ExplorerCanPublish", "SiteAdministratorExplorer"],
        "viewer" => &["Viewer"],
        "unlicensed" => &["Unlicensed"],
        _ => &["SiteAdministratorCreator", "SiteAdministratorExplorer", "ServerAdministrator"],
    }
}

/// One item that passed a filter: its name (first answer column), and its grouping keys.
#[derive(Debug, Clone)]
struct Item {
    name: String,
    owner: String,
    project: String,
    size: i64,
    created: Option<DateTime<Utc>>,
    updated: Option<DateTime<Utc>>,
    views: u64,
}

/// The items a filter selects, computed by plain iteration over the site.
fn select(o: &Oracle, f: &Value) -> Vec<Item> {
    let site = o.site;
    let now = site.now;
    let of = f["of"].as_str().unwrap_or("workbooks");
    let ago = |k: &str| f[k].as_u64().map(|d| now - Duration::days(d as i64));
    let project = f["project"].as_str().map(|p| o.project_id(p));
    let owner = f["owner"].as_str().map(|u| o.user_id(u));
    let tag = f["tag"].as_str();
    let without = f["without"].as_str();
    let in_project = |pid: &str| project.is_none_or(|root| o.under(pid, root));
    let dated = |c: Option<DateTime<Utc>>, u: Option<DateTime<Utc>>| {
        ago("created_within").is_none_or(|t| c.is_some_and(|c| c >= t))
            && ago("older_than").is_none_or(|t| c.is_some_and(|c| c < t))
            && ago("updated_within").is_none_or(|t| u.is_some_and(|u| u >= t))
            && ago("updated_before").is_none_or(|t| u.is_some_and(|u| u < t))
    };
    let tagged = |tags: &[String]| {
        tag.is_none_or(|t| tags.iter().any(|x| x.eq_ignore_ascii_case(t)))
            && (without != Some("tags") || tags.is_empty())
    };
    let owned_by = |id: &str| owner.is_none_or(|u| u == id);
    let mut out = vec![];
    match of {
        "workbooks" | "views" => {
            for w in &site.workbooks {
                if !(in_project(&w.project_id)
                    && owned_by(&w.owner_id)
                    && dated(Some(w.created_at), Some(w.updated_at)))
                {
                    continue;
                }
                if of == "views" {
                    for v in &w.views {
                        if tag.is_none_or(|t| w.tags.iter().any(|x| x.eq_ignore_ascii_case(t))) {
                            out.push(Item {
                                name: v.name.clone(),
                                owner: o.user(&w.owner_id),
                                project: o.path(&w.project_id),
                                size: 0,
                                created: None,
                                updated: None,
                                views: v.total_views,
                            });
                        }
                    }
                    continue;
                }
                if !tagged(&w.tags) {
                    continue;
                }
                if without == Some("subscriptions")
                    && site
                        .subscriptions
                        .iter()
                        .any(|s| s.content.id == w.id || w.views.iter().any(|v| v.id == s.content.id))
                {
                    continue;
                }
                out.push(Item {
                    name: w.name.clone(),
                    owner: o.user(&w.owner_id),
                    project: o.path(&w.project_id),
                    size: w.size as i64,
                    created: Some(w.created_at),
                    updated: Some(w.updated_at),
                    views: w.views.iter().map(|v| v.total_views).sum(),
                });
            }
        }
        "datasources" => {
            for d in &site.datasources {
                if in_project(&d.project_id)
                    && owned_by(&d.owner_id)
                    && tagged(&d.tags)
                    && dated(d.created_at, Some(d.updated_at))
                    && f["certified"].as_bool().is_none_or(|c| d.certified == c)
                {
                    out.push(Item {
                        name: d.name.clone(),
                        owner: o.user(&d.owner_id),
                        project: o.path(&d.project_id),
                        size: d.size as i64,
                        created: d.created_at,
                        updated: Some(d.updated_at),
                        views: d.total_hits,
                    });
                }
            }
        }
        "flows" => {
            for x in &site.flows {
                if in_project(&x.project_id)
                    && owned_by(&x.owner_id)
                    && tagged(&x.tags)
                    && dated(Some(x.created_at), Some(x.updated_at))
                {
                    out.push(Item {
                        name: x.name.clone(),
                        owner: o.user(&x.owner_id),
                        project: o.path(&x.project_id),
                        size: 0,
                        created: Some(x.created_at),
                        updated: Some(x.updated_at),
                        views: 0,
                    });
                }
            }
        }
        "projects" => {
            for p in &site.projects {
                let within = project.is_none_or(|root| p.id != root && o.under(&p.id, root));
                let holds = |k: &str| match k {
                    "workbooks" => site.workbooks.iter().any(|w| w.project_id == p.id),
                    "datasources" => site.datasources.iter().any(|d| d.project_id == p.id),
                    "flows" => site.flows.iter().any(|x| x.project_id == p.id),
                    _ => {
                        site.workbooks.iter().any(|w| w.project_id == p.id)
                            || site.datasources.iter().any(|d| d.project_id == p.id)
                            || site.flows.iter().any(|x| x.project_id == p.id)
                    }
                };
                if within
                    && owned_by(&p.owner_id)
                    && without.is_none_or(|k| !holds(k))
                    && dated(p.created_at, p.updated_at)
                {
                    out.push(Item {
                        name: o.path(&p.id),
                        owner: o.user(&p.owner_id),
                        project: o.path(&p.id),
                        size: 0,
                        created: p.created_at,
                        updated: p.updated_at,
                        views: 0,
                    });
                }
            }
        }
        "users" => {
            let group = f["group"].as_str().map(|g| {
                site.groups.iter().find(|x| x.name.eq_ignore_ascii_case(g)).unwrap_or_else(|| panic!("no group {g}"))
            });
            for u in &site.users {
                let owns = |k: &str| match k {
                    "workbooks" => site.workbooks.iter().any(|w| w.owner_id == u.id),
                    "datasources" => site.datasources.iter().any(|d| d.owner_id == u.id),
                    "flows" => site.flows.iter().any(|x| x.owner_id == u.id),
                    "subscriptions" => site.subscriptions.iter().any(|s| s.user_id == u.id),
                    "groups" => site.groups.iter().any(|g| g.name != "All Users" && g.members.contains(&u.id)),
                    _ => {
                        site.workbooks.iter().any(|w| w.owner_id == u.id)
                            || site.datasources.iter().any(|d| d.owner_id == u.id)
                            || site.flows.iter().any(|x| x.owner_id == u.id)
                    }
                };
                if group.is_none_or(|g| g.members.contains(&u.id))
                    && f["role"].as_str().is_none_or(|r| roles(r).contains(&u.site_role.as_str()))
                    && without.is_none_or(|k| !owns(k))
                    && (!f["never_signed_in"].as_bool().unwrap_or(false) || u.last_login.is_none())
                {
                    out.push(Item {
                        name: u.name.clone(),
                        owner: u.name.clone(),
                        project: String::new(),
                        size: 0,
                        created: None,
                        updated: u.last_login,
                        views: 0,
                    });
                }
            }
        }
        "groups" => {
            for g in &site.groups {
                if without != Some("members") || g.members.is_empty() {
                    out.push(Item {
                        name: g.name.clone(),
                        owner: String::new(),
                        project: String::new(),
                        size: g.members.len() as i64,
                        created: None,
                        updated: None,
                        views: 0,
                    });
                }
            }
        }
        "subscriptions" => {
            for s in &site.subscriptions {
                let pid = site
                    .workbooks
                    .iter()
                    .find(|w| w.id == s.content.id || w.views.iter().any(|v| v.id == s.content.id))
                    .map(|w| w.project_id.as_str());
                if owned_by(&s.user_id)
                    && f["suspended"].as_bool().is_none_or(|x| s.suspended == x)
                    && project.is_none_or(|_| pid.is_some_and(in_project))
                {
                    out.push(Item {
                        name: s.subject.clone(),
                        owner: o.user(&s.user_id),
                        project: pid.map(|p| o.path(p)).unwrap_or_default(),
                        size: 0,
                        created: None,
                        updated: None,
                        views: 0,
                    });
                }
            }
        }
        other => panic!("unknown subject {other}"),
    }
    out
}

/// Keeps the first n and every later one equal to the n-th.
fn cut<T: Clone, K: PartialEq>(sorted: &[T], n: usize, key: impl Fn(&T) -> K) -> Vec<T> {
    let mut out: Vec<T> = vec![];
    for x in sorted {
        if out.len() >= n && out.last().is_some_and(|l| key(l) != key(x)) {
            break;
        }
        out.push(x.clone());
    }
    out
}

fn sorted_strings(v: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut v: Vec<String> = v.into_iter().collect();
    v.sort();
    v
}

/// The expected answer of a spec, as (what to compare, expected value).
enum Expected {
    Total(usize),
    Column(&'static str, Vec<String>),
    FirstColumn(Vec<String>),
    Ordered(Vec<String>),
}

fn expected(o: &Oracle, spec: &Value) -> Expected {
    let site = o.site;
    if let Some(f) = spec.get("count") {
        return Expected::Total(select(o, f).len());
    }
    if let Some(f) = spec.get("list") {
        return Expected::FirstColumn(sorted_strings(select(o, f).into_iter().map(|i| i.name)));
    }
    if let Some(f) = spec.get("top_viewed") {
        let mut items = select(o, f);
        items.sort_by(|a, b| b.views.cmp(&a.views).then(a.name.cmp(&b.name)));
        let n = f["n"].as_u64().unwrap_or(10) as usize;
        return Expected::Ordered(items.into_iter().take(n).map(|i| i.views.to_string()).collect());
    }
    if let Some(f) = spec.get("most") {
        let by = f["by"].as_str().unwrap_or("owner");
        let fewest = f["fewest"].as_bool().unwrap_or(false);
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        match by {
            "owner" => site.users.iter().for_each(|u| {
                counts.insert(u.name.clone(), 0);
            }),
            "project" => site.projects.iter().for_each(|p| {
                counts.insert(o.path(&p.id), 0);
            }),
            _ => {}
        }
        if by == "group" {
            let ids: BTreeSet<String> = select(o, f).into_iter().map(|i| o.user_id(&i.name).to_string()).collect();
            for g in site.groups.iter().filter(|g| g.name != "All Users") {
                counts.insert(g.name.clone(), g.members.iter().filter(|m| ids.contains(*m)).count());
            }
        } else if by == "site_role" {
            for u in select(o, f) {
                let role =
                    site.users.iter().find(|x| x.name == u.name).map(|x| x.site_role.clone()).unwrap_or_default();
                *counts.entry(role).or_default() += 1;
            }
        } else {
            for i in select(o, f) {
                let k = if by == "project" { i.project } else { i.owner };
                *counts.entry(k).or_default() += 1;
            }
        }
        let mut rows: Vec<(String, usize)> = counts.into_iter().filter(|r| fewest || r.1 > 0).collect();
        rows.sort_by(|a, b| if fewest { a.1.cmp(&b.1) } else { b.1.cmp(&a.1) }.then(a.0.cmp(&b.0)));
        let n = f["n"].as_u64().unwrap_or(1) as usize;
        return Expected::FirstColumn(sorted_strings(cut(&rows, n, |r| r.1).into_iter().map(|r| r.0)));
    }
    if let Some(f) = spec.get("ranked") {
        let by = f["by"].as_str().unwrap_or("size");
        let asc = f["asc"].as_bool().unwrap_or(false);
        let key = |i: &Item| -> Option<i64> {
            match by {
                "created" => i.created.map(|t| t.timestamp()),
                "updated" => i.updated.map(|t| t.timestamp()),
                _ => Some(i.size),
            }
        };
        let mut items = select(o, f);
        items.sort_by(|a, b| {
            key(a)
                .is_none()
                .cmp(&key(b).is_none())
                .then(if asc { key(a).cmp(&key(b)) } else { key(b).cmp(&key(a)) })
                .then(a.name.cmp(&b.name))
        });
        let n = f["n"].as_u64().unwrap_or(10) as usize;
        return Expected::FirstColumn(sorted_strings(cut(&items, n, key).into_iter().map(|i| i.name)));
    }
    if let Some(f) = spec.get("owner") {
        let name = f["name"].as_str().unwrap_or("");
        let owners =
            site.workbooks.iter().filter(|w| w.name.eq_ignore_ascii_case(name)).map(|w| o.user(&w.owner_id)).chain(
                site.datasources.iter().filter(|d| d.name.eq_ignore_ascii_case(name)).map(|d| o.user(&d.owner_id)),
            );
        return Expected::Column("owner", sorted_strings(owners));
    }
    if let Some(f) = spec.get("uses") {
        let name = f["name"].as_str().unwrap_or("");
        let names = site.workbooks.iter().filter(|w| w.name.eq_ignore_ascii_case(name)).flat_map(|w| {
            w.datasource_ids
                .iter()
                .map(|id| site.datasources.iter().find(|d| d.id == *id).map(|d| d.name.clone()).unwrap_or(id.clone()))
        });
        return Expected::Column("datasource", sorted_strings(names));
    }
    if let Some(f) = spec.get("fact") {
        let name = f["name"].as_str().unwrap_or("");
        let field: &'static str = match f["field"].as_str().unwrap_or("") {
            "last_viewed" => "last_viewed",
            "views" => "views",
            "size" => "size",
            "created" => "created",
            "updated" => "updated",
            "tags" => "tags",
            "datasources" => "datasources",
            "certified" => "certified",
            "project" => "project",
            "owner" => "owner",
            "site_role" => "site_role",
            "last_login" => "last_login",
            "groups" => "groups",
            other => panic!("unknown field {other}"),
        };
        let list = |v: Vec<String>| v.join(", ");
        let values: Vec<String> = match f["of"].as_str().unwrap_or("workbook") {
            "user" => {
                let id = o.user_id(name);
                let u = site.users.iter().find(|u| u.id == id).unwrap();
                vec![match field {
                    "site_role" => u.site_role.clone(),
                    "last_login" => u.last_login.map(day).unwrap_or_else(|| "null".into()),
                    _ => {
                        list(site.groups.iter().filter(|g| g.members.contains(&u.id)).map(|g| g.name.clone()).collect())
                    }
                }]
            }
            "datasource" => site
                .datasources
                .iter()
                .filter(|d| d.name.eq_ignore_ascii_case(name))
                .map(|d| match field {
                    "last_viewed" => d.last_accessed_at.map(day).unwrap_or_else(|| "null".into()),
                    "views" => d.total_hits.to_string(),
                    "size" => d.size.to_string(),
                    "created" => d.created_at.map(day).unwrap_or_else(|| "null".into()),
                    "updated" => day(d.updated_at),
                    "tags" => list(d.tags.clone()),
                    "certified" => d.certified.to_string(),
                    "project" => o.path(&d.project_id),
                    _ => o.user(&d.owner_id),
                })
                .collect(),
            "flow" => site
                .flows
                .iter()
                .filter(|x| x.name.eq_ignore_ascii_case(name))
                .map(|x| match field {
                    "created" => day(x.created_at),
                    "updated" => day(x.updated_at),
                    "tags" => list(x.tags.clone()),
                    "project" => o.path(&x.project_id),
                    _ => o.user(&x.owner_id),
                })
                .collect(),
            _ => site
                .workbooks
                .iter()
                .filter(|w| w.name.eq_ignore_ascii_case(name))
                .map(|w| match field {
                    "last_viewed" => {
                        w.views.iter().filter_map(|v| v.last_viewed_at).max().map(day).unwrap_or_else(|| "null".into())
                    }
                    "views" => w.views.iter().map(|v| v.total_views).sum::<u64>().to_string(),
                    "size" => w.size.to_string(),
                    "created" => day(w.created_at),
                    "updated" => day(w.updated_at),
                    "tags" => list(w.tags.clone()),
                    "datasources" => list(
                        w.datasource_ids
                            .iter()
                            .map(|id| {
                                site.datasources
                                    .iter()
                                    .find(|d| d.id == *id)
                                    .map(|d| d.name.clone())
                                    .unwrap_or(id.clone())
                            })
                            .collect(),
                    ),
                    "project" => o.path(&w.project_id),
                    _ => o.user(&w.owner_id),
                })
                .collect(),
        };
        return Expected::Column(field, sorted_strings(values));
    }
    panic!("unknown spec {spec}")
}

fn cell(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(xs) => xs.iter().map(cell).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

fn column(a: &query::Answer, name: &str) -> Option<Vec<String>> {
    let i = a.columns.iter().position(|c| c == name)?;
    Some(a.rows.iter().map(|r| r.get(i).map(cell).unwrap_or_default()).collect())
}

/// Checks one question; `Err` says what was wrong.
fn check(o: &Oracle, question: &str, spec: &Value) -> Result<(), String> {
    let a = query::answer(o.site, question).map_err(|e| format!("error: {e}"))?;
    match expected(o, spec) {
        Expected::Total(n) => {
            (a.total == n).then_some(()).ok_or(format!("total {} ≠ expected {n} ({})", a.total, a.summary))
        }
        Expected::FirstColumn(want) => {
            let got = sorted_strings(a.rows.iter().map(|r| r.first().map(cell).unwrap_or_default()));
            (got == want).then_some(()).ok_or(format!(
                "first column {} rows ≠ expected {} ({}); got {:?}… want {:?}…",
                got.len(),
                want.len(),
                a.summary,
                got.iter().take(4).collect::<Vec<_>>(),
                want.iter().take(4).collect::<Vec<_>>()
            ))
        }
        Expected::Ordered(want) => {
            let got = column(&a, "views").ok_or("no views column")?;
            (got == want).then_some(()).ok_or(format!("views {got:?} ≠ expected {want:?}"))
        }
        Expected::Column(name, want) => {
            let got = sorted_strings(column(&a, name).ok_or(format!("no column {name} in {:?}", a.columns))?);
            (got == want).then_some(()).ok_or(format!("{name} {got:?} ≠ expected {want:?} ({})", a.summary))
        }
    }
}

fn corpus() -> Vec<(String, Value)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/questions.jsonl");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}"));
            (v["q"].as_str().expect("q").to_string(), v["expect"].clone())
        })
        .collect()
}

fn run(site: &Site, cases: &[(String, Value)], label: &str) -> f64 {
    let o = Oracle::new(site);
    let mut right = 0;
    for (q, spec) in cases {
        match check(&o, q, spec) {
            Ok(()) => right += 1,
            Err(e) => eprintln!("MISS [{label}] {q}: {e}"),
        }
    }
    let accuracy = 100.0 * right as f64 / cases.len().max(1) as f64;
    eprintln!("{label}: {right}/{} questions answered correctly ({accuracy:.1} %)", cases.len());
    accuracy
}

#[test]
fn corpus_is_answered_correctly_on_the_demo_site() {
    let cases = corpus();
    assert!(cases.len() >= 100, "the corpus must hold at least 100 questions, has {}", cases.len());
    let accuracy = run(&tabflow_site::generate::demo(), &cases, "demo");
    assert!(accuracy >= 95.0, "accuracy {accuracy:.1} % is below 95 %");
}

/// The questions that name no demo-only item, on a generated 5 000-workbook site.
#[test]
fn a_slice_is_answered_correctly_on_a_5k_site() {
    let site = tabflow_site::generate::generate(&tabflow_site::generate::Options { scale: 5000, seed: 1 });
    let cases: Vec<(String, Value)> = corpus()
        .into_iter()
        .filter(|(_, spec)| spec.get("fact").is_none() && spec.get("owner").is_none() && spec.get("uses").is_none())
        .filter(|(_, spec)| {
            // Names of users and groups are the demo's; projects are the same on every site.
            let s = spec.to_string();
            !s.contains("\"owner\":") && !s.contains("\"group\":\"")
        })
        .collect();
    assert!(cases.len() >= 40, "the 5k slice must hold at least 40 questions, has {}", cases.len());
    let accuracy = run(&site, &cases, "5k");
    assert!(accuracy >= 95.0, "5k accuracy {accuracy:.1} % is below 95 %");
}
