//! [`Index`]: lookups over one [`Site`], built once — items by id, and the project tree
//! (a project's path, its ancestors, its subtree, a project by path). Every walk of the
//! project tree goes through here, so a snapshot with a parent cycle (bad data: `Site::check`
//! does not look for cycles) stops instead of looping, and an unknown id is simply absent.

use std::collections::{HashMap, HashSet};

use crate::model::{Datasource, Group, Project, Site, User, Workbook};

/// Separator of the project names in a [`Index::path`]: "Finance / Quarterly".
pub const PATH_SEPARATOR: &str = " / ";

/// Lookups over a site, built once from it (see the module documentation).
#[derive(Debug, Clone)]
pub struct Index<'s> {
    site: &'s Site,
    projects: HashMap<&'s str, &'s Project>,
    /// parent id -> its child projects, in site order
    children: HashMap<&'s str, Vec<&'s Project>>,
    users: HashMap<&'s str, &'s User>,
    groups: HashMap<&'s str, &'s Group>,
    workbooks: HashMap<&'s str, &'s Workbook>,
    datasources: HashMap<&'s str, &'s Datasource>,
}

impl<'s> Index<'s> {
    pub fn new(site: &'s Site) -> Index<'s> {
        let mut children: HashMap<&str, Vec<&Project>> = HashMap::new();
        for p in &site.projects {
            if let Some(parent) = &p.parent_id {
                children.entry(parent.as_str()).or_default().push(p);
            }
        }
        Index {
            site,
            projects: site.projects.iter().map(|p| (p.id.as_str(), p)).collect(),
            children,
            users: site.users.iter().map(|u| (u.id.as_str(), u)).collect(),
            groups: site.groups.iter().map(|g| (g.id.as_str(), g)).collect(),
            workbooks: site.workbooks.iter().map(|w| (w.id.as_str(), w)).collect(),
            datasources: site.datasources.iter().map(|d| (d.id.as_str(), d)).collect(),
        }
    }

    /// The site this index was built from.
    pub fn site(&self) -> &'s Site {
        self.site
    }

