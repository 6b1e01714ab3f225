//! Deterministic site generator: the built-in demo site (`scale = 0`) and realistic sites of
//! any size (`scale = N` workbooks). Same options, same bytes: a private PRNG, no clock, no
//! hash-map iteration order in the output (hash sets only answer "is this name taken?").
//! `now` is the constant [`DEMO_NOW`]; loading a site shifts it.
//!
//! The demo site tells the stories of the product specification: a Finance project (with
//! nested sub-projects) where 23 workbooks have not been viewed in 90+ days, three groups of
//! duplicate published datasources (8 datasources) and deprecated datasources with dependent
//! workbooks, John Smith of the Marketing team who owns about 20 workbooks (and a second John,
//! John Doe of Sales), sensitive content with overly broad permissions, and subscriptions on
//! all of it.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};

use crate::model::*;

mod data;
use data::*;

/// The fixed `now` of generated sites.
pub const DEMO_NOW: &str = "2026-01-15T12:00:00Z";

/// The largest `scale` a front end accepts: a million workbooks is a site of several
/// gigabytes in memory (100,000 take about 270 MiB, BENCHMARKS.md), well past any real site.
pub const MAX_SCALE: usize = 1_000_000;

/// Generator options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Number of workbooks; 0 = the demo site (847 workbooks).
    pub scale: usize,
    pub seed: u64,
}

/// The built-in demo site.
pub fn demo() -> Site {
    generate(&Options { scale: 0, seed: 1 })
}

/// splitmix64: small, fast, and the same everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next() % n as u64) as usize }
    }
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % ((hi - lo).max(1) as u64)) as i64
    }
    fn chance(&mut self, p: f64) -> bool {
        ((self.next() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }
    /// A random (version 4) UUID in Tableau's LUID spelling: 8-4-4-4-12 lowercase hex.
    /// Written by hand: `format!` was a measurable share of a 100k-workbook site.
    fn luid(&mut self) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let a = (self.next() & !0xF000) | 0x4000;
        let b = (self.next() & !(0xC000 << 48)) | (0x8000 << 48);
        let mut out = String::with_capacity(36);
        for (half, word) in [a, b].into_iter().enumerate() {
            for n in 0..16 {
                if matches!(half * 16 + n, 8 | 12 | 16 | 20) {
                    out.push('-');
                }
                out.push(HEX[((word >> (60 - 4 * n)) & 0xF) as usize] as char);
            }
        }
        out
    }
}

fn slug(name: &str) -> String {
    name.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-').collect()
}

