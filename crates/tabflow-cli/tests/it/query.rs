//! `tabflow query` and name grounding through the real binary against `tabflow emulator
//! serve` (real HTTP). Expected answers are computed here, independently, from a `tabflow
//! site snapshot` of the same emulator — never copied from tabflow's output — and every
//! test checks that nothing was written to the site.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;

use crate::support::{Emu, ok_json, run, serve, snapshot_with, stats, step, text};

/// Writes (POST/PUT/DELETE other than sign-in) the emulator has seen.
fn writes(emu: &Emu) -> u64 {
    stats(emu)["writes"].as_u64().unwrap()
}

/// The site as `tabflow site snapshot` reads it through the API (with usage: the oracle of
/// the questions about views).
fn snapshot(home: &Path, emu: &Emu) -> Value {
    snapshot_with(home, emu, "oracle.json", &[]).1
}

fn query(home: &Path, emu: &Emu, question: &str) -> Value {
    let o = run(home, emu, &["query", question, "--json"]);
    assert!(o.status.success(), "{question}: exit {:?}\n{}\n{}", o.status.code(), text(&o.stderr), text(&o.stdout));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{question}: {e}: {}", text(&o.stdout)));
    assert_eq!(v["question"], question);
    v
}

/// The independent oracle: plain JSON walking over the snapshot.
struct Oracle<'a> {
    site: &'a Value,
    user_name: HashMap<&'a str, &'a str>,
    parent: HashMap<&'a str, Option<&'a str>>,
    project_name: HashMap<&'a str, &'a str>,
}

impl<'a> Oracle<'a> {
    fn new(site: &'a Value) -> Self {
        let arr = |k: &str| site[k].as_array().unwrap();
        Oracle {
            site,
            user_name: arr("users").iter().map(|u| (s(&u["id"]), s(&u["name"]))).collect(),
            parent: arr("projects").iter().map(|p| (s(&p["id"]), p["parent_id"].as_str())).collect(),
            project_name: arr("projects").iter().map(|p| (s(&p["id"]), s(&p["name"]))).collect(),
        }
    }

    fn all(&self, k: &str) -> &'a Vec<Value> {
        self.site[k].as_array().unwrap()
    }

    fn project_id(&self, name: &str) -> &'a str {
        self.all("projects").iter().find(|p| p["name"] == name).map(|p| s(&p["id"])).unwrap()
    }

    /// Is project `id` `root` or nested under it?
    fn under(&self, id: &str, root: &str) -> bool {
        let mut cur = Some(id);
        while let Some(c) = cur {
            if c == root {
                return true;
            }
            cur = self.parent.get(c).copied().flatten();
        }
        false
    }

    fn path(&self, id: &str) -> String {
        let mut parts = vec![];
        let mut cur = Some(id);
        while let Some(c) = cur {
            parts.push(self.project_name[c]);
            cur = self.parent.get(c).copied().flatten();
        }
        parts.reverse();
        parts.join(" / ")
    }

    fn owner(&self, item: &Value) -> String {
        self.user_name[s(&item["owner_id"])].to_string()
    }
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

fn views(w: &Value) -> u64 {
    w["views"].as_array().unwrap().iter().map(|v| v["total_views"].as_u64().unwrap()).sum()
}

fn last_view(w: &Value) -> Option<DateTime<Utc>> {
    w["views"].as_array().unwrap().iter().filter_map(|v| v["last_viewed_at"].as_str()).map(time).max()
}

fn time(t: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(t).unwrap().with_timezone(&Utc)
}

