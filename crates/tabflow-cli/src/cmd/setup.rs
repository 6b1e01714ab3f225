//! Setting tabflow up: `tabflow config init` (a commented profile in the config file),
//! `tabflow doctor` (is everything reachable and allowed, and what to fix), `tabflow
//! completions SHELL` and `tabflow man [--out DIR]`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;
use tabflow_app::{Connection, Session};

use super::connect::{Connect, data_dir};
use super::workflow::StoreArgs;
use crate::exit::{Code, fail, usage};

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Write a profile (server, site, sign-in, store, concurrency, policy) to the config file,
    /// with a comment on every key. Asks for each setting in a terminal; otherwise (or with
    /// --yes) takes them from the flags. Secrets are never written: only the names of the
    /// environment variables that hold them.
    Init(InitArgs),
}

/// How the profile signs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Auth {
    /// A personal access token: its name here, its secret in an environment variable.
    Pat,
    /// A user name here, the password in an environment variable.
    Password,
    /// A connected-app JWT in an environment variable.
    Jwt,
}

impl Auth {
    fn default_env(self) -> &'static str {
        match self {
            Auth::Pat => "TABLEAU_PAT_SECRET",
            Auth::Password => "TABLEAU_PASSWORD",
            Auth::Jwt => "TABLEAU_JWT",
        }
    }
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// How to sign in.
    #[arg(long, value_enum)]
    auth: Option<Auth>,
    /// The personal access token's name (--auth pat).
    #[arg(long)]
    pat_name: Option<String>,
    /// The user name (--auth password).
    #[arg(long)]
    username: Option<String>,
    /// The environment variable holding the secret (default TABLEAU_PAT_SECRET,
    /// TABLEAU_PASSWORD or TABLEAU_JWT).
    #[arg(long, value_name = "VAR")]
    secret_env: Option<String>,
    /// Do not ask: take every setting from the flags (the default without a terminal).
    #[arg(long)]
    yes: bool,
    #[command(flatten)]
    connect: Connect,
    #[command(flatten)]
    store: StoreArgs,
}

/// The settings of one profile, as written.
#[derive(Debug, Clone)]
struct Profile {
    name: String,
    server: String,
    site: String,
    auth: Auth,
    /// The PAT's name or the user name.
    who: String,
    secret_env: String,
    store: Option<String>,
    concurrency: Option<usize>,
    policy: Option<PathBuf>,
}

/// A TOML basic string.
fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Whether a store location carries a password (`postgres://user:password@…`).
fn has_password(store: &str) -> bool {
    store
        .split_once("://")
        .and_then(|(_, rest)| rest.split('@').next().filter(|_| rest.contains('@')))
        .is_some_and(|u| u.contains(':'))
}

