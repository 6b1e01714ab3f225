//! `tabflow demo reset`: restore the built-in demo site.

use clap::Subcommand;

use super::connect::{demo_state_path, reset_demo};
use crate::exit::Code;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Restore the original demo site (undoes every change made to it).
    Reset,
}

pub async fn run(command: Command) -> anyhow::Result<Code> {
    match command {
        Command::Reset => {
            // While `tabflow serve` hosts the demo site, its state is that process's; a reset
            // of the saved file would be overwritten when it stops.
            if let Some(live) = tabflow_app::session::live_demo(&super::connect::data_dir()) {
                return Err(crate::exit::fail(
                    format!("`tabflow serve` (pid {}) hosts the demo site at {}; it was not reset", live.pid, live.url),
                    "stop that `tabflow serve` (Ctrl-C; it saves the demo site), then run `tabflow demo reset` again",
                ));
            }
            let site = reset_demo()?;
            errln!(
                "demo site restored: {} workbooks, {} users, {} datasources ({})",
                site.workbooks.len(),
                site.users.len(),
                site.datasources.len(),
                demo_state_path().display()
            );
            Ok(Code::Ok)
        }
    }
}