/// Column `name` of every row, as strings.
fn column(answer: &Value, name: &str) -> Vec<String> {
    let i = answer["columns"]
        .as_array()
        .unwrap()
        .iter()
        .position(|c| c == name)
        .unwrap_or_else(|| panic!("no column {name}: {answer}"));
    answer["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[i].as_str().map(str::to_string).unwrap_or_else(|| r[i].to_string()))
        .collect()
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

/// (workbook, owner) pairs of the rows: names alone repeat across projects.
fn pairs(answer: &Value) -> Vec<(String, String)> {
    sorted(column(answer, "workbook").into_iter().zip(column(answer, "owner")).collect())
}

#[test]
fn answers_match_values_computed_from_a_snapshot() {
    let emu = serve();
    let home = tempfile::tempdir().unwrap();
    let site = snapshot(home.path(), &emu);
    let o = Oracle::new(&site);
    let workbooks = o.all("workbooks");
    let users = o.all("users");
    let before = writes(&emu);

    // Counts: a project includes its sub-projects.
    let finance = o.project_id("Finance");
    let a = query(home.path(), &emu, "How many workbooks are in the Finance project?");
    let expected = workbooks.iter().filter(|w| o.under(s(&w["project_id"]), finance)).count();
    assert!(expected > 0);
    assert_eq!((a["kind"].as_str(), a["total"].as_u64()), (Some("count"), Some(expected as u64)), "{a}");
    assert_eq!(a["rows"][0][0], expected);

    let a = query(home.path(), &emu, "how many users are Creators");
    let creators = ["Creator", "SiteAdministratorCreator", "ServerAdministrator"];
    let expected = users.iter().filter(|u| creators.contains(&s(&u["site_role"]))).count();
    assert_eq!(a["total"], expected, "{a}");

    let a = query(home.path(), &emu, "number of certified datasources");
    assert_eq!(a["total"], o.all("datasources").iter().filter(|d| d["certified"] == true).count());

    // Lists.
    let a = query(home.path(), &emu, "List all users in the Finance group");
    let group = o.all("groups").iter().find(|g| g["name"] == "Finance").unwrap();
    let expected: BTreeSet<String> =
        group["members"].as_array().unwrap().iter().map(|id| o.user_name[s(id)].to_string()).collect();
    assert_eq!(column(&a, "user").into_iter().collect::<BTreeSet<_>>(), expected);
    assert_eq!(a["total"], expected.len());

    // Who owns X (unique name).
    let a = query(home.path(), &emu, "Who owns the Cash Flow Summary workbook?");
    let expected: Vec<String> =
        workbooks.iter().filter(|w| w["name"] == "Cash Flow Summary").map(|w| o.owner(w)).collect();
    assert_eq!(expected.len(), 1);
    assert_eq!(column(&a, "owner"), expected, "{a}");
    let d = o.all("datasources").iter().find(|d| d["name"] == "Sales Orders").unwrap();
    let a = query(home.path(), &emu, "who owns sales orders?");
    assert_eq!(column(&a, "owner"), vec![o.owner(d)], "{a}");
    assert_eq!(column(&a, "type"), vec!["datasource"]);

    // Most viewed, in a project.
    let marketing = o.project_id("Marketing");
    let a = query(home.path(), &emu, "top 5 most viewed workbooks in Marketing");
    let mut in_marketing: Vec<&Value> = workbooks.iter().filter(|w| o.under(s(&w["project_id"]), marketing)).collect();
    in_marketing.sort_by_key(|w| std::cmp::Reverse(views(w)));
    let top: Vec<String> = in_marketing.iter().take(5).map(|w| views(w).to_string()).collect();
    assert_eq!(column(&a, "views"), top, "{a}");
    assert_eq!(a["total"], in_marketing.len());
    for (name, project) in column(&a, "workbook").iter().zip(column(&a, "project")) {
        assert!(project.starts_with("Marketing"), "{name} is in {project}");
    }

    // Not viewed in N days, as of the moment the answer was computed.
    let a = query(home.path(), &emu, "Which workbooks haven't been viewed in the last 30 days?");
    let cutoff = time(s(&a["as_of"])) - Duration::days(30);
    let expected: Vec<(String, String)> = sorted(
        workbooks
            .iter()
            .filter(|w| time(s(&w["created_at"])) <= cutoff)
            .filter(|w| match last_view(w) {
                Some(l) => l < cutoff,
                None => views(w) == 0,
            })
            .map(|w| (s(&w["name"]).to_string(), o.owner(w)))
            .collect(),
    );
    assert!(!expected.is_empty());
    assert_eq!(pairs(&a), expected);

    // Not signed in for N days (never signed in counts).
    let a = query(home.path(), &emu, "users who have not signed in for 60 days");
    let cutoff = time(s(&a["as_of"])) - Duration::days(60);
    let expected: BTreeSet<String> = users
        .iter()
        .filter(|u| u["last_login"].as_str().is_none_or(|t| time(t) < cutoff))
        .map(|u| s(&u["name"]).to_string())
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(column(&a, "user").into_iter().collect::<BTreeSet<_>>(), expected);

    // Lineage both ways.
    let ds_name: HashMap<&str, &str> = o.all("datasources").iter().map(|d| (s(&d["id"]), s(&d["name"]))).collect();
    let w = workbooks.iter().find(|w| w["name"] == "Cash Flow Summary").unwrap();
    let a = query(home.path(), &emu, "what datasources does Cash Flow Summary use?");
    let expected: Vec<String> =
        sorted(w["datasource_ids"].as_array().unwrap().iter().map(|id| ds_name[s(id)].to_string()).collect());
    assert!(!expected.is_empty());
    assert_eq!(sorted(column(&a, "datasource")), expected);

    let gl = o.all("datasources").iter().find(|d| d["name"] == "Finance GL").unwrap();
    let a = query(home.path(), &emu, "which workbooks use Finance GL?");
    let expected: Vec<(String, String)> = sorted(
        workbooks
            .iter()
            .filter(|w| w["datasource_ids"].as_array().unwrap().contains(&gl["id"]))
            .map(|w| (s(&w["name"]).to_string(), o.owner(w)))
            .collect(),
    );
    assert!(!expected.is_empty());
    assert_eq!(pairs(&a), expected);

    // Grouped counts.
    let a = query(home.path(), &emu, "workbooks per project");
    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    for w in workbooks {
        *expected.entry(o.path(s(&w["project_id"]))).or_default() += 1;
    }
    let got: BTreeMap<String, u64> =
        column(&a, "project").into_iter().zip(column(&a, "workbooks").iter().map(|n| n.parse().unwrap())).collect();
    assert_eq!(got, expected);

    let a = query(home.path(), &emu, "how many workbooks does each owner have?");
    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    for w in workbooks {
        *expected.entry(o.owner(w)).or_default() += 1;
    }
    let got: BTreeMap<String, u64> =
        column(&a, "owner").into_iter().zip(column(&a, "workbooks").iter().map(|n| n.parse().unwrap())).collect();
    assert_eq!(got, expected);

    // The text form carries the same figure.
    let out = run(home.path(), &emu, &["query", "how many workbooks are in Finance"]);
    let expected = workbooks.iter().filter(|w| o.under(s(&w["project_id"]), finance)).count();
    assert!(text(&out.stdout).starts_with(&format!("{expected} workbooks in Finance")), "{}", text(&out.stdout));

    assert_eq!(writes(&emu), before, "a query wrote to the site");
}

#[test]
fn unclear_questions_and_names_are_answered_with_candidates_never_a_guess() {
    let emu = serve();
    let home = tempfile::tempdir().unwrap();
    let before = writes(&emu);

    // Not understood: says so, lists examples, exit 1.
    let o = run(home.path(), &emu, &["query", "make me a sandwich"]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(err.contains("could not understand") && err.contains("how many workbooks are in Finance"), "{err}");
    assert!(o.stdout.is_empty());

    // Ambiguous first name: both candidates, exit 3 (needs input).
    let o = run(home.path(), &emu, &["query", "workbooks owned by John", "--json"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["error"]["kind"], "ambiguous");
    let c = v["error"]["candidates"].to_string();
    assert!(c.contains("John Smith (jsmith)") && c.contains("John Doe (jdoe)"), "{c}");

    // Missing project: "no project named …, did you mean …", exit 1.
    let o = run(home.path(), &emu, &["query", "how many workbooks are in the Financial Planning project"]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(
        err.contains("no project named 'Financial Planning'")
            && err.contains("did you mean")
            && err.contains("Finance"),
        "{err}"
    );

    // Misspelled project: read as Finance and shown.
    let a = query(home.path(), &emu, "how many workbooks are in Finanse?");
    assert!(a["notes"].to_string().contains("'Finanse' was read as the project 'Finance'"), "{a}");
    let b = query(home.path(), &emu, "how many workbooks are in Finance?");
    assert_eq!(a["total"], b["total"]);

    assert_eq!(writes(&emu), before);
}

/// `tabflow plan --json`, parsed.
fn plan(home: &Path, emu: &Emu, sentence: &str, extra: &[&str]) -> Value {
    let mut args = vec!["plan", "--json", sentence];
    args.extend_from_slice(extra);
    ok_json(&run(home, emu, &args), sentence)
}

fn write_steps(p: &Value) -> usize {
    p["steps"].as_array().unwrap().iter().filter(|s| s["effect"] != "read").count()
}

fn questions(p: &Value) -> String {
    p["questions"].as_array().unwrap().iter().map(|q| s(&q["text"]).to_string()).collect::<Vec<_>>().join(" | ")
}

/// The user an offboarding plan grounded (its inventory step's item).
fn offboarded(p: &Value) -> String {
    let step = step(p, "inventory-user").unwrap_or_else(|| panic!("{p}"));
    s(&step["items"][0]["name"]).to_string()
}

#[test]
fn plans_ground_names_in_sentences_on_the_demo_site() {
    let emu = serve();
    let home = tempfile::tempdir().unwrap();
    let before = writes(&emu);

    // Ambiguous first name: a question listing both Johns, no write step.
    let p = plan(home.path(), &emu, "John is leaving the company; transfer his content to Tom Baker", &[]);
    let q = questions(&p);
    assert!(q.contains("John Smith (jsmith") && q.contains("John Doe (jdoe"), "{q}");
    assert_eq!(write_steps(&p), 0, "{p}");
    assert_eq!(p["intents"][0]["params"]["user"], "John", "the intent keeps what the user wrote");
    // Answering the question picks exactly that John.
    let p = plan(
        home.path(),
        &emu,
        "John is leaving the company; transfer his content to Tom Baker",
        &["--answer", "q1=jdoe"],
    );
    assert_eq!(offboarded(&p), "jdoe");
    assert!(p["questions"].as_array().unwrap().is_empty(), "{}", questions(&p));

    // Ambiguous name inside a query intent: the same kind of question.
    let p = plan(home.path(), &emu, "How many workbooks does John own?", &[]);
    assert!(questions(&p).contains("jsmith") && questions(&p).contains("jdoe"), "{p}");
    assert!(p["steps"].as_array().unwrap().is_empty());

    // Missing user and missing project: a question, nothing planned to write.
    let p = plan(home.path(), &emu, "Offboard Zed Zebra and give his workbooks to Tom Baker", &[]);
    assert!(questions(&p).contains("no user 'Zed Zebra'"), "{}", questions(&p));
    assert_eq!(write_steps(&p), 0);
    let p = plan(home.path(), &emu, "Archive workbooks in the Narnia project not viewed in 90 days", &[]);
    assert!(questions(&p).contains("no project named 'Narnia'"), "{}", questions(&p));
    assert_eq!(write_steps(&p), 0);
    let p = plan(home.path(), &emu, "How many workbooks are in the Narnia project?", &[]);
    assert!(questions(&p).contains("no project named 'Narnia'"), "{}", questions(&p));

    // Misspelled project: read as Finance, shown in the notes, items all in Finance.
    let p = plan(home.path(), &emu, "Archive workbooks in Finanse not viewed in 90 days", &[]);
    assert!(p["notes"].to_string().contains("'Finanse' was read as the project 'Finance'"), "{}", p["notes"]);
    let items = p["steps"][0]["items"].as_array().unwrap();
    assert!(!items.is_empty());
    let finance_tree = ["Finance", "Quarterly Reporting", "Year-End Close", "Budgeting"];
    assert!(items.iter().all(|i| finance_tree.contains(&s(&i["project"]))), "{items:?}");

    // Case and accents.
    let upper = plan(home.path(), &emu, "archive workbooks in FINANCE that nobody opened in 90 days", &[]);
    assert_eq!(upper["steps"][0]["items"], p["steps"][0]["items"]);
    let p = plan(home.path(), &emu, "María García is leaving, give her dashboards to Tom Baker", &[]);
    assert_eq!(offboarded(&p), "mgarcia");
    assert!(p["notes"].to_string().contains("Maria Garcia (mgarcia)"), "{}", p["notes"]);

    // Email and username forms.
    let p = plan(home.path(), &emu, "offboard jdoe@example.com and hand his content to Sarah Lee", &[]);
    assert_eq!(offboarded(&p), "jdoe");
    let p = plan(home.path(), &emu, "jsmith leaves next week: reassign his workbooks to tbaker", &[]);
    assert_eq!(offboarded(&p), "jsmith");
    let transfer = step(&p, "transfer-ownership").unwrap();
    assert!(transfer["changes"].as_array().unwrap().iter().all(|c| c["after"] == "tbaker"), "{transfer}");

    // Planning never writes.
    assert_eq!(writes(&emu), before);
}

/// `tabflow ask` with a question: the answer ends the output (no "Nothing to change." after
/// a plan that only answered questions); a read-only plan that is not a question still ends
/// with "Nothing to change.". Nothing is written either way.
#[test]
fn ask_with_a_question_ends_with_the_answer() {
    let emu = serve();
    let home = tempfile::tempdir().unwrap();
    let site = snapshot(home.path(), &emu);
    let o = Oracle::new(&site);
    let before = writes(&emu);

    let finance = o.project_id("Finance");
    let expected = o.all("workbooks").iter().filter(|w| o.under(s(&w["project_id"]), finance)).count();
    let out = run(home.path(), &emu, &["ask", "How many workbooks are in the Finance project?"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.lines().any(|l| l.split_whitespace().any(|w| w == expected.to_string())), "{stdout}");
    assert!(!stdout.contains("Nothing to change"), "{stdout}");

    // An audit reads and reports (issue #18): a run that changes nothing writes its report
    // files and says where; there is nothing to undo.
    let out =
        run(home.path(), &emu, &["ask", "Audit permissions in the Finance project", "--answer", "q1=report-only"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("Report   html"), "{stdout}");
    assert!(!stdout.contains("Undo") && !stdout.contains("Nothing to change"), "{stdout}");

    // Without a terminal, a plan that asks is shown once, on stdout, with how to answer.
    let out = run(home.path(), &emu, &["ask", "Archive Finance workbooks not accessed in 90+ days"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(stdout.matches("Plan p-").count(), 1, "{stdout}");
    assert!(!stderr.contains("Plan p-"), "{stderr}");
    assert!(stdout.contains("--answer q1=CHOICE"), "{stdout}");

    assert_eq!(writes(&emu), before);
}

/// Issue #18: the four questions a new user asked, answered as values computed from a
/// snapshot of the same emulator.
#[test]
fn a_new_users_questions_are_answered() {
    let emu = serve();
    let home = tempfile::tempdir().unwrap();
    let site = snapshot(home.path(), &emu);
    let o = Oracle::new(&site);
    let workbooks = o.all("workbooks");
    let before = writes(&emu);

    // Who owns the most workbooks: every owner with the top count.
    let mut per_owner: BTreeMap<String, usize> = BTreeMap::new();
    for w in workbooks {
        *per_owner.entry(o.owner(w)).or_default() += 1;
    }
    let top = per_owner.values().copied().max().unwrap();
    let want: Vec<String> = per_owner.iter().filter(|(_, n)| **n == top).map(|(k, _)| k.clone()).collect();
    let a = query(home.path(), &emu, "who owns the most workbooks");
    assert_eq!(a["kind"], "most");
    assert_eq!(sorted(column(&a, "owner")), want, "{a}");
    assert!(column(&a, "workbooks").iter().all(|n| *n == top.to_string()), "{a}");

    // How many workbooks in total.
    let a = query(home.path(), &emu, "how many workbooks are there in total");
    assert_eq!((a["kind"].as_str(), a["total"].as_u64()), (Some("count"), Some(workbooks.len() as u64)), "{a}");

    // When was Opex Analysis last viewed.
    let opex: Vec<&Value> = workbooks.iter().filter(|w| w["name"] == "Opex Analysis").collect();
    assert_eq!(opex.len(), 1);
    let want = last_view(opex[0]).map(|t| t.format("%Y-%m-%d").to_string());
    let a = query(home.path(), &emu, "when was Opex Analysis last viewed");
    assert_eq!(a["kind"], "facts");
    let got = column(&a, "last_viewed");
    assert_eq!(got, vec![want.clone().unwrap_or_else(|| "null".into())], "{a}");
    assert!(a["summary"].as_str().unwrap().contains("Opex Analysis"), "{a}");

    // Which projects have no workbooks: only those, not all projects with counts.
    let used: BTreeSet<&str> = workbooks.iter().map(|w| s(&w["project_id"])).collect();
    let want: Vec<String> =
        sorted(o.all("projects").iter().filter(|p| !used.contains(s(&p["id"]))).map(|p| o.path(s(&p["id"]))).collect());
    assert!(!want.is_empty() && want.len() < o.all("projects").len());
    let a = query(home.path(), &emu, "which projects have no workbooks");
    assert_eq!(sorted(column(&a, "project")), want, "{a}");
    assert_eq!(a["total"].as_u64(), Some(want.len() as u64));

    assert_eq!(writes(&emu), before, "a query wrote to the site");
}

/// A request tabflow cannot do: exit 1, "I can't do that yet", what it can do; no plan of
/// the nearest workflow and nothing written.
#[test]
fn requests_tabflow_cannot_do_end_with_i_cant_do_that_yet() {
    let emu = serve();
    let home = tempfile::tempdir().unwrap();
    let before = writes(&emu);
    for request in ["rename the Finance project", "export all workbooks to PDF", "make me a sandwich"] {
        let o = run(home.path(), &emu, &["plan", request]);
        assert_eq!(o.status.code(), Some(1), "{request}: {}", text(&o.stdout));
        let err = text(&o.stderr);
        assert!(err.contains(&format!("error: I can't do that yet: \"{request}\"")), "{request}: {err}");
        assert!(err.contains("hint: tabflow can archive stale content"), "{err}");
        assert!(o.stdout.is_empty(), "{request}: {}", text(&o.stdout));
    }
    // A question the query engine cannot read: exit 1 with the questions it can answer.
    let o = run(home.path(), &emu, &["query", "export all workbooks to PDF"]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(err.contains("error: I can't do that yet") && err.contains("who owns the most workbooks"), "{err}");
    assert_eq!(writes(&emu), before);
}