impl Profile {
    /// The profile as a commented TOML table.
    fn to_toml(&self) -> String {
        let mut t = format!("[profiles.{}]\n", quote(&self.name));
        t.push_str("# The Tableau Server or Tableau Cloud address.\n");
        t.push_str(&format!("server = {}\n", quote(&self.server)));
        t.push_str("# The site's content URL as it appears in the browser (#/site/NAME); \"\" is the Default site.\n");
        t.push_str(&format!("site = {}\n", quote(&self.site)));
        match self.auth {
            Auth::Pat => {
                t.push_str(&format!(
                    "# Sign-in: a personal access token. Its secret is read from ${} when tabflow runs; it is never kept in this file.\n",
                    self.secret_env
                ));
                t.push_str(&format!("pat_name = {}\n", quote(&self.who)));
                t.push_str(&format!("pat_secret_env = {}\n", quote(&self.secret_env)));
            }
            Auth::Password => {
                t.push_str(&format!(
                    "# Sign-in: a user and password. The password is read from ${} when tabflow runs; it is never kept in this file.\n",
                    self.secret_env
                ));
                t.push_str(&format!("username = {}\n", quote(&self.who)));
                t.push_str(&format!("password_env = {}\n", quote(&self.secret_env)));
            }
            Auth::Jwt => {
                t.push_str(&format!(
                    "# Sign-in: a connected-app JWT, read from ${} when tabflow runs.\n",
                    self.secret_env
                ));
                t.push_str(&format!("jwt_env = {}\n", quote(&self.secret_env)));
            }
        }
        t.push_str(
            "# Calls in flight at once against the site (1 to 1024; tabflow's default is 8 writes, 16 reads).\n",
        );
        match self.concurrency {
            Some(n) => t.push_str(&format!("concurrency = {n}\n")),
            None => t.push_str("# concurrency = 8\n"),
        }
        t.push_str("# The state store (plans, approvals, runs, journal, audit log): a SQLite file or postgres://USER@HOST/DB.\n");
        match &self.store {
            Some(s) if has_password(s) => t.push_str(
                "# Its URL holds a password, so it is not written here: set TABFLOW_STORE (or --store) when tabflow runs.\n",
            ),
            Some(s) => t.push_str(&format!("store = {}\n", quote(s))),
            None => t.push_str(&format!("# store = {}\n", quote(&data_dir().join("tabflow.db").display().to_string()))),
        }
        t.push_str("# The policy file: protected projects and tags, blast radius, approvers, grace days.\n");
        match &self.policy {
            Some(p) if p.exists() => t.push_str(&format!("policy = {}\n", quote(&p.display().to_string()))),
            Some(p) => {
                t.push_str("# (not there yet: uncomment once the file is written; a missing policy file named here is an error)\n");
                t.push_str(&format!("# policy = {}\n", quote(&p.display().to_string())));
            }
            None => {
                t.push_str(&format!("# policy = {}\n", quote(&data_dir().join("policy.toml").display().to_string())))
            }
        }
        t
    }
}

fn config_path(connect: &Connect) -> PathBuf {
    connect.config.clone().unwrap_or_else(|| data_dir().join("config.toml"))
}

/// Asks for one setting (Esc or Ctrl-C stops without writing anything).
fn ask_text(message: &str, default: &str, help: &str) -> anyhow::Result<String> {
    let message = crate::term::clean(message);
    let r = inquire::Text::new(&message).with_default(default).with_help_message(help).prompt();
    r.map(|s| s.trim().to_string()).map_err(|_| stopped())
}

fn stopped() -> anyhow::Error {
    anyhow::Error::new(crate::exit::Failure {
        message: "stopped; nothing was written".into(),
        hint: Some("run `tabflow config init` again, or give every setting as flags with --yes".into()),
        code: Code::NeedsInput,
    })
}

