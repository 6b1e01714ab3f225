//! Effective permissions: what each user can really do on a workbook or datasource, computed
//! from a site read the way Tableau evaluates it (Permissions help page, "How permissions are
//! evaluated"):
//!
//! 1. Unlicensed users can do nothing.
//! 2. Site administrators, the content owner, the owner of the project or of a project above
//!    it, and project leaders (`ProjectLeader` allowed on the project or an ancestor, for the
//!    user or one of their groups) can do everything.
//! 3. Which rules apply: the content's own rules, or — when its project is locked
//!    (`LockedToProject`, also inherited by nested projects; `LockedToProjectWithoutNested`,
//!    only for content directly in that project) — the locking project's default rules for
//!    that content type.
//! 4. Per capability, a rule for the user wins over group rules; within the user's rules, or
//!    within the groups' rules, Deny beats Allow. No rule = not granted.
//! 5. The site role caps the result: Viewers never get more than viewing capabilities; an
//!    Explorer cannot overwrite or move content.
//!
//! Pure: it only reads a [`Site`].

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::rc::Rc;

use serde::Serialize;
use tabflow_site::{Index, Mode, Site};

/// Capabilities a Viewer site role can hold.
pub const VIEWER_CAPS: &[&str] = &[
    "Read",
    "Filter",
    "ViewComments",
    "AddComment",
    "ExportImage",
    "ExportData",
    "ShareView",
    "ViewUnderlyingData",
    "RunExplainData",
    "Connect",
];
/// Capabilities an Explorer (without publishing) cannot hold.
const PUBLISHER_ONLY: &[&str] = &["Write", "Overwrite", "ChangeHierarchy", "ExportXml", "CreateRefreshMetrics"];

/// One rule as the evaluator needs it.
#[derive(Debug, Clone)]
struct Rule<'a> {
    grantee_kind: &'a str,
    grantee_id: &'a str,
    capabilities: &'a BTreeMap<String, Mode>,
}

/// Why a user holds (or lacks) a capability.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Grant {
    pub allowed: bool,
    /// "owner", "site administrator", "project leader", "user rule", "group 'X'",
    /// "denied by group 'X'", "capped by site role Viewer"...
    pub via: String,
}

/// Effective access of every user to one item: user id → capability → grant. Capabilities
/// nobody mentions are absent (not granted).
pub type Access = BTreeMap<String, BTreeMap<String, Grant>>;

/// Indexes of a site, built once for many items.
pub struct Evaluator<'a> {
    site: &'a Site,
    groups_of: HashMap<&'a str, Vec<(&'a str, &'a str)>>,
    rules_on: HashMap<&'a str, Vec<Rule<'a>>>,
    defaults: HashMap<(&'a str, &'a str), Vec<Rule<'a>>>,
    /// Lookups and the project tree.
    index: Index<'a>,
    /// All capability names that appear anywhere (the universe for "everything").
    all_caps: BTreeSet<String>,
    /// Licensed site administrators by site role (in the site's order): one class each.
    admins: Vec<(&'a str, Vec<&'a str>)>,
    /// Whether user ids and group ids are unique: the class-based evaluation assumes it (a
    /// site read from Tableau always has it); otherwise every user is evaluated alone.
    unique_ids: bool,
    /// The rules' group ids (sorted) → the profiles of those groups' users, built once for
    /// every item whose applicable rules name that set of groups (issue #15).
    groupings: RefCell<HashMap<Vec<&'a str>, Rc<Grouping<'a>>>>,
}

/// Users who have the same effective access to one item, and that access: the
/// [`Evaluator::access_classes`] of an item.
pub struct AccessClass<'a> {
    /// Users listed one by one (site administrators of one role, or a single user).
    listed: Vec<&'a str>,
    /// Or the users of a profile of a grouping, less `except` (users evaluated apart).
    profile: Option<(Rc<Grouping<'a>>, usize)>,
    except: Vec<&'a str>,
    /// What each of them may do (never empty).
    pub caps: BTreeMap<String, Grant>,
}

impl<'a> AccessClass<'a> {
    /// How many users the class holds, without listing them.
    pub fn len(&self) -> usize {
        let profile = self.profile.as_ref().map_or(0, |(g, at)| g.profiles[*at].users.len());
        self.listed.len() + profile - self.except.len()
    }

    /// Whether the class holds nobody (never, for a class [`Evaluator::access_classes`] returns).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The users' ids.
    pub fn users(&self) -> impl Iterator<Item = &'a str> + '_ {
        let profile = self.profile.as_ref().map(|(g, at)| g.profiles[*at].users.as_slice()).unwrap_or_default();
        self.listed.iter().copied().chain(profile.iter().copied().filter(|u| !self.except.contains(u)))
    }
}

fn content_type(kind: &str) -> &'static str {
    match kind {
        "datasource" => "datasources",
        "flow" => "flows",
        _ => "workbooks",
    }
}

impl<'a> Evaluator<'a> {
    pub fn new(site: &'a Site) -> Evaluator<'a> {
        Evaluator::with_index(site, Index::new(site))
    }

    /// [`new`](Evaluator::new) with the site's [`Index`] built already (a planner has one).
    pub fn with_index(site: &'a Site, index: Index<'a>) -> Evaluator<'a> {
        let mut groups_of: HashMap<&str, Vec<(&str, &str)>> = HashMap::new();
        for g in &site.groups {
            for m in &g.members {
                groups_of.entry(m.as_str()).or_default().push((g.id.as_str(), g.name.as_str()));
            }
        }
        let mut rules_on: HashMap<&str, Vec<Rule>> = HashMap::new();
        let mut all_caps: BTreeSet<String> = BTreeSet::new();
        for r in &site.permissions {
            all_caps.extend(r.capabilities.keys().cloned());
            rules_on.entry(r.resource.id.as_str()).or_default().push(Rule {
                grantee_kind: r.grantee.kind.as_str(),
                grantee_id: r.grantee.id.as_str(),
                capabilities: &r.capabilities,
            });
        }
        let mut defaults: HashMap<(&str, &str), Vec<Rule>> = HashMap::new();
        for r in &site.default_permissions {
            all_caps.extend(r.capabilities.keys().cloned());
            defaults.entry((r.project_id.as_str(), r.content_type.as_str())).or_default().push(Rule {
                grantee_kind: r.grantee.kind.as_str(),
                grantee_id: r.grantee.id.as_str(),
                capabilities: &r.capabilities,
            });
        }
        all_caps.remove("ProjectLeader");
        let mut admins: Vec<(&str, Vec<&str>)> = vec![];
        for u in site.users.iter().filter(|u| is_admin(&u.site_role)) {
            match admins.iter_mut().find(|(role, _)| *role == u.site_role) {
                Some((_, users)) => users.push(u.id.as_str()),
                None => admins.push((u.site_role.as_str(), vec![u.id.as_str()])),
            }
        }
        let unique_ids = site.users.iter().map(|u| u.id.as_str()).collect::<HashSet<_>>().len() == site.users.len()
            && site.groups.iter().map(|g| g.id.as_str()).collect::<HashSet<_>>().len() == site.groups.len();
        Evaluator {
            site,
            groups_of,
            rules_on,
            defaults,
            index,
            all_caps,
            admins,
            unique_ids,
            groupings: RefCell::new(HashMap::new()),
        }
    }

