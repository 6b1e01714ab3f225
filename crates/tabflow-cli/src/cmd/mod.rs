//! Subcommands, one file each.

mod bench;
pub mod connect;
mod demo;
mod emulator;
mod site;
mod usage;

use clap::Subcommand;

use crate::exit::Code;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read or compare whole sites (tabflow-site/1 snapshots).
    #[command(subcommand)]
    Site(site::Command),
    /// Where "last accessed" comes from: record view counts, read a usage source.
    #[command(subcommand)]
    Usage(usage::Command),
    /// The built-in demo site.
    #[command(subcommand)]
    Demo(demo::Command),
    /// Run or generate an emulated Tableau site (the built-in demo site by default).
    #[command(subcommand)]
    Emulator(emulator::Command),
    /// Speed and memory benchmarks (figures for BENCHMARKS.md).
    #[command(subcommand)]
    Bench(bench::Command),
}

pub async fn run(command: Command) -> anyhow::Result<Code> {
    match command {
        Command::Site(c) => site::run(c).await,
        Command::Demo(c) => demo::run(c).await,
        Command::Usage(c) => usage::run(c).await,
        Command::Emulator(c) => emulator::run(c).await,
        Command::Bench(c) => bench::run(c).await,
    }
}
