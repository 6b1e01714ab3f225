//! Reports of runs on disk: every run's four reports in `<data dir>/reports/`
//! (`<run id>.{md,html,csv,json}`). The report itself is built by
//! `tabflow_workflows::report` from the store's plan, run row and journal, so a report
//! written after a run and one rendered later are the same.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use tabflow_engine::Store;
use tabflow_workflows::report::{self, Format, Report, RunInput};

use crate::App;
use crate::error::{Error, Result};

/// The report of a stored run (its plan, row and journal).
pub async fn of_run(store: &Store, run_id: &str) -> Result<Report> {
    let row = store.run(run_id).await.map_err(|e| Error::store(e, "see `tabflow runs list`"))?;
    let plan =
        store.plan(&row.plan_id).await.map_err(|e| Error::store(e, "the run's plan is missing from the store"))?;
    let journal = store.journal(run_id).await.map_err(|e| Error::store(e, "check the state store"))?;
    Ok(report::build(&plan, Some(RunInput { row: &row, journal: &journal })))
}

/// Where a run's reports live.
pub fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join("reports")
}

/// Writes the four reports of a run (owner-only files, every configured secret redacted);
/// answers `[{"format", "path"}]` (DESIGN.md §6).
pub async fn write_run(store: &Store, data_dir: &Path, redactor: &crate::Redactor, run_id: &str) -> Result<Vec<Value>> {
    let r = of_run(store, run_id).await?;
    let dir = dir(data_dir);
    tabflow_engine::private::create_dir_all(&dir).map_err(|e| {
        Error::failed(format!("cannot create {}: {e}", dir.display()), "check TABFLOW_HOME / the data directory")
    })?;
    let mut out = vec![];
    for f in Format::ALL {
        let path = dir.join(format!("{run_id}.{}", f.extension()));
        tabflow_engine::private::write(&path, redactor.redact(&r.render(f)).as_bytes())
            .map_err(|e| Error::failed(format!("cannot write {}: {e}", path.display()), "check the output path"))?;
        out.push(json!({"format": f.extension(), "path": path.display().to_string()}));
    }
    Ok(out)
}

/// Writes the four reports of a plan that started no run (a scheduled read-only review):
/// `<data dir>/reports/<plan id>.{md,html,csv,json}`; answers `[{"format", "path"}]`.
pub fn write_plan(data_dir: &Path, redactor: &crate::Redactor, plan: &tabflow_engine::Plan) -> Result<Vec<Value>> {
    let r = report::build(plan, None);
    let dir = dir(data_dir);
    tabflow_engine::private::create_dir_all(&dir).map_err(|e| {
        Error::failed(format!("cannot create {}: {e}", dir.display()), "check TABFLOW_HOME / the data directory")
    })?;
    let mut out = vec![];
    for f in Format::ALL {
        let path = dir.join(format!("{}.{}", plan.id, f.extension()));
        tabflow_engine::private::write(&path, redactor.redact(&r.render(f)).as_bytes())
            .map_err(|e| Error::failed(format!("cannot write {}: {e}", path.display()), "check the data directory"))?;
        out.push(json!({"format": f.extension(), "path": path.display().to_string()}));
    }
    Ok(out)
}

impl App {
    /// The report of a stored run, to render in any format.
    pub async fn run_report(&self, run_id: &str) -> Result<Report> {
        of_run(&self.store, run_id).await
    }
}