pub async fn config(c: ConfigCommand) -> anyhow::Result<Code> {
    let ConfigCommand::Init(a) = c;
    let path = config_path(&a.connect);
    let name = a.connect.profile.clone().unwrap_or_else(|| "default".into());
    let existing = match std::fs::read_to_string(&path) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(fail(format!("cannot read {}: {e}", path.display()), "check the path and its permissions"));
        }
    };
    if let Some(text) = &existing {
        let table: toml::Table = toml::from_str(text).map_err(|_| {
            fail(
                format!("{} is not valid TOML", path.display()),
                "fix it, or write the profile to another file with --config FILE",
            )
        })?;
        if table.get("profiles").and_then(|p| p.get(&name)).is_some() {
            return Err(usage(
                format!("{} already has a profile '{name}'", path.display()),
                "choose another name with --profile NAME, or edit the file",
            ));
        }
    }
    let interactive = !a.yes && crate::ui::interactive();
    let mut auth = a.auth.unwrap_or(Auth::Pat);
    let profile = if interactive {
        errln!("Writing profile '{name}' to {} (Esc stops; nothing is written until the end).", path.display());
        let server = ask_text(
            "Tableau server address",
            a.connect.server.as_deref().unwrap_or("https://"),
            "e.g. https://tableau.example.com or https://10ax.online.tableau.com",
        )?;
        let site = ask_text("Site content URL", a.connect.site.as_deref().unwrap_or(""), "empty for the Default site")?;
        let choices = vec!["pat".to_string(), "password".to_string(), "jwt".to_string()];
        auth = match crate::ui::select("How does tabflow sign in?", &choices, Some("pat"), "↑↓ choose · Enter answers")
        {
            crate::ui::Answer::Given(c) => Auth::from_str(&c, true).unwrap_or(Auth::Pat),
            _ => return Err(stopped()),
        };
        let who = match auth {
            Auth::Pat => ask_text("Personal access token name", a.pat_name.as_deref().unwrap_or("tabflow"), "")?,
            Auth::Password => ask_text("User name", a.username.as_deref().unwrap_or(""), "")?,
            Auth::Jwt => String::new(),
        };
        let secret_env = ask_text(
            "Environment variable holding the secret",
            a.secret_env.as_deref().unwrap_or(auth.default_env()),
            "the secret itself is never written to the file",
        )?;
        let store = ask_text(
            "State store",
            &a.store.store.clone().unwrap_or_else(|| data_dir().join("tabflow.db").display().to_string()),
            "a SQLite file, or postgres://USER@HOST/DB",
        )?;
        let concurrency =
            ask_text("Calls in flight at once (1 to 1024)", &a.connect.concurrency.unwrap_or(8).to_string(), "")?;
        let concurrency = concurrency
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=1024).contains(n))
            .ok_or_else(|| usage(format!("'{concurrency}' is not a number from 1 to 1024"), "run it again"))?;
        let policy = ask_text(
            "Policy file",
            &a.store.policy.clone().unwrap_or_else(|| data_dir().join("policy.toml")).display().to_string(),
            "read when it exists",
        )?;
        Profile {
            name: name.clone(),
            server,
            site,
            auth,
            who,
            secret_env,
            store: Some(store).filter(|s| !s.is_empty()),
            concurrency: Some(concurrency),
            policy: Some(PathBuf::from(policy)).filter(|p| !p.as_os_str().is_empty()),
        }
    } else {
        let server = a.connect.server.clone().ok_or_else(|| {
            usage(
                "config init without a terminal needs --server",
                "tabflow config init --profile prod --server https://tableau.example.com --site fin --pat-name NAME",
            )
        })?;
        let who = match auth {
            Auth::Pat => a.pat_name.clone().ok_or_else(|| {
                usage("--auth pat needs --pat-name (the token's name)", "add --pat-name NAME, or --auth password|jwt")
            })?,
            Auth::Password => a
                .username
                .clone()
                .ok_or_else(|| usage("--auth password needs --username", "add --username NAME, or --auth pat|jwt"))?,
            Auth::Jwt => String::new(),
        };
        Profile {
            name: name.clone(),
            server,
            site: a.connect.site.clone().unwrap_or_default(),
            auth,
            who,
            secret_env: a.secret_env.clone().unwrap_or_else(|| auth.default_env().into()),
            store: a.store.store.clone(),
            concurrency: a.connect.concurrency,
            policy: a.store.policy.clone(),
        }
    };
    if !(profile.server.starts_with("https://") || profile.server.starts_with("http://")) || profile.server.len() < 10 {
        return Err(usage(
            format!("'{}' is not a server address", profile.server),
            "give it with its scheme, e.g. https://tableau.example.com",
        ));
    }
    if profile.secret_env.is_empty() || !profile.secret_env.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(usage(
            format!("'{}' is not an environment variable name", profile.secret_env),
            "use letters, digits and _ (e.g. TABLEAU_PAT_SECRET): the file names the variable, never the secret",
        ));
    }
    let mut text = existing.clone().unwrap_or_else(|| {
        "# tabflow's config file (written by `tabflow config init`; edit freely). Secrets are never\n\
         # kept here: each profile names the environment variable that holds its secret.\n\
         # Use a profile with `tabflow --profile NAME …` or TABFLOW_PROFILE=NAME.\n"
            .to_string()
    });
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text.push('\n');
    text.push_str(&profile.to_toml());
    // What is written reads back as a profile.
    if let Err(e) = toml::from_str::<toml::Table>(&text) {
        return Err(fail(
            format!("the profile would not read back: {}", e.message()),
            "report this; nothing was written",
        ));
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        tabflow_engine::private::create_dir_all(dir)
            .map_err(|e| fail(format!("cannot create {}: {e}", dir.display()), "check the path"))?;
    }
    tabflow_engine::private::write(&path, &text)
        .map_err(|e| fail(format!("cannot write {}: {e}", path.display()), "check the path and its permissions"))?;
    outln!("Wrote profile '{name}' to {}.", path.display());
    outln!("Next     export {}=…   then   tabflow --profile {name} doctor", profile.secret_env);
    Ok(Code::Ok)
}

