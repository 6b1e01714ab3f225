//! `tabflow`: Tableau administration workflows from plain language, with plans, checks,
//! approvals, progress, audit and rollback. This binary is a thin front end: each subcommand
//! lives in its own file under `cmd/`.

#[macro_use]
mod term;
mod cmd;
mod exit;
mod globals;
mod progress;
mod review;
mod ui;

use clap::{CommandFactory, FromArgMatches, Parser};

#[derive(Debug, Parser)]
#[command(
    name = "tabflow",
    version,
    about = "Safe, reviewable Tableau administration workflows",
    long_about = None,
    after_help = globals::AFTER_HELP
)]
struct Cli {
    #[command(subcommand)]
    command: cmd::Command,
}

/// The whole command line as clap knows it (for completions and man pages).
pub fn command() -> clap::Command {
    globals::augment(Cli::command())
}

fn main() -> std::process::ExitCode {
    term::init();
    ui::init();
    let matches = match command().try_get_matches() {
        Ok(m) => m,
        Err(e) => return exit::clap(e),
    };
    // A flag given before the subcommand that the subcommand does not take is a usage error,
    // as it is after it.
    if let Err(e) = globals::check(&matches) {
        return exit::report(&e);
    }
    globals::remember_profile(&matches);
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => return exit::clap(e.format(&mut globals::augment(Cli::command()))),
    };
    // The engine reads no environment: the host name naming this process in run leases
    // (where the system has no hostname file) is passed in.
    if let Some(host) = ["HOSTNAME", "COMPUTERNAME"].iter().find_map(|k| std::env::var(k).ok()) {
        tabflow_engine::executor::lease::set_host_name(host);
    }
    let filter = tracing_subscriber::EnvFilter::try_from_env("TABFLOW_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // Logs go through the same cleaning as everything else printed: no secret, no escape.
    tracing_subscriber::fmt().with_env_filter(filter).with_ansi(false).with_writer(term::stderr).init();
    // Runs execute as tasks on the worker threads, and an executor's futures nest deep (step →
    // item → operation → client call): 2 MiB, tokio's default, overflowed in debug builds.
    let runtime = match tokio::runtime::Builder::new_multi_thread().thread_stack_size(16 << 20).enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            errln!("error: cannot start the async runtime: {e}");
            return exit::Code::Error.into();
        }
    };
    match runtime.block_on(cmd::run(cli.command)) {
        Ok(code) => code.into(),
        Err(e) => exit::report(&e),
    }
}
