//! Shared helpers of the end-to-end tests: the real binary, `tabflow emulator serve` on a
//! free port (one per test), snapshots and diffs through the binary, a tiny HTTP client for
//! the emulator's control routes, state comparison, and the PostgreSQL test database.
//!
//! The tests of every module run concurrently in this one process: nothing here may set
//! environment variables or change the current directory (each command gets its own `env`
//! and its test's own `TABFLOW_HOME`), and every server listens on port 0.
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tabflow"))
}

pub struct Emu(pub Child, pub String);

impl Drop for Emu {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The demo site served with a fixed clock, so plans are reproducible within a test.
pub fn serve() -> Emu {
    serve_with(&[])
}

pub fn serve_with(extra: &[&str]) -> Emu {
    let mut child = bin()
        .args(["emulator", "serve", "--port", "0"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = line.trim().to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    Emu(child, url)
}

pub fn cmd(home: &Path, emu: &Emu, args: &[&str]) -> Command {
    let mut c = bin();
    c.args(args)
        .env("TABLEAU_SERVER", &emu.1)
        .env("TABLEAU_SITE", "demo")
        .env("TABFLOW_HOME", home)
        .env("TABLEAU_PAT_NAME", "tabflow")
        .env("TABLEAU_PAT_SECRET", "tabflow")
        .env("TABFLOW_ACTOR", "test-operator")
        .stdin(Stdio::null());
    c
}

pub fn run(home: &Path, emu: &Emu, args: &[&str]) -> Output {
    cmd(home, emu, args).output().unwrap()
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The JSON a command printed, which must have succeeded (`what` names it in failures).
pub fn ok_json(o: &Output, what: &str) -> Value {
    assert!(o.status.success(), "{what} failed: {}\n{}", text(&o.stderr), text(&o.stdout));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {}", text(&o.stdout)))
}

/// Runs a command that prints JSON and must succeed; answers the JSON.
pub fn run_json(home: &Path, emu: &Emu, args: &[&str]) -> Value {
    ok_json(&run(home, emu, args), &format!("{args:?}"))
}

/// `tabflow site snapshot --no-usage -o HOME/NAME`: the file and its JSON.
pub fn snapshot(home: &Path, emu: &Emu, name: &str) -> (PathBuf, Value) {
    let (p, v, _) = snapshot_with(home, emu, name, &["--no-usage"]);
    (p, v)
}

/// `tabflow site snapshot FLAGS -o HOME/NAME`: the file, its JSON and the summary printed on
/// stderr.
pub fn snapshot_with(home: &Path, emu: &Emu, name: &str, flags: &[&str]) -> (PathBuf, Value, String) {
    let p = home.join(name);
    let o = run(home, emu, &[&["site", "snapshot"][..], flags, &["-o", p.to_str().unwrap()]].concat());
    assert!(o.status.success(), "snapshot: {}", text(&o.stderr));
    let v = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    (p, v, text(&o.stderr))
}

/// `tabflow site diff A B --json FLAGS`: its exit code and the diff.
pub fn diff(home: &Path, emu: &Emu, a: &Path, b: &Path, flags: &[&str]) -> (Option<i32>, Value) {
    let o =
        run(home, emu, &[&["site", "diff", a.to_str().unwrap(), b.to_str().unwrap(), "--json"][..], flags].concat());
    let v = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("diff: not JSON ({e}): {}\n{}", text(&o.stdout), text(&o.stderr)));
    (o.status.code(), v)
}

/// A plan's first step of a kind.
pub fn step<'v>(plan: &'v Value, kind: &str) -> Option<&'v Value> {
    plan["steps"].as_array().unwrap().iter().find(|s| s["kind"] == kind)
}

/// The id of a site's user by user name.
pub fn user_id(site: &Value, name: &str) -> String {
    site["users"].as_array().unwrap().iter().find(|u| u["name"] == name).unwrap()["id"].as_str().unwrap().to_string()
}

pub fn http(emu: &Emu, method: &str, path: &str, body: &str) -> String {
    // A tiny blocking HTTP/1.1 client: enough for the emulator's control routes.
    use std::io::{Read, Write};
    let addr = emu.1.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out.split_once("\r\n\r\n").map(|x| x.1.to_string()).unwrap_or_default()
}

pub fn faults(emu: &Emu, json: &str) {
    http(emu, "POST", "/_emulator/faults", json);
}

/// The emulator's request counters (`/_emulator/stats`).
pub fn stats(emu: &Emu) -> Value {
    let body = http(emu, "GET", "/_emulator/stats", "");
    serde_json::from_str(&dechunk(&body[body.find('{').unwrap()..=body.rfind('}').unwrap()])).unwrap()
}

/// The emulator's own view of the site (the test oracle), without `now`/`updated_at` noise.
pub fn state(emu: &Emu) -> Value {
    let body = http(emu, "GET", "/_emulator/snapshot", "");
    // Chunked transfer: take the JSON object between the first '{' and the last '}'.
    let start = body.find('{').unwrap();
    let end = body.rfind('}').unwrap();
    let mut v: Value = serde_json::from_str(&dechunk(&body[start..=end])).unwrap();
    strip(&mut v);
    v
}

/// The first few paths where two states differ (for readable failures).
pub fn differences(a: &Value, b: &Value) -> String {
    fn walk(a: &Value, b: &Value, path: String, out: &mut Vec<String>) {
        if out.len() >= 6 || a == b {
            return;
        }
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                for k in x.keys().chain(y.keys()) {
                    walk(
                        x.get(k).unwrap_or(&Value::Null),
                        y.get(k).unwrap_or(&Value::Null),
                        format!("{path}.{k}"),
                        out,
                    );
                }
            }
            (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
                for (i, (u, v)) in x.iter().zip(y).enumerate() {
                    walk(u, v, format!("{path}[{i}]"), out);
                }
            }
            _ => out.push(format!("{path}: {} vs {}", short(a), short(b))),
        }
    }
    fn short(v: &Value) -> String {
        let s = v.to_string();
        if s.len() > 200 { format!("{}…", &s[..200]) } else { s }
    }
    let mut out = vec![];
    walk(a, b, String::new(), &mut out);
    out.join("\n")
}

