//! `tabflow emulator serve|generate`: a Tableau REST + Metadata API emulator.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use tabflow_emulator::{Emulator, Faults, Options};
use tabflow_site::Site;
use tabflow_site::generate;

use crate::exit::{Code, fail, usage};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve an emulated site over HTTP; prints the URL it listens on.
    Serve(Serve),
    /// Write a generated site as a tabflow-site/1 snapshot (same seed, same bytes).
    Generate(Generate),
}

#[derive(Debug, Args)]
pub struct SiteSource {
    /// Number of workbooks of a generated site (0 = the built-in demo site; at most 1000000).
    #[arg(long, default_value_t = 0)]
    scale: usize,
    /// Seed of the generated site.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[derive(Debug, Args)]
pub struct Serve {
    /// Port on 127.0.0.1 (0 = any free port).
    #[arg(long, short, default_value_t = 0)]
    port: u16,
    /// Address to bind: a loopback address unless --allow-remote.
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// Allow a --bind address other machines can reach. The emulator is a test server: its
    /// credentials are public defaults and its control routes change and dump the whole site.
    #[arg(long)]
    allow_remote: bool,
    /// Require `X-Emulator-Token: TOKEN` on the test-only `/_emulator/*` control routes
    /// (stats, faults, snapshot); without it they are open to anyone who can reach the port.
    #[arg(long, env = "TABFLOW_EMULATOR_CONTROL_TOKEN", hide_env_values = true)]
    control_token: Option<String>,
    #[command(flatten)]
    source: SiteSource,
    /// Serve this tabflow-site/1 snapshot instead of a generated site.
    #[arg(long, conflicts_with_all = ["scale", "seed"])]
    snapshot: Option<PathBuf>,
    /// Keep the snapshot's timestamps as they are (by default the site is shifted so that
    /// its `now` is the moment it is loaded).
    #[arg(long)]
    keep_time: bool,
    /// Personal access token name accepted for sign-in.
    #[arg(long, default_value = "tabflow")]
    pat_name: String,
    /// Personal access token secret accepted for sign-in.
    #[arg(long, default_value = "tabflow", env = "TABFLOW_EMULATOR_PAT_SECRET", hide_env_values = true)]
    pat_secret: String,
    /// Every user's password.
    #[arg(long, default_value = "tabflow", env = "TABFLOW_EMULATOR_PASSWORD", hide_env_values = true)]
    password: String,
    /// Session lifetime in minutes (1 to 43200, 30 days).
    #[arg(long, default_value_t = 240)]
    session_minutes: i64,
    /// Fault: delay every Tableau request by this many milliseconds.
    #[arg(long)]
    latency_ms: Option<u64>,
    /// Fault: answer this fraction (0..1) of requests with --error-status.
    #[arg(long)]
    error_rate: Option<f64>,
    /// Fault: HTTP status for injected failures (default 500).
    #[arg(long)]
    error_status: Option<u16>,
    /// Fault: requests per second before answering 429 with Retry-After.
    #[arg(long)]
    rate_limit_per_s: Option<u32>,
    /// Fault: the Nth write fails without changing state.
    #[arg(long)]
    fail_nth_write: Option<u64>,
    /// Fault: the Nth write is applied, then its connection is dropped.
    #[arg(long)]
    drop_nth_write: Option<u64>,
}

#[derive(Debug, Args)]
pub struct Generate {
    #[command(flatten)]
    source: SiteSource,
    /// Output file (`-` for standard output).
    #[arg(long, short)]
    output: PathBuf,
}

impl SiteSource {
    /// The generator's options, the scale checked against [`generate::MAX_SCALE`] before
    /// anything is allocated.
    fn options(&self) -> anyhow::Result<generate::Options> {
        check_scale(self.scale)?;
        Ok(generate::Options { scale: self.scale, seed: self.seed })
    }
}

/// Refuses a `--scale` past [`generate::MAX_SCALE`] (a site that would not fit in memory).
pub fn check_scale(scale: usize) -> anyhow::Result<()> {
    if scale > generate::MAX_SCALE {
        return Err(usage(
            format!("--scale {scale} is out of range (0 to {})", generate::MAX_SCALE),
            format!(
                "give at most {} workbooks (100000 is a large site; 0 is the built-in demo site)",
                generate::MAX_SCALE
            ),
        ));
    }
    Ok(())
}

/// The longest emulator session, in minutes (30 days).
const MAX_SESSION_MINUTES: i64 = 43_200;

pub async fn run(command: Command) -> anyhow::Result<Code> {
    match command {
        Command::Serve(s) => serve(s).await,
        Command::Generate(g) => {
            let options = g.source.options()?;
            let site = generate::generate(&options);
            if g.output.as_os_str() == "-" {
                site.write_json(std::io::stdout().lock()).context("writing the snapshot to standard output")?;
            } else {
                tabflow_engine::private::create(&g.output)
                    .and_then(|f| site.write_json(f))
                    .with_context(|| format!("writing {}", g.output.display()))?;
                errln!(
                    "wrote {} ({} workbooks, {} users, {} datasources, {} projects)",
                    g.output.display(),
                    site.workbooks.len(),
                    site.users.len(),
                    site.datasources.len(),
                    site.projects.len()
                );
            }
            Ok(Code::Ok)
        }
    }
}

/// Reads and checks a snapshot file.
pub fn load_snapshot(path: &std::path::Path) -> anyhow::Result<Site> {
    if !path.exists() {
        return Err(fail(
            format!("cannot read the snapshot {}: no such file", path.display()),
            "check the path; `tabflow site snapshot -o FILE` writes one",
        ));
    }
    let text = super::read_capped(path, super::SNAPSHOT_FILE_LIMIT, "snapshot")?;
    Site::from_json(&text).map_err(|e| {
        fail(
            format!("{} is not a usable snapshot: {e}", path.display()),
            "snapshots are written by `tabflow site snapshot -o FILE` or `tabflow emulator generate -o FILE`",
        )
    })
}

async fn serve(s: Serve) -> anyhow::Result<Code> {
    if !s.bind.is_loopback() {
        if !s.allow_remote {
            return Err(usage(
                format!("--bind {} would let other machines reach the emulator", s.bind),
                "the emulator is a test server with public default credentials and open control routes; bind 127.0.0.1 (the default), or add --allow-remote (and --control-token) if you really mean it",
            ));
        }
        errln!(
            "WARNING: the emulator listens on {} and other machines can reach it: its sign-in uses test credentials{}; do not leave it running on a shared network",
            s.bind,
            if s.control_token.is_some() {
                ""
            } else {
                ", and its /_emulator/* control routes (site dump, faults) are open (set --control-token)"
            }
        );
    }
    if s.control_token.as_deref().is_some_and(|t| t.trim().is_empty()) {
        return Err(usage("--control-token is empty", "give a token of at least one character, or leave it unset"));
    }
    if let Some(r) = s.error_rate
        && !(0.0..=1.0).contains(&r)
    {
        return Err(usage(
            format!("--error-rate {r} is out of range"),
            "give a fraction between 0 and 1, e.g. --error-rate 0.05",
        ));
    }
    if !(1..=MAX_SESSION_MINUTES).contains(&s.session_minutes) {
        return Err(usage(
            format!("--session-minutes {} is out of range (1 to {MAX_SESSION_MINUTES})", s.session_minutes),
            "give a session lifetime in minutes, e.g. --session-minutes 240 (the default)",
        ));
    }
    let generated = s.source.options()?;
    let mut site = match &s.snapshot {
        Some(path) => load_snapshot(path)?,
        None => generate::generate(&generated),
    };
    if !s.keep_time {
        site.shift_time_to(chrono::Utc::now());
    }
    let mut options = Options::new(site);
    options.pat_name = s.pat_name;
    options.pat_secret = s.pat_secret;
    options.password = s.password;
    options.session_ttl = chrono::TimeDelta::try_minutes(s.session_minutes).unwrap_or(chrono::TimeDelta::hours(4));
    options.control_token = s.control_token;
    options.faults = Faults {
        latency_ms: s.latency_ms,
        error_rate: s.error_rate,
        error_status: s.error_status,
        rate_limit_per_s: s.rate_limit_per_s,
        fail_nth_write: s.fail_nth_write,
        drop_nth_write: s.drop_nth_write,
        fail_nth_call: None,
    };
    let content_url = options.site.site.content_url.clone();
    let counts = (options.site.workbooks.len(), options.site.users.len());
    let running = Emulator::new(options).spawn(SocketAddr::new(s.bind, s.port)).await.map_err(|e| {
        fail(
            format!("cannot listen on {}:{}: {e}", s.bind, s.port),
            "choose another --port, or --port 0 for any free port",
        )
    })?;
    outln!("{}", running.url);
    std::io::stdout().flush().ok();
    errln!(
        "tabflow emulator: site '{content_url}' ({} workbooks, {} users) at {}  (PAT name 'tabflow'; user passwords 'tabflow'; Ctrl-C stops)",
        counts.0,
        counts.1,
        running.url
    );
    tokio::signal::ctrl_c().await.ok();
    errln!("tabflow emulator: stopping");
    running.stop().await;
    Ok(Code::Ok)
}