// ------------------------------------------------------------------------ doctor

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Print the checks as JSON: [{"check", "status": "ok|warn|fail", "detail", "fix"}].
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    connect: Connect,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Ok,
    Warn,
    Fail,
}

struct Check {
    name: &'static str,
    status: Status,
    detail: String,
    fix: String,
}

fn check(name: &'static str, status: Status, detail: impl Into<String>, fix: impl Into<String>) -> Check {
    Check { name, status, detail: detail.into(), fix: fix.into() }
}

/// `GET /api/2.4/serverInfo` without signing in: is the server there, does TLS hold, which
/// API version does it speak.
async fn probe(server: &str) -> Vec<Check> {
    let mut out = vec![];
    let http = match reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(15))
        .build()
    {
        Ok(h) => h,
        Err(e) => return vec![check("connectivity", Status::Fail, format!("no HTTP client: {e}"), "report this")],
    };
    let url = format!("{}/api/2.4/serverInfo", server.trim_end_matches('/'));
    match http.get(&url).send().await {
        Err(e) => {
            let text = format!("{e:?}").to_lowercase();
            let tls = text.contains("certificate") || text.contains("tls") || text.contains("ssl");
            if tls {
                out.push(check("connectivity", Status::Ok, format!("{server} answers on its port"), ""));
                out.push(check(
                    "tls",
                    Status::Fail,
                    format!("the TLS handshake failed: {e}"),
                    "the server's certificate must chain to a CA this machine trusts: install the CA in the system store, or fix the server's certificate",
                ));
            } else {
                out.push(check(
                    "connectivity",
                    Status::Fail,
                    format!("cannot reach {server}: {e}"),
                    "check the address (--server or the profile's server), the network and any proxy or firewall",
                ));
            }
        }
        Ok(resp) => {
            out.push(check(
                "connectivity",
                Status::Ok,
                format!("{server} answered HTTP {}", resp.status().as_u16()),
                "",
            ));
            if server.starts_with("https://") {
                out.push(check("tls", Status::Ok, "certificate verified", ""));
            } else if tabflow_client::plain_http_warning(server).is_some() {
                out.push(check(
                    "tls",
                    Status::Warn,
                    "plain http to another machine: credentials and the session travel unencrypted",
                    "use the server's https:// address",
                ));
            } else {
                out.push(check("tls", Status::Ok, "plain http on this machine (loopback)", ""));
            }
            let body = resp.text().await.unwrap_or_default();
            let version =
                body.split("restApiVersion").nth(1).and_then(|r| r.split(['>', '<']).nth(1)).map(str::to_string);
            match version {
                Some(v) => out.push(check("api version", Status::Ok, format!("REST API {v}"), "")),
                None => out.push(check(
                    "api version",
                    Status::Fail,
                    format!("{url} did not answer a Tableau serverInfo"),
                    "check that the address is the Tableau server itself, not a sign-in page or proxy",
                )),
            }
        }
    }
    out
}

async fn site_role(session: &Session) -> Check {
    let s = session.client.session().await;
    match session.client.user(&tabflow_wire::ids::UserId::new(&s.user_id)).await {
        Ok(u) => {
            let role = u.site_role.clone().unwrap_or_default();
            let name = u.name.clone().unwrap_or_default();
            if role.contains("Administrator") {
                check("site role", Status::Ok, format!("signed in as {name} ({role})"), "")
            } else {
                check(
                    "site role",
                    Status::Warn,
                    format!(
                        "signed in as {name} ({role}): plans read what this user sees and changes to other people's content will fail"
                    ),
                    "sign in as a site administrator (a PAT of an administrator account)",
                )
            }
        }
        Err(e) => check(
            "site role",
            Status::Warn,
            format!("cannot read the signed-in user: {e}"),
            "check the user's permissions",
        ),
    }
}

