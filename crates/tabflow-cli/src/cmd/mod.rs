//! Subcommands, one file each.

mod bench;
mod bench_apply;
mod bench_live;
mod bench_serve;
pub mod connect;
mod demo;
mod emulator;
mod learn;
mod mcp;
mod outbox;
mod query;
mod report;
mod runs;
mod schedule;
mod serve;
mod setup;
mod site;
mod templates;
mod tokens;
mod usage;
mod worker;
mod workflow;

use clap::Subcommand;

use crate::exit::Code;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Plan, approve and run a request in one go, with questions and live progress.
    Ask(workflow::AskArgs),
    /// Turn a request into a reviewed plan (nothing is changed).
    Plan(workflow::PlanArgs),
    /// Answer a question about the site, read-only ("how many workbooks are in Finance?").
    Query(query::QueryArgs),
    /// Run exactly a plan made by `tabflow plan` (destructive steps need --approve).
    Apply(workflow::ApplyArgs),
    /// Past and interrupted runs: list, show, resume, rollback, purge.
    #[command(subcommand)]
    Runs(runs::Command),
    /// Notifications written by runs (sent by email or webhook, or kept in the outbox), and retrying them.
    #[command(subcommand)]
    Outbox(outbox::Command),
    /// Named, versioned, parameterised workflows: list, show, save, run, delete.
    #[command(subcommand)]
    Templates(templates::Command),
    /// Recurring reviews (templates on a cron schedule, and reviews plans stored): add, list, remove.
    #[command(subcommand)]
    Schedule(schedule::Command),
    /// Run schedules on time, start approved scheduled plans, purge staged deletes past their grace period.
    Worker(worker::WorkerArgs),
    /// The HTTP API (bearer tokens with roles, run progress as Server-Sent Events).
    Serve(serve::ServeArgs),
    /// The MCP server on stdio for AI assistants (tools to plan, request approval, run; none approves).
    Mcp(mcp::McpArgs),
    /// API tokens of `tabflow serve`: create NAME --role R, list, revoke NAME.
    #[command(subcommand)]
    Tokens(tokens::Command),
    /// The hash-chained audit log: verify, export.
    #[command(subcommand)]
    Audit(runs::AuditCommand),
    /// Read or compare whole sites (tabflow-site/1 snapshots).
    #[command(subcommand)]
    Site(site::Command),
    /// Where "last accessed" comes from: record view counts, read a usage source.
    #[command(subcommand)]
    Usage(usage::Command),
    /// What tabflow learned from earlier choices: show, reset.
    #[command(subcommand)]
    Learn(learn::Command),
    /// The built-in demo site.
    #[command(subcommand)]
    Demo(demo::Command),
    /// Run or generate an emulated Tableau site (the built-in demo site by default).
    #[command(subcommand)]
    Emulator(emulator::Command),
    /// Speed and memory benchmarks (figures for BENCHMARKS.md).
    #[command(subcommand)]
    Bench(bench::Command),
    /// The config file: `config init` writes a commented profile (asks in a terminal).
    #[command(subcommand)]
    Config(setup::ConfigCommand),
    /// Check the set-up: connectivity, TLS, credentials, API version, site role, store, policy,
    /// SMTP and webhook; each line ok, warn or FAIL with what to fix.
    Doctor(setup::DoctorArgs),
    /// Print a shell completion script: bash, zsh, fish or powershell.
    Completions(setup::CompletionsArgs),
    /// Print the man page (or write one per command with --out DIR).
    Man(setup::ManArgs),
}

pub async fn run(command: Command) -> anyhow::Result<Code> {
    match command {
        Command::Ask(a) => workflow::ask_cmd(a).await,
        Command::Plan(a) => workflow::plan_cmd(a).await,
        Command::Apply(a) => workflow::apply_cmd(a).await,
        Command::Query(a) => query::run(a).await,
        Command::Runs(c) => runs::run(c).await,
        Command::Audit(c) => runs::audit_run(c).await,
        Command::Tokens(c) => tokens::run(c).await,
        Command::Serve(a) => serve::run(a).await,
        Command::Mcp(a) => mcp::run(a).await,
        Command::Outbox(c) => outbox::run(c).await,
        Command::Templates(c) => templates::run(c).await,
        Command::Schedule(c) => schedule::run(c).await,
        Command::Worker(a) => worker::run(a).await,
        Command::Site(c) => site::run(c).await,
        Command::Demo(c) => demo::run(c).await,
        Command::Learn(c) => learn::run(c).await,
        Command::Usage(c) => usage::run(c).await,
        Command::Emulator(c) => emulator::run(c).await,
        Command::Bench(c) => bench::run(c).await,
        Command::Config(c) => setup::config(c).await,
        Command::Doctor(a) => setup::doctor(a).await,
        Command::Completions(a) => setup::completions(a),
        Command::Man(a) => setup::man(a),
    }
}

/// The largest plan file read (a plan of 100k items is about 60 MiB).
pub const PLAN_FILE_LIMIT: u64 = 256 << 20;
/// The largest snapshot file read (a 100k-workbook site is well under 1 GiB).
pub const SNAPSHOT_FILE_LIMIT: u64 = 4 << 30;

/// Reads a text file of at most `limit` bytes: its size is checked before reading, and the
/// read stops past the limit (a file that grows, or a device without a size).
pub fn read_capped(path: &std::path::Path, limit: u64, what: &str) -> anyhow::Result<String> {
    use std::io::Read;
    let human = |n: u64| if n >= 1 << 30 { format!("{} GiB", n >> 30) } else { format!("{} MiB", n >> 20) };
    let too_large = |size: String| {
        crate::exit::fail(
            format!("{} is {size}; a {what} above {} is refused before it is parsed", path.display(), human(limit)),
            format!("check that {} is the {what} you meant; tabflow never writes one that large", path.display()),
        )
    };
    let cannot =
        |e: std::io::Error| crate::exit::fail(format!("cannot read {}: {e}", path.display()), "check the path");
    let meta = std::fs::metadata(path).map_err(cannot)?;
    if meta.len() > limit {
        return Err(too_large(format!("{} bytes", meta.len())));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    std::fs::File::open(path).map_err(cannot)?.take(limit + 1).read_to_end(&mut bytes).map_err(cannot)?;
    if bytes.len() as u64 > limit {
        return Err(too_large(format!("more than {} bytes", limit)));
    }
    String::from_utf8(bytes).map_err(|e| {
        crate::exit::fail(
            format!("{} is not UTF-8 text (byte {}): not a {what}", path.display(), e.utf8_error().valid_up_to()),
            format!("give the {what} file tabflow wrote"),
        )
    })
}

#[cfg(test)]
mod terminal_snapshots;
