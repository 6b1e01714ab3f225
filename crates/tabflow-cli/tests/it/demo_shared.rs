//! One demo site for every process (issue #16): with no server configured, `tabflow serve`
//! hosts the built-in demo site and records its URL and pid in the data directory; a CLI
//! command started meanwhile uses that live site (nothing loaded or saved on its own), so its
//! run is visible through the server; when the server stops it saves the demo site and
//! removes the record; a record whose process is gone is removed and ignored.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

use crate::support::{bin, text};

/// A command of the real binary on the demo site (no server configured) in `home`.
fn demo_cmd(home: &Path, args: &[&str]) -> Command {
    let mut c = bin();
    c.args(args)
        .env_remove("TABLEAU_SERVER")
        .env_remove("TABLEAU_SITE")
        .env_remove("TABFLOW_PROFILE")
        .env_remove("TABFLOW_STORE")
        .env("TABFLOW_HOME", home)
        .env("TABFLOW_ACTOR", "test-operator")
        .stdin(Stdio::null());
    c
}

fn demo_run(home: &Path, args: &[&str]) -> Output {
    demo_cmd(home, args).output().unwrap()
}

/// `tabflow serve` on a free port; stopped (Ctrl-C) by [`Served::stop`], killed on drop.
struct Served {
    child: Child,
    url: String,
}

impl Served {
    fn start(home: &Path) -> Served {
        let mut child = demo_cmd(home, &["serve", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let url = line.split_whitespace().find(|w| w.starts_with("http://")).unwrap_or_default().to_string();
        assert!(url.starts_with("http://127.0.0.1:"), "{line}");
        Served { child, url }
    }

    /// Ctrl-C, as a person stops it; waits for it to end.
    fn stop(mut self) {
        let pid = self.child.id().to_string();
        let st = Command::new("kill").args(["-INT", &pid]).status().unwrap();
        assert!(st.success());
        let status = self.child.wait().unwrap();
        assert!(status.success(), "serve ended with {status}");
    }

    /// A GET of the API with a bearer token: status and JSON body.
    fn get(&self, path: &str, token: &str) -> (u16, Value) {
        let addr = self.url.trim_start_matches("http://");
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        let (head, body) = out.split_once("\r\n\r\n").unwrap();
        let code = head.split(' ').nth(1).unwrap().parse().unwrap();
        (code, serde_json::from_str(body).unwrap_or(Value::Null))
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn finance_count(served: &Served, token: &str) -> u64 {
    let (code, a) = served.get("/api/v1/query?question=how%20many%20workbooks%20are%20in%20Finance", token);
    assert_eq!(code, 200, "{a}");
    a["total"].as_u64().unwrap_or_else(|| panic!("{a}"))
}

#[test]
fn a_cli_run_uses_the_demo_site_serve_hosts_and_shows_in_its_api() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let o = demo_run(h, &["tokens", "create", "watcher", "--role", "viewer"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let token = text(&o.stdout).trim().lines().last().unwrap().trim().to_string();

    let served = Served::start(h);
    // The record: its URL and pid, in the data directory.
    let record: Value =
        serde_json::from_str(&std::fs::read_to_string(h.join("demo-site.live.json")).expect("the record")).unwrap();
    assert_eq!(record["pid"].as_u64(), Some(served.child.id() as u64), "{record}");
    assert!(record["url"].as_str().unwrap().starts_with("http://127.0.0.1:"), "{record}");
    let before = finance_count(&served, &token);

    // The CLI, with the same data directory and no server configured, runs on that live site.
    let o = demo_run(h, &["ask", "Archive Finance workbooks not accessed in 90+ days", "--approve", "all", "--json"]);
    let err = text(&o.stderr);
    assert!(o.status.success(), "{err}\n{}", text(&o.stdout));
    assert!(err.contains("hosts at") && err.contains(record["url"].as_str().unwrap()), "{err}");
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["status"], "succeeded", "{r}");
    let run_id = r["run_id"].as_str().unwrap().to_string();
    let moved = r["steps"].as_array().unwrap().iter().find(|s| s["id"] != "s1").map(|s| s["done"].as_u64().unwrap());
    assert!(moved.is_some_and(|n| n > 0), "{r}");
    assert!(!h.join("demo-site.json").exists(), "the CLI saved no copy of its own");

    // The change is on the server's site, and the run in its list.
    let after = finance_count(&served, &token);
    assert!(after < before, "Finance had {before} workbooks and still has {after}");
    let (code, runs) = served.get("/api/v1/runs", &token);
    assert_eq!(code, 200, "{runs}");
    assert!(runs.as_array().unwrap().iter().any(|x| x["id"] == run_id.as_str()), "{runs}");

    // Stopped, the server saves the demo site and removes the record; the next command
    // (no server running) starts from the saved state.
    served.stop();
    assert!(!h.join("demo-site.live.json").exists(), "the record is removed");
    assert!(h.join("demo-site.json").exists(), "the demo site is saved");
    let o = demo_run(h, &["query", "how many workbooks are in Finance", "--json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let q: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(q["total"].as_u64(), Some(after), "{q}");
    assert!(!text(&o.stderr).contains("hosts at"), "{}", text(&o.stderr));
}

#[test]
fn a_record_whose_process_is_gone_is_removed_and_ignored() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let mut gone = Command::new("true").spawn().unwrap();
    let pid = gone.id();
    gone.wait().unwrap();
    let record = h.join("demo-site.live.json");
    std::fs::write(&record, format!("{{\"url\": \"http://127.0.0.1:9\", \"pid\": {pid}}}")).unwrap();
    let o = demo_run(h, &["query", "how many workbooks are in Finance", "--json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(!text(&o.stderr).contains("hosts at"), "{}", text(&o.stderr));
    assert!(!record.exists(), "the stale record is removed");
}