/// FxHash of the parts (with a separator after each): fast and the same everywhere. Names are
/// remembered by hash only, so a 100k-workbook site does not keep (and free) 200k more strings.
/// A collision can only make a name take a suffix it did not need; two equal names always
/// collide, so uniqueness holds.
fn fx(parts: &[&str]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut h = 0u64;
    for part in parts {
        let mut chunks = part.as_bytes().chunks_exact(8);
        for c in &mut chunks {
            h = (h.rotate_left(5) ^ u64::from_le_bytes(c.try_into().expect("8 bytes"))).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            h = (h.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
        h = (h.rotate_left(5) ^ 0xff).wrapping_mul(K);
    }
    h
}

/// Hashes of the names taken, and the next suffix to try per name.
struct Taken {
    taken: HashSet<u64>,
    next: HashMap<u64, usize>,
}

impl Taken {
    fn with_capacity(n: usize) -> Taken {
        Taken { taken: HashSet::with_capacity(n), next: HashMap::new() }
    }
}

struct Gen {
    rng: Rng,
    now: DateTime<Utc>,
    demo: bool,
    /// Views per workbook: 1 to this many.
    max_views: usize,
    site: Site,
    /// user name -> index in `site.users`
    users: HashMap<String, usize>,
    /// John Smith's id: he owns a known number of items, so random picks skip him.
    jsmith: String,
    /// team -> member user ids
    team_members: BTreeMap<&'static str, Vec<String>>,
    /// team -> (top project id, all project ids of the team, the top one first)
    team_projects: BTreeMap<&'static str, (String, Vec<String>)>,
    group_ids: BTreeMap<String, String>,
    /// Content URLs taken (site-wide, workbooks and datasources).
    content_urls: Taken,
    /// (project id, name) of every workbook and datasource: names are unique within a project.
    names_in_project: Taken,
    /// team -> indexes of the team's datasources that workbooks may use
    team_ds: BTreeMap<&'static str, Vec<usize>>,
}

impl Gen {
    fn days_ago(&mut self, lo: i64, hi: i64) -> DateTime<Utc> {
        self.now - Duration::seconds(self.rng.range(lo * 86_400, hi * 86_400))
    }

    fn user_id(&self, name: &str) -> String {
        self.site.users[self.users[name]].id.clone()
    }

    fn add_user(&mut self, name: String, full: String, role: &str) -> String {
        let id = self.rng.luid();
        let last_login = if role == "Unlicensed" || self.rng.chance(0.05) {
            if self.rng.chance(0.5) { None } else { Some(self.days_ago(200, 700)) }
        } else {
            Some(self.days_ago(0, 45))
        };
        let email = format!("{name}@example.com");
        self.users.insert(name.clone(), self.site.users.len());
        self.site.users.push(User {
            id: id.clone(),
            name,
            full_name: full,
            email,
            site_role: role.into(),
            last_login,
            auth_setting: None,
        });
        id
    }

    fn add_project(
        &mut self,
        name: &str,
        parent: Option<&str>,
        owner: &str,
        perms: &str,
        description: String,
    ) -> String {
        let id = self.rng.luid();
        let created = self.days_ago(700, 1500);
        let updated = self.days_ago(30, 700).max(created);
        self.site.projects.push(Project {
            id: id.clone(),
            name: name.into(),
            parent_id: parent.map(str::to_string),
            owner_id: owner.into(),
            content_permissions: perms.into(),
            description,
            created_at: Some(created),
            updated_at: Some(updated),
        });
        id
    }

    /// The name's slug, with `_2`, `_3`, ... when taken (content URLs are unique site-wide).
    fn unique_url(&mut self, name: &str) -> String {
        let base = slug(name);
        let base_hash = fx(&[&base]);
        if self.content_urls.taken.insert(base_hash) {
            return base;
        }
        let n = self.content_urls.next.entry(base_hash).or_insert(2);
        loop {
            let url = format!("{base}_{n}");
            *n += 1;
            if self.content_urls.taken.insert(fx(&[&url])) {
                return url;
            }
        }
    }

    /// The name, with ` (2)`, ` (3)`, ... when the project already has it.
    fn unique_name(&mut self, project: &str, name: String) -> String {
        let key = fx(&[project, &name]);
        if self.names_in_project.taken.insert(key) {
            return name;
        }
        let n = self.names_in_project.next.entry(key).or_insert(2);
        loop {
            let candidate = format!("{name} ({n})");
            *n += 1;
            if self.names_in_project.taken.insert(fx(&[project, &candidate])) {
                return candidate;
            }
        }
    }

    /// A member of the team other than John Smith.
    fn member(&mut self, team: &str) -> String {
        let n = self.team_members[team].len();
        let mut k = self.rng.below(n);
        let members = &self.team_members[team];
        if members[k] == self.jsmith && n > 1 {
            k = (k + 1) % n;
        }
        members[k].clone()
    }

    /// Any user other than John Smith.
    fn anyone(&mut self) -> String {
        let n = self.site.users.len();
        let mut k = self.rng.below(n);
        if self.site.users[k].id == self.jsmith {
            k = (k + 1) % n;
        }
        self.site.users[k].id.clone()
    }

    fn rule(&mut self, kind: &str, id: &str, gkind: &str, gid: &str, caps: &[(&str, Mode)]) {
        self.site.permissions.push(PermissionRule {
            resource: ResourceRef { kind: kind.into(), id: id.into() },
            grantee: GranteeRef { kind: gkind.into(), id: gid.into() },
            capabilities: caps.iter().map(|(n, m)| (n.to_string(), *m)).collect(),
        });
    }
}

/// Generates a site.
pub fn generate(opts: &Options) -> Site {
    let now: DateTime<Utc> = DateTime::parse_from_rfc3339(DEMO_NOW).expect("constant date").with_timezone(&Utc);
    let demo = opts.scale == 0;
    let n_workbooks = if demo { 847 } else { opts.scale };
    let n_users = if demo { 120 } else { (n_workbooks / 5).max(20) };
    let mut g = Gen {
        rng: Rng(opts.seed ^ 0x7AB_F10E),
        now,
        demo,
        max_views: if demo { 6 } else { 4 },
        site: Site {
            format: FORMAT.into(),
            now,
            site: SiteInfo { id: String::new(), name: "Demo".into(), content_url: "demo".into(), not_read: vec![] },
            users: Vec::with_capacity(n_users),
            groups: vec![],
            projects: vec![],
            datasources: Vec::with_capacity(n_workbooks / 15 + 64),
            workbooks: Vec::with_capacity(n_workbooks),
            flows: vec![],
            permissions: Vec::with_capacity(n_workbooks * 2 + 64),
            subscriptions: Vec::with_capacity(n_workbooks / 20 + 40),
            default_permissions: vec![],
            webhooks: vec![],
            favorites: vec![],
            data_alerts: vec![],
            schedules: vec![],
            extract_refreshes: vec![],
            refresh_jobs: vec![],
        },
        users: HashMap::with_capacity(n_users),
        jsmith: String::new(),
        team_members: BTreeMap::new(),
        team_projects: BTreeMap::new(),
        group_ids: BTreeMap::new(),
        content_urls: Taken::with_capacity(n_workbooks + n_workbooks / 15 + 64),
        names_in_project: Taken::with_capacity(n_workbooks + n_workbooks / 15 + 64),
        team_ds: BTreeMap::new(),
    };
    g.site.site.id = g.rng.luid();
    let contractors = users(&mut g, n_users);
    groups(&mut g, contractors);
    projects(&mut g, n_workbooks);
    datasources(&mut g, n_workbooks);
    workbooks(&mut g, n_workbooks);
    permissions(&mut g);
    extras(&mut g);
    flows(&mut g, opts.seed);
    suspended_subscriptions(&mut g, opts.seed);
    extract_refreshes(&mut g, opts.seed);
    g.site
}

/// One schedule of [`SCHEDULE_TABLE`]: name, type, frequency, start, end, intervals, priority,
/// state.
type ScheduleRow = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
    u32,
    &'static str,
);

/// The Server schedules of generated sites. Peak hours are 07:00-19:00; the nightly and
/// weekend ones are off-peak; the Saturday load was suspended by an administrator.
const SCHEDULE_TABLE: &[ScheduleRow] = &[
    ("Hourly (business hours)", "Extract", "Hourly", "08:00:00", "18:00:00", &[("hours", "1")], 50, "Active"),
    ("Morning refresh (7am)", "Extract", "Daily", "07:00:00", "", &[("hours", "24")], 50, "Active"),
    ("Business hours (10am)", "Extract", "Daily", "10:00:00", "", &[("hours", "24")], 40, "Active"),
    ("Nightly (2am)", "Extract", "Daily", "02:00:00", "", &[("hours", "24")], 50, "Active"),
    ("Weekend (Sunday 1am)", "Extract", "Weekly", "01:00:00", "", &[("weekDay", "Sunday")], 70, "Active"),
    ("Monthly close (1st, 4am)", "Extract", "Monthly", "04:00:00", "", &[("monthDay", "1")], 30, "Active"),
    ("Legacy Saturday load", "Extract", "Weekly", "06:00:00", "", &[("weekDay", "Saturday")], 80, "Suspended"),
    ("Nightly flows (3am)", "Flow", "Daily", "03:00:00", "", &[("hours", "24")], 50, "Active"),
];

/// Why a refresh failed, as Tableau's job notes say it.
const REFRESH_FAILURES: &[&str] = &[
    "Unable to connect to the server. Check that the server is running and that you have access privileges to the requested database.",
    "Invalid username or password: the embedded credentials of the data source were rejected.",
    "The query timed out: the extract refresh exceeded the time limit for extract refresh tasks (7200 seconds).",
    "The table or view does not exist.",
];

/// Extract refresh schedules, tasks and their recent jobs: every datasource with an extract
/// and some workbooks (more of those nobody viewed in 90 days) refresh on a schedule; a few
/// fail (four on the demo site, one in 25 elsewhere), a few sit on the suspended schedule, one
/// in ten has a Cloud-style schedule of its own. They draw from a generator of their own, as
/// flows do, so every other figure a seed produces stays as it was before they were modelled.
fn extract_refreshes(g: &mut Gen, seed: u64) {
    let mut rng = Rng(seed ^ 0xE7AC_75EE_D202_6003);
    let created = g.now - Duration::days(900);
    for &(name, kind, frequency, start, end, intervals, priority, state) in SCHEDULE_TABLE {
        let id = rng.luid();
        let updated = g.now - Duration::days(rng.range(10, 300));
        g.site.schedules.push(Schedule {
            id,
            name: name.into(),
            kind: kind.into(),
            state: state.into(),
            priority,
            execution_order: if frequency == "Hourly" { "Serial" } else { "Parallel" }.into(),
            recurrence: Recurrence {
                frequency: frequency.into(),
                start_time: start.into(),
                end_time: end.into(),
                intervals: intervals.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            },
            created_at: created,
            updated_at: updated,
        });
    }
    // Schedule indexes by role: the suspended one, and the active extract ones.
    let suspended = SCHEDULE_TABLE.iter().position(|r| r.7 == "Suspended").expect("a suspended schedule");
    let active: Vec<usize> =
        (0..SCHEDULE_TABLE.len()).filter(|&i| SCHEDULE_TABLE[i].1 == "Extract" && i != suspended).collect();
    let cutoff = g.now - Duration::days(90);
    let mut targets: Vec<(ResourceRef, u64)> = Vec::new();
    for d in &g.site.datasources {
        if d.has_extracts {
            targets.push((ResourceRef { kind: "datasource".into(), id: d.id.clone() }, d.size));
        }
    }
    for w in &g.site.workbooks {
        let unused = w.last_viewed_at().is_none_or(|t| t < cutoff);
        if rng.chance(if unused { 0.12 } else { 0.03 }) {
            targets.push((ResourceRef { kind: "workbook".into(), id: w.id.clone() }, w.size));
        }
    }
    let n = targets.len();
    let failing = if g.demo { 4 } else { n / 25 };
    let on_suspended = if g.demo { 3 } else { n / 30 };
    for (k, (target, size)) in targets.into_iter().enumerate() {
        let id = rng.luid();
        // Every fifth task of the first few hundred goes to the failing / suspended sets, spread.
        let sched = if k % 7 == 3 && k / 7 < on_suspended {
            Some(suspended)
        } else if rng.chance(0.1) {
            None
        } else {
            Some(active[rng.below(active.len())])
        };
        let fails = if k % 5 == 1 && k / 5 < failing { 1 + rng.below(5) as u32 } else { 0 };
        let own = match sched {
            Some(_) => None,
            None => Some(Recurrence {
                frequency: "Daily".into(),
                start_time: format!("{:02}:{:02}:00", rng.below(24), 15 * rng.below(4)),
                end_time: String::new(),
                intervals: vec![("hours".into(), "24".into())],
            }),
        };
        let period = match sched.map(|i| SCHEDULE_TABLE[i].2).unwrap_or("Daily") {
            "Hourly" => Duration::hours(1),
            "Weekly" => Duration::days(7),
            "Monthly" => Duration::days(30),
            _ => Duration::days(1),
        };
        // The suspended schedule stopped running 40 days ago.
        let mut at = if sched == Some(suspended) {
            g.now - Duration::days(40)
        } else {
            g.now - Duration::minutes(rng.range(5, 60))
        };
        let duration = 30 + (size / 200_000) as i64;
        let mut jobs = Vec::with_capacity(3);
        for j in 0..3u32 {
            let failed = j < fails.min(3);
            let secs = if failed { rng.range(5, 120) } else { duration + rng.range(0, duration / 5 + 1) };
            let started = at - Duration::seconds(secs);
            jobs.push(RefreshJob {
                id: rng.luid(),
                task_id: id.clone(),
                target: target.clone(),
                created_at: started - Duration::seconds(rng.range(1, 90)),
                started_at: started,
                completed_at: at,
                finish_code: u8::from(failed),
                notes: if failed {
                    REFRESH_FAILURES[rng.below(REFRESH_FAILURES.len())].to_string()
                } else {
                    String::new()
                },
            });
            at -= period;
        }
        let last_run = jobs.first().map(|j| j.completed_at);
        g.site.refresh_jobs.extend(jobs.into_iter().rev());
        g.site.extract_refreshes.push(ExtractRefresh {
            id,
            schedule_id: sched.map(|i| g.site.schedules[i].id.clone()).unwrap_or_default(),
            own_schedule: own,
            target,
            priority: [50, 50, 50, 30, 70][rng.below(5)],
            consecutive_failures: fails,
            kind: if rng.chance(0.2) { "IncrementalRefresh" } else { "FullRefresh" }.into(),
            last_run_at: last_run,
        });
    }
    if g.demo {
        archive_schedule(g, &mut rng, cutoff);
    }
    g.site.refresh_jobs.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
}

/// The demo's schedule nobody needs any more: an active weekly Extract schedule whose every
/// refresh (two, off-peak and light) is of a workbook nobody viewed in 90 days — the one
/// `suspend-schedules` suspends. Drawn after every other refresh draw of the stream and
/// appended, so every schedule, task and job made before keeps its id and figures.
fn archive_schedule(g: &mut Gen, rng: &mut Rng, cutoff: DateTime<Utc>) {
    let (name, start, day) = ("Archive reports (Saturday 5am)", "05:00:00", "Saturday");
    let schedule = Schedule {
        id: rng.luid(),
        name: name.into(),
        kind: "Extract".into(),
        state: "Active".into(),
        priority: 60,
        execution_order: "Parallel".into(),
        recurrence: Recurrence {
            frequency: "Weekly".into(),
            start_time: start.into(),
            end_time: String::new(),
            intervals: vec![("weekDay".into(), day.into())],
        },
        created_at: g.now - Duration::days(700),
        updated_at: g.now - Duration::days(rng.range(100, 300)),
    };
    let refreshed: HashSet<&str> = g.site.extract_refreshes.iter().map(|t| t.target.id.as_str()).collect();
    let candidates: Vec<(String, u64)> = g
        .site
        .workbooks
        .iter()
        .filter(|w| !refreshed.contains(w.id.as_str()) && w.created_at < cutoff)
        .filter(|w| w.last_viewed_at().is_none_or(|t| t < cutoff))
        .map(|w| (w.id.clone(), w.size))
        .collect();
    // One from each half of the list, so the two differ.
    let half = candidates.len() / 2;
    if half == 0 {
        return;
    }
    let mut tasks = vec![];
    let mut jobs = vec![];
    for k in 0..2 {
        let (target, size) = &candidates[rng.below(half) + k * half];
        let id = rng.luid();
        let target = ResourceRef { kind: "workbook".into(), id: target.clone() };
        let mut at = g.now - Duration::days(rng.range(0, 7)) - Duration::minutes(rng.range(5, 60));
        let duration = 30 + (*size / 2_000_000) as i64;
        for _ in 0..3 {
            let started = at - Duration::seconds(duration + rng.range(0, duration / 5 + 1));
            jobs.push(RefreshJob {
                id: rng.luid(),
                task_id: id.clone(),
                target: target.clone(),
                created_at: started - Duration::seconds(rng.range(1, 90)),
                started_at: started,
                completed_at: at,
                finish_code: 0,
                notes: String::new(),
            });
            at -= Duration::days(7);
        }
        tasks.push(ExtractRefresh {
            last_run_at: jobs.iter().rev().nth(2).map(|j| j.completed_at),
            id,
            schedule_id: schedule.id.clone(),
            own_schedule: None,
            target,
            priority: 60,
            consecutive_failures: 0,
            kind: "FullRefresh".into(),
        });
    }
    g.site.schedules.push(schedule);
    g.site.extract_refreshes.extend(tasks);
    g.site.refresh_jobs.extend(jobs);
}

/// Subscriptions Tableau suspended after repeated failures: three on the demo site, one in 40
/// elsewhere. They draw from a generator of their own, as flows do, so every other figure a
/// seed produces stays as it was before they were modelled.
fn suspended_subscriptions(g: &mut Gen, seed: u64) {
    let mut rng = Rng(seed ^ 0x5005_5eed_2026_0002);
    let n = g.site.subscriptions.len();
    let wanted = if g.demo { 3 } else { n / 40 };
    let mut marked = 0;
    // Distinct subscriptions: draw until enough are marked (bounded by the count).
    for _ in 0..wanted.saturating_mul(4) {
        if marked == wanted || n == 0 {
            break;
        }
        let s = &mut g.site.subscriptions[rng.below(n)];
        if !s.suspended {
            s.suspended = true;
            marked += 1;
        }
    }
}

/// Tableau Prep flows: about one per 40 workbooks (at least two), in the teams' projects,
/// owned by users whose site role lets them own a flow (a Creator license). John Smith owns
/// the first one, so offboarding the demo's leaver covers flows too.
///
/// Flows draw from a generator of their own, seeded from the site's seed: adding them changed
/// nothing else a seed produces (ids, names, counts), which many tests rely on.
fn flows(g: &mut Gen, seed: u64) {
    const VERBS: &[&str] = &["Clean", "Prep", "Combine", "Enrich", "Reshape", "Deduplicate"];
    const OUTPUTS: &[&str] = &["Extract", "Staging", "Daily Load", "Weekly Load", "Master Data"];
    const TAGS: &[&str] = &["etl", "certified-pipeline", "daily", "needs-review"];
    let mut rng = Rng(seed ^ 0xF10F_5EED_2026_0001);
    let n = (g.site.workbooks.len() / 40).max(2);
    let role: HashMap<&str, &str> = g.site.users.iter().map(|u| (u.id.as_str(), u.site_role.as_str())).collect();
    let may_own =
        |id: &str| matches!(role.get(id), Some(&("Creator" | "SiteAdministratorCreator" | "ServerAdministrator")));
    let admin = g.user_id("admin");
    let mut taken: HashSet<(String, String)> = HashSet::new();
    let mut out = Vec::with_capacity(n);
    for k in 0..n {
        let (team, project, owner) = if k == 0 {
            let team = TEAMS.iter().find(|t| t.name == "Marketing").expect("Marketing is a team");
            (team, g.team_projects[team.name].0.clone(), g.jsmith.clone())
        } else {
            let team = &TEAMS[(k + rng.below(TEAMS.len())) % TEAMS.len()];
            let ids = &g.team_projects[team.name].1;
            let project = ids[rng.below(ids.len())].clone();
            let creators: Vec<&String> =
                g.team_members[team.name].iter().filter(|id| **id != g.jsmith && may_own(id)).collect();
            let owner = if creators.is_empty() { admin.clone() } else { creators[rng.below(creators.len())].clone() };
            (team, project, owner)
        };
        let topic = team.topics[rng.below(team.topics.len())];
        let base = format!("{} {topic} {}", VERBS[rng.below(VERBS.len())], OUTPUTS[rng.below(OUTPUTS.len())]);
        let mut name = base.clone();
        let mut suffix = 2;
        while !taken.insert((project.clone(), name.clone())) {
            name = format!("{base} ({suffix})");
            suffix += 1;
        }
        let created = g.now - Duration::seconds(rng.range(30 * 86_400, 700 * 86_400));
        let updated = created + Duration::seconds(rng.range(0, (g.now - created).num_seconds().max(1)));
        let tags = if rng.chance(0.3) { vec![TAGS[rng.below(TAGS.len())].to_string()] } else { vec![] };
        let description = if rng.chance(0.5) {
            format!("Prepares {topic} data for the {} team's dashboards.", team.name)
        } else {
            String::new()
        };
        let file_type = if rng.chance(0.7) { "tflx" } else { "tfl" };
        out.push(Flow {
            id: rng.luid(),
            name,
            project_id: project,
            owner_id: owner,
            tags,
            description,
            file_type: file_type.into(),
            created_at: created,
            updated_at: updated,
        });
    }
    g.site.flows = out;
}

/// The named people, then generated ones; returns the contractors.
fn users(g: &mut Gen, n_users: usize) -> Vec<String> {
    for p in PEOPLE {
        let id = g.add_user(p.user.into(), p.full.into(), p.role);
        for t in p.teams {
            g.team_members.entry(t).or_default().push(id.clone());
        }
    }
    g.jsmith = g.user_id("jsmith");
    let mut contractors = Vec::new();
    let mut i = 0usize;
    while g.site.users.len() < n_users {
        let first = FIRST[(i * 7 + g.rng.below(3)) % FIRST.len()];
        let last = LAST[(i * 13 + g.rng.below(5)) % LAST.len()];
        let mut name = format!("{}{}", first[..1].to_lowercase(), last.to_lowercase());
        if g.users.contains_key(&name) {
            name = format!("{}.{}{}", first.to_lowercase(), last.to_lowercase(), i);
        }
        let role = match g.rng.below(100) {
            0..=3 => "Unlicensed",
            4..=30 => "Viewer",
            31..=70 => "Explorer",
            71..=80 => "ExplorerCanPublish",
            _ => "Creator",
        };
        let id = g.add_user(name, format!("{first} {last}"), role);
        if i % 17 == 5 {
            contractors.push(id.clone());
        }
        let team = TEAMS[(i + g.rng.below(2)) % TEAMS.len()].name;
        g.team_members.entry(team).or_default().push(id);
        i += 1;
    }
    contractors
}

fn groups(g: &mut Gen, contractors: Vec<String>) {
    let all: Vec<String> = g.site.users.iter().map(|u| u.id.clone()).collect();
    let mut groups = vec![("All Users".to_string(), all)];
    for t in TEAMS {
        groups.push((t.name.to_string(), g.team_members.get(t.name).cloned().unwrap_or_default()));
    }
    let engineers = g.team_members.get("Operations").map(|m| m.iter().take(6).cloned().collect()).unwrap_or_default();
    groups.push(("Data Engineering".into(), engineers));
    groups.push(("Contractors".into(), contractors));
    if !g.demo {
        // More groups of about 50 people each.
        const REGIONS: &[&str] = &["AMER", "EMEA", "APAC", "LATAM"];
        const UNITS: &[&str] =
            &["Analysts", "Field Ops", "Product", "Support", "Partners", "Engineering", "Legal", "IT", "Procurement"];
        let n = g.site.users.len();
        for k in 0..n / 50 {
            let start = (k * 50) % n;
            let members = g.site.users.iter().skip(start).take(50).map(|u| u.id.clone()).collect();
            let cycle = k / (REGIONS.len() * UNITS.len());
            let mut name = format!("{} {}", REGIONS[k % REGIONS.len()], UNITS[(k / REGIONS.len()) % UNITS.len()]);
            if cycle > 0 {
                name = format!("{name} {}", cycle + 1);
            }
            groups.push((name, members));
        }
    }
    for (name, members) in groups {
        let id = g.rng.luid();
        g.group_ids.insert(name.clone(), id.clone());
        g.site.groups.push(Group { id, name, members, minimum_site_role: None });
    }
}

fn projects(g: &mut Gen, n_workbooks: usize) {
    const AREAS: &[&str] = &["Reporting", "Analysis", "Planning", "Reviews", "Operations"];
    let admin = g.user_id("admin");
    let jsmith = g.jsmith.clone();
    g.add_project("default", None, &admin, "ManagedByOwner", "The default project for new content.".into());
    for t in TEAMS {
        let lead = g.user_id(lead_of(t.name));
        let top = g.add_project(t.name, None, &lead, "ManagedByOwner", format!("{} team content.", t.name));
        let mut all_ids = vec![top.clone()];
        for c in t.children {
            let (owner, perms) = match *c {
                "Web Analytics" => (jsmith.clone(), "ManagedByOwner"),
                "Confidential" => (lead.clone(), "LockedToProject"),
                _ => (lead.clone(), "ManagedByOwner"),
            };
            let child = g.add_project(c, Some(&top), &owner, perms, String::new());
            all_ids.push(child.clone());
            if *c == "Quarterly Reporting" {
                let close = "Close packages and audit support.".to_string();
                all_ids.push(g.add_project("Year-End Close", Some(&child), &lead, "ManagedByOwner", close));
            }
        }
        if !g.demo {
            // About one project per 200 workbooks, nested under the team's projects.
            let extra = (n_workbooks / 200).saturating_sub(20) * t.weight / 87;
            let per_cycle = t.topics.len() * AREAS.len();
            for k in 0..extra {
                let parent = all_ids[k % all_ids.len()].clone();
                let topic = t.topics[k % t.topics.len()];
                let area = AREAS[(k / t.topics.len()) % AREAS.len()];
                let name = match k / per_cycle {
                    0 => format!("{topic} {area}"),
                    c => format!("{topic} {area} {}", c + 1),
                };
                all_ids.push(g.add_project(&name, Some(&parent), &lead, "ManagedByOwner", String::new()));
            }
        }
        g.team_projects.insert(t.name, (top, all_ids));
    }
    let sandbox = "Personal experiments; cleaned up every quarter.".to_string();
    g.add_project("Sandbox", None, &admin, "ManagedByOwner", sandbox);
    let archive = "Retired content, kept for reference.".to_string();
    g.add_project("Archive", None, &admin, "LockedToProject", archive);
    let insights = "Tableau Admin Insights: usage and content data about this site.".to_string();
    g.add_project("Admin Insights", None, &admin, "LockedToProject", insights);
}

/// The parts of a new datasource that differ between callers.
struct NewDatasource<'a> {
    name: &'a str,
    project: &'a str,
    owner: &'a str,
    connection: Connection,
    fields: Vec<String>,
    certified: bool,
    note: Option<String>,
    tags: &'a [&'a str],
}

