//! Report files the terminal writes: `--report FILE` and `-o FILE` (the format from the
//! extension). A run's four reports in `<data dir>/reports/` are written by the application
//! service (`tabflow_app::reports`).

use std::path::Path;

use tabflow_workflows::report::Format;

use crate::exit::{fail, usage};

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
    tabflow_engine::private::write(path, crate::term::redact(text).as_bytes())
        .map_err(|e| fail(format!("cannot write {}: {e}", path.display()), "check the output path"))
}
