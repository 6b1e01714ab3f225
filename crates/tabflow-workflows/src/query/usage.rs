//! Questions about usage: most and least viewed or used content, content not viewed in N
//! days.

use super::*;

/// The most (or least) viewed workbooks and views, the most used datasources.
pub(super) fn most_viewed(s: &Scope<'_>, cx: &Ctx<'_>) -> Table {
    let Scope { q, scope_label, workbooks, datasources, .. } = s;
    let subject = q.subject;
    let limit = q.limit.unwrap_or(10);
    let order = |a: u64, b: u64| if q.ascending { a.cmp(&b) } else { b.cmp(&a) };
    let word = if q.ascending { "least" } else { "most" };
    match subject {
        Subject::Views => {
            let mut all: Vec<(&Workbook, &tabflow_site::View)> =
                workbooks.iter().flat_map(|w| w.views.iter().map(move |v| (*w, v))).collect();
            all.sort_by(|a, b| order(a.1.total_views, b.1.total_views).then(a.1.name.cmp(&b.1.name)));
            let total = all.len();
            let rows = all
                .iter()
                .take(limit)
                .map(|(w, v)| {
                    vec![
                        json!(v.name),
                        json!(w.name),
                        json!(cx.path(&w.project_id)),
                        json!(v.total_views),
                        day(v.last_viewed_at),
                    ]
                })
                .collect::<Vec<_>>();
            (
                format!("The {} {word} viewed views{scope_label} (of {total})", rows.len()),
                cols(&["view", "workbook", "project", "views", "last_viewed"]),
                rows,
                total,
            )
        }
        Subject::Datasources => {
            let mut all = datasources.clone();
            all.sort_by(|a, b| order(a.total_hits, b.total_hits).then(a.name.cmp(&b.name)));
            let total = all.len();
            let rows: Vec<Vec<Value>> = all
                .iter()
                .take(limit)
                .map(|d| {
                    vec![
                        json!(d.name),
                        json!(cx.path(&d.project_id)),
                        json!(cx.username(&d.owner_id)),
                        json!(d.total_hits),
                        day(d.last_accessed_at),
                    ]
                })
                .collect();
            (
                format!("The {} {word} used datasources{scope_label} (of {total})", rows.len()),
                cols(&["datasource", "project", "owner", "hits", "last_accessed"]),
                rows,
                total,
            )
        }
        _ => {
            let mut all = workbooks.clone();
            all.sort_by(|a, b| order(total_views(a), total_views(b)).then(a.name.cmp(&b.name)).then(a.id.cmp(&b.id)));
            let total = all.len();
            let rows: Vec<Vec<Value>> = all.iter().take(limit).map(|w| wb_row(cx, w)).collect();
            (format!("The {} {word} viewed workbooks{scope_label} (of {total})", rows.len()), wb_cols(), rows, total)
        }
    }
}

/// Workbooks not viewed (datasources not accessed) in N days, or never.
pub(super) fn not_viewed(s: &Scope<'_>, cx: &mut Ctx<'_>) -> Table {
    let Scope { q, site, scope_label, workbooks, datasources, .. } = s;
    let now = s.now;
    let subject = q.subject;
    let cutoff = q.days.filter(|_| !q.never).map(|d| tabflow_site::time::days_before(now, i64::from(d)));
    let window = match (q.never, q.days) {
        (true, _) | (false, None) => "have never been viewed".to_string(),
        (false, Some(d)) => format!(
            "have not been viewed in {d} days (since {})",
            cutoff.map(|c| c.format("%Y-%m-%d").to_string()).unwrap_or_default()
        ),
    };
    if subject == Subject::Datasources {
        let mut hits = vec![];
        let mut no_data = 0;
        for d in datasources.iter() {
            let stale = match (d.last_accessed_at, cutoff) {
                (Some(l), Some(c)) => l < c,
                (Some(_), None) => false,
                (None, _) if d.total_hits == 0 => true,
                (None, _) => {
                    no_data += 1;
                    false
                }
            };
            if stale && d.created_at.is_none_or(|t| cutoff.is_none_or(|c| t <= c)) {
                hits.push(*d);
            }
        }
        if no_data > 0 {
            cx.notes.push(format!("{no_data} datasources have hits but no last-access date (no usage data; left out)"));
        }
        hits.sort_by(|a, b| a.last_accessed_at.cmp(&b.last_accessed_at).then(a.name.cmp(&b.name)));
        let rows: Vec<Vec<Value>> = hits
            .iter()
            .map(|d| {
                vec![
                    json!(d.name),
                    json!(cx.path(&d.project_id)),
                    json!(cx.username(&d.owner_id)),
                    json!(d.total_hits),
                    day(d.last_accessed_at),
                ]
            })
            .collect();
        let n = rows.len();
        (
            format!("{n} datasources{scope_label} {}", window.replace("viewed", "accessed")),
            cols(&["datasource", "project", "owner", "hits", "last_accessed"]),
            rows,
            n,
        )
    } else {
        let mut hits = vec![];
        let (mut no_data, mut too_new, mut never) = (0, 0, 0);
        for w in workbooks.iter() {
            let last = last_view(w);
            let stale = match (last, cutoff) {
                (Some(l), Some(c)) => l < c,
                (Some(_), None) => false,
                (None, _) if total_views(w) == 0 => true,
                (None, _) => {
                    no_data += 1;
                    false
                }
            };
            if !stale {
                continue;
            }
            if cutoff.is_some_and(|c| w.created_at > c) {
                too_new += 1;
                continue;
            }
            if last.is_none() {
                never += 1;
            }
            hits.push(*w);
        }
        if no_data > 0 {
            cx.notes.push(format!("{no_data} workbooks have views but no last-viewed date (no usage data; left out)"));
        }
        if too_new > 0 {
            cx.notes.push(format!(
                "{too_new} unviewed workbooks were created less than {} days ago (left out)",
                q.days.unwrap_or(0)
            ));
        }
        if !site.workbooks.iter().any(|w| last_view(w).is_some()) {
            cx.notes.push(
                "this site has no last-viewed dates (usage source missing): only never-viewed workbooks can be judged"
                    .into(),
            );
        }
        hits.sort_by(|a, b| last_view(a).cmp(&last_view(b)).then(a.name.cmp(&b.name)).then(a.id.cmp(&b.id)));
        let rows: Vec<Vec<Value>> = hits.iter().map(|w| wb_row(cx, w)).collect();
        let n = rows.len();
        let never_note = if cutoff.is_some() && never > 0 { format!(" ({never} never viewed)") } else { String::new() };
        (format!("{n} workbooks{scope_label} {window}{never_note}"), wb_cols(), rows, n)
    }
}