pub fn same(a: &Value, b: &Value, what: &str) {
    let (mut a, mut b) = (a.clone(), b.clone());
    strip(&mut a);
    strip(&mut b);
    let (a, b) = (&a, &b);
    assert!(a == b, "{what}:\n{}", differences(a, b));
}

pub fn dechunk(s: &str) -> String {
    // Chunk-size lines look like "\r\n1f4\r\n" inside the body; drop them.
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("\r\n") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        match after.find("\r\n") {
            Some(j) if after[..j].chars().all(|c| c.is_ascii_hexdigit()) && j > 0 => rest = &after[j + 2..],
            _ => rest = after,
        }
    }
    out.push_str(rest);
    out
}

pub fn strip(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for k in ["now", "updated_at", "revision", "last_login"] {
                m.remove(k);
            }
            for (k, x) in m.iter_mut() {
                strip(x);
                // Tags are a set.
                if k == "tags"
                    && let Value::Array(a) = x
                {
                    a.sort_by_key(|t| t.to_string());
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(strip),
        _ => {}
    }
}

/// `request` is an intent and its parameters ("archive-stale-content project=Finance"): the
/// engine is tested here, not the sentence parser.
pub fn plan_file(home: &Path, emu: &Emu, request: &str, answers: &[&str]) -> (std::path::PathBuf, Value) {
    let path = home.join(format!("plan-{}.json", rand_suffix()));
    let mut words = request.split(' ');
    let mut args = vec!["plan", "--intent", words.next().unwrap(), "-o", path.to_str().unwrap(), "--json"];
    let params: Vec<String> = request
        .split(' ')
        .skip(1)
        .map(|p| match p.split_once('=') {
            Some((k, v)) => format!("{k}={}", v.replace('_', " ")),
            None => p.to_string(),
        })
        .collect();
    for p in &params {
        args.push("--param");
        args.push(p);
    }
    for a in answers {
        args.push("--answer");
        args.push(a);
    }
    let o = run(home, emu, &args);
    assert!(o.status.success(), "plan failed: {}\n{}", text(&o.stderr), text(&o.stdout));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    (path, v)
}

pub fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::SeqCst)
}

