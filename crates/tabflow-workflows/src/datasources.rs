//! Datasource consolidation (`consolidate-datasources`) and migration
//! (`migrate-datasource`): find duplicate or deprecated published datasources, pick what
//! replaces each, check field compatibility per dependent workbook, and plan the repoints
//! (`datasource` changes on workbooks: download, rewrite the `sqlproxy` connection, republish)
//! and, for consolidation, the archive of the redundant datasources.
//!
//! Everything is read from the site snapshot: connections and fields of each datasource,
//! and each workbook's datasources and used fields (Metadata API lineage).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Value, json};
use tabflow_plan::intent::{Consolidate, Migrate};
use tabflow_plan::plan::{Change, Item, Step, StepKind};
use tabflow_site::{Datasource, Workbook};

use crate::builder::{Builder, day, text};
use crate::ground::{self, Grounded, ground};

/// Words that mark a copy rather than a different source ("Sales Orders (copy)", "_v2").
const COPY_WORDS: &[&str] = &["copy", "v2", "v3", "new", "old", "backup", "bak", "duplicate", "dup"];

/// Two datasources whose names match after dropping copy words are similar when they share
/// at least this share of the smaller field list.
const FIELD_OVERLAP: f64 = 0.7;

/// The connection a datasource reads: same key = same data.
fn connection_key(d: &Datasource) -> Option<(String, String, String, String)> {
    let c = &d.connection;
    if c.server.is_empty() && c.kind == "hyper" {
        return None; // a file-based extract: no shared upstream to compare
    }
    let what = match &c.custom_sql {
        Some(sql) => format!("sql:{}", sql.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()),
        None => format!("table:{}", c.table.to_lowercase()),
    };
    Some((c.kind.to_lowercase(), c.server.to_lowercase(), c.database.to_lowercase(), what))
}

fn connection_label(d: &Datasource) -> String {
    let c = &d.connection;
    match &c.custom_sql {
        Some(_) => format!("the same custom SQL on {}/{}", c.server, c.database),
        None => format!("the same table {}/{}/{}", c.server, c.database, c.table),
    }
}

fn base_name(name: &str) -> String {
    ground::normalize(&name.replace('_', " "))
        .split(' ')
        .filter(|w| !COPY_WORDS.contains(w))
        .collect::<Vec<_>>()
        .join(" ")
}

fn overlap(a: &[String], b: &[String]) -> f64 {
    let (a, b): (BTreeSet<&String>, BTreeSet<&String>) = (a.iter().collect(), b.iter().collect());
    let small = a.len().min(b.len());
    if small == 0 { 0.0 } else { a.intersection(&b).count() as f64 / small as f64 }
}

fn is_deprecated(d: &Datasource) -> Option<String> {
    if let Some(t) = d.tags.iter().find(|t| t.eq_ignore_ascii_case("deprecated")) {
        return Some(format!("tagged '{t}'"));
    }
    if let Some(n) = d.certification_note.as_deref().filter(|n| n.to_lowercase().contains("deprecated")) {
        return Some(format!("its note says \"{n}\""));
    }
    let lower = d.name.to_lowercase();
    ["deprecated", "(legacy)", "do not use", "[old]"]
        .iter()
        .find(|p| lower.contains(*p))
        .map(|p| format!("its name contains '{}'", p.trim_matches(|c| c == '(' || c == ')' || c == '[' || c == ']')))
}

/// The name a note or description points at: "use 'Finance General Ledger' instead".
fn named_replacement(d: &Datasource) -> Option<String> {
    let text = format!("{} {}", d.certification_note.as_deref().unwrap_or(""), d.description);
    // Found in the text itself (ASCII case folded), never through a lower-cased copy: lower
    // case can change a character's length ('İ' is 2 bytes, "i̇" 3), so its offsets would not
    // be the original's.
    let rest = text
        .char_indices()
        .find_map(|(i, _)| text.get(i..i + 4).filter(|w| w.eq_ignore_ascii_case("use ")).and(text.get(i + 4..)))?;
    let rest = rest.trim_start();
    let quote = rest.chars().next().filter(|c| matches!(c, '\'' | '"' | '‘' | '“'))?;
    let close = match quote {
        '‘' => '’',
        '“' => '”',
        q => q,
    };
    let inner = rest.strip_prefix(quote)?.split(close).next()?.trim();
    (!inner.is_empty()).then(|| inner.to_string())
}

