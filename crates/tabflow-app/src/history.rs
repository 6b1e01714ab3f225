//! What happened: runs with their journals, and the hash-chained audit log.

use tabflow_engine::audit::{self, Record, Verification};
use tabflow_engine::plan::Plan;
use tabflow_engine::store::{Entry, RunRow};

use crate::App;
use crate::error::{Error, Result};

/// One run: its row, its journal, and its plan when the store still has it.
#[derive(Debug, Clone)]
pub struct RunDetail {
    pub run: RunRow,
    pub journal: Vec<Entry>,
    pub plan: Option<Plan>,
    /// The template (`name@vN`) its plan was made from, if any.
    pub template: Option<String>,
}

impl App {
    /// Runs, newest first.
    pub async fn runs(&self, limit: i64) -> Result<Vec<RunRow>> {
        self.store.runs(limit).await.map_err(|e| Error::store(e, "check the state store"))
    }

    /// One run with its journal and plan.
    pub async fn run(&self, run_id: &str) -> Result<RunDetail> {
        let run = self.store.run(run_id).await.map_err(|e| Error::lookup(e, "see `tabflow runs list`"))?;
        let journal = self.store.journal(run_id).await.map_err(|e| Error::store(e, "check the state store"))?;
        let plan = self.store.plan(&run.plan_id).await.ok();
        let template = self.store.plan_template(&run.plan_id).await.ok().flatten();
        Ok(RunDetail { run, journal, plan, template })
    }

    /// Re-hashes the audit log and names the first broken record.
    pub async fn audit_verify(&self) -> Result<Verification> {
        audit::verify(&self.store).await.map_err(|e| {
            let hint = if matches!(e, tabflow_engine::store::StoreError::Refused(_)) {
                "make the audit anchor file readable (see --audit-anchor)"
            } else {
                "the store file is damaged; restore it from a backup"
            };
            Error::store(e, hint)
        })
    }

    /// Appends a record to the audit log (a front end's own actions: a plan asked for
    /// through the HTTP API, a token made there).
    pub async fn audit_append(&self, record: audit::NewRecord) -> Result<()> {
        audit::append(&self.store, record).await.map_err(|e| Error::store(e, "check the state store"))?;
        Ok(())
    }

    /// Every audit record, oldest first.
    pub async fn audit_records(&self) -> Result<Vec<Record>> {
        audit::records(&self.store).await.map_err(|e| Error::store(e, "check the state store"))
    }

    /// The audit log as `csv` or `json` text (for compliance). Every export carries the
    /// chain's head and the anchored head (see `tabflow_engine::audit`), so a copy of the
    /// anchor leaves with it: JSON as `{"head", "anchor", "records"}`, CSV as a last line
    /// `#head,<records>,<hash>,anchor,<records>,<hash>` (empty when nothing is anchored yet).
    pub async fn audit_export(&self, format: &str) -> Result<String> {
        if !matches!(format, "csv" | "json") {
            return Err(Error::usage(format!("unknown audit export format '{format}'"), "use csv or json"));
        }
        let records = self.audit_records().await?;
        let head = audit::head(&self.store).await.map_err(|e| Error::store(e, "check the state store"))?;
        let anchor = audit::anchor_state(&self.store).map_err(|e| Error::store(e, "check the audit anchor file"))?;
        match format {
            "csv" => {
                let anchored = anchor.as_ref().and_then(|a| a.head.as_ref());
                Ok(format!(
                    "{}#head,{},{},anchor,{},{}\n",
                    self.redact_text(&audit::to_csv(&records)),
                    head.records,
                    head.hash,
                    anchored.map(|h| h.records.to_string()).unwrap_or_default(),
                    anchored.map(|h| h.hash.as_str()).unwrap_or_default()
                ))
            }
            "json" => serde_json::to_string_pretty(&serde_json::json!({
                "head": head,
                "anchor": anchor,
                "records": records,
            }))
            .map(|t| self.redact_text(&t) + "\n")
            .map_err(|e| Error::failed(e.to_string(), "report this as a bug")),
            other => Err(Error::usage(format!("unknown audit export format '{other}'"), "use csv or json")),
        }
    }
}
