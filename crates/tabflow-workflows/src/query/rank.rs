//! Superlatives: the owners, projects, groups or site roles with the most (or fewest) items
//! ("who owns the most workbooks"), and items ordered by an attribute ("the 5 largest
//! workbooks", "the oldest datasource"). Ties at the cut are all shown: "who owns the most"
//! answers every owner with the top count.

use super::*;

/// Keeps the first `n` entries of `sorted` and every later one equal to the n-th (ties).
fn cut<T, K: PartialEq>(sorted: Vec<T>, n: usize, key: impl Fn(&T) -> K) -> Vec<T> {
    let mut out: Vec<T> = vec![];
    for x in sorted {
        if out.len() >= n && out.last().is_none_or(|l| key(l) != key(&x)) {
            break;
        }
        out.push(x);
    }
    out
}

/// The groups with the most (fewest) items, e.g. owners by workbooks owned.
pub(super) fn most(s: &Scope<'_>, cx: &Ctx<'_>) -> Table {
    let Scope { q, site, scope_label, workbooks, datasources, users, projects, flows, subscriptions, .. } = s;
    let subject = q.subject;
    let dim = q.dimension.unwrap_or(Dimension::Owner);
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    // Every possible group starts at 0, so "fewest" can answer one with none.
    match dim {
        Dimension::Owner => site.users.iter().for_each(|u| {
            counts.insert(u.name.clone(), 0);
        }),
        Dimension::Project => site.projects.iter().for_each(|p| {
            counts.insert(cx.path(&p.id), 0);
        }),
        Dimension::Group => site.groups.iter().filter(|g| !g.name.eq_ignore_ascii_case("All Users")).for_each(|g| {
            counts.insert(g.name.clone(), 0);
        }),
        Dimension::SiteRole => {}
    }
    let mut add = |k: String| *counts.entry(k).or_default() += 1;
    match (subject, dim) {
        (Subject::Users, Dimension::Group) | (Subject::Groups, _) => {
            let ids: HashSet<&str> = users.iter().map(|u| u.id.as_str()).collect();
            for g in site.groups.iter().filter(|g| !g.name.eq_ignore_ascii_case("All Users")) {
                counts.insert(g.name.clone(), g.members.iter().filter(|m| ids.contains(m.as_str())).count());
            }
        }
        (Subject::Users, _) => users.iter().for_each(|u| add(u.site_role.clone())),
        (Subject::Datasources, Dimension::Project) => datasources.iter().for_each(|d| add(cx.path(&d.project_id))),
        (Subject::Datasources, _) => datasources.iter().for_each(|d| add(cx.username(&d.owner_id))),
        (Subject::Flows, Dimension::Project) => flows.iter().for_each(|f| add(cx.path(&f.project_id))),
        (Subject::Flows, _) => flows.iter().for_each(|f| add(cx.username(&f.owner_id))),
        (Subject::Views, Dimension::Project) => {
            workbooks.iter().for_each(|w| w.views.iter().for_each(|_| add(cx.path(&w.project_id))))
        }
        (Subject::Views, _) => {
            workbooks.iter().for_each(|w| w.views.iter().for_each(|_| add(cx.username(&w.owner_id))))
        }
        (Subject::Subscriptions, Dimension::Project) => {
            subscriptions.iter().for_each(|x| add(subscribed_project(site, x).map(|p| cx.path(p)).unwrap_or_default()))
        }
        (Subject::Subscriptions, _) => subscriptions.iter().for_each(|x| add(cx.username(&x.user_id))),
        (Subject::Projects, _) => projects.iter().for_each(|p| add(cx.username(&p.owner_id))),
        (_, Dimension::Project) => workbooks.iter().for_each(|w| add(cx.path(&w.project_id))),
        _ => workbooks.iter().for_each(|w| add(cx.username(&w.owner_id))),
    }
    let label = match (subject, dim) {
        (Subject::Users, Dimension::Group) | (Subject::Groups, _) => "group",
        (Subject::Users, _) => "site_role",
        (Subject::Subscriptions, Dimension::Owner) => "user",
        (_, Dimension::Project) => "project",
        _ => "owner",
    };
    let counted = match subject {
        Subject::Groups => "members",
        Subject::Users if label == "group" => "members",
        other => other.plural(),
    };
    let groups = counts.len();
    let mut rows: Vec<(String, usize)> = counts.into_iter().filter(|(_, n)| q.ascending || *n > 0).collect();
    rows.sort_by(|a, b| if q.ascending { a.1.cmp(&b.1) } else { b.1.cmp(&a.1) }.then(a.0.cmp(&b.0)));
    let rows = cut(rows, q.limit.unwrap_or(1), |r| r.1);
    let word = if q.ascending { "fewest" } else { "most" };
    let summary = match rows.as_slice() {
        [] => format!("No {label} has any {counted}{scope_label}"),
        [(k, n)] => format!("{} {k} has the {word} {counted}{scope_label}: {n}", label.replace('_', " ")),
        many => format!(
            "The {} {}s with the {word} {counted}{scope_label}: {}",
            many.len(),
            label.replace('_', " "),
            many.iter().map(|(k, n)| format!("{k} ({n})")).collect::<Vec<_>>().join(", ")
        ),
    };
    let mut summary = summary;
    if let Some(first) = summary.get(..1) {
        summary = first.to_uppercase() + summary.get(1..).unwrap_or("");
    }
    (summary, cols(&[label, counted]), rows.into_iter().map(|(k, n)| vec![json!(k), json!(n)]).collect(), groups)
}

