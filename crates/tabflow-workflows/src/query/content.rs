//! Questions about content: counts and lists of any subject in the scope, the datasources
//! a workbook uses, the workbooks that use a datasource, counts grouped by a dimension.

use super::*;

/// How many / which items: counts and lists of any subject in the scope.
pub(super) fn count_or_list(s: &Scope<'_>, cx: &Ctx<'_>) -> Table {
    let Scope { q, site, scope_label, workbooks, datasources, users, projects, flows, subscriptions, uses, .. } = s;
    let subject = q.subject;
    // Workbooks per project, counted once (not once per project listed).
    let mut per_project: HashMap<&str, usize> = HashMap::new();
    if matches!(subject, Subject::Projects) {
        for w in &site.workbooks {
            *per_project.entry(w.project_id.as_str()).or_default() += 1;
        }
    }
    let (columns, mut rows): (Vec<String>, Vec<Vec<Value>>) = match subject {
        Subject::Workbooks => (wb_cols(), workbooks.iter().map(|w| wb_row(cx, w)).collect()),
        Subject::Datasources => (ds_cols(), datasources.iter().map(|d| ds_row(cx, uses, d)).collect()),
        Subject::Users => (user_cols(), users.iter().map(|u| user_row(u)).collect()),
        Subject::Projects => (
            cols(&["project", "owner", "workbooks"]),
            projects
                .iter()
                .map(|p| {
                    let n = per_project.get(p.id.as_str()).copied().unwrap_or(0);
                    vec![json!(cx.path(&p.id)), json!(cx.username(&p.owner_id)), json!(n)]
                })
                .collect(),
        ),
        Subject::Groups => (
            cols(&["group", "members"]),
            site.groups
                .iter()
                .filter(|g| q.without != Some(Without::Members) || g.members.is_empty())
                .map(|g| vec![json!(g.name), json!(g.members.len())])
                .collect(),
        ),
        Subject::Flows => (flow_cols(), flows.iter().map(|f| flow_row(cx, f)).collect()),
        Subject::Subscriptions => (sub_cols(), subscriptions.iter().map(|x| sub_row(cx, site, x)).collect()),
        Subject::Views => (
            cols(&["view", "workbook", "project", "views", "last_viewed"]),
            workbooks
                .iter()
                .flat_map(|w| {
                    w.views.iter().filter(|v| q.without != Some(Without::Tags) || v.tags.is_empty()).map(move |v| {
                        vec![
                            json!(v.name),
                            json!(w.name),
                            json!(cx.path(&w.project_id)),
                            json!(v.total_views),
                            day(v.last_viewed_at),
                        ]
                    })
                })
                .collect(),
        ),
    };
    rows.sort_by(|a, b| a.iter().map(Value::to_string).cmp(b.iter().map(Value::to_string)));
    let n = rows.len();
    let noun = if n == 1 { subject.singular() } else { subject.plural() };
    if q.kind == Kind::Count {
        (format!("{n} {noun}{scope_label}"), cols(&["count"]), vec![vec![json!(n)]], n)
    } else {
        (format!("{n} {noun}{scope_label}"), columns, rows, n)
    }
}

/// The published datasources a workbook uses.
pub(super) fn datasources_of(s: &Scope<'_>, cx: &mut Ctx<'_>) -> Result<Table, Error> {
    let Scope { q, site, uses, .. } = s;
    let target = q.target.clone().unwrap_or_default();
    let wbs = cx.workbooks_named(&target)?;
    let by_id: HashMap<&str, &Datasource> = site.datasources.iter().map(|d| (d.id.as_str(), d)).collect();
    let mut rows = vec![];
    for w in &wbs {
        for id in &w.datasource_ids {
            let mut row = match by_id.get(id.as_str()) {
                Some(d) => ds_row(cx, uses, d),
                None => vec![json!(id), Value::Null, Value::Null, Value::Null, json!([]), Value::Null],
            };
            row.insert(0, json!(format!("{} ({})", w.name, cx.path(&w.project_id))));
            rows.push(row);
        }
    }
    let mut columns = ds_cols();
    columns.insert(0, "workbook".into());
    let n = rows.len();
    let names = match wbs.as_slice() {
        [one] => format!("Workbook '{}' uses", one.name),
        many => {
            format!("The {} workbooks named '{}' use", many.len(), many.first().map(|w| w.name.as_str()).unwrap_or(""))
        }
    };
    let summary = if n == 0 {
        format!("{names} no published datasources (embedded connections only)")
    } else {
        format!("{names} {n} published datasource{}", if n == 1 { "" } else { "s" })
    };
    Ok((summary, columns, rows, n))
}