fn connection(kind: &str, server: &str, database: &str, table: &str, sql: Option<&str>) -> Connection {
    Connection {
        kind: kind.into(),
        server: server.into(),
        database: database.into(),
        table: table.into(),
        custom_sql: sql.map(str::to_string),
        id: String::new(),
        port: match kind {
            "postgres" => "5432",
            "redshift" => "5439",
            "sqlserver" => "1433",
            "snowflake" | "bigquery" => "443",
            _ => "",
        }
        .into(),
        username: if server.is_empty() || kind == "hyper" { String::new() } else { "svc_tableau".into() },
    }
}

fn push_datasource(g: &mut Gen, new: NewDatasource<'_>) -> usize {
    let id = g.rng.luid();
    let mut connection = new.connection;
    connection.id = g.rng.luid();
    let created = g.days_ago(200, 1200);
    let updated = g.days_ago(1, 200).max(created);
    let hits = g.rng.below(5000) as u64;
    let last = if hits == 0 { None } else { Some(g.days_ago(0, 120)) };
    let url = g.unique_url(new.name);
    let name = g.unique_name(new.project, new.name.to_string());
    let size = 100_000 + g.rng.below(400_000_000) as u64;
    let has_extracts = g.rng.chance(0.4);
    g.site.datasources.push(Datasource {
        id,
        name,
        project_id: new.project.into(),
        owner_id: new.owner.into(),
        tags: new.tags.iter().map(|t| t.to_string()).collect(),
        certified: new.certified,
        certification_note: new.note,
        updated_at: updated,
        connection,
        fields: new.fields,
        content_url: url,
        description: String::new(),
        created_at: Some(created),
        has_extracts,
        size,
        total_hits: hits,
        last_accessed_at: last,
    });
    g.site.datasources.len() - 1
}