fn smtp_check(delivery: &tabflow_engine::notify::Delivery) -> Vec<Check> {
    let mut out = vec![];
    match &delivery.email {
        Some(e) => {
            let addr = format!("{}:{}", e.smtp.host, e.smtp.port);
            let reached = std::net::ToSocketAddrs::to_socket_addrs(&addr)
                .ok()
                .and_then(|mut a| a.next())
                .map(|a| std::net::TcpStream::connect_timeout(&a, Duration::from_secs(5)));
            match reached {
                Some(Ok(_)) => {
                    out.push(check("smtp", Status::Ok, format!("{addr} accepts connections (nothing sent)"), ""))
                }
                _ => out.push(check(
                    "smtp",
                    Status::Fail,
                    format!("cannot connect to {addr}"),
                    "check TABFLOW_SMTP_URL (host and port) and the firewall; messages wait in the outbox meanwhile",
                )),
            }
        }
        None => out.push(check(
            "smtp",
            Status::Warn,
            "not configured: notifications stay in the outbox",
            "set TABFLOW_SMTP_URL and TABFLOW_NOTIFY_FROM to email owners",
        )),
    }
    match &delivery.webhook_url {
        Some(_) => out.push(check("webhook", Status::Ok, "configured (not called: doctor sends nothing)", "")),
        None => out.push(check(
            "webhook",
            Status::Warn,
            "not configured",
            "set TABFLOW_NOTIFY_WEBHOOK to post notifications to a chat",
        )),
    }
    out
}

pub async fn doctor(a: DoctorArgs) -> anyhow::Result<Code> {
    let mut checks: Vec<Check> = vec![];
    match a.connect.connection() {
        Err(e) => checks.push(check("config", Status::Fail, e.to_string(), hint_of(&e))),
        Ok(connection) => {
            let demo = matches!(connection, Connection::Demo(_));
            checks.push(match &connection {
                Connection::Demo(_) => check(
                    "config",
                    Status::Warn,
                    "no server configured: the built-in demo site",
                    "give --server URL (with TABLEAU_PAT_NAME/TABLEAU_PAT_SECRET) or --profile NAME (see `tabflow config init`)",
                ),
                Connection::Server(c) => check(
                    "config",
                    Status::Ok,
                    match &a.connect.profile {
                        Some(p) => format!("profile '{p}': {} site '{}'", c.server, c.site),
                        None => format!("{} site '{}'", c.server, c.site),
                    },
                    "",
                ),
            });
            let server = match &connection {
                Connection::Server(c) => Some(c.server.clone()),
                Connection::Demo(_) => None,
            };
            let probed = match &server {
                Some(s) => probe(s).await,
                None => vec![],
            };
            let reachable = !probed.iter().any(|c| c.status == Status::Fail);
            checks.extend(probed);
            if reachable {
                match Session::open(&connection, &data_dir(), &tabflow_app::SystemClock).await {
                    Ok(session) => {
                        if demo {
                            checks.extend(probe(&session.client.config().server).await);
                        }
                        let s = session.client.session().await;
                        checks.push(check(
                            "credentials",
                            Status::Ok,
                            format!("signed in (REST API {}, site id {})", s.api_version, s.site_id),
                            "",
                        ));
                        checks.push(site_role(&session).await);
                        let _ = session.finish().await;
                    }
                    Err(e) => {
                        let hint = e.hint.clone();
                        checks.push(check("credentials", Status::Fail, e.message, hint));
                    }
                }
            } else {
                checks.push(check(
                    "credentials",
                    Status::Fail,
                    "not tried: the server is not reachable",
                    "fix the checks above first",
                ));
            }
        }
    }
    let location = a.store.location();
    match tabflow_app::open_store(&location).await {
        Ok(store) => {
            checks.push(check("store", Status::Ok, format!("{location} opens (tables up to date)"), ""));
            store.close().await;
        }
        Err(e) => checks.push(check("store", Status::Fail, format!("{location}: {}", e.message), e.hint)),
    }
    match a.store.policy() {
        Ok(_) => {
            let path = a.store.policy_path();
            if path.exists() {
                checks.push(check("policy", Status::Ok, format!("{} reads", path.display()), ""));
            } else {
                checks.push(check(
                    "policy",
                    Status::Warn,
                    format!("no policy file at {}: the defaults apply (no protected projects or tags)", path.display()),
                    "write one to protect projects and tags (README: Policy)",
                ));
            }
        }
        Err(e) => checks.push(check("policy", Status::Fail, e.to_string(), hint_of(&e))),
    }
    match super::workflow::notify_delivery() {
        Ok(d) => checks.extend(smtp_check(&d)),
        Err(e) => checks.push(check("notifications", Status::Fail, e.to_string(), hint_of(&e))),
    }
    let failed = checks.iter().filter(|c| c.status == Status::Fail).count();
    if a.json {
        let v: Vec<_> = checks
            .iter()
            .map(|c| {
                json!({"check": c.name, "status": match c.status { Status::Ok => "ok", Status::Warn => "warn", Status::Fail => "fail" }, "detail": c.detail, "fix": c.fix})
            })
            .collect();
        outln!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        for c in &checks {
            let mark = match c.status {
                Status::Ok => "ok  ",
                Status::Warn => "warn",
                Status::Fail => "FAIL",
            };
            outln!("{mark}  {:<12} {}", c.name, c.detail);
            if c.status != Status::Ok && !c.fix.is_empty() {
                outln!("      {:<12} fix: {}", "", c.fix);
            }
        }
        let warned = checks.iter().filter(|c| c.status == Status::Warn).count();
        outln!("{} checks: {} ok, {warned} warnings, {failed} failed.", checks.len(), checks.len() - warned - failed);
    }
    Ok(if failed > 0 { Code::Error } else { Code::Ok })
}