    /// An evaluator of `site` after a change to the rules this one evaluates: "everything"
    /// also holds this one's capability names, so that removing the only rule naming a
    /// capability does not count as a change of every administrator's and owner's access —
    /// and the users a change affects do not depend on rules of other items (whether they
    /// were read at all, issue #15).
    pub fn after<'b>(&self, site: &'b Site) -> Evaluator<'b> {
        let mut e = Evaluator::new(site);
        e.all_caps.extend(self.all_caps.iter().cloned());
        e
    }

    /// The project whose default rules govern content in `project_id`, if it is locked.
    pub fn locking_project(&self, project_id: &str) -> Option<&'a tabflow_site::Project> {
        self.locking_project_with(project_id, &BTreeSet::new())
    }

    /// [`locking_project`](Evaluator::locking_project) as if the projects in `locks` were
    /// `LockedToProject`.
    fn locking_project_with(&self, project_id: &str, locks: &BTreeSet<String>) -> Option<&'a tabflow_site::Project> {
        fn setting<'p>(p: &'p tabflow_site::Project, locks: &BTreeSet<String>) -> &'p str {
            if locks.contains(&p.id) { "LockedToProject" } else { p.content_permissions.as_str() }
        }
        let direct = self.index.project(project_id)?;
        match setting(direct, locks) {
            "LockedToProject" | "LockedToProjectWithoutNested" => return Some(direct),
            _ => {}
        }
        // A nested project inherits a full lock from an ancestor.
        self.index.ancestors(project_id).into_iter().find(|p| setting(p, locks) == "LockedToProject")
    }

    /// The owner and project of a workbook (a datasource when `kind` is "datasource").
    fn owner_and_project(&self, kind: &str, id: &str) -> Option<(&'a str, &'a str)> {
        match kind {
            "datasource" => self.index.datasource(id).map(|d| (d.owner_id.as_str(), d.project_id.as_str())),
            _ => self.index.workbook(id).map(|w| (w.owner_id.as_str(), w.project_id.as_str())),
        }
    }

    /// Owners of `project_id` and its ancestors: a project owner has full access to the
    /// project's content and to its child projects.
    fn project_owners(&self, project_id: &str) -> BTreeSet<&'a str> {
        self.index.lineage(project_id).into_iter().map(|p| p.owner_id.as_str()).collect()
    }

    /// Users who lead `project_id` (or an ancestor): `ProjectLeader` allowed for them or
    /// one of their groups.
    fn leaders(&self, project_id: &str) -> BTreeSet<&'a str> {
        let mut out = BTreeSet::new();
        let ancestors = self.index.ancestors(project_id);
        for id in std::iter::once(project_id).chain(ancestors.iter().map(|p| p.id.as_str())) {
            for r in self.rules_on.get(id).into_iter().flatten() {
                if r.capabilities.get("ProjectLeader") == Some(&Mode::Allow) {
                    if r.grantee_kind == "user" {
                        out.insert(r.grantee_id);
                    } else if let Some(g) = self.index.group(r.grantee_id) {
                        out.extend(g.members.iter().map(String::as_str));
                    }
                }
            }
        }
        out
    }

    /// The rules that apply to an item: its own, or its locking project's defaults.
    fn rules_for(&self, kind: &str, id: &str, project_id: &str) -> (Vec<Rule<'a>>, Option<String>) {
        match self.locking_project(project_id) {
            Some(lock) => {
                let rules = self.defaults.get(&(lock.id.as_str(), content_type(kind))).cloned().unwrap_or_default();
                (rules, Some(lock.name.clone()))
            }
            None => (self.rules_on.get(id).cloned().unwrap_or_default(), None),
        }
    }

    /// Effective access of every licensed user to one workbook or datasource: the
    /// [`access_classes`](Evaluator::access_classes) expanded, one entry per user.
    pub fn access(&self, kind: &str, id: &str) -> Access {
        let mut out = Access::new();
        for class in self.access_classes(kind, id) {
            for u in class.users() {
                out.insert(u.to_string(), class.caps.clone());
            }
        }
        out
    }

    /// Effective access to one workbook or datasource by classes of users whose answer is
    /// the same by construction — the same as [`access_per_user`](Evaluator::access_per_user)
    /// (each user with access is in exactly one class) in time that does not grow with the
    /// users for every item (an audit of 1 500 items on a 4 000-user site evaluated 6 million
    /// users, issue #15):
    ///
    /// - site administrators: one class per site role ("everything", capped by the role);
    /// - the owner, the owners of the project chain, its leaders, and users a user rule of the
    ///   applicable rules names: one by one (a handful an item);
    /// - everyone else gets what the group rules give, which depends only on their site role
    ///   and on which of the rules' groups they are in: one evaluation per such profile, the
    ///   profiles of a set of groups built once for every item whose rules name that set;
    /// - users in none of those groups, and unlicensed users, get nothing (no class).
    pub fn access_classes(&self, kind: &str, id: &str) -> Vec<AccessClass<'a>> {
        let single = |u: &'a str, caps| AccessClass { listed: vec![u], profile: None, except: vec![], caps };
        if !self.unique_ids {
            return self
                .access_per_user(kind, id)
                .into_iter()
                .filter_map(|(u, caps)| self.index.user(&u).map(|u| single(u.id.as_str(), caps)))
                .collect();
        }
        let Some((owner, project_id)) = self.owner_and_project(kind, id) else { return vec![] };
        let (rules, _) = self.rules_for(kind, id, project_id);
        let mut out = vec![];
        for (role, users) in &self.admins {
            let caps = cap_by_role(role, everything(&self.all_caps, "site administrator"));
            if !caps.is_empty() {
                out.push(AccessClass { listed: users.clone(), profile: None, except: vec![], caps });
            }
        }
        let project_owners = self.project_owners(project_id);
        let leaders = self.leaders(project_id);
        let named = rules.iter().filter(|r| r.grantee_kind == "user").map(|r| r.grantee_id);
        let mut apart: Vec<&'a str> = vec![];
        let mut seen: HashSet<&'a str> = HashSet::new();
        let candidates = std::iter::once(owner).chain(project_owners.iter().copied()).chain(leaders.iter().copied());
        for uid in candidates.chain(named) {
            let Some(u) = self.index.user(uid) else { continue };
            if u.site_role == "Unlicensed" || is_admin(&u.site_role) || !seen.insert(u.id.as_str()) {
                continue;
            }
            apart.push(u.id.as_str());
            let caps = self.one_user(u, owner, &project_owners, &leaders, &rules);
            if !caps.is_empty() {
                out.push(single(u.id.as_str(), caps));
            }
        }
        let mut groups: Vec<&'a str> =
            rules.iter().filter(|r| r.grantee_kind == "group").map(|r| r.grantee_id).collect();
        groups.sort_unstable();
        groups.dedup();
        if groups.is_empty() {
            return out;
        }
        let grouping = {
            let mut cache = self.groupings.borrow_mut();
            match cache.get(&groups) {
                Some(g) => g.clone(),
                None => {
                    let g = Rc::new(self.grouping(&groups));
                    cache.insert(groups.clone(), g.clone());
                    g
                }
            }
        };
        let mut except: HashMap<usize, Vec<&'a str>> = HashMap::new();
        for u in &apart {
            if let Some(p) = grouping.profile_of.get(u) {
                except.entry(*p).or_default().push(u);
            }
        }
        for (n, p) in grouping.profiles.iter().enumerate() {
            let in_groups: HashMap<&str, &str> = p
                .groups
                .iter()
                .map(|&i| (groups[i], self.index.group(groups[i]).map_or("", |g| g.name.as_str())))
                .collect();
            let caps = cap_by_role(p.role, by_rules_in(None, &in_groups, &rules));
            let except = except.remove(&n).unwrap_or_default();
            if caps.is_empty() || p.users.len() == except.len() {
                continue;
            }
            out.push(AccessClass { listed: vec![], profile: Some((grouping.clone(), n)), except, caps });
        }
        out
    }

    /// [`access`](Evaluator::access) the straightforward way, one evaluation per user: the
    /// reference the class-based evaluation is tested against, and the fallback for a site
    /// whose ids repeat.
    pub fn access_per_user(&self, kind: &str, id: &str) -> Access {
        let Some((owner, project_id)) = self.owner_and_project(kind, id) else { return Access::new() };
        let (rules, _) = self.rules_for(kind, id, project_id);
        let leaders = self.leaders(project_id);
        let project_owners = self.project_owners(project_id);
        let mut out = Access::new();
        for u in &self.site.users {
            if u.site_role == "Unlicensed" {
                continue;
            }
            let caps = self.one_user(u, owner, &project_owners, &leaders, &rules);
            if !caps.is_empty() {
                out.insert(u.id.clone(), caps);
            }
        }
        out
    }

    /// One licensed user's access to an item: everything for a site administrator, the owner,
    /// a project owner or leader (capped by the site role), else what the rules give.
    fn one_user(
        &self,
        u: &tabflow_site::User,
        owner: &str,
        project_owners: &BTreeSet<&str>,
        leaders: &BTreeSet<&str>,
        rules: &[Rule<'_>],
    ) -> BTreeMap<String, Grant> {
        let why = if is_admin(&u.site_role) {
            Some("site administrator")
        } else if u.id == owner {
            Some("owner")
        } else if project_owners.contains(u.id.as_str()) {
            Some("project owner")
        } else if leaders.contains(u.id.as_str()) {
            Some("project leader")
        } else {
            None
        };
        let caps = match why {
            Some(why) => everything(&self.all_caps, why),
            None => self.by_rules(&u.id, rules),
        };
        cap_by_role(&u.site_role, caps)
    }

    fn by_rules(&self, user: &str, rules: &[Rule<'_>]) -> BTreeMap<String, Grant> {
        let groups: HashMap<&str, &str> = self.groups_of.get(user).into_iter().flatten().copied().collect();
        by_rules_in(Some(user), &groups, rules)
    }

    /// Who gains or loses an allowed capability on some of the site's items when their rules
    /// change to `new_rules` (item id → its rules after; others keep theirs) and the projects
    /// in `locks` become `LockedToProject`: [`AccessChanges::item`] per item, then
    /// [`AccessChanges::users`]. The same answer as [`access`](Evaluator::access) on the site
    /// before and (with [`after`](Evaluator::after)) on the site after, compared with
    /// [`changed_users`], for each item — without copying the site or evaluating every user
    /// for every item (see [`AccessChanges`]).
    pub fn access_changes<'r>(
        &'r self,
        new_rules: &'r HashMap<&'r str, &'r [tabflow_plan::ops::Rule]>,
        locks: &'r BTreeSet<String>,
    ) -> AccessChanges<'r, 'a> {
        // The capability universe after: every capability of a rule or default rule that is
        // still there (counted, so a capability only the replaced rules named drops out).
        let mut count: HashMap<&str, isize> = HashMap::new();
        let rules = self.site.permissions.iter().map(|r| &r.capabilities);
        for caps in rules.chain(self.site.default_permissions.iter().map(|r| &r.capabilities)) {
            for c in caps.keys() {
                *count.entry(c.as_str()).or_default() += 1;
            }
        }
        let mut after: HashMap<&'r str, Vec<Rule<'r>>> = HashMap::new();
        for (id, rules) in new_rules {
            for r in self.rules_on.get(id).into_iter().flatten() {
                for c in r.capabilities.keys() {
                    *count.entry(c.as_str()).or_default() -= 1;
                }
            }
            for r in rules.iter() {
                for c in r.capabilities.keys() {
                    *count.entry(c.as_str()).or_default() += 1;
                }
            }
            let rules = rules
                .iter()
                .map(|r| Rule {
                    grantee_kind: r.grantee.kind.as_str(),
                    grantee_id: r.grantee.id.as_str(),
                    capabilities: &r.capabilities,
                })
                .collect();
            after.insert(id, rules);
        }
        // As `after` does: the universe after also holds every capability of before.
        let mut all_caps_after: BTreeSet<String> =
            count.into_iter().filter(|(c, n)| *n > 0 && *c != "ProjectLeader").map(|(c, _)| c.to_string()).collect();
        all_caps_after.extend(self.all_caps.iter().cloned());
        let mut changes = AccessChanges {
            ev: self,
            new_rules: after,
            locks,
            all_caps_after,
            everything_changes: HashMap::new(),
            admins: vec![],
            groupings: HashMap::new(),
            users: BTreeSet::new(),
        };
        for u in self.site.users.iter().filter(|u| is_admin(&u.site_role)) {
            if changes.everything_changes(&u.site_role) {
                changes.admins.push(u.id.as_str());
            }
        }
        changes
    }

    /// The users in any of the groups `ids`, licensed and not site administrators, by
    /// profile: their site role and which of the groups they are in.
    fn grouping(&self, ids: &[&str]) -> Grouping<'a> {
        let mut member_of: HashMap<&'a str, (&'a str, Vec<usize>)> = HashMap::new();
        let mut order: Vec<&'a str> = vec![];
        for (n, gid) in ids.iter().enumerate() {
            for m in self.index.group(gid).into_iter().flat_map(|g| g.members.iter()) {
                let Some(u) = self.index.user(m) else { continue };
                if u.site_role == "Unlicensed" || is_admin(&u.site_role) {
                    continue;
                }
                let e = member_of.entry(u.id.as_str()).or_insert_with(|| {
                    order.push(u.id.as_str());
                    (u.site_role.as_str(), vec![])
                });
                if e.1.last() != Some(&n) {
                    e.1.push(n);
                }
            }
        }
        let mut profiles: Vec<Profile<'a>> = vec![];
        let mut by_key: HashMap<(&'a str, Vec<usize>), usize> = HashMap::new();
        let mut profile_of: HashMap<&'a str, usize> = HashMap::new();
        for u in order {
            let (role, groups) = member_of.remove(u).unwrap_or_default();
            let at = *by_key.entry((role, groups.clone())).or_insert_with(|| {
                profiles.push(Profile { role, groups, users: vec![], pending: None });
                profiles.len() - 1
            });
            profiles[at].users.push(u);
            profile_of.insert(u, at);
        }
        Grouping { profiles, profile_of }
    }
}