/// Items ordered by size, creation, update, members or last sign-in.
pub(super) fn ranked(s: &Scope<'_>, cx: &Ctx<'_>) -> Table {
    let Scope { q, site, scope_label, workbooks, datasources, users, projects, flows, .. } = s;
    let by = q.rank_by.unwrap_or(RankBy::Size);
    let limit = q.limit.unwrap_or(10);
    // (sort key, row) per item; the key orders, the row is shown.
    let date = |t: Option<DateTime<Utc>>| t.map(|t| t.timestamp()).unwrap_or(i64::MIN);
    let value = |key: i64| -> Value {
        match by {
            RankBy::Size | RankBy::Members => json!(key),
            _ if key == i64::MIN => Value::Null,
            _ => DateTime::<Utc>::from_timestamp(key, 0).map(|t| day(Some(t))).unwrap_or(Value::Null),
        }
    };
    let column = match by {
        RankBy::Size => "size",
        RankBy::Created => "created",
        RankBy::Updated => "updated",
        RankBy::Members => "members",
        RankBy::LastLogin => "last_login",
    };
    let (name_col, items): (&str, Vec<(i64, String, Vec<Value>)>) = match q.subject {
        Subject::Datasources => (
            "datasource",
            datasources
                .iter()
                .map(|d| {
                    let k = match by {
                        RankBy::Created => date(d.created_at),
                        RankBy::Updated => d.updated_at.timestamp(),
                        _ => i64::try_from(d.size).unwrap_or(i64::MAX),
                    };
                    (
                        k,
                        d.name.clone(),
                        vec![json!(d.name), json!(cx.path(&d.project_id)), json!(cx.username(&d.owner_id))],
                    )
                })
                .collect(),
        ),
        Subject::Flows => (
            "flow",
            flows
                .iter()
                .map(|f| {
                    let k = if by == RankBy::Updated { f.updated_at.timestamp() } else { f.created_at.timestamp() };
                    (
                        k,
                        f.name.clone(),
                        vec![json!(f.name), json!(cx.path(&f.project_id)), json!(cx.username(&f.owner_id))],
                    )
                })
                .collect(),
        ),
        Subject::Projects => (
            "project",
            projects
                .iter()
                .map(|p| {
                    let k = if by == RankBy::Updated { date(p.updated_at) } else { date(p.created_at) };
                    (k, cx.path(&p.id), vec![json!(cx.path(&p.id)), json!(cx.username(&p.owner_id))])
                })
                .collect(),
        ),
        Subject::Groups => (
            "group",
            site.groups
                .iter()
                .map(|g| (i64::try_from(g.members.len()).unwrap_or(0), g.name.clone(), vec![json!(g.name)]))
                .collect(),
        ),
        Subject::Users => (
            "user",
            users
                .iter()
                .map(|u| {
                    (date(u.last_login), u.name.clone(), vec![json!(u.name), json!(u.full_name), json!(u.site_role)])
                })
                .collect(),
        ),
        _ => (
            "workbook",
            workbooks
                .iter()
                .map(|w| {
                    let k = match by {
                        RankBy::Created => w.created_at.timestamp(),
                        RankBy::Updated => w.updated_at.timestamp(),
                        _ => i64::try_from(w.size).unwrap_or(i64::MAX),
                    };
                    (
                        k,
                        w.name.clone(),
                        vec![json!(w.name), json!(cx.path(&w.project_id)), json!(cx.username(&w.owner_id))],
                    )
                })
                .collect(),
        ),
    };
    let mut columns = match q.subject {
        Subject::Groups => cols(&[name_col]),
        Subject::Users => cols(&["user", "full_name", "site_role"]),
        Subject::Projects => cols(&[name_col, "owner"]),
        _ => cols(&[name_col, "project", "owner"]),
    };
    columns.push(column.into());
    let total = items.len();
    let mut items = items;
    // Items without the attribute (never signed in, no creation date) come last either way.
    items.sort_by(|a, b| {
        let missing = |k: i64| k == i64::MIN;
        missing(a.0)
            .cmp(&missing(b.0))
            .then(if q.ascending { a.0.cmp(&b.0) } else { b.0.cmp(&a.0) })
            .then(a.1.cmp(&b.1))
    });
    let items = cut(items, limit, |x| x.0);
    let rows: Vec<Vec<Value>> = items
        .into_iter()
        .map(|(k, _, mut row)| {
            row.push(value(k));
            row
        })
        .collect();
    let word = match (by, q.ascending) {
        (RankBy::Size, false) => "largest",
        (RankBy::Size, true) => "smallest",
        (RankBy::Created, true) => "oldest",
        (RankBy::Created, false) => "newest",
        (RankBy::Updated, false) => "most recently updated",
        (RankBy::Updated, true) => "least recently updated",
        (RankBy::Members, false) => "largest",
        (RankBy::Members, true) => "smallest",
        (RankBy::LastLogin, false) => "most recently signed-in",
        (RankBy::LastLogin, true) => "longest-absent",
    };
    let noun = if rows.len() == 1 { q.subject.singular() } else { q.subject.plural() };
    (format!("The {} {word} {noun}{scope_label} (of {total})", rows.len()), columns, rows, total)
}
