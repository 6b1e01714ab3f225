//! The answering context: lookups of users and projects over a site, project paths and
//! subtrees, and the grounding of the names a question uses (a project, a user, a group,
//! workbooks or datasources by name) with notes on how a name was read.

use super::*;

pub(super) struct Ctx<'a> {
    pub(super) site: &'a Site,
    pub(super) index: Index<'a>,
    pub(super) notes: Vec<String>,
}

pub(super) fn day(t: Option<DateTime<Utc>>) -> Value {
    t.map(|t| Value::String(t.format("%Y-%m-%d").to_string())).unwrap_or(Value::Null)
}

pub(super) fn last_view(w: &Workbook) -> Option<DateTime<Utc>> {
    w.views.iter().filter_map(|v| v.last_viewed_at).max()
}

pub(super) fn total_views(w: &Workbook) -> u64 {
    w.views.iter().map(|v| v.total_views).sum()
}

impl<'a> Ctx<'a> {
    pub(super) fn path(&self, id: &str) -> String {
        self.index.path(id)
    }

    pub(super) fn username(&self, id: &str) -> String {
        self.index.user(id).map(|u| u.name.clone()).unwrap_or_else(|| id.to_string())
    }

    pub(super) fn subtree(&self, root: &str) -> BTreeSet<String> {
        self.index.subtree(root).into_iter().map(str::to_string).collect()
    }

    pub(super) fn project(&mut self, wanted: &str) -> Result<&'a Project, Error> {
        let site = self.site;
        let all: Vec<&Project> = site.projects.iter().collect();
        match ground::ground(wanted, &all, |p| vec![p.name.clone()]) {
            Grounded::One(p, q) => {
                note_reading(&mut self.notes, wanted, &p.name, "project", q);
                Ok(p)
            }
            Grounded::Many(ps) => {
                let top: Vec<&&Project> = ps.iter().filter(|p| p.parent_id.is_none()).collect();
                if top.len() == 1 && ps.iter().all(|p| p.name == top[0].name) {
                    return Ok(top[0]);
                }
                Err(Error::Ambiguous {
                    what: "project",
                    wanted: wanted.into(),
                    candidates: ps.iter().map(|p| self.path(&p.id)).collect(),
                    choices: ps.iter().map(|p| p.name.clone()).collect(),
                })
            }
            Grounded::None => Err(Error::NotFound {
                what: "project",
                wanted: wanted.into(),
                suggestions: ground::closest(wanted, site.projects.iter().map(|p| p.name.as_str()), 3),
            }),
        }
    }

    pub(super) fn user(&mut self, wanted: &str) -> Result<&'a User, Error> {
        let site = self.site;
        let all: Vec<&User> = site.users.iter().collect();
        match ground::ground(wanted, &all, |u| vec![u.name.clone(), u.full_name.clone(), u.email.clone()]) {
            Grounded::One(u, q) => {
                if q != Quality::Exact {
                    self.notes.push(format!("'{wanted}' was read as the user {} ({})", u.full_name, u.name));
                }
                Ok(u)
            }
            Grounded::Many(us) => Err(Error::Ambiguous {
                what: "user",
                wanted: wanted.into(),
                candidates: us.iter().map(|u| format!("{} ({})", u.full_name, u.name)).collect(),
                choices: us.iter().map(|u| u.name.clone()).collect(),
            }),
            Grounded::None => Err(Error::NotFound {
                what: "user",
                wanted: wanted.into(),
                suggestions: ground::closest(wanted, site.users.iter().map(|u| u.full_name.as_str()), 3),
            }),
        }
    }

    pub(super) fn group(&mut self, wanted: &str) -> Result<&'a tabflow_site::Group, Error> {
        let site = self.site;
        let all: Vec<&tabflow_site::Group> = site.groups.iter().collect();
        match ground::ground(wanted, &all, |g| vec![g.name.clone()]) {
            Grounded::One(g, q) => {
                note_reading(&mut self.notes, wanted, &g.name, "group", q);
                Ok(g)
            }
            Grounded::Many(gs) => Err(Error::Ambiguous {
                what: "group",
                wanted: wanted.into(),
                candidates: gs.iter().map(|g| g.name.clone()).collect(),
                choices: gs.iter().map(|g| g.name.clone()).collect(),
            }),
            Grounded::None => Err(Error::NotFound {
                what: "group",
                wanted: wanted.into(),
                suggestions: ground::closest(wanted, site.groups.iter().map(|g| g.name.as_str()), 3),
            }),
        }
    }

    pub(super) fn workbooks_named(&mut self, wanted: &str) -> Result<Vec<&'a Workbook>, Error> {
        let site = self.site;
        let index = &self.index;
        let items: Vec<&Workbook> = site.workbooks.iter().collect();
        named(
            &mut self.notes,
            wanted,
            "workbook",
            items,
            |w| w.name.clone(),
            |w| format!("{} ({})", w.name, index.project(&w.project_id).map(|p| p.name.as_str()).unwrap_or("?")),
        )
    }

    pub(super) fn datasources_named(&mut self, wanted: &str) -> Result<Vec<&'a Datasource>, Error> {
        let site = self.site;
        let index = &self.index;
        let items: Vec<&Datasource> = site.datasources.iter().collect();
        named(
            &mut self.notes,
            wanted,
            "datasource",
            items,
            |d| d.name.clone(),
            |d| format!("{} ({})", d.name, index.project(&d.project_id).map(|p| p.name.as_str()).unwrap_or("?")),
        )
    }
}

/// Notes how a name was read when it was not an exact match.
fn note_reading(notes: &mut Vec<String>, wanted: &str, found: &str, what: &str, q: Quality) {
    if q != Quality::Exact && !found.eq_ignore_ascii_case(wanted) {
        notes.push(format!("'{wanted}' was read as the {what} '{found}'"));
    }
}

/// Items named `wanted`; several with exactly that name are all returned (an answer can
/// list them), several partial matches are ambiguous.
fn named<T: Clone>(
    notes: &mut Vec<String>,
    wanted: &str,
    what: &'static str,
    items: Vec<T>,
    name: impl Fn(&T) -> String,
    describe: impl Fn(&T) -> String,
) -> Result<Vec<T>, Error> {
    match ground::ground(wanted, &items, |x| vec![name(x)]) {
        Grounded::One(x, q) => {
            note_reading(notes, wanted, &name(&x), what, q);
            Ok(vec![x])
        }
        Grounded::Many(xs) => {
            let w = ground::normalize(wanted);
            if xs.iter().all(|x| ground::normalize(&name(x)) == w) {
                notes.push(format!("{} {what}s are named '{}'", xs.len(), name(&xs[0])));
                return Ok(xs);
            }
            Err(Error::Ambiguous {
                what,
                wanted: wanted.into(),
                candidates: xs.iter().map(describe).collect(),
                choices: xs.iter().map(&name).collect(),
            })
        }
        Grounded::None => Err(Error::NotFound {
            what,
            wanted: wanted.into(),
            suggestions: ground::closest(
                wanted,
                items.iter().map(&name).collect::<Vec<_>>().iter().map(String::as_str),
                3,
            ),
        }),
    }
}

pub(super) fn cols(c: &[&str]) -> Vec<String> {
    c.iter().map(|s| s.to_string()).collect()
}