fn is_admin(role: &str) -> bool {
    role.starts_with("SiteAdministrator") || role == "ServerAdministrator"
}

/// Every capability of `all_caps`, allowed, for this reason.
fn everything(all_caps: &BTreeSet<String>, why: &str) -> BTreeMap<String, Grant> {
    all_caps.iter().map(|c| (c.clone(), Grant { allowed: true, via: why.to_string() })).collect()
}

/// The capabilities allowed in an evaluation.
fn allowed(caps: &BTreeMap<String, Grant>) -> BTreeSet<&str> {
    caps.iter().filter(|(_, g)| g.allowed).map(|(c, _)| c.as_str()).collect()
}

/// The rules' result for a user (`None`: a user no user rule names) in `groups` (id → name):
/// a user rule beats group rules; within each, Deny beats Allow.
fn by_rules_in(user: Option<&str>, groups: &HashMap<&str, &str>, rules: &[Rule<'_>]) -> BTreeMap<String, Grant> {
    let mut user_rules: BTreeMap<&str, Mode> = BTreeMap::new();
    let mut group_rules: BTreeMap<&str, (Mode, &str)> = BTreeMap::new();
    for r in rules {
        if r.grantee_kind == "user" && Some(r.grantee_id) == user {
            for (c, m) in r.capabilities {
                let e = user_rules.entry(c.as_str()).or_insert(*m);
                if *m == Mode::Deny {
                    *e = Mode::Deny;
                }
            }
        } else if r.grantee_kind == "group"
            && let Some(name) = groups.get(r.grantee_id)
        {
            for (c, m) in r.capabilities {
                match group_rules.get(c.as_str()) {
                    Some((Mode::Deny, _)) => {}
                    _ if *m == Mode::Deny => {
                        group_rules.insert(c.as_str(), (Mode::Deny, name));
                    }
                    None => {
                        group_rules.insert(c.as_str(), (Mode::Allow, name));
                    }
                    Some(_) => {}
                }
            }
        }
    }
    let mut out = BTreeMap::new();
    let caps: BTreeSet<&str> = user_rules.keys().chain(group_rules.keys()).copied().collect();
    for c in caps {
        if c == "ProjectLeader" {
            continue;
        }
        let g = match (user_rules.get(c), group_rules.get(c)) {
            (Some(Mode::Allow), _) => Grant { allowed: true, via: "user rule".into() },
            (Some(Mode::Deny), _) => Grant { allowed: false, via: "denied by a user rule".into() },
            (None, Some((Mode::Allow, g))) => Grant { allowed: true, via: format!("group '{g}'") },
            (None, Some((Mode::Deny, g))) => Grant { allowed: false, via: format!("denied by group '{g}'") },
            (None, None) => continue,
        };
        out.insert(c.to_string(), g);
    }
    out
}

/// [`Evaluator::access_changes`]: users whose allowed capabilities on an item differ before
/// and after a change of rules and locks, collected over many items.
///
/// Instead of evaluating every user for every item, users are taken in classes whose result
/// is the same by construction: site administrators and an item's owners, project owners and
/// leaders get "everything" (their result depends only on their site role and the capability
/// universe, so it is compared once per site role); users a user rule of the item names,
/// before or after, are evaluated one by one; everyone else gets what the item's group rules
/// give, which depends only on their site role and on which of the rules' groups they are in:
/// one evaluation per such profile, the profiles of a set of groups built once for all items
/// whose rules name that set. Users in none of the rules' groups get nothing before and after.
pub struct AccessChanges<'r, 'a> {
    ev: &'r Evaluator<'a>,
    new_rules: HashMap<&'r str, Vec<Rule<'r>>>,
    locks: &'r BTreeSet<String>,
    all_caps_after: BTreeSet<String>,
    /// site role → whether "everything" allows other capabilities after than before
    everything_changes: HashMap<String, bool>,
    /// site administrators whose access changes on every item (the universe changed)
    admins: Vec<&'a str>,
    /// the rules' group ids (sorted) → the profiles of the users in those groups
    groupings: HashMap<Vec<&'r str>, Grouping<'a>>,
    /// users whose access changes on some item so far
    users: BTreeSet<&'a str>,
}

/// The users in some of a set of groups, by profile.
struct Grouping<'a> {
    profiles: Vec<Profile<'a>>,
    /// user id → its profile
    profile_of: HashMap<&'a str, usize>,
}