/// One repoint of one workbook: from a datasource to its replacement.
struct Move<'a> {
    from: &'a Datasource,
    to: &'a Datasource,
    why: String,
}

fn ds_value(d: &Datasource) -> Value {
    json!({"id": d.id, "content_url": d.content_url, "name": d.name})
}

impl<'p, 'a> Builder<'p, 'a> {
    /// Why a workbook must stay on `from` when moved to `to`: the fields it uses from `from`
    /// that `to` does not have (internal names must match: the file's field references are
    /// kept as they are).
    fn missing_fields(w: &Workbook, from: &Datasource, to: &Datasource) -> Vec<String> {
        let have: BTreeSet<&String> = to.fields.iter().collect();
        let mut out: Vec<String> =
            w.fields_used.iter().filter(|f| from.fields.contains(f) && !have.contains(f)).cloned().collect();
        out.sort();
        out.dedup();
        out
    }

    fn protected_reason(&self, project_id: &str, tags: &[String]) -> Option<String> {
        if let Some(t) = tags.iter().find(|t| self.p.policy.is_protected_tag(t)) {
            return Some(format!("protected by policy (tag '{t}')"));
        }
        let path = self.project_path(project_id);
        path.split(" / ")
            .find(|n| self.p.policy.is_protected_project(n))
            .map(|n| format!("protected by policy (project '{n}')"))
    }

