//! A named item's facts: "when was Opex Analysis last viewed", "how big is Sales Orders",
//! "what tags does Finance GL have", "is Finance GL certified", "tell me about Cash Flow
//! Summary", "when did jsmith last sign in". One row per item of that name (two workbooks
//! may share a name in different projects); the summary says the fact asked for.

use super::*;

const CONTENT_COLS: &[&str] = &[
    "type",
    "name",
    "project",
    "owner",
    "created",
    "updated",
    "last_viewed",
    "views",
    "size",
    "tags",
    "datasources",
    "certified",
];
const USER_COLS: &[&str] =
    &["type", "name", "full_name", "email", "site_role", "last_login", "groups", "workbooks", "datasources"];

/// Which kinds of item a name matches best (workbooks, datasources, flows, projects).
fn best_kinds(site: &Site, wanted: &str) -> Vec<Subject> {
    let rank = |names: Vec<&str>| -> Option<u8> {
        let owned: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        match ground::ground(wanted, &owned, |n| vec![n.clone()]) {
            Grounded::One(_, q) => Some(q as u8),
            Grounded::Many(_) if names.iter().any(|n| ground::normalize(n) == ground::normalize(wanted)) => {
                Some(Quality::Normalized as u8)
            }
            Grounded::Many(_) => Some(4),
            Grounded::None => None,
        }
    };
    let kinds = [
        (Subject::Workbooks, rank(site.workbooks.iter().map(|w| w.name.as_str()).collect())),
        (Subject::Datasources, rank(site.datasources.iter().map(|d| d.name.as_str()).collect())),
        (Subject::Flows, rank(site.flows.iter().map(|f| f.name.as_str()).collect())),
        (Subject::Projects, rank(site.projects.iter().map(|p| p.name.as_str()).collect())),
    ];
    let Some(best) = kinds.iter().filter_map(|k| k.1).min() else { return vec![Subject::Workbooks] };
    kinds.iter().filter(|k| k.1 == Some(best)).map(|k| k.0).collect()
}

fn date(t: DateTime<Utc>) -> Value {
    day(Some(t))
}

