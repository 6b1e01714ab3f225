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