    fn datasource_item(&self, d: &Datasource, reason: String) -> Item {
        Item {
            kind: "datasource".into(),
            id: d.id.clone(),
            name: d.name.clone(),
            project: Some(self.project_name(&d.project_id)),
            updated_at: Some(d.updated_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            owner: Some(self.user_name(&d.owner_id)),
            reason: Some(reason),
            size: Some(d.size),
        }
    }

    /// The scope of a request: a project and its sub-projects, or the whole site.
    fn datasource_scope(&mut self, project: Option<&str>) -> Option<(Option<BTreeSet<String>>, String)> {
        match project {
            Some(name) => {
                let p = self.ground_project(name)?;
                let sub = self.subtree(&p.id);
                let label = if sub.len() > 1 {
                    format!("{} (and {} sub-projects)", p.name, sub.len() - 1)
                } else {
                    p.name.clone()
                };
                Some((Some(sub), label))
            }
            None => Some((None, "the whole site".into())),
        }
    }

    /// Splits the dependents of each move into repoints and exclusions (with reasons).
    /// Answers (workbook id → its moves, excluded workbooks, datasources still in use).
    #[allow(clippy::type_complexity)]
    fn plan_moves(
        &self,
        moves: &[Move<'a>],
    ) -> (BTreeMap<String, (&'a Workbook, Vec<usize>)>, Vec<Value>, BTreeMap<String, usize>) {
        let mut repoint: BTreeMap<String, (&'a Workbook, Vec<usize>)> = BTreeMap::new();
        let mut excluded = vec![];
        let mut kept: BTreeMap<String, usize> = BTreeMap::new();
        for (n, m) in moves.iter().enumerate() {
            for w in self.workbooks_using(&m.from.id) {
                let missing = Self::missing_fields(w, m.from, m.to);
                let why = if !missing.is_empty() {
                    Some(format!(
                        "uses {} '{}' that '{}' lacks",
                        if missing.len() == 1 { "the field" } else { "the fields" },
                        missing.join("', '"),
                        m.to.name
                    ))
                } else {
                    self.protected_reason(&w.project_id, &w.tags)
                };
                match why {
                    Some(why) => {
                        excluded.push(json!({"id": w.id, "name": w.name, "datasource": m.from.name, "reason": why}));
                        *kept.entry(m.from.id.clone()).or_default() += 1;
                    }
                    None => repoint.entry(w.id.clone()).or_insert((w, vec![])).1.push(n),
                }
            }
        }
        (repoint, excluded, kept)
    }

    /// The repoint step: one item per workbook, one `datasource` change per move.
    fn repoint_step(
        &mut self,
        moves: &[Move<'a>],
        repoint: &BTreeMap<String, (&'a Workbook, Vec<usize>)>,
        depends: Vec<String>,
    ) -> String {
        let mut items = vec![];
        let mut changes = vec![];
        let mut sources = BTreeSet::new();
        let mut targets = BTreeSet::new();
        for (w, ms) in repoint.values() {
            let what: Vec<String> =
                ms.iter().map(|&n| format!("'{}' → '{}'", moves[n].from.name, moves[n].to.name)).collect();
            items.push(self.workbook_item(w, Some(what.join(", "))));
            for &n in ms {
                let m = &moves[n];
                sources.insert(m.from.id.clone());
                targets.insert(m.to.id.clone());
                changes.push(Change {
                    item: w.id.clone(),
                    field: "datasource".into(),
                    before: ds_value(m.from),
                    after: ds_value(m.to),
                    before_id: Some(m.from.id.clone()),
                    after_id: Some(m.to.id.clone()),
                    after_ref: None,
                });
            }
        }
        let id = self.step_id();
        let (nw, ns, nt) = (items.len(), sources.len(), targets.len());
        self.plan.steps.push(Step::new(
            id.clone(),
            StepKind::RepointWorkbooks,
            format!(
                "Repoint {nw} workbook{} from {ns} datasource{} to {nt} replacement{} (download, rewrite the connection, republish; the original files are kept)",
                if nw == 1 { "" } else { "s" },
                if ns == 1 { "" } else { "s" },
                if nt == 1 { "" } else { "s" }
            ),
            depends,
            items,
            changes,
            json!({"moves": moves.iter().map(|m| json!({"from": m.from.name, "to": m.to.name, "why": m.why})).collect::<Vec<_>>()}),
        ));
        id
    }

    // ---------------------------------------------------------------- consolidation

    pub(crate) fn consolidate(&mut self, intent: &Consolidate) {
        let site = self.p.site;
        let Some((scope, scope_label)) = self.datasource_scope(text(&intent.project)) else { return };
        let archive_name = text(&intent.archive_project).unwrap_or("Archive").to_string();
        let archive =
            site.projects.iter().find(|p| p.parent_id.is_none() && p.name.eq_ignore_ascii_case(&archive_name));
        let candidates: Vec<&'a Datasource> = site
            .datasources
            .iter()
            .filter(|d| scope.as_ref().is_none_or(|s| s.contains(&d.project_id)))
            .filter(|d| archive.is_none_or(|a| a.id != d.project_id))
            .collect();
        // Union-find over "same connection" and "same name apart from copy words, fields overlap".
        let mut parent: Vec<usize> = (0..candidates.len()).collect();
        fn root(p: &mut [usize], mut i: usize) -> usize {
            while p[i] != i {
                p[i] = p[p[i]];
                i = p[i];
            }
            i
        }
        let mut link_reason: BTreeMap<usize, String> = BTreeMap::new();
        // Only pairs with the same connection or the same name apart from copy words can be
        // linked: those are found through two maps instead of comparing every pair, then
        // linked in the order a comparison of every pair would link them (i, then j).
        let keys: Vec<_> = candidates.iter().map(|d| connection_key(d)).collect();
        let bases: Vec<String> = candidates.iter().map(|d| base_name(&d.name)).collect();
        let mut by_key: HashMap<_, Vec<usize>> = HashMap::new();
        let mut by_base: HashMap<&str, Vec<usize>> = HashMap::new();
        for i in 0..candidates.len() {
            if let Some(k) = &keys[i] {
                by_key.entry(k).or_default().push(i);
            }
            if !bases[i].is_empty() {
                by_base.entry(bases[i].as_str()).or_default().push(i);
            }
        }
        let mut pairs: BTreeSet<(usize, usize)> = BTreeSet::new();
        for bucket in by_key.values().chain(by_base.values()) {
            for (n, &i) in bucket.iter().enumerate() {
                pairs.extend(bucket[n + 1..].iter().map(|&j| (i, j)));
            }
        }
        for (i, j) in pairs {
            {
                let (a, b) = (candidates[i], candidates[j]);
                let same_conn = keys[i].is_some() && keys[i] == keys[j];
                let similar = !same_conn
                    && bases[i] == bases[j]
                    && !bases[i].is_empty()
                    && overlap(&a.fields, &b.fields) >= FIELD_OVERLAP;
                if same_conn || similar {
                    let (ra, rb) = (root(&mut parent, i), root(&mut parent, j));
                    if ra != rb {
                        parent[rb] = ra;
                    }
                    let why = if same_conn {
                        format!("reads {}", connection_label(a))
                    } else {
                        format!(
                            "similar name and {:.0} % of the fields in common",
                            overlap(&a.fields, &b.fields) * 100.0
                        )
                    };
                    link_reason.entry(j).or_insert(why.clone());
                    link_reason.entry(i).or_insert(why);
                }
            }
        }
        let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for i in 0..candidates.len() {
            let r = root(&mut parent, i);
            groups.entry(r).or_default().push(i);
        }
        let groups: Vec<Vec<usize>> = groups.into_values().filter(|g| g.len() > 1).collect();
        let dependents = |d: &Datasource| self.workbooks_using(&d.id).len();
        let mut moves: Vec<Move<'a>> = vec![];
        let mut found_items = vec![];
        let mut group_details = vec![];
        for g in &groups {
            let mut members: Vec<&'a Datasource> = g.iter().map(|&i| candidates[i]).collect();
            members.sort_by(|a, b| {
                b.certified
                    .cmp(&a.certified)
                    .then(dependents(b).cmp(&dependents(a)))
                    .then(b.total_hits.cmp(&a.total_hits))
                    .then(b.updated_at.cmp(&a.updated_at))
                    .then(a.name.cmp(&b.name))
            });
            let canonical = members[0];
            let mut reasons = vec![];
            if canonical.certified {
                reasons.push("certified".to_string());
            }
            let others_max = members[1..].iter().map(|d| dependents(d)).max().unwrap_or(0);
            if dependents(canonical) >= others_max {
                reasons.push(format!("most used ({} workbooks, {} hits)", dependents(canonical), canonical.total_hits));
            }
            if members[1..].iter().all(|d| d.updated_at <= canonical.updated_at) {
                reasons.push(format!("most recently updated ({})", day(canonical.updated_at)));
            }
            if reasons.is_empty() {
                reasons.push(format!("{} workbooks, {} hits", dependents(canonical), canonical.total_hits));
            }
            let why_group = link_reason.get(&g[0]).cloned().unwrap_or_default();
            found_items.push(self.datasource_item(canonical, format!("keep: {}", reasons.join(", "))));
            for d in &members[1..] {
                let reason = format!("duplicate of '{}' ({why_group})", canonical.name);
                found_items.push(self.datasource_item(d, reason.clone()));
                moves.push(Move { from: d, to: canonical, why: reason });
            }
            group_details.push(json!({
                "canonical": {"id": canonical.id, "name": canonical.name, "reasons": reasons},
                "duplicates": members[1..].iter().map(|d| json!({"id": d.id, "name": d.name, "workbooks": dependents(d), "fields": d.fields.len()})).collect::<Vec<_>>(),
                "why": why_group,
            }));
        }
        let n_ds: usize = groups.iter().map(Vec::len).sum();
        let (repoint, excluded, kept) = self.plan_moves(&moves);
        let find = self.step_id();
        self.plan.steps.push(Step::new(
            find.clone(),
            StepKind::FindDuplicateDatasources,
            format!(
                "Consolidation opportunities for {n_ds} datasources in {scope_label} ({} groups, {} redundant)",
                groups.len(),
                moves.len()
            ),
            vec![],
            found_items,
            vec![],
            json!({
                "scanned": candidates.len(), "groups": group_details, "excluded": excluded,
                "rule": "same connection (server, database, table or custom SQL), or the same name apart from copy words with 70 %+ of the fields in common",
            }),
        ));
        if moves.is_empty() {
            self.plan.notes.push(format!(
                "Nothing to do: no duplicate or similar published datasources in {scope_label} ({} scanned).",
                candidates.len()
            ));
            return;
        }
        // A redundant datasource is archived only when nothing is left on it.
        let archivable: Vec<&'a Datasource> = moves
            .iter()
            .map(|m| m.from)
            .filter(|d| !kept.contains_key(&d.id))
            .filter(|d| self.protected_reason(&d.project_id, &d.tags).is_none())
            .collect();
        for m in &moves {
            if let Some(n) = kept.get(&m.from.id) {
                self.plan.notes.push(format!(
                    "'{}' stays where it is: {n} workbook{} cannot move to '{}' (see the excluded list)",
                    m.from.name,
                    if *n == 1 { "" } else { "s" },
                    m.to.name
                ));
            }
        }
        let choice = self.question(
            format!(
                "Consolidation opportunities for {n_ds} datasources in {scope_label}: {} groups. Repoint {} workbooks to the canonical datasources and archive {} redundant ones ({} workbooks excluded), review the list first, or cancel?",
                groups.len(),
                repoint.len(),
                archivable.len(),
                excluded.len()
            ),
            vec!["consolidate-all".into(), "review".into(), "cancel".into()],
            Some("review"),
        );
        if choice.as_deref() == Some("cancel") {
            self.plan.notes.push("You chose cancel: no changes are planned.".into());
            return;
        }
        let mut depends = vec![find.clone()];
        if !repoint.is_empty() {
            depends.push(self.repoint_step(&moves, &repoint, vec![find.clone()]));
        }
        if archivable.is_empty() {
            return;
        }
        let (dest_id, dest_ref) = self.archive_destination(archive, &archive_name, &mut depends, &find);
        let tag = self.p.policy.archive_tag.clone();
        let dated = format!("archived-{}", day(self.p.now));
        let items: Vec<Item> = archivable
            .iter()
            .map(|d| {
                let to = moves.iter().find(|m| m.from.id == d.id).map(|m| m.to.name.clone()).unwrap_or_default();
                self.datasource_item(d, format!("redundant: its workbooks now use '{to}'"))
            })
            .collect();
        let changes = self.move_and_tag(&items, &archive_name, dest_id.as_ref(), dest_ref.as_ref(), &tag, &dated);
        let n = items.len();
        let s = self.step_id();
        self.plan.steps.push(Step::new(
            s,
            StepKind::ArchiveDatasources,
            format!("Move {n} redundant datasources to \"{archive_name}\" and tag them {tag}"),
            depends,
            items,
            changes,
            Value::Null,
        ));
    }

    // ---------------------------------------------------------------- migration

    /// Grounds a datasource name; on failure asks and answers None.
    fn ground_datasource(&mut self, wanted: &str, role: &str) -> Option<&'a Datasource> {
        let site = self.p.site;
        let all: Vec<&'a Datasource> = site.datasources.iter().collect();
        match ground(wanted, &all, |d| vec![d.name.clone(), d.content_url.clone()]) {
            Grounded::One(d, q) => {
                if q != ground::Quality::Exact {
                    self.plan.notes.push(format!("'{wanted}' was read as the datasource '{}'", d.name));
                }
                Some(d)
            }
            Grounded::Many(ds) => {
                let choices: Vec<String> = ds.iter().map(|d| d.name.clone()).collect();
                let a = self.question(
                    format!("Which datasource is the {role} '{wanted}'? {}", choices.join(", ")),
                    choices,
                    None,
                )?;
                ds.into_iter().find(|d| d.name.eq_ignore_ascii_case(&a))
            }
            Grounded::None => {
                let names = ground::closest(wanted, site.datasources.iter().map(|d| d.name.as_str()), 5);
                let near = if names.is_empty() { String::new() } else { format!(" Closest: {}", names.join(", ")) };
                self.ask(
                    format!("There is no datasource named '{wanted}' on this site. Which one is the {role}?{near}"),
                    names,
                    None,
                );
                None
            }
        }
    }

    /// The replacement of a deprecated datasource: named in its note, else the certified
    /// datasource reading the same data, else the most similar certified one.
    fn replacement_of(&self, d: &'a Datasource) -> Option<(&'a Datasource, String)> {
        let site = self.p.site;
        let usable = |x: &&'a Datasource| x.id != d.id && is_deprecated(x).is_none();
        if let Some(name) = named_replacement(d)
            && let Some(r) = site.datasources.iter().filter(usable).find(|x| x.name.eq_ignore_ascii_case(&name))
        {
            return Some((r, format!("named in its note (\"{}\")", d.certification_note.as_deref().unwrap_or(&name))));
        }
        let key = connection_key(d);
        if key.is_some()
            && let Some(r) = site
                .datasources
                .iter()
                .filter(usable)
                .filter(|x| connection_key(x) == key)
                .max_by_key(|x| (x.certified, x.total_hits))
        {
            return Some((r, format!("reads {}", connection_label(d))));
        }
        site.datasources
            .iter()
            .filter(usable)
            .filter(|x| x.certified)
            .map(|x| (x, overlap(&d.fields, &x.fields)))
            .filter(|(_, o)| *o >= FIELD_OVERLAP)
            .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.name.cmp(&a.0.name)))
            .map(|(x, o)| (x, format!("certified, with {:.0} % of its fields", o * 100.0)))
    }

    pub(crate) fn migrate(&mut self, intent: &Migrate) {
        let site = self.p.site;
        let Some((scope, scope_label)) = self.datasource_scope(text(&intent.project)) else { return };
        let from = text(&intent.from).filter(|f| !f.eq_ignore_ascii_case("deprecated"));
        let sources: Vec<(&'a Datasource, String)> = match from {
            Some(name) => match self.ground_datasource(name, "datasource to replace") {
                Some(d) => vec![(d, is_deprecated(d).unwrap_or_else(|| "named in the request".into()))],
                None => return,
            },
            None => site
                .datasources
                .iter()
                .filter(|d| scope.as_ref().is_none_or(|s| s.contains(&d.project_id)))
                .filter_map(|d| is_deprecated(d).map(|why| (d, why)))
                .collect(),
        };
        let named_to = match text(&intent.to) {
            Some(name) => match self.ground_datasource(name, "replacement") {
                Some(d) => Some(d),
                None => return,
            },
            None => None,
        };
        let mut moves: Vec<Move<'a>> = vec![];
        let mut found = vec![];
        let mut no_replacement = vec![];
        for (d, why) in &sources {
            let users = self.workbooks_using(&d.id).len();
            let to = match named_to {
                Some(t) if t.id == d.id => {
                    self.ask(
                        format!("'{}' cannot replace itself. Which datasource replaces it?", d.name),
                        vec![],
                        None,
                    );
                    return;
                }
                Some(t) => Some((t, "named in the request".to_string())),
                None => self.replacement_of(d),
            };
            match to {
                Some((t, how)) => {
                    found.push(self.datasource_item(
                        d,
                        format!("deprecated ({why}); replacement '{}' ({how}); {users} workbooks use it", t.name),
                    ));
                    moves.push(Move { from: d, to: t, why: format!("{why}; replacement {how}") });
                }
                None => {
                    found.push(self.datasource_item(d, format!("deprecated ({why}); no replacement found")));
                    no_replacement.push(*d);
                }
            }
        }
        let (repoint, excluded, _kept) = self.plan_moves(&moves);
        let find = self.step_id();
        let n_src = sources.len();
        self.plan.steps.push(Step::new(
            find.clone(),
            StepKind::FindDeprecatedDatasources,
            format!(
                "Find deprecated datasources in {scope_label} and the workbooks using them: {n_src} datasource{}, {} workbooks to repoint, {} excluded",
                if n_src == 1 { "" } else { "s" },
                repoint.len(),
                excluded.len()
            ),
            vec![],
            found,
            vec![],
            json!({
                "migrations": moves.iter().map(|m| json!({"from": m.from.name, "to": m.to.name, "why": m.why, "workbooks": self.workbooks_using(&m.from.id).len()})).collect::<Vec<_>>(),
                "excluded": excluded,
                "lineage": "workbooks' published datasources and used fields from the Metadata API",
            }),
        ));
        if let [d] = no_replacement.as_slice() {
            self.ask(
                format!("No replacement for the deprecated datasource '{}' was found (no note naming one, no certified datasource with the same connection or most of its fields). Which datasource replaces it?", d.name),
                vec![],
                None,
            );
            return;
        } else if !no_replacement.is_empty() {
            self.plan.notes.push(format!(
                "No replacement found for {}; name one with: migrate workbooks from '<deprecated>' to '<replacement>'",
                no_replacement.iter().map(|d| format!("'{}'", d.name)).collect::<Vec<_>>().join(", ")
            ));
        }
        if repoint.is_empty() {
            let what = if sources.is_empty() {
                format!("no deprecated datasources in {scope_label} (by tag, certification note or name)")
            } else if excluded.is_empty() {
                "no workbook uses the deprecated datasources".to_string()
            } else {
                format!("all {} workbooks using them are excluded (see the list)", excluded.len())
            };
            self.plan.notes.push(format!("Nothing to do: {what}."));
            return;
        }
        let pairs: Vec<String> = moves.iter().map(|m| format!("'{}' → '{}'", m.from.name, m.to.name)).collect();
        let choice = self.question(
            format!(
                "Repoint {} workbooks ({}){}? Migrate all, review the list first, or cancel?",
                repoint.len(),
                pairs.join(", "),
                if excluded.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; {} excluded because they use fields the replacement lacks or are protected",
                        excluded.len()
                    )
                }
            ),
            vec!["migrate-all".into(), "review".into(), "cancel".into()],
            Some("review"),
        );
        if choice.as_deref() == Some("cancel") {
            self.plan.notes.push("You chose cancel: no changes are planned.".into());
            return;
        }
        self.repoint_step(&moves, &repoint, vec![find]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replacement_named_after_characters_that_grow_in_lower_case_is_found() {
        let mut d = tabflow_site::generate::demo().datasources.swap_remove(0);
        for (note, want) in [
            ("İİ use ‘Finance GL’ instead", Some("Finance GL")),
            ("İİİİİİ USE 'X' please", Some("X")),
            ("ẞİ use", None),
            ("use ‘", None),
            ("İ use \"Ledger\u{301}\"", Some("Ledger\u{301}")),
        ] {
            d.certification_note = Some(note.to_string());
            d.description = String::new();
            assert_eq!(named_replacement(&d).as_deref(), want, "{note}");
        }
    }

    #[test]
    fn copy_words_do_not_make_names_differ() {
        assert_eq!(base_name("Sales Orders (copy)"), base_name("Sales_Orders_v2"));
        assert_eq!(base_name("Budget Actuals - Copy"), "budget actuals");
        assert_ne!(base_name("Finance GL (legacy)"), base_name("Finance GL"));
    }

    fn plan_for(
        site: &tabflow_site::Site,
        name: &str,
        params: Value,
        answers: &[(&str, &str)],
    ) -> tabflow_plan::plan::Plan {
        let policy = tabflow_plan::policy::Policy::default();
        let p = crate::Planner {
            site,
            site_ref: tabflow_plan::plan::SiteRef { server: "demo".into(), content_url: String::new(), id: "s".into() },
            policy: &policy,
            signed_in: "admin".into(),
            now: site.now,
            answers: answers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            usage_source: "test".into(),
            learned: Default::default(),
            license_notices: vec![],
        };
        let params = params.as_object().cloned().unwrap_or_default();
        crate::plan("test", vec![tabflow_plan::Intent::from_parts(name, params).unwrap()], &p)
    }

    #[test]
    fn finance_consolidation_finds_the_three_groups() {
        let site = tabflow_site::generate::demo();
        let plan =
            plan_for(&site, "consolidate-datasources", json!({"project": "Finance"}), &[("q1", "consolidate-all")]);
        assert!(plan.questions.is_empty(), "{:?}", plan.questions);
        assert!(
            plan.steps[0].title.starts_with("Consolidation opportunities for 8 datasources"),
            "{}",
            plan.steps[0].title
        );
        let repoint = plan.steps.iter().find(|s| s.kind == StepKind::RepointWorkbooks).unwrap();
        let archive = plan.steps.iter().find(|s| s.kind == StepKind::ArchiveDatasources).unwrap();
        assert_eq!(archive.items.len(), 5);
        // Every workbook on a redundant datasource is repointed to a certified one.
        let redundant: BTreeSet<&str> = archive.items.iter().map(|i| i.id.as_str()).collect();
        let expected: BTreeSet<&str> = site
            .workbooks
            .iter()
            .filter(|w| w.datasource_ids.iter().any(|d| redundant.contains(d.as_str())))
            .map(|w| w.id.as_str())
            .collect();
        assert_eq!(repoint.items.iter().map(|i| i.id.as_str()).collect::<BTreeSet<_>>(), expected);
        for c in &repoint.changes {
            let to = site.datasources.iter().find(|d| Some(&d.id) == c.after_id.as_ref()).unwrap();
            assert!(to.certified, "{}", to.name);
        }
    }

    #[test]
    fn migration_excludes_the_workbook_using_a_missing_field() {
        let site = tabflow_site::generate::demo();
        let plan = plan_for(
            &site,
            "migrate-datasource",
            json!({"from": "deprecated", "project": "Finance"}),
            &[("q1", "migrate-all")],
        );
        assert!(plan.questions.is_empty(), "{:?}", plan.questions);
        let repoint = plan.steps.iter().find(|s| s.kind == StepKind::RepointWorkbooks).unwrap();
        assert_eq!(repoint.items.len(), 4);
        let excluded = plan.steps[0].details["excluded"].as_array().unwrap();
        assert_eq!(excluded.len(), 1);
        assert!(excluded[0]["reason"].as_str().unwrap().contains("Legacy Cost Center"));
        // Nothing deprecated in a project without any: nothing to do, no write step.
        let none =
            plan_for(&site, "migrate-datasource", json!({"from": "deprecated", "project": "Admin Insights"}), &[]);
        assert!(none.steps.iter().all(|s| !s.is_write()));
        assert!(none.notes.iter().any(|n| n.starts_with("Nothing to do")), "{:?}", none.notes);
    }

    #[test]
    fn a_note_names_the_replacement() {
        let site = tabflow_site::generate::demo();
        let legacy = site.datasources.iter().find(|d| d.name == "Finance GL (legacy)").unwrap();
        assert_eq!(named_replacement(legacy).as_deref(), Some("Finance General Ledger"));
        assert!(is_deprecated(legacy).unwrap().contains("deprecated"));
        let gl = site.datasources.iter().find(|d| d.name == "Finance General Ledger").unwrap();
        assert_eq!(is_deprecated(gl), None);
        assert_eq!(named_replacement(gl), None);
    }
}
