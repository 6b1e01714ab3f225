//! Questions about people: who owns an item, which users have not signed in.

use super::*;

/// "Who owns X": the owner of the workbooks, datasources or project named X.
pub(super) fn owner(s: &Scope<'_>, cx: &mut Ctx<'_>) -> Result<Table, Error> {
    let Scope { q, site, .. } = s;
    let subject = q.subject;
    let target = q.target.clone().unwrap_or_default();
    let mut rows = vec![];
    let describe = |cx: &Ctx, kind: &str, name: &str, project: Option<&str>, owner_id: &str| {
        let u = cx.index.user(owner_id);
        vec![
            json!(kind),
            json!(name),
            json!(project.map(|p| cx.path(p))),
            json!(u.map(|u| u.name.clone()).unwrap_or_else(|| owner_id.into())),
            json!(u.map(|u| u.full_name.clone())),
            json!(u.map(|u| u.email.clone())),
        ]
    };
    // Which kind of item: the word after the name, else whichever matches best.
    let kinds: Vec<Subject> = match subject {
        Subject::Workbooks | Subject::Datasources | Subject::Projects => vec![subject],
        _ => best_kinds(site, &target),
    };
    for k in kinds {
        match k {
            Subject::Workbooks => {
                for w in cx.workbooks_named(&target)? {
                    rows.push(describe(cx, "workbook", &w.name, Some(&w.project_id), &w.owner_id));
                }
            }
            Subject::Datasources => {
                for d in cx.datasources_named(&target)? {
                    rows.push(describe(cx, "datasource", &d.name, Some(&d.project_id), &d.owner_id));
                }
            }
            _ => {
                let p = cx.project(&target)?;
                rows.push(describe(cx, "project", &p.name, p.parent_id.as_deref(), &p.owner_id));
            }
        }
    }
    let summary = rows
        .iter()
        .map(|r| {
            format!(
                "{} '{}' is owned by {} ({})",
                r[0].as_str().unwrap_or(""),
                r[1].as_str().unwrap_or(""),
                r[4].as_str().unwrap_or(""),
                r[3].as_str().unwrap_or("")
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    let n = rows.len();
    Ok((summary, cols(&["type", "name", "project", "owner", "owner_name", "owner_email"]), rows, n))
}

/// Users who have not signed in for N days, or never.
pub(super) fn not_signed_in(s: &Scope<'_>) -> Table {
    let Scope { q, scope_label, users, .. } = s;
    let now = s.now;
    let cutoff = q.days.filter(|_| !q.never).map(|d| tabflow_site::time::days_before(now, i64::from(d)));
    let mut hits: Vec<&User> = users
        .iter()
        .copied()
        .filter(|u| match (u.last_login, cutoff) {
            (None, _) => true,
            (Some(l), Some(c)) => l < c,
            (Some(_), None) => false,
        })
        .collect();
    hits.sort_by(|a, b| a.last_login.cmp(&b.last_login).then(a.name.cmp(&b.name)));
    let never = hits.iter().filter(|u| u.last_login.is_none()).count();
    let rows: Vec<Vec<Value>> = hits.iter().map(|u| user_row(u)).collect();
    let n = rows.len();
    let window = match cutoff {
        Some(c) => format!(
            "have not signed in for {} days (since {}; {never} never signed in)",
            q.days.unwrap_or(0),
            c.format("%Y-%m-%d")
        ),
        None => "have never signed in".into(),
    };
    (format!("{n} users{scope_label} {window}"), user_cols(), rows, n)
}

/// For "who owns X" without a type word: the kinds of item whose names match X best
/// (workbooks, datasources and projects compared; equal quality keeps all of them).
pub(super) fn best_kinds(site: &Site, wanted: &str) -> Vec<Subject> {
    let quality = |g: Grounded<String>| -> Option<u8> {
        match g {
            Grounded::One(_, q) => Some(q as u8),
            Grounded::Many(_) => Some(4),
            Grounded::None => None,
        }
    };
    let names = |v: Vec<String>| v;
    let wb = quality(ground::ground(wanted, &names(site.workbooks.iter().map(|w| w.name.clone()).collect()), |n| {
        vec![n.clone()]
    }));
    let ds = quality(ground::ground(wanted, &names(site.datasources.iter().map(|d| d.name.clone()).collect()), |n| {
        vec![n.clone()]
    }));
    let pr = quality(ground::ground(wanted, &names(site.projects.iter().map(|p| p.name.clone()).collect()), |n| {
        vec![n.clone()]
    }));
    // Exact duplicate names come back as Many; rank them as exact when the name is equal.
    let exact = |v: &mut Option<u8>, list: Vec<&str>| {
        if *v == Some(4) && list.iter().any(|n| ground::normalize(n) == ground::normalize(wanted)) {
            *v = Some(Quality::Normalized as u8);
        }
    };
    let (mut wb, mut ds, pr) = (wb, ds, pr);
    exact(&mut wb, site.workbooks.iter().map(|w| w.name.as_str()).collect());
    exact(&mut ds, site.datasources.iter().map(|d| d.name.as_str()).collect());
    let best = [wb, ds, pr].into_iter().flatten().min();
    let Some(best) = best else { return vec![Subject::Workbooks] };
    let mut out = vec![];
    if wb == Some(best) {
        out.push(Subject::Workbooks);
    }
    if ds == Some(best) {
        out.push(Subject::Datasources);
    }
    if pr == Some(best) {
        out.push(Subject::Projects);
    }
    out
}