/// The workbooks that use a datasource (or any deprecated one).
pub(super) fn workbooks_using(s: &Scope<'_>, cx: &mut Ctx<'_>) -> Result<Table, Error> {
    let Scope { q, site, scope_label, workbooks, .. } = s;
    let target = q.target.clone().unwrap_or_default();
    let sources: Vec<&Datasource> = if target == "deprecated" {
        site.datasources.iter().filter(|d| d.tags.iter().any(|t| t.eq_ignore_ascii_case("deprecated"))).collect()
    } else {
        cx.datasources_named(&target)?
    };
    let ids: BTreeMap<&str, &str> = sources.iter().map(|d| (d.id.as_str(), d.name.as_str())).collect();
    let mut rows = vec![];
    for w in workbooks.iter() {
        let used: Vec<&str> = w.datasource_ids.iter().filter_map(|d| ids.get(d.as_str()).copied()).collect();
        if !used.is_empty() {
            let mut row = wb_row(cx, w);
            row.push(json!(used.join(", ")));
            rows.push(row);
        }
    }
    rows.sort_by(|a, b| a.iter().map(Value::to_string).cmp(b.iter().map(Value::to_string)));
    let mut columns = wb_cols();
    columns.push("datasource".into());
    let n = rows.len();
    let what = if target == "deprecated" {
        format!("deprecated datasources ({})", sources.iter().map(|d| d.name.as_str()).collect::<Vec<_>>().join(", "))
    } else {
        sources.iter().map(|d| format!("'{}'", d.name)).collect::<Vec<_>>().join(", ")
    };
    Ok((format!("{n} workbook{}{scope_label} use {what}", if n == 1 { "" } else { "s" }), columns, rows, n))
}

/// Counts grouped by project, owner, site role or group.
pub(super) fn group_by(s: &Scope<'_>, cx: &Ctx<'_>) -> Table {
    let Scope { q, site, scope_label, workbooks, datasources, users, projects, flows, subscriptions, .. } = s;
    let subject = q.subject;
    let dim = q.dimension.unwrap_or(Dimension::Project);
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut add = |k: String| *counts.entry(k).or_default() += 1;
    match (subject, dim) {
        (Subject::Users, Dimension::Group) => {
            for g in &site.groups {
                let members: HashSet<&str> = g.members.iter().map(String::as_str).collect();
                counts.insert(g.name.clone(), users.iter().filter(|u| members.contains(u.id.as_str())).count());
            }
        }
        (Subject::Users, _) => users.iter().for_each(|u| add(u.site_role.clone())),
        (Subject::Datasources, Dimension::Owner) => datasources.iter().for_each(|d| add(cx.username(&d.owner_id))),
        (Subject::Datasources, _) => datasources.iter().for_each(|d| add(cx.path(&d.project_id))),
        (Subject::Views, Dimension::Owner) => {
            workbooks.iter().for_each(|w| w.views.iter().for_each(|_| add(cx.username(&w.owner_id))))
        }
        (Subject::Views, _) => workbooks.iter().for_each(|w| w.views.iter().for_each(|_| add(cx.path(&w.project_id)))),
        (Subject::Projects, _) => projects.iter().for_each(|p| add(cx.username(&p.owner_id))),
        (Subject::Flows, Dimension::Owner) => flows.iter().for_each(|f| add(cx.username(&f.owner_id))),
        (Subject::Flows, _) => flows.iter().for_each(|f| add(cx.path(&f.project_id))),
        (Subject::Subscriptions, Dimension::Project) => {
            subscriptions.iter().for_each(|x| add(subscribed_project(site, x).map(|p| cx.path(p)).unwrap_or_default()))
        }
        (Subject::Subscriptions, _) => subscriptions.iter().for_each(|x| add(cx.username(&x.user_id))),
        (Subject::Groups, _) => site.groups.iter().for_each(|g| {
            counts.insert(g.name.clone(), g.members.len());
        }),
        (_, Dimension::Owner) => workbooks.iter().for_each(|w| add(cx.username(&w.owner_id))),
        _ => workbooks.iter().for_each(|w| add(cx.path(&w.project_id))),
    }
    let label = match (subject, dim) {
        (Subject::Users, Dimension::Group) | (Subject::Groups, _) => "group",
        (Subject::Users, _) => "site_role",
        (Subject::Subscriptions, Dimension::Project) => "project",
        (Subject::Subscriptions, _) => "user",
        (Subject::Projects, _) | (_, Dimension::Owner) => "owner",
        _ => "project",
    };
    let mut rows: Vec<(String, usize)> = counts.into_iter().collect();
    rows.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let total: usize = rows.iter().map(|r| r.1).sum();
    let groups = rows.len();
    (
        format!(
            "{total} {}{scope_label} by {} ({groups} {}s)",
            subject.plural(),
            label.replace('_', " "),
            label.replace('_', " ")
        ),
        cols(&[label, subject.plural()]),
        rows.into_iter().map(|(k, n)| vec![json!(k), json!(n)]).collect(),
        total,
    )
}