/// One REST call to the emulator as another administrator would make it (signed in with the
/// demo PAT); `path` is under `/api/3.24/sites/{site}/`. Answers the raw HTTP response.
pub fn rest(emu: &Emu, method: &str, path: &str, body: &str) -> String {
    use std::io::{Read, Write};
    let addr = emu.1.trim_start_matches("http://");
    let signin = r#"<tsRequest><credentials personalAccessTokenName="tabflow" personalAccessTokenSecret="tabflow"><site contentUrl="demo"/></credentials></tsRequest>"#;
    let send = |method: &str, path: &str, body: &str, token: Option<&str>| -> String {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        let auth = token.map(|t| format!("X-Tableau-Auth: {t}\r\n")).unwrap_or_default();
        write!(s, "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    };
    let r = send("POST", "/api/3.24/auth/signin", signin, None);
    let token = r.split("token=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    let site = r.split("<site id=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    std::thread::sleep(std::time::Duration::from_millis(20));
    send(method, &format!("/api/3.24/sites/{site}/{path}"), body, Some(&token))
}

/// Renames a workbook through the REST API, as another administrator would (the name is
/// XML-escaped).
pub fn rename_workbook(emu: &Emu, id: &str, name: &str) {
    let escaped = name.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;");
    let body = format!("<tsRequest><workbook name=\"{escaped}\"/></tsRequest>");
    let r = rest(emu, "PUT", &format!("workbooks/{id}"), &body);
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
}

/// A tiny HTTP/1.0 client (no chunking) for the REST API.
pub fn rest_raw(emu: &Emu, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, Vec<u8>) {
    let (code, _, body) = rest_raw_with_head(emu, method, path, headers, body);
    (code, body)
}

/// [`rest_raw`], also answering the response head.
pub fn rest_raw_with_head(
    emu: &Emu,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String, Vec<u8>) {
    let addr = emu.1.trim_start_matches("http://");
    let mut st = std::net::TcpStream::connect(addr).unwrap();
    let mut req = format!("{method} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    std::io::Write::write_all(&mut st, req.as_bytes()).unwrap();
    std::io::Write::write_all(&mut st, body).unwrap();
    let mut out = vec![];
    std::io::Read::read_to_end(&mut st, &mut out).unwrap();
    let split = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&out[..split]).into_owned();
    let code = head.split(' ').nth(1).unwrap().parse().unwrap();
    (code, head, out[split + 4..].to_vec())
}

pub fn attr_after(xml: &str, anchor: &str, name: &str) -> String {
    let at = xml.find(anchor).unwrap_or_else(|| panic!("no {anchor} in {xml}"));
    let rest = &xml[at..];
    let k = rest.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
    rest[k..k + rest[k..].find('"').unwrap()].to_string()
}

/// Signs in with the emulator's PAT; answers (token, site id).
pub fn sign_in(emu: &Emu) -> (String, String) {
    let body = r#"<tsRequest><credentials personalAccessTokenName="tabflow" personalAccessTokenSecret="tabflow"><site contentUrl="demo"/></credentials></tsRequest>"#;
    let (code, out) =
        rest_raw(emu, "POST", "/api/3.25/auth/signin", &[("Content-Type", "application/xml")], body.as_bytes());
    let xml = text(&out);
    assert_eq!(code, 200, "{xml}");
    (attr_after(&xml, "<credentials", "token"), attr_after(&xml, "<site", "id"))
}

/// Asserts that a `site diff --json` holds exactly the moves of `planned` workbooks to the new
/// project `dest` with their tags (and grants that follow a locked project), and that project.
pub fn only_moved_and_tagged(d: &Value, planned: &std::collections::BTreeSet<String>, dest: &str) {
    for c in d["changes"].as_array().unwrap() {
        let id = c["id"].as_str().unwrap_or_default();
        let ok = match c["resource"].as_str().unwrap() {
            "workbook" => planned.contains(id) && matches!(c["field"].as_str(), Some("project_id" | "tags")),
            "project" => c["kind"] == "added" && id == dest,
            "permission" | "default-permission" => planned.iter().any(|p| id.contains(p.as_str())) || id.contains(dest),
            _ => false,
        };
        assert!(ok, "a change outside the plan: {c}");
    }
    let moved: std::collections::BTreeSet<&str> = d["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["resource"] == "workbook" && c["field"] == "project_id")
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(moved, planned.iter().map(String::as_str).collect(), "exactly the planned workbooks moved");
}

/// The database of the PostgreSQL tests: `TABFLOW_TEST_PG_URL`, by default the project
/// machines' server (127.0.0.1:5432, user postgres, trust auth, database `test`).
pub fn pg_url() -> String {
    std::env::var("TABFLOW_TEST_PG_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// `url` with its password, if any, replaced by `***` (for messages).
fn without_password(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => match url[s + 3..at].find(':') {
            Some(c) => format!("{}:***{}", &url[..s + 3 + c], &url[at..]),
            None => url.to_string(),
        },
        _ => url.to_string(),
    }
}

/// A fresh schema in the PostgreSQL test database, for one test; dropped with the guard (also
/// when the test fails).
pub struct PgSchema {
    pub name: String,
    admin: sqlx::PgPool,
    rt: tokio::runtime::Runtime,
}

impl PgSchema {
    /// Creates the schema `PREFIX_<random>`. When PostgreSQL cannot be reached the test fails
    /// with a message naming the URL, unless `TABFLOW_SKIP_PG=1`: then it says so on stderr
    /// and answers `None`, and the test returns (skipped).
    pub fn create(prefix: &str) -> Option<PgSchema> {
        let url = pg_url();
        let rt = tokio::runtime::Runtime::new().unwrap();
        let admin = match rt.block_on(
            sqlx::postgres::PgPoolOptions::new()
                .max_connections(1)
                .acquire_timeout(std::time::Duration::from_secs(5))
                .connect(&url),
        ) {
            Ok(p) => p,
            Err(e) if std::env::var("TABFLOW_SKIP_PG").as_deref() == Ok("1") => {
                eprintln!("skipped: PostgreSQL not reachable ({e}) and TABFLOW_SKIP_PG=1");
                return None;
            }
            Err(e) => panic!(
                "PostgreSQL at {} is not reachable ({e}); start it, set TABFLOW_TEST_PG_URL to another server, or set TABFLOW_SKIP_PG=1",
                without_password(&url)
            ),
        };
        let schema = PgSchema { name: format!("{prefix}_{}", uuid::Uuid::new_v4().simple()), admin, rt };
        schema.execute(&format!("CREATE SCHEMA {}", schema.name));
        Some(schema)
    }

    /// The test database's URL with this schema as the search path (for `TABFLOW_STORE`).
    pub fn url(&self) -> String {
        let url = pg_url();
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{url}{sep}options=-c%20search_path%3D{}", self.name)
    }

    pub fn execute(&self, sql: &str) {
        self.rt.block_on(sqlx::query(sqlx::AssertSqlSafe(sql.to_string())).execute(&self.admin)).unwrap();
    }

    pub fn count(&self, sql: &str) -> i64 {
        self.rt.block_on(sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string())).fetch_one(&self.admin)).unwrap()
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let sql = format!("DROP SCHEMA {} CASCADE", self.name);
        let _ = self.rt.block_on(sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&self.admin));
        self.rt.block_on(self.admin.close());
    }
}
