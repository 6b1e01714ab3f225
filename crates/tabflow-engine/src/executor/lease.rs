//! Run ownership: who may execute, resume or roll back a run.

use super::{Engine, ExecError};
use crate::store::RunRow;

impl Engine<'_> {
    pub(super) fn refuse_if_live(&self, run: &RunRow) -> Result<(), ExecError> {
        if run.status.is_unfinished()
            && let Some(pid) = run.owner_pid
            && pid != std::process::id() as i64
            && std::path::Path::new(&format!("/proc/{pid}")).exists()
            && std::env::var("TABFLOW_IGNORE_LIVE_OWNER").is_err()
        {
            return Err(ExecError::Refused(format!(
                "run {} is still being executed by process {pid}; wait for it or stop it first",
                run.id
            )));
        }
        Ok(())
    }
}