    pub fn project(&self, id: &str) -> Option<&'s Project> {
        self.projects.get(id).copied()
    }

    pub fn user(&self, id: &str) -> Option<&'s User> {
        self.users.get(id).copied()
    }

    pub fn group(&self, id: &str) -> Option<&'s Group> {
        self.groups.get(id).copied()
    }

    pub fn workbook(&self, id: &str) -> Option<&'s Workbook> {
        self.workbooks.get(id).copied()
    }

    pub fn datasource(&self, id: &str) -> Option<&'s Datasource> {
        self.datasources.get(id).copied()
    }

    /// The projects directly under `id`, in site order.
    pub fn children(&self, id: &str) -> &[&'s Project] {
        self.children.get(id).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The projects above `id`, nearest first (its parent, then the parent's parent …), not
    /// `id` itself. Stops at a parent the site does not have, and before a project seen
    /// already (a cycle); an unknown `id` has none.
    pub fn ancestors(&self, id: &str) -> Vec<&'s Project> {
        let mut out: Vec<&'s Project> = vec![];
        let mut seen: HashSet<&str> = HashSet::from([id]);
        let mut cur = self.project(id).and_then(|p| p.parent_id.as_deref());
        while let Some(parent) = cur {
            let Some(p) = self.project(parent) else { break };
            if !seen.insert(p.id.as_str()) {
                break;
            }
            out.push(p);
            cur = p.parent_id.as_deref();
        }
        out
    }

    /// `id` itself (when the site has it) and then its [`ancestors`](Index::ancestors).
    pub fn lineage(&self, id: &str) -> Vec<&'s Project> {
        let mut out: Vec<&'s Project> = self.project(id).into_iter().collect();
        out.extend(self.ancestors(id));
        out
    }

    /// The top-level project above `id` (or `id` itself when it is top-level); `None` for an
    /// unknown id.
    pub fn top(&self, id: &str) -> Option<&'s Project> {
        self.lineage(id).last().copied()
    }

    /// The names from the top-level project down to `id`.
    pub fn path_names(&self, id: &str) -> Vec<&'s str> {
        let mut names: Vec<&'s str> = self.lineage(id).iter().map(|p| p.name.as_str()).collect();
        names.reverse();
        names
    }

    /// The project's path, "Finance / Quarterly" ([`PATH_SEPARATOR`]); empty for an unknown id.
    pub fn path(&self, id: &str) -> String {
        self.path_names(id).join(PATH_SEPARATOR)
    }

    /// `root` and every project nested under it, `root` first then level by level (site
    /// order within a level). `root` is listed even when the site does not have it, so a
    /// scope built from an id always contains that id; a cycle is listed once.
    pub fn subtree<'r>(&self, root: &'r str) -> Vec<&'r str>
    where
        's: 'r,
    {
        let mut out: Vec<&'r str> = vec![root];
        let mut seen: HashSet<&str> = HashSet::from([root]);
        let mut next = 0;
        while next < out.len() {
            let id = out[next];
            next += 1;
            for c in self.children(id) {
                if seen.insert(c.id.as_str()) {
                    out.push(c.id.as_str());
                }
            }
        }
        out
    }

    /// True when `candidate` is `ancestor` or lies below it.
    pub fn is_within(&self, candidate: &str, ancestor: &str) -> bool {
        candidate == ancestor || self.ancestors(candidate).iter().any(|p| p.id == ancestor)
    }

    /// The project at `path`: names from the top level down, separated by `/` (spaces around
    /// a name are ignored, so "Finance/Quarterly" and "Finance / Quarterly" are the same).
    /// A name matches exactly, else ignoring ASCII case. `None` when a level has no match.
    pub fn project_by_path(&self, path: &str) -> Option<&'s Project> {
        let mut found: Option<&'s Project> = None;
        for name in path.split('/').map(str::trim) {
            let level: Vec<&'s Project> = match found {
                None => self.site.projects.iter().filter(|p| p.parent_id.is_none()).collect(),
                Some(p) => self.children(&p.id).to_vec(),
            };
            found = Some(
                level
                    .iter()
                    .find(|p| p.name == name)
                    .or_else(|| level.iter().find(|p| p.name.eq_ignore_ascii_case(name)))
                    .copied()?,
            );
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(id: &str, name: &str, parent: Option<&str>) -> Project {
        Project {
            id: id.into(),
            name: name.into(),
            parent_id: parent.map(str::to_string),
            owner_id: "u1".into(),
            content_permissions: "ManagedByOwner".into(),
            description: String::new(),
            created_at: None,
            updated_at: None,
        }
    }

    fn site(projects: Vec<Project>) -> Site {
        let mut s = crate::generate::demo();
        s.projects = projects;
        s
    }

    /// Finance > Quarterly > Close, Finance > Budget, Sales.
    fn nested() -> Site {
        site(vec![
            project("f", "Finance", None),
            project("q", "Quarterly", Some("f")),
            project("c", "Close", Some("q")),
            project("b", "Budget", Some("f")),
            project("s", "Sales", None),
        ])
    }

    fn ids(ps: &[&Project]) -> Vec<String> {
        ps.iter().map(|p| p.id.clone()).collect()
    }

    #[test]
    fn nested_projects_have_paths_ancestors_and_subtrees() {
        let s = nested();
        let ix = Index::new(&s);
        assert_eq!(ix.path("c"), "Finance / Quarterly / Close");
        assert_eq!(ix.path("f"), "Finance");
        assert_eq!(ix.path_names("q"), ["Finance", "Quarterly"]);
        assert_eq!(ids(&ix.ancestors("c")), ["q", "f"]);
        assert!(ix.ancestors("f").is_empty());
        assert_eq!(ids(&ix.lineage("c")), ["c", "q", "f"]);
        assert_eq!(ix.top("c").map(|p| p.name.as_str()), Some("Finance"));
        assert_eq!(ix.subtree("f"), ["f", "q", "b", "c"]);
        assert_eq!(ix.subtree("s"), ["s"]);
        assert_eq!(ids(ix.children("f")), ["q", "b"]);
        assert!(ix.is_within("c", "f") && ix.is_within("f", "f") && !ix.is_within("f", "c") && !ix.is_within("s", "f"));
        assert_eq!(ix.project_by_path("Finance/Quarterly/Close").map(|p| p.id.as_str()), Some("c"));
        assert_eq!(ix.project_by_path("finance / quarterly").map(|p| p.id.as_str()), Some("q"));
        assert_eq!(ix.project_by_path("Quarterly"), None, "a path starts at the top level");
        assert_eq!(ix.project_by_path("Finance/Close"), None);
    }

    #[test]
    fn a_parent_cycle_in_bad_data_ends_every_walk() {
        // a -> b -> c -> a (no top level), and d under c.
        let s = site(vec![
            project("a", "A", Some("c")),
            project("b", "B", Some("a")),
            project("c", "C", Some("b")),
            project("d", "D", Some("c")),
            project("self", "Self", Some("self")),
        ]);
        let ix = Index::new(&s);
        assert_eq!(ids(&ix.ancestors("a")), ["c", "b"]);
        assert_eq!(ids(&ix.ancestors("d")), ["c", "b", "a"]);
        assert_eq!(ix.path("a"), "B / C / A");
        let mut sub = ix.subtree("a");
        sub.sort();
        assert_eq!(sub, ["a", "b", "c", "d"]);
        assert!(ix.ancestors("self").is_empty());
        assert_eq!(ix.subtree("self"), ["self"]);
        assert_eq!(ix.path("self"), "Self");
        assert!(!ix.is_within("d", "x"));
        assert_eq!(ix.project_by_path("A"), None);
    }

    #[test]
    fn unknown_ids_are_absent_not_errors() {
        let s = site(vec![project("f", "Finance", None), project("o", "Orphan", Some("gone"))]);
        let ix = Index::new(&s);
        assert_eq!(ix.path("nope"), "");
        assert!(ix.ancestors("nope").is_empty() && ix.lineage("nope").is_empty());
        assert!(ix.top("nope").is_none() && ix.project("nope").is_none());
        assert_eq!(ix.subtree("nope"), ["nope"], "the root of a scope is always in it");
        assert!(ix.children("nope").is_empty());
        // A parent the site does not have ends the walk.
        assert_eq!(ix.path("o"), "Orphan");
        assert_eq!(ix.top("o").map(|p| p.id.as_str()), Some("o"));
        assert!(ix.user("nope").is_none() && ix.group("nope").is_none());
        assert!(ix.workbook("nope").is_none() && ix.datasource("nope").is_none());
    }

    #[test]
    fn item_lookups_find_the_demo_site_items() {
        let s = crate::generate::demo();
        let ix = Index::new(&s);
        let w = &s.workbooks[3];
        assert_eq!(ix.workbook(&w.id).map(|x| &x.name), Some(&w.name));
        let d = &s.datasources[2];
        assert_eq!(ix.datasource(&d.id).map(|x| &x.name), Some(&d.name));
        assert_eq!(ix.user(&s.users[5].id).map(|u| &u.name), Some(&s.users[5].name));
        assert_eq!(ix.group(&s.groups[1].id).map(|g| &g.name), Some(&s.groups[1].name));
        // Every project's path leads back to it.
        for p in &s.projects {
            assert_eq!(ix.project_by_path(&ix.path(&p.id)).map(|x| &x.id), Some(&p.id), "{}", ix.path(&p.id));
        }
    }
}
