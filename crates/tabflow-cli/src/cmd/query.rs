//! `tabflow query "<question>" [--json]`: Phase-1 questions answered read-only from the live
//! site (or the built-in demo site) as a table. The work is in `tabflow_workflows::query`.

use std::io::Write;

use clap::Args;
use serde_json::json;
use tabflow_workflows::query::{self, Error};

use super::connect::{Connect, client_error};
use crate::exit::{Code, Failure, usage};

#[derive(Debug, Args)]
pub struct QueryArgs {
    /// The question, in plain language ("how many workbooks are in Finance?").
    question: Option<String>,
    /// Print the answer as JSON: {"question","kind","as_of","summary","columns","rows","total","notes"}.
    #[arg(long)]
    json: bool,
    /// Rows printed in the table (the JSON answer always has all of them).
    #[arg(long, default_value_t = 50)]
    max_rows: usize,
    #[command(flatten)]
    connect: Connect,
}

pub async fn run(a: QueryArgs) -> anyhow::Result<Code> {
    let Some(question) = a.question.as_deref().map(str::trim).filter(|q| !q.is_empty()) else {
        return Err(usage("no question given", "tabflow query \"how many workbooks are in Finance?\""));
    };
    // Understood before connecting: a question we cannot answer costs no site read.
    let understood = query::understand(question);
    let result = match understood {
        Ok(q) => {
            let session = a.connect.open().await?;
            let server = session.client.config().server.clone();
            let options = tabflow_client::snapshot::Options { usage: true };
            let site = tabflow_client::snapshot::take(&session.client, &options).await;
            session.finish().await.map_err(crate::exit::app)?;
            let site = site.map_err(|e| client_error(e, &server))?;
            query::answer_query(&site, question, &q)
        }
        Err(e) => Err(e),
    };
    let mut out = crate::term::stdout();
    match result {
        Ok(answer) => {
            if a.json {
                writeln!(out, "{}", serde_json::to_string_pretty(&answer)?)?;
            } else {
                write!(out, "{}", query::render(&answer, a.max_rows))?;
            }
            Ok(Code::Ok)
        }
        Err(e) => {
            let (kind, candidates, code, hint) = match &e {
                Error::NotUnderstood { .. } => (
                    "not-understood",
                    query::EXAMPLES.iter().map(|x| x.to_string()).collect::<Vec<_>>(),
                    Code::Error,
                    format!(
                        "I can answer questions like: {}",
                        query::EXAMPLES.iter().map(|x| format!("\"{x}\"")).collect::<Vec<_>>().join(", ")
                    ),
                ),
                Error::Ambiguous { candidates, what, .. } => (
                    "ambiguous",
                    candidates.clone(),
                    Code::NeedsInput,
                    format!("ask again naming one {what} exactly (quotes keep a name together)"),
                ),
                Error::NotFound { suggestions, what, .. } => (
                    "not-found",
                    suggestions.clone(),
                    Code::Error,
                    if suggestions.is_empty() {
                        format!("`tabflow query \"list {what}s\"` lists the {what}s of this site")
                    } else {
                        format!("ask again with one of: {}", suggestions.join(", "))
                    },
                ),
                _ => ("error", vec![], Code::Error, "rephrase the question".to_string()),
            };
            if a.json {
                let v = json!({"question": question, "kind": null, "error": {"kind": kind, "message": query::explain(&e), "candidates": candidates}});
                writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
            }
            let message = match &e {
                Error::NotUnderstood { .. } => e.to_string(),
                _ => query::explain(&e),
            };
            Err(anyhow::Error::new(Failure { message, hint: Some(hint), code }))
        }
    }
}