fn datasources(g: &mut Gen, n_workbooks: usize) {
    for spec in DATASOURCES {
        let project = g.team_projects[spec.team].0.clone();
        let owner = match spec.owner {
            Some(u) => g.user_id(u),
            None => g.member(spec.team),
        };
        let keep = spec.fields.len() - spec.drop.min(spec.fields.len() - 1);
        let idx = push_datasource(
            g,
            NewDatasource {
                name: spec.name,
                project: &project,
                owner: &owner,
                connection: connection(spec.kind, spec.server, spec.database, spec.table, spec.sql),
                fields: spec.fields[..keep].iter().map(|f| f.to_string()).collect(),
                certified: spec.certified,
                note: spec.note.map(str::to_string),
                tags: spec.tags,
            },
        );
        // The deprecated GL only keeps its assigned dependents (see `workbooks`).
        if spec.name != "Finance GL (legacy)" {
            g.team_ds.entry(spec.team).or_default().push(idx);
        }
    }
    let insights = g.site.projects.iter().find(|p| p.name == "Admin Insights").expect("project").id.clone();
    let admin = g.user_id("admin");
    for (name, fields) in
        [("Site Content", SITE_CONTENT_FIELDS), ("TS Events", TS_EVENTS_FIELDS), ("TS Users", TS_USERS_FIELDS)]
    {
        let idx = push_datasource(
            g,
            NewDatasource {
                name,
                project: &insights,
                owner: &admin,
                connection: connection("hyper", "", "Admin Insights", name, None),
                fields: fields.iter().map(|f| f.to_string()).collect(),
                certified: false,
                note: None,
                tags: &[],
            },
        );
        let ds = &mut g.site.datasources[idx];
        ds.description = "Admin Insights data, refreshed daily by Tableau.".into();
        ds.has_extracts = true;
    }
    // More datasources: about one per 15 workbooks in scaled sites, 32 more in the demo (none
    // in Finance there, whose 9 datasources are the consolidation story). Every 7th is a copy
    // of the team's previous one: same connection, similar name, and the original certified.
    let extra = if g.demo { 32 } else { (n_workbooks / 15).saturating_sub(DATASOURCES.len()) };
    let teams: &[Team] = if g.demo { &TEAMS[1..] } else { TEAMS };
    const SUFFIXES: &[&str] = &["Extract", "Data", "Source", "Feed", "Mart"];
    let mut previous: BTreeMap<&str, usize> = BTreeMap::new();
    // Per team: how many sources so far, and where in its topic list this seed starts.
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    let start: Vec<usize> = teams.iter().map(|t| g.rng.below(t.topics.len())).collect();
    for k in 0..extra {
        let team = &teams[k % teams.len()];
        let t = team.name;
        let n_projects = g.team_projects[t].1.len();
        let project = g.team_projects[t].1[g.rng.below(n_projects)].clone();
        let owner = g.member(t);
        if k % 7 == 6
            && let Some(&orig) = previous.get(t)
        {
            let (name, connection, mut fields) = {
                let o = &g.site.datasources[orig];
                let name = match (k / 7) % 3 {
                    0 => format!("{} (copy)", o.name),
                    1 => format!("{}_v2", o.name.replace(' ', "_")),
                    _ => format!("{} - Copy", o.name),
                };
                (name, o.connection.clone(), o.fields.clone())
            };
            fields.pop();
            let o = &mut g.site.datasources[orig];
            o.certified = true;
            o.certification_note = Some(format!("Certified by {} analytics. Use this one, not copies.", t));
            let idx = push_datasource(
                g,
                NewDatasource {
                    name: &name,
                    project: &project,
                    owner: &owner,
                    connection,
                    fields,
                    certified: false,
                    note: None,
                    tags: &[],
                },
            );
            g.team_ds.entry(t).or_default().push(idx);
            previous.remove(t);
            continue;
        }
        // Each team walks through (topic, suffix) pairs, so names and tables do not repeat
        // until a very large site has used them all.
        let j = *count.entry(t).and_modify(|n| *n += 1).or_insert(0);
        let n_topics = team.topics.len();
        let a = (start[k % teams.len()] + j) % n_topics;
        let topic = team.topics[a];
        let suffix = SUFFIXES[(j / n_topics + 3 * a) % SUFFIXES.len()];
        let (name, table_stem) = match j / (n_topics * SUFFIXES.len()) {
            0 => (format!("{topic} {suffix}"), String::new()),
            c => (format!("{topic} {suffix} {}", c + 1), format!("_{}", c + 1)),
        };
        let (pool, kind, server, database, schema) = team_source(t);
        let table = format!("{schema}.{}_{}{table_stem}", slug(topic).to_lowercase(), suffix.to_lowercase());
        let keep = pool.len() - g.rng.below(3);
        let tags: &[&str] = if t == "HR" && g.rng.chance(0.5) { &["PII"] } else { &[] };
        let idx = push_datasource(
            g,
            NewDatasource {
                name: &name,
                project: &project,
                owner: &owner,
                connection: connection(kind, server, database, &table, None),
                fields: pool[..keep].iter().map(|f| f.to_string()).collect(),
                certified: false,
                note: None,
                tags,
            },
        );
        g.team_ds.entry(t).or_default().push(idx);
        previous.insert(t, idx);
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Usage {
    Never,
    Stale,
    TooRecent,
    Yesterday,
    Active,
}

fn workbooks(g: &mut Gen, n_workbooks: usize) {
    // (team, count); "" = personal and retired content (default, Sandbox, Archive).
    let mut plan: Vec<(&'static str, usize)> = Vec::new();
    if g.demo {
        plan.extend([
            ("Finance", 120),
            ("Marketing", 150),
            ("Sales", 200),
            ("HR", 60),
            ("Operations", 150),
            ("Executive", 50),
            ("", 117),
        ]);
    } else {
        let weights: usize = TEAMS.iter().map(|t| t.weight).sum();
        let mut left = n_workbooks;
        for t in TEAMS {
            let n = n_workbooks * t.weight / (weights + 13);
            plan.push((t.name, n));
            left -= n;
        }
        plan.push(("", left));
    }
    let by_name = |name: &str| -> String {
        g.site.projects.iter().find(|p| p.name == name && p.parent_id.is_none()).expect("project").id.clone()
    };
    let (default, sandbox, archive) = (by_name("default"), by_name("Sandbox"), by_name("Archive"));
    let jsmith = g.jsmith.clone();
    let mut john_left = 18usize;
    let mut finance_index = 0usize;
    for (team, count) in plan {
        for k in 0..count {
            let (project, topics, owner, usage) = if team.is_empty() {
                let t = g.rng.pick(TEAMS);
                let owner = g.anyone();
                let (project, usage) = match k % 9 {
                    0 => (default.clone(), None),
                    1 => (archive.clone(), Some(if g.rng.chance(0.4) { Usage::Never } else { Usage::Stale })),
                    _ => (sandbox.clone(), None),
                };
                (project, t.topics, owner, usage)
            } else {
                // Half in the top-level project, the rest spread over all the team's projects.
                let n_ids = g.team_projects[team].1.len();
                let pick = if g.rng.chance(0.5) { 0 } else { g.rng.below(n_ids) };
                let project = g.team_projects[team].1[pick].clone();
                let topics = TEAMS.iter().find(|t| t.name == team).expect("team").topics;
                // John Smith owns a known number of workbooks (the offboarding story).
                let owner = if team == "Marketing" && john_left > 0 && k % 7 == 0 {
                    john_left -= 1;
                    jsmith.clone()
                } else {
                    g.member(team)
                };
                // The Finance usage story of the demo: a fixed pattern.
                let usage = (team == "Finance" && g.demo).then(|| {
                    finance_index += 1;
                    match finance_index {
                        1..=6 => Usage::Never,
                        7..=23 => Usage::Stale,
                        24..=25 => Usage::TooRecent,
                        26..=33 => Usage::Yesterday,
                        _ => Usage::Active,
                    }
                });
                (project, topics, owner, usage)
            };
            let usage = usage.unwrap_or_else(|| match g.rng.below(100) {
                0..=4 => Usage::Never,
                5..=17 => Usage::Stale,
                18..=19 => Usage::TooRecent,
                20..=27 => Usage::Yesterday,
                _ => Usage::Active,
            });
            let topic = *g.rng.pick(topics);
            let period = *g.rng.pick(PERIODS);
            let kind = *g.rng.pick(KINDS);
            let name = g.unique_name(&project, format!("{period}{topic} {kind}"));
            let description = if g.rng.chance(0.35) {
                let audience = if team.is_empty() { "personal use" } else { team };
                format!("{topic} {} for {audience}.", kind.to_lowercase())
            } else {
                String::new()
            };
            let archived = project == archive;
            push_workbook(g, NewWorkbook { team, name, project, owner, usage, description, archived });
        }
    }

    // Dependents of the deprecated GL, incl. one using a field the replacement lacks.
    if let Some(legacy) = g.site.datasources.iter().find(|d| d.name == "Finance GL (legacy)").map(|d| d.id.clone()) {
        let finance: HashSet<&String> = g.team_projects["Finance"].1.iter().collect();
        let dependents = g.site.workbooks.iter_mut().filter(|w| finance.contains(&w.project_id)).skip(40).take(5);
        for (n, w) in dependents.enumerate() {
            w.datasource_ids = vec![legacy.clone()];
            w.fields_used = vec!["Posting Date".into(), "Account".into(), "Cost Center".into(), "Amount".into()];
            if n == 0 {
                w.fields_used.push("Legacy Cost Center".into());
            }
        }
    }
}

/// The parts of a new workbook that the caller decides.
struct NewWorkbook<'a> {
    /// The team whose datasources it may use ("" = none).
    team: &'a str,
    name: String,
    project: String,
    owner: String,
    usage: Usage,
    description: String,
    /// In the Archive project: tagged `archived`.
    archived: bool,
}

fn push_workbook(g: &mut Gen, new: NewWorkbook<'_>) {
    let NewWorkbook { team, name, project, owner, usage, description, archived } = new;
    let id = g.rng.luid();
    let created = match usage {
        Usage::TooRecent => g.days_ago(2, 25),
        Usage::Never | Usage::Stale => g.days_ago(180, 900),
        _ => g.days_ago(30, 900),
    };
    let updated = match usage {
        Usage::TooRecent => created,
        Usage::Never | Usage::Stale => g.days_ago(120, 400).max(created),
        _ => g.days_ago(1, 120).max(created),
    };
    let n_views = 1 + g.rng.below(g.max_views);
    let mut views = Vec::with_capacity(n_views);
    let first = g.rng.below(SHEETS.len());
    let story = n_views >= 3 && g.rng.chance(0.08);
    for v in 0..n_views {
        let (total, last) = match usage {
            Usage::Never | Usage::TooRecent => (0, None),
            // The first view of a stale workbook was opened once in a while, long ago.
            Usage::Stale if v == 0 => (1 + g.rng.below(400) as u64, Some(g.days_ago(91, 400))),
            Usage::Stale => {
                let t = g.rng.below(200) as u64;
                if t == 0 { (0, None) } else { (t, Some(g.days_ago(95, 400))) }
            }
            Usage::Yesterday if v == 0 => {
                (50 + g.rng.below(5000) as u64, Some(g.now - Duration::hours(20 + g.rng.below(8) as i64)))
            }
            _ if v == 0 => (1 + g.rng.below(3000) as u64, Some(g.days_ago(0, 60))),
            _ => {
                let t = g.rng.below(3000) as u64;
                if t == 0 { (0, None) } else { (t, Some(g.days_ago(0, 60))) }
            }
        };
        let (name, sheet_type) = if story && v == n_views - 1 {
            ("Story", "story")
        } else {
            (SHEETS[(first + v) % SHEETS.len()], if v == 0 { "dashboard" } else { "view" })
        };
        views.push(View {
            id: g.rng.luid(),
            name: name.into(),
            total_views: total,
            // Never before the workbook existed.
            last_viewed_at: last.map(|t: DateTime<Utc>| t.max(created + Duration::hours(2))),
            tags: vec![],
            sheet_type: sheet_type.into(),
        });
    }
    // Datasources: ~70 % use one or two of the team's published datasources.
    let mut datasource_ids = Vec::new();
    let mut fields_used: Vec<String> = Vec::new();
    let pool_len = g.team_ds.get(team).map_or(0, Vec::len);
    if pool_len > 0 && g.rng.chance(0.7) {
        let n = 1 + usize::from(g.rng.chance(0.2));
        for _ in 0..n {
            let di = g.team_ds[team][g.rng.below(pool_len)];
            let ds = &g.site.datasources[di];
            if datasource_ids.contains(&ds.id) {
                continue;
            }
            datasource_ids.push(ds.id.clone());
            let n_fields = ds.fields.len();
            for _ in 0..2 + g.rng.below(4) {
                let f = &g.site.datasources[di].fields[g.rng.below(n_fields)];
                if !fields_used.contains(f) {
                    fields_used.push(f.clone());
                }
            }
        }
    }
    let mut tags = Vec::new();
    let sensitive_share = match team {
        "HR" | "Executive" => 0.35,
        "Finance" => 0.12,
        _ => 0.02,
    };
    if g.rng.chance(sensitive_share) {
        tags.push(g.rng.pick(&["sensitive", "confidential", "PII", "restricted"]).to_string());
    }
    if g.rng.chance(0.15) {
        tags.push(g.rng.pick(&["kpi", "weekly", "monthly", "executive", "draft", "certified-content"]).to_string());
    }
    if archived {
        tags.push("archived".into());
    }
    let content_url = g.unique_url(&name);
    let size = 50_000 + g.rng.below(80_000_000) as u64;
    let show_tabs = !g.rng.chance(0.2);
    let revision = 1 + g.rng.below(5) as u32;
    g.site.workbooks.push(Workbook {
        id,
        name,
        project_id: project,
        owner_id: owner,
        tags,
        size,
        created_at: created,
        updated_at: updated,
        datasource_ids,
        views,
        content_url,
        description,
        show_tabs,
        fields_used,
        revision,
    });
}

fn permissions(g: &mut Gen) {
    let all_users = g.group_ids["All Users"].clone();
    let contractors = g.group_ids["Contractors"].clone();
    let engineers = g.group_ids["Data Engineering"].clone();
    // Project rules and defaults: the team can read its projects; leads can write (and lead
    // the top project).
    for t in TEAMS {
        let gid = g.group_ids[t.name].clone();
        let lead = g.user_id(lead_of(t.name));
        let (top, ids) = g.team_projects[t.name].clone();
        for pid in &ids {
            g.rule("project", pid, "group", &gid, &[("Read", Mode::Allow)]);
            if *pid == top {
                let caps = [("Read", Mode::Allow), ("Write", Mode::Allow), ("ProjectLeader", Mode::Allow)];
                g.rule("project", pid, "user", &lead, &caps);
            } else {
                g.rule("project", pid, "user", &lead, &[("Read", Mode::Allow), ("Write", Mode::Allow)]);
            }
        }
        for (content_type, caps) in [("workbooks", VIEWER), ("datasources", CONNECT)] {
            g.site.default_permissions.push(DefaultPermissionRule {
                project_id: top.clone(),
                content_type: content_type.into(),
                grantee: GranteeRef { kind: "group".into(), id: gid.clone() },
                capabilities: caps.iter().map(|(n, m)| (n.to_string(), *m)).collect(),
            });
        }
    }
    if let Some(p) = g.site.projects.iter().find(|p| p.name == "Confidential").map(|p| p.id.clone()) {
        g.rule("project", &p, "group", &contractors, &[("Read", Mode::Deny)]);
    }
    let by_name = |g: &Gen, name: &str| g.site.projects.iter().find(|p| p.name == name).map(|p| p.id.clone());
    if let Some(sandbox) = by_name(g, "Sandbox") {
        g.rule("project", &sandbox, "group", &all_users, &[("Read", Mode::Allow), ("Write", Mode::Allow)]);
    }
    if let Some(archive) = by_name(g, "Archive") {
        g.rule("project", &archive, "group", &all_users, &[("Read", Mode::Allow)]);
    }

    // Workbook and view rules.
    let project_team: HashMap<&str, &'static str> =
        g.team_projects.iter().flat_map(|(t, (_, ids))| ids.iter().map(move |id| (id.as_str(), *t))).collect();
    let project_team: HashMap<String, &'static str> =
        project_team.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    let mut broad_left = if g.demo { 7 } else { g.site.workbooks.len() / 150 };
    // Spread over the teams (the first team would otherwise take them all).
    let per_team = if g.demo { 2 } else { broad_left / TEAMS.len() + 1 };
    let mut broad_by_team: BTreeMap<&str, usize> = BTreeMap::new();
    for wi in 0..g.site.workbooks.len() {
        let (wid, team, sensitive, show_tabs, first_view) = {
            let w = &g.site.workbooks[wi];
            let s = w.tags.iter().any(|t| matches!(t.as_str(), "sensitive" | "confidential" | "PII" | "restricted"));
            let team = project_team.get(&w.project_id).copied();
            (w.id.clone(), team, s, w.show_tabs, w.views.first().map(|v| v.id.clone()))
        };
        match team {
            Some(t) => {
                let gid = g.group_ids[t].clone();
                let caps = if g.rng.chance(0.3) { EXPLORER } else { VIEWER };
                g.rule("workbook", &wid, "group", &gid, caps);
                if g.rng.chance(0.25) {
                    // An explicit grant to one person.
                    let u = g.member(t);
                    let caps = [("Read", Mode::Allow), ("Filter", Mode::Allow), ("ExportData", Mode::Allow)];
                    g.rule("workbook", &wid, "user", &u, &caps);
                }
                let team_broad = broad_by_team.entry(t).or_default();
                if sensitive && broad_left > 0 && *team_broad < per_team && g.rng.chance(0.5) {
                    *team_broad += 1;
                    // Overly broad: everyone may overwrite, delete and re-permission it.
                    broad_left -= 1;
                    g.rule("workbook", &wid, "group", &all_users, BROAD);
                } else if sensitive && g.rng.chance(0.4) {
                    let caps = [("Read", Mode::Deny), ("ExportData", Mode::Deny)];
                    g.rule("workbook", &wid, "group", &contractors, &caps);
                }
            }
            None => {
                if g.rng.chance(0.3) {
                    g.rule("workbook", &wid, "group", &all_users, VIEWER);
                }
            }
        }
        // With tabs hidden, views carry their own permissions.
        if !show_tabs
            && let Some(v) = first_view
            && g.rng.chance(0.3)
        {
            let u = g.site.users[g.rng.below(g.site.users.len())].id.clone();
            g.rule("view", &v, "user", &u, &[("Read", Mode::Allow), ("ExportImage", Mode::Allow)]);
        }
    }
    // Datasource rules.
    let ds_rules: Vec<(String, Option<&'static str>, bool, bool)> = g
        .site
        .datasources
        .iter()
        .map(|d| {
            let sensitive = d.tags.iter().any(|t| t == "PII" || t == "confidential");
            (d.id.clone(), project_team.get(&d.project_id).copied(), sensitive, d.certified)
        })
        .collect();
    for (k, (id, team, sensitive, certified)) in ds_rules.into_iter().enumerate() {
        let Some(t) = team else { continue };
        let gid = g.group_ids[t].clone();
        g.rule("datasource", &id, "group", &gid, CONNECT);
        if certified {
            let caps =
                [("Read", Mode::Allow), ("Connect", Mode::Allow), ("Write", Mode::Allow), ("ExportXml", Mode::Allow)];
            g.rule("datasource", &id, "group", &engineers, &caps);
        }
        if sensitive || k % 9 == 0 {
            // Overly broad: everyone may connect to (and for some, overwrite) the source.
            let caps: &[(&str, Mode)] = if sensitive {
                CONNECT
            } else {
                &[("Read", Mode::Allow), ("Connect", Mode::Allow), ("Write", Mode::Allow)]
            };
            g.rule("datasource", &id, "group", &all_users, caps);
        }
    }
}

fn extras(g: &mut Gen) {
    let n_users = g.site.users.len();
    let n_wb = g.site.workbooks.len();
    if n_wb == 0 {
        return;
    }
    let jsmith = g.jsmith.clone();
    let admin = g.user_id("admin");
    // Subscriptions: on workbooks and views, including John's content and stale Finance workbooks.
    let n_subs = if g.demo { 40 } else { n_wb / 20 };
    let johns: Vec<usize> = (0..n_wb).filter(|&i| g.site.workbooks[i].owner_id == jsmith).collect();
    let finance: HashSet<&String> = g.team_projects["Finance"].1.iter().collect();
    let cutoff = g.now - Duration::days(90);
    let stale_finance: Vec<usize> = (0..n_wb)
        .filter(|&i| {
            let w = &g.site.workbooks[i];
            finance.contains(&w.project_id) && w.created_at < cutoff && w.last_viewed_at().is_none_or(|t| t < cutoff)
        })
        .collect();
    for k in 0..n_subs {
        let wi = match k % 5 {
            0 if !johns.is_empty() => johns[k % johns.len()],
            1 if !stale_finance.is_empty() => stale_finance[k % stale_finance.len()],
            _ => g.rng.below(n_wb),
        };
        let user = if k % 11 == 0 { jsmith.clone() } else { g.site.users[g.rng.below(n_users)].id.clone() };
        let (kind, cid, subject) = {
            let w = &g.site.workbooks[wi];
            if k % 3 == 0 {
                ("view", w.views[0].id.clone(), format!("{}: {}", w.name, w.views[0].name))
            } else {
                ("workbook", w.id.clone(), w.name.clone())
            }
        };
        let id = g.rng.luid();
        let schedule = g.rng.pick(SCHEDULES).to_string();
        g.site.subscriptions.push(Subscription {
            id,
            user_id: user,
            content: ResourceRef { kind: kind.into(), id: cid },
            subject,
            schedule,
            suspended: false,
        });
    }
    // Webhooks.
    for (name, event, owner) in [
        ("Notify ops on workbook deletes", "workbook-deleted", admin.clone()),
        ("Refresh failures to PagerDuty", "datasource-refresh-failed", admin.clone()),
        ("Campaign dashboard updates", "workbook-updated", jsmith.clone()),
    ] {
        let id = g.rng.luid();
        g.site.webhooks.push(Webhook {
            id,
            name: name.into(),
            event: event.into(),
            url: format!("https://hooks.example.com/tableau/{}", slug(name).to_lowercase()),
            owner_id: owner,
            enabled: true,
        });
    }
    // Favorites and data alerts.
    let n_fav = if g.demo { 30 } else { n_users / 10 };
    let mut seen = HashSet::new();
    for _ in 0..n_fav {
        let u = g.site.users[g.rng.below(n_users)].id.clone();
        let w = &g.site.workbooks[g.rng.below(n_wb)];
        if seen.insert((u.clone(), w.id.clone())) {
            g.site.favorites.push(Favorite {
                user_id: u,
                label: w.name.clone(),
                content: ResourceRef { kind: "workbook".into(), id: w.id.clone() },
            });
        }
    }
    let n_alerts = if g.demo { 6 } else { n_wb / 500 };
    for k in 0..n_alerts {
        let owner = if k < 2 { jsmith.clone() } else { g.site.users[g.rng.below(n_users)].id.clone() };
        let wi = if k < johns.len().min(2) { johns[k] } else { g.rng.below(n_wb) };
        let w = &g.site.workbooks[wi];
        let view = w.views[0].id.clone();
        let subject = format!("{} below target", w.name);
        let id = g.rng.luid();
        g.site.data_alerts.push(DataAlert {
            id,
            subject,
            owner_id: owner.clone(),
            view_id: view,
            recipients: vec![owner],
        });
    }
}

#[cfg(test)]
mod tests;