fn hint_of(e: &anyhow::Error) -> String {
    e.chain().find_map(|c| c.downcast_ref::<crate::exit::Failure>()).and_then(|f| f.hint.clone()).unwrap_or_default()
}

// ------------------------------------------------------------------------ completions, man

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

pub fn completions(a: CompletionsArgs) -> anyhow::Result<Code> {
    let mut cmd = crate::command();
    let mut buf = vec![];
    clap_complete::generate(a.shell, &mut cmd, "tabflow", &mut buf);
    crate::term::print_out(&String::from_utf8_lossy(&buf));
    Ok(Code::Ok)
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write tabflow.1 and a page per subcommand (tabflow-ask.1, tabflow-runs-rollback.1, …)
    /// into this directory instead of printing tabflow.1.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

pub fn man(a: ManArgs) -> anyhow::Result<Code> {
    let cmd = crate::command();
    match &a.out {
        None => {
            let mut buf = vec![];
            clap_mangen::Man::new(cmd).render(&mut buf)?;
            crate::term::print_out(&String::from_utf8_lossy(&buf));
        }
        Some(dir) => {
            tabflow_engine::private::create_dir_all(dir)
                .map_err(|e| fail(format!("cannot create {}: {e}", dir.display()), "check the path"))?;
            let written = write_pages(&cmd, "tabflow", dir)?;
            errln!("Wrote {written} man pages to {} (man -l {}/tabflow.1).", dir.display(), dir.display());
        }
    }
    Ok(Code::Ok)
}

/// The page of `cmd` and of each visible subcommand, recursively; answers how many.
fn write_pages(cmd: &clap::Command, name: &str, dir: &Path) -> anyhow::Result<usize> {
    let cmd = cmd.clone().display_name(name.to_string()).bin_name(name.replace('-', " "));
    let mut buf = vec![];
    clap_mangen::Man::new(cmd.clone()).render(&mut buf)?;
    let path = dir.join(format!("{name}.1"));
    std::fs::write(&path, buf).map_err(|e| fail(format!("cannot write {}: {e}", path.display()), "check the path"))?;
    let mut n = 1;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        n += write_pages(sub, &format!("{name}-{}", sub.get_name()), dir)?;
    }
    Ok(n)
}