/// Users with one site role in the same of a grouping's groups.
struct Profile<'a> {
    role: &'a str,
    /// positions in the grouping's group list
    groups: Vec<usize>,
    users: Vec<&'a str>,
    /// users of this profile not yet among the changed users (`None`: all of them)
    pending: Option<Vec<&'a str>>,
}

impl<'r, 'a> AccessChanges<'r, 'a> {
    fn everything_changes(&mut self, role: &str) -> bool {
        if let Some(c) = self.everything_changes.get(role) {
            return *c;
        }
        let before = cap_by_role(role, everything(&self.ev.all_caps, ""));
        let after = cap_by_role(role, everything(&self.all_caps_after, ""));
        let differs = allowed(&before) != allowed(&after);
        self.everything_changes.insert(role.to_string(), differs);
        differs
    }

    /// Adds the users whose access to this workbook (datasource, with `kind` "datasource")
    /// changes; answers whether anyone's does.
    pub fn item(&mut self, kind: &str, id: &str) -> bool {
        let ev = self.ev;
        let Some((owner, project_id)) = ev.owner_and_project(kind, id) else { return false };
        let (before, _) = ev.rules_for(kind, id, project_id);
        let after: Vec<Rule<'r>> = match ev.locking_project_with(project_id, self.locks) {
            Some(lock) => ev.defaults.get(&(lock.id.as_str(), content_type(kind))).cloned().unwrap_or_default(),
            None => match self.new_rules.get(id) {
                Some(r) => r.clone(),
                None => ev.rules_on.get(id).cloned().unwrap_or_default(),
            },
        };
        // Site administrators: everything, whatever the rules.
        let mut changed = !self.admins.is_empty();
        self.users.extend(self.admins.iter().copied());
        // The owner, project owners and leaders get everything; users a user rule names are
        // evaluated one by one.
        let mut special: BTreeSet<&'a str> = ev.project_owners(project_id);
        special.insert(owner);
        special.extend(ev.leaders(project_id));
        let named = before.iter().chain(after.iter()).filter(|r| r.grantee_kind == "user").map(|r| r.grantee_id);
        let mut apart: HashSet<&'a str> = HashSet::new();
        for id in special.iter().copied().chain(named) {
            let Some(u) = ev.index.user(id) else { continue };
            if u.site_role == "Unlicensed" || is_admin(&u.site_role) || !apart.insert(u.id.as_str()) {
                continue;
            }
            let differs = if special.contains(u.id.as_str()) {
                self.everything_changes(&u.site_role)
            } else {
                let b = cap_by_role(&u.site_role, ev.by_rules(&u.id, &before));
                let a = cap_by_role(&u.site_role, ev.by_rules(&u.id, &after));
                allowed(&b) != allowed(&a)
            };
            if differs {
                changed = true;
                self.users.insert(u.id.as_str());
            }
        }
        // Everyone else in the rules' groups: one evaluation per profile.
        let mut groups: Vec<&'r str> =
            before.iter().chain(after.iter()).filter(|r| r.grantee_kind == "group").map(|r| r.grantee_id).collect();
        groups.sort_unstable();
        groups.dedup();
        if groups.is_empty() {
            return changed;
        }
        if !self.groupings.contains_key(&groups) {
            let g = ev.grouping(&groups);
            self.groupings.insert(groups.clone(), g);
        }
        let AccessChanges { groupings, users, .. } = self;
        let grouping = groupings.get_mut(groups.as_slice()).expect("inserted above");
        let mut apart_in: HashMap<usize, usize> = HashMap::new();
        for u in &apart {
            if let Some(p) = grouping.profile_of.get(u) {
                *apart_in.entry(*p).or_default() += 1;
            }
        }
        for (n, p) in grouping.profiles.iter_mut().enumerate() {
            let in_groups: HashMap<&str, &str> = p.groups.iter().map(|&i| (groups[i], "")).collect();
            let b = cap_by_role(p.role, by_rules_in(None, &in_groups, &before));
            let a = cap_by_role(p.role, by_rules_in(None, &in_groups, &after));
            if allowed(&b) == allowed(&a) {
                continue;
            }
            if p.users.len() > apart_in.get(&n).copied().unwrap_or(0) {
                changed = true;
            }
            let pool = p.pending.take().unwrap_or_else(|| p.users.clone());
            let (keep, add): (Vec<&'a str>, Vec<&'a str>) = pool.into_iter().partition(|u| apart.contains(u));
            users.extend(add);
            p.pending = Some(keep);
        }
        changed
    }

    /// The users whose access changes on any item given to [`item`](AccessChanges::item).
    pub fn users(self) -> BTreeSet<String> {
        self.users.into_iter().map(str::to_string).collect()
    }
}

