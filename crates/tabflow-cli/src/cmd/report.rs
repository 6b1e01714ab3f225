//! Reports of runs and plans on disk: every run's four reports in `<data dir>/reports/`
//! (`<run id>.{md,html,csv,json}`), and `tabflow runs report ID` to render a stored run again.
//! The report itself is built by `tabflow_workflows::report` from the store's plan, run row
//! and journal, so a report written by `apply` and one rendered later are the same.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use tabflow_engine::Store;
use tabflow_workflows::report::{self, Format, Report, RunInput};

use super::connect::data_dir;
use crate::exit::{fail, usage};

/// The report of a stored run (its plan, row and journal).
pub async fn of_run(store: &Store, run_id: &str) -> anyhow::Result<Report> {
    let row = store.run(run_id).await.map_err(|e| fail(e.to_string(), "see `tabflow runs list`"))?;
    let plan =
        store.plan(&row.plan_id).await.map_err(|e| fail(e.to_string(), "the run's plan is missing from the store"))?;
    let journal = store.journal(run_id).await.map_err(|e| fail(e.to_string(), "check the state store"))?;
    Ok(report::build(&plan, Some(RunInput { row: &row, journal: &journal })))
}

/// Where a run's reports live.
pub fn dir() -> PathBuf {
    data_dir().join("reports")
}

/// Writes the four reports of a run; returns `[{"format", "path"}]` (DESIGN.md §6).
pub async fn write_run(store: &Store, run_id: &str) -> anyhow::Result<Vec<Value>> {
    let r = of_run(store, run_id).await?;
    let dir = dir();
    std::fs::create_dir_all(&dir).map_err(|e| {
        fail(format!("cannot create {}: {e}", dir.display()), "check TABFLOW_HOME / the data directory")
    })?;
    let mut out = vec![];
    for f in Format::ALL {
        let path = dir.join(format!("{run_id}.{}", f.extension()));
        write(&path, &r.render(f))?;
        out.push(json!({"format": f.extension(), "path": path.display().to_string()}));
    }
    Ok(out)
}

/// The format a `--report FILE` asks for by its extension; anything else is a usage error.
pub fn format_of(path: &Path) -> anyhow::Result<Format> {
    Format::from_path(path).ok_or_else(|| {
        usage(
            format!(
                "cannot tell the report format of {}: the extension must be .md, .html, .csv or .json",
                path.display()
            ),
            "e.g. --report audit.html",
        )
    })
}

pub fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text)
        .map_err(|e| fail(format!("cannot write {}: {e}", path.display()), "check the output path"))
}