/// The facts of the item(s) named by the question.
pub(super) fn facts(s: &Scope<'_>, cx: &mut Ctx<'_>) -> Result<Table, Error> {
    let Scope { q, site, .. } = s;
    let target = q.target.clone().unwrap_or_default();
    let field = q.field.unwrap_or(Field::All);
    if matches!(field, Field::SiteRole | Field::LastLogin | Field::Groups) || q.subject == Subject::Users {
        let u = cx.user(&target)?;
        let groups: Vec<&str> =
            site.groups.iter().filter(|g| g.members.contains(&u.id)).map(|g| g.name.as_str()).collect();
        let row = vec![
            json!("user"),
            json!(u.name),
            json!(u.full_name),
            json!(u.email),
            json!(u.site_role),
            day(u.last_login),
            json!(groups),
            json!(site.workbooks.iter().filter(|w| w.owner_id == u.id).count()),
            json!(site.datasources.iter().filter(|d| d.owner_id == u.id).count()),
        ];
        let who = format!("{} ({})", u.full_name, u.name);
        let summary = match field {
            Field::LastLogin => match u.last_login {
                Some(t) => format!("{who} last signed in on {}", t.format("%Y-%m-%d")),
                None => format!("{who} has never signed in"),
            },
            Field::SiteRole => format!("{who} has the site role {}", u.site_role),
            Field::Groups => format!("{who} is in {} groups: {}", groups.len(), groups.join(", ")),
            _ => format!(
                "{who}: {}, last signed in {}, in {} groups",
                u.site_role,
                u.last_login.map(|t| t.format("%Y-%m-%d").to_string()).unwrap_or_else(|| "never".into()),
                groups.len()
            ),
        };
        return Ok((summary, cols(USER_COLS), vec![row], 1));
    }
    let kinds = match q.subject {
        Subject::Workbooks | Subject::Datasources | Subject::Flows | Subject::Projects => vec![q.subject],
        _ => best_kinds(site, &target),
    };
    let ds_names: HashMap<&str, &str> = site.datasources.iter().map(|d| (d.id.as_str(), d.name.as_str())).collect();
    let mut rows: Vec<Vec<Value>> = vec![];
    for k in kinds {
        match k {
            Subject::Workbooks => {
                for w in cx.workbooks_named(&target)? {
                    let sources: Vec<&str> =
                        w.datasource_ids.iter().map(|id| ds_names.get(id.as_str()).copied().unwrap_or(id)).collect();
                    rows.push(vec![
                        json!("workbook"),
                        json!(w.name),
                        json!(cx.path(&w.project_id)),
                        json!(cx.username(&w.owner_id)),
                        date(w.created_at),
                        date(w.updated_at),
                        day(last_view(w)),
                        json!(total_views(w)),
                        json!(w.size),
                        json!(w.tags),
                        json!(sources),
                        Value::Null,
                    ]);
                }
            }
            Subject::Datasources => {
                for d in cx.datasources_named(&target)? {
                    rows.push(vec![
                        json!("datasource"),
                        json!(d.name),
                        json!(cx.path(&d.project_id)),
                        json!(cx.username(&d.owner_id)),
                        day(d.created_at),
                        date(d.updated_at),
                        day(d.last_accessed_at),
                        json!(d.total_hits),
                        json!(d.size),
                        json!(d.tags),
                        Value::Null,
                        json!(d.certified),
                    ]);
                }
            }
            Subject::Flows => {
                let all: Vec<&Flow> = site.flows.iter().collect();
                let found: Vec<&Flow> = match ground::ground(&target, &all, |f| vec![f.name.clone()]) {
                    Grounded::One(f, _) => vec![f],
                    Grounded::Many(fs) => fs,
                    Grounded::None => {
                        return Err(Error::NotFound {
                            what: "flow",
                            wanted: target.clone(),
                            suggestions: ground::closest(&target, site.flows.iter().map(|f| f.name.as_str()), 3),
                        });
                    }
                };
                for f in found {
                    rows.push(vec![
                        json!("flow"),
                        json!(f.name),
                        json!(cx.path(&f.project_id)),
                        json!(cx.username(&f.owner_id)),
                        date(f.created_at),
                        date(f.updated_at),
                        Value::Null,
                        Value::Null,
                        Value::Null,
                        json!(f.tags),
                        Value::Null,
                        Value::Null,
                    ]);
                }
            }
            _ => {
                let p = cx.project(&target)?;
                rows.push(vec![
                    json!("project"),
                    json!(p.name),
                    json!(p.parent_id.as_deref().map(|x| cx.path(x))),
                    json!(cx.username(&p.owner_id)),
                    day(p.created_at),
                    day(p.updated_at),
                    Value::Null,
                    Value::Null,
                    Value::Null,
                    json!([]),
                    Value::Null,
                    Value::Null,
                ]);
            }
        }
    }
    let col = CONTENT_COLS.iter().position(|c| *c == field.column()).unwrap_or(1);
    let text = |v: &Value| match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Array(xs) => Some(if xs.is_empty() {
            "none".into()
        } else {
            xs.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")
        }),
        Value::Bool(b) => Some(if *b { "yes".into() } else { "no".into() }),
        other => Some(other.to_string()),
    };
    let summary = rows
        .iter()
        .map(|r| {
            let kind = r[0].as_str().unwrap_or("");
            let name = r[1].as_str().unwrap_or("");
            let place = r[2].as_str().map(|p| format!(" ({p})")).unwrap_or_default();
            let item = format!(
                "{}{} '{name}'{place}",
                kind.get(..1).unwrap_or("").to_uppercase(),
                kind.get(1..).unwrap_or("")
            );
            let v = r.get(col).and_then(text);
            match (field, v) {
                (Field::LastViewed, Some(v)) => format!("{item} was last viewed on {v}"),
                (Field::LastViewed, None) => format!("{item} has no recorded view"),
                (Field::Views, Some(v)) => format!("{item} has {v} views"),
                (Field::Size, Some(v)) => format!("{item} is {v} bytes"),
                (Field::Created, Some(v)) => format!("{item} was created on {v}"),
                (Field::Updated, Some(v)) => format!("{item} was last updated on {v}"),
                (Field::Tags, Some(v)) => format!("{item} has tags: {v}"),
                (Field::Datasources, Some(v)) => format!("{item} uses the published datasources: {v}"),
                (Field::Certified, Some(v)) => format!("{item} certified: {v}"),
                (Field::Project, Some(v)) => format!("{item} is in the project {v}"),
                (Field::Owner, Some(v)) => format!("{item} is owned by {v}"),
                (f, None) if f != Field::All => format!("{item}: no {} recorded", f.column().replace('_', " ")),
                _ => format!(
                    "{item}: owner {}, {} views, last viewed {}",
                    r[3].as_str().unwrap_or("?"),
                    text(&r[7]).unwrap_or_else(|| "—".into()),
                    text(&r[6]).unwrap_or_else(|| "never".into())
                ),
            }
        })
        .collect::<Vec<_>>()
        .join("; ");
    let n = rows.len();
    Ok((summary, cols(CONTENT_COLS), rows, n))
}