/// The site role's ceiling.
fn cap_by_role(role: &str, caps: BTreeMap<String, Grant>) -> BTreeMap<String, Grant> {
    let viewer = role == "Viewer";
    let explorer = matches!(role, "Explorer" | "SiteAdministratorExplorer") && !role.starts_with("SiteAdministrator");
    caps.into_iter()
        .map(|(c, g)| {
            let capped = g.allowed
                && ((viewer && !VIEWER_CAPS.contains(&c.as_str()))
                    || (explorer && PUBLISHER_ONLY.contains(&c.as_str())));
            if capped { (c, Grant { allowed: false, via: format!("capped by site role {role}") }) } else { (c, g) }
        })
        .collect()
}

/// Users who hold `capability` on the item (allowed).
pub fn holders<'x>(access: &'x Access, capability: &str) -> BTreeSet<&'x str> {
    access.iter().filter(|(_, caps)| caps.get(capability).is_some_and(|g| g.allowed)).map(|(u, _)| u.as_str()).collect()
}

/// Users whose allowed capabilities differ between two evaluations.
pub fn changed_users(before: &Access, after: &Access) -> BTreeSet<String> {
    let allowed = |a: &Access, u: &str| -> BTreeSet<String> {
        a.get(u).map(|c| c.iter().filter(|(_, g)| g.allowed).map(|(k, _)| k.clone()).collect()).unwrap_or_default()
    };
    before.keys().chain(after.keys()).filter(|u| allowed(before, u) != allowed(after, u)).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use tabflow_site::{
        DefaultPermissionRule, GranteeRef, Group, PermissionRule, Project, ResourceRef, SiteInfo, User, Workbook,
    };

    fn user(id: &str, role: &str) -> User {
        User {
            id: id.into(),
            name: id.into(),
            full_name: id.into(),
            email: format!("{id}@x"),
            site_role: role.into(),
            last_login: None,
            auth_setting: None,
        }
    }

    fn project(id: &str, parent: Option<&str>, cp: &str) -> Project {
        Project {
            id: id.into(),
            name: id.to_uppercase(),
            parent_id: parent.map(str::to_string),
            owner_id: "admin".into(),
            content_permissions: cp.into(),
            description: String::new(),
            created_at: None,
            updated_at: None,
        }
    }

    fn caps(list: &[(&str, Mode)]) -> BTreeMap<String, Mode> {
        list.iter().map(|(c, m)| (c.to_string(), *m)).collect()
    }

    fn rule(resource: &str, kind: &str, grantee_kind: &str, grantee: &str, c: &[(&str, Mode)]) -> PermissionRule {
        PermissionRule {
            resource: ResourceRef { kind: kind.into(), id: resource.into() },
            grantee: GranteeRef { kind: grantee_kind.into(), id: grantee.into() },
            capabilities: caps(c),
        }
    }

    fn site() -> Site {
        let wb = |id: &str, project: &str| {
            let mut w: Workbook = serde_json::from_value(serde_json::json!({
                "id": id, "name": id, "project_id": project, "owner_id": "owner", "tags": [], "size": 1,
                "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
                "datasource_ids": [], "views": []
            }))
            .unwrap();
            w.project_id = project.into();
            w
        };
        Site {
            format: "tabflow-site/1".into(),
            now: Utc::now(),
            site: SiteInfo { id: "s".into(), name: "s".into(), content_url: "s".into(), not_read: vec![] },
            users: vec![
                user("admin", "SiteAdministratorCreator"),
                user("owner", "Creator"),
                user("ann", "Creator"),
                user("bob", "Viewer"),
                user("cat", "Explorer"),
                user("gone", "Unlicensed"),
                user("lead", "Creator"),
            ],
            groups: vec![
                Group {
                    id: "all".into(),
                    name: "All Users".into(),
                    members: ["admin", "owner", "ann", "bob", "cat", "gone", "lead"].map(String::from).into(),
                    minimum_site_role: None,
                },
                Group {
                    id: "fin".into(),
                    name: "Finance".into(),
                    members: vec!["ann".into(), "bob".into()],
                    minimum_site_role: None,
                },
            ],
            projects: vec![
                project("open", None, "ManagedByOwner"),
                project("locked", None, "LockedToProject"),
                project("child", Some("locked"), "ManagedByOwner"),
            ],
            datasources: vec![],
            workbooks: vec![wb("w1", "open"), wb("w2", "child")],
            permissions: vec![
                rule("w1", "workbook", "group", "all", &[("Read", Mode::Allow), ("Write", Mode::Allow)]),
                rule("w1", "workbook", "group", "fin", &[("Write", Mode::Deny), ("Delete", Mode::Allow)]),
                rule("w1", "workbook", "user", "ann", &[("Write", Mode::Allow)]),
                rule("w1", "workbook", "user", "gone", &[("Read", Mode::Allow)]),
                rule("open", "project", "user", "lead", &[("ProjectLeader", Mode::Allow)]),
                // Ignored: w2 sits in a locked project.
                rule("w2", "workbook", "group", "all", &[("Read", Mode::Allow)]),
            ],
            subscriptions: vec![],
            default_permissions: vec![DefaultPermissionRule {
                project_id: "locked".into(),
                content_type: "workbooks".into(),
                grantee: GranteeRef { kind: "group".into(), id: "fin".into() },
                capabilities: caps(&[("Read", Mode::Allow)]),
            }],
            webhooks: vec![],
            favorites: vec![],
            data_alerts: vec![],
            schedules: vec![],
            extract_refreshes: vec![],
            refresh_jobs: vec![],
            flows: vec![],
        }
    }

    #[test]
    fn tableau_order_user_over_group_deny_over_allow_roles_owner_leader() {
        let s = site();
        let e = Evaluator::new(&s);
        let a = e.access("workbook", "w1");
        // ann: user Allow beats the Finance group's Deny.
        assert_eq!(a["ann"]["Write"], Grant { allowed: true, via: "user rule".into() });
        assert!(a["ann"]["Delete"].allowed);
        // bob: Finance denies Write (Deny beats All Users' Allow); Viewer cannot Delete.
        assert_eq!(a["bob"]["Write"], Grant { allowed: false, via: "denied by group 'Finance'".into() });
        assert_eq!(a["bob"]["Delete"].via, "capped by site role Viewer");
        assert!(a["bob"]["Read"].allowed);
        // cat: Explorer, Write from All Users is capped.
        assert!(!a["cat"]["Write"].allowed && a["cat"]["Read"].allowed);
        // The owner, the admin and the project leader can do everything; Unlicensed nothing.
        for (u, why) in [("owner", "owner"), ("admin", "site administrator"), ("lead", "project leader")] {
            assert!(a[u].values().all(|g| g.allowed && g.via == why), "{u}: {:?}", a[u]);
        }
        assert!(!a.contains_key("gone"));
        // The project's owner can do everything (the site role still caps it).
        let mut t = s.clone();
        t.projects[0].owner_id = "ann".into();
        let b = Evaluator::new(&t).access("workbook", "w1");
        assert!(b["ann"].values().all(|g| g.allowed && g.via == "project owner"), "{:?}", b["ann"]);
        t.projects[0].owner_id = "cat".into();
        let c = Evaluator::new(&t).access("workbook", "w1");
        assert_eq!(c["cat"]["Write"].via, "capped by site role Explorer");
        assert_eq!(holders(&a, "Write"), ["admin", "ann", "lead", "owner"].into_iter().collect());
    }

    /// A seeded generator of numbers (xorshift): the same site for the same seed.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n.max(1) as u64) as usize
        }

        fn chance(&mut self, percent: usize) -> bool {
            self.below(100) < percent
        }
    }

    /// `site` stirred with `seed`: site roles (Viewer and Explorer caps, unlicensed users and
    /// administrators of both kinds), group memberships, locked, nested-locked and unlocked
    /// projects, project and item owners, project leaders as users and through groups, and
    /// allow and deny rules for users and groups on items and as project defaults.
    fn stir(mut site: Site, seed: u64) -> Site {
        const ROLES: &[&str] = &[
            "Creator",
            "Explorer",
            "ExplorerCanPublish",
            "Viewer",
            "Unlicensed",
            "SiteAdministratorCreator",
            "SiteAdministratorExplorer",
        ];
        const LOCKS: &[&str] = &["ManagedByOwner", "LockedToProject", "LockedToProjectWithoutNested"];
        const CAPS: &[&str] = &["Read", "Filter", "ExportData", "Write", "Overwrite", "Delete", "ChangePermissions"];
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let users: Vec<String> = site.users.iter().map(|u| u.id.clone()).collect();
        let groups: Vec<String> = site.groups.iter().map(|g| g.id.clone()).collect();
        let projects: Vec<String> = site.projects.iter().map(|p| p.id.clone()).collect();
        for u in site.users.iter_mut() {
            if rng.chance(30) {
                u.site_role = ROLES[rng.below(ROLES.len())].into();
            }
        }
        for g in site.groups.iter_mut() {
            for _ in 0..rng.below(4) {
                g.members.push(users[rng.below(users.len())].clone());
            }
        }
        for p in site.projects.iter_mut() {
            if rng.chance(40) {
                p.content_permissions = LOCKS[rng.below(LOCKS.len())].into();
            }
            if rng.chance(20) {
                p.owner_id = users[rng.below(users.len())].clone();
            }
        }
        let random_caps = |rng: &mut Rng| -> Vec<(&'static str, Mode)> {
            (0..1 + rng.below(3))
                .map(|_| (CAPS[rng.below(CAPS.len())], if rng.chance(25) { Mode::Deny } else { Mode::Allow }))
                .collect()
        };
        let mut items: Vec<(&str, String)> = vec![];
        for w in site.workbooks.iter_mut() {
            if rng.chance(15) {
                w.owner_id = users[rng.below(users.len())].clone();
            }
            items.push(("workbook", w.id.clone()));
        }
        for d in site.datasources.iter_mut() {
            if rng.chance(15) {
                d.owner_id = users[rng.below(users.len())].clone();
            }
            items.push(("datasource", d.id.clone()));
        }
        for (kind, id) in &items {
            for _ in 0..rng.below(3) {
                let caps = random_caps(&mut rng);
                let r = if rng.chance(40) {
                    rule(id, kind, "user", &users[rng.below(users.len())], &caps)
                } else {
                    rule(id, kind, "group", &groups[rng.below(groups.len())], &caps)
                };
                site.permissions.push(r);
            }
        }
        for p in &projects {
            if rng.chance(15) {
                let (kind, who) = if rng.chance(50) {
                    ("user", users[rng.below(users.len())].clone())
                } else {
                    ("group", groups[rng.below(groups.len())].clone())
                };
                site.permissions.push(rule(p, "project", kind, &who, &[("ProjectLeader", Mode::Allow)]));
            }
            for content_type in ["workbooks", "datasources"] {
                if rng.chance(30) {
                    let caps = random_caps(&mut rng);
                    let (kind, who) = if rng.chance(30) {
                        ("user", users[rng.below(users.len())].clone())
                    } else {
                        ("group", groups[rng.below(groups.len())].clone())
                    };
                    site.default_permissions.push(DefaultPermissionRule {
                        project_id: p.clone(),
                        content_type: content_type.into(),
                        grantee: GranteeRef { kind: kind.into(), id: who },
                        capabilities: caps.iter().map(|(c, m)| (c.to_string(), *m)).collect(),
                    });
                }
            }
        }
        site
    }

    /// Checks every workbook and datasource of `s`: the class-based access equals the
    /// per-user one, and the classes hold each user with access once. Answers how many
    /// (item, user) pairs had access.
    fn check_classes_against_per_user(s: &Site) -> usize {
        let e = Evaluator::new(s);
        let items = s
            .workbooks
            .iter()
            .map(|w| ("workbook", w.id.as_str()))
            .chain(s.datasources.iter().map(|d| ("datasource", d.id.as_str())));
        let mut pairs = 0;
        for (kind, id) in items {
            let want = e.access_per_user(kind, id);
            assert_eq!(e.access(kind, id), want, "{kind} {id}");
            let classes = e.access_classes(kind, id);
            let counted: usize = classes.iter().map(AccessClass::len).sum();
            let listed: Vec<&str> = classes.iter().flat_map(|c| c.users()).collect();
            assert_eq!(counted, want.len(), "{kind} {id}: class sizes");
            assert_eq!(listed.len(), want.len(), "{kind} {id}: a user in two classes");
            assert!(classes.iter().all(|c| !c.is_empty() && !c.caps.is_empty()), "{kind} {id}: an empty class");
            pairs += want.len();
        }
        pairs
    }

    /// The class-based evaluation (issue #15) answers exactly what evaluating every user
    /// does, on the hand-made site, the demo and generated sites, each stirred with several
    /// seeds (roles, locks, owners, leaders through groups, user rules, denies).
    #[test]
    fn access_by_classes_equals_access_evaluated_user_by_user_on_stirred_sites() {
        let bases = [
            site(),
            tabflow_site::generate::demo(),
            tabflow_site::generate::generate(&tabflow_site::generate::Options { scale: 400, seed: 3 }),
        ];
        for base in &bases {
            assert!(check_classes_against_per_user(base) > 0);
            for seed in 1..=6 {
                let stirred = stir(base.clone(), seed);
                assert!(check_classes_against_per_user(&stirred) > 0, "seed {seed}");
            }
        }
        // Repeated ids (not from Tableau): every user is evaluated alone, same answer.
        let mut doubled = stir(site(), 9);
        doubled.users.push(user("ann", "Viewer"));
        doubled.groups.push(doubled.groups[1].clone());
        check_classes_against_per_user(&doubled);
    }

    #[test]
    fn a_locked_project_and_its_nested_projects_use_the_default_rules() {
        let s = site();
        let e = Evaluator::new(&s);
        assert_eq!(e.locking_project("child").map(|p| p.id.as_str()), Some("locked"));
        let a = e.access("workbook", "w2");
        // All Users' explicit Read on w2 is ignored; Finance's default Read applies.
        assert!(a["ann"]["Read"].allowed && a["bob"]["Read"].allowed);
        assert!(!a.contains_key("cat"), "{:?}", a.get("cat"));
        let mut unlocked = s.clone();
        unlocked.projects[1].content_permissions = "LockedToProjectWithoutNested".into();
        let e = Evaluator::new(&unlocked);
        assert!(e.locking_project("child").is_none());
        assert!(e.access("workbook", "w2")["cat"]["Read"].allowed);
    }

    #[test]
    fn changed_users_finds_who_gains_or_loses() {
        let s = site();
        let before = Evaluator::new(&s).access("workbook", "w1");
        let mut t = s.clone();
        t.permissions.retain(|r| !(r.resource.id == "w1" && r.grantee.id == "all"));
        let after = Evaluator::new(&t).access("workbook", "w1");
        let changed = changed_users(&before, &after);
        assert!(changed.contains("cat") && changed.contains("bob") && !changed.contains("owner"), "{changed:?}");
    }

    /// `access_changes` against the simple way: copy the site, rewrite the rules and locks,
    /// evaluate every user on every item before and after, compare.
    fn check_access_changes(
        s: &Site,
        new_rules: &BTreeMap<String, Vec<tabflow_plan::ops::Rule>>,
        locks: &BTreeSet<String>,
    ) -> usize {
        let mut after_site = s.clone();
        let kind_of = |id: &str| if s.datasources.iter().any(|d| d.id == id) { "datasource" } else { "workbook" };
        for (id, rules) in new_rules {
            after_site.permissions.retain(|r| &r.resource.id != id);
            for r in rules {
                after_site.permissions.push(PermissionRule {
                    resource: ResourceRef { kind: kind_of(id).into(), id: id.clone() },
                    grantee: GranteeRef { kind: r.grantee.kind.clone(), id: r.grantee.id.clone() },
                    capabilities: r.capabilities.clone(),
                });
            }
        }
        for p in after_site.projects.iter_mut().filter(|p| locks.contains(&p.id)) {
            p.content_permissions = "LockedToProject".into();
        }
        let before = Evaluator::new(s);
        let after = before.after(&after_site);
        let items: Vec<(&str, &str)> = s
            .workbooks
            .iter()
            .map(|w| ("workbook", w.id.as_str()))
            .chain(s.datasources.iter().map(|d| ("datasource", d.id.as_str())))
            .collect();
        let slices: HashMap<&str, &[tabflow_plan::ops::Rule]> =
            new_rules.iter().map(|(k, v)| (k.as_str(), v.as_slice())).collect();
        let mut fast = before.access_changes(&slices, locks);
        let mut want: BTreeSet<String> = BTreeSet::new();
        let mut changed_items = 0;
        for (kind, id) in items {
            let changed = changed_users(&before.access(kind, id), &after.access(kind, id));
            assert_eq!(fast.item(kind, id), !changed.is_empty(), "{kind} {id}: {changed:?}");
            changed_items += usize::from(!changed.is_empty());
            want.extend(changed);
        }
        assert_eq!(fast.users(), want);
        changed_items
    }

    fn plan_rules(s: &Site, id: &str) -> Vec<tabflow_plan::ops::Rule> {
        s.permissions
            .iter()
            .filter(|r| r.resource.id == id)
            .map(|r| tabflow_plan::ops::Rule {
                grantee: tabflow_plan::ops::GranteeRef {
                    kind: r.grantee.kind.clone(),
                    id: r.grantee.id.clone(),
                    name: String::new(),
                },
                capabilities: r.capabilities.clone(),
            })
            .collect()
    }

    #[test]
    fn access_changes_agree_with_evaluating_both_sites_in_full() {
        let small = site();
        let demo = tabflow_site::generate::demo();
        let generated = tabflow_site::generate::generate(&tabflow_site::generate::Options { scale: 600, seed: 7 });
        for s in [&small, &demo, &generated] {
            let all_users = s.groups.iter().find(|g| g.name == "All Users").map(|g| g.id.clone()).unwrap_or_default();
            let content: Vec<(&str, &str, &[String])> = s
                .workbooks
                .iter()
                .map(|w| (w.id.as_str(), w.project_id.as_str(), w.tags.as_slice()))
                .chain(s.datasources.iter().map(|d| (d.id.as_str(), d.project_id.as_str(), d.tags.as_slice())))
                .collect();
            // Revoke All Users on tagged content; drop Write from every other item's rules.
            let mut revoke = BTreeMap::new();
            for (n, (id, _, tags)) in content.iter().enumerate() {
                let mut rules = plan_rules(s, id);
                if !tags.is_empty() {
                    rules.retain(|r| r.grantee.id != all_users);
                } else if n % 2 == 0 {
                    for r in rules.iter_mut() {
                        r.capabilities.remove("Write");
                    }
                } else {
                    continue;
                }
                revoke.insert(id.to_string(), rules);
            }
            let changed = check_access_changes(s, &revoke, &BTreeSet::new());
            assert!(changed > 0, "the revocations change someone's access");
            // Reset every third item to its project's workbook defaults.
            let mut reset = BTreeMap::new();
            for (id, project, _) in content.iter().step_by(3) {
                let rules = s
                    .default_permissions
                    .iter()
                    .filter(|d| d.project_id == *project && d.content_type == "workbooks")
                    .map(|d| tabflow_plan::ops::Rule {
                        grantee: tabflow_plan::ops::GranteeRef {
                            kind: d.grantee.kind.clone(),
                            id: d.grantee.id.clone(),
                            name: String::new(),
                        },
                        capabilities: d.capabilities.clone(),
                    })
                    .collect();
                reset.insert(id.to_string(), rules);
            }
            check_access_changes(s, &reset, &BTreeSet::new());
            // Only Read left on every item: capabilities only item rules named leave the site
            // (the universe after still holds them, as `after` says).
            let mut read_only = BTreeMap::new();
            for (id, _, _) in &content {
                let mut rules = plan_rules(s, id);
                for r in rules.iter_mut() {
                    r.capabilities.retain(|c, _| c == "Read");
                }
                read_only.insert(id.to_string(), rules);
            }
            check_access_changes(s, &read_only, &BTreeSet::new());
            // Lock every other project (rules unchanged).
            let locks: BTreeSet<String> = s.projects.iter().step_by(2).map(|p| p.id.clone()).collect();
            check_access_changes(s, &BTreeMap::new(), &locks);
            // A capability nothing else names: the universe grows, administrators and owners
            // gain it everywhere; taking it away again on another item is no change there.
            let (first, second) = (content[0].0, content[1].0);
            let mut grow = BTreeMap::new();
            let mut rules = plan_rules(s, first);
            rules.push(tabflow_plan::ops::Rule {
                grantee: tabflow_plan::ops::GranteeRef {
                    kind: "user".into(),
                    id: s.users[1].id.clone(),
                    name: String::new(),
                },
                capabilities: [("TestOnly".to_string(), Mode::Allow)].into(),
            });
            grow.insert(first.to_string(), rules);
            grow.insert(second.to_string(), vec![]);
            let changed = check_access_changes(s, &grow, &locks);
            assert_eq!(changed, content.len(), "every item's administrators gain the new capability");
        }
    }
}
