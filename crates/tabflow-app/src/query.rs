//! Phase-1 questions ("how many workbooks are in Finance?") answered read-only from a read
//! of the connected site, for front ends that hold a service (the MCP server's `query_site`).
//! The work is `tabflow_workflows::query`'s; this maps its refusals to [`Error`]s.

use tabflow_workflows::query::{self, Answer};

use crate::App;
use crate::error::{Error, Kind, Result};

impl App {
    /// Answers a question about the connected site; nothing on the site changes. A question
    /// that is not understood is a usage error (the hint lists questions that are); a name
    /// matching several items needs input (the hint names them); a name matching nothing is
    /// not found (with suggestions).
    pub async fn query(&self, question: &str) -> Result<Answer> {
        let question = question.trim();
        if question.is_empty() {
            return Err(Error::usage("no question given", "ask e.g. \"how many workbooks are in Finance?\""));
        }
        // Understood before the site is read: a question we cannot answer costs no read.
        let q = query::understand(question).map_err(query_error)?;
        let session = self.connect().await?;
        let server = session.client.config().server.clone();
        let options = tabflow_client::snapshot::Options { usage: true };
        let site =
            tabflow_client::snapshot::take(&session.client, &options).await.map_err(|e| Error::client(e, &server))?;
        query::answer_query(&site, question, &q).map_err(query_error)
    }
}

fn query_error(e: query::Error) -> Error {
    let examples = || query::EXAMPLES.iter().map(|x| format!("\"{x}\"")).collect::<Vec<_>>().join(", ");
    match &e {
        query::Error::NotUnderstood { .. } => {
            Error::usage(e.to_string(), format!("I can answer questions like: {}", examples()))
        }
        query::Error::Ambiguous { what, .. } => Error::new(
            Kind::NeedsInput,
            query::explain(&e),
            format!("ask again naming one {what} exactly (quotes keep a name together)"),
        ),
        query::Error::NotFound { suggestions, what, .. } => Error::new(
            Kind::NotFound,
            query::explain(&e),
            if suggestions.is_empty() {
                format!("ask \"list {what}s\" to see the {what}s of this site")
            } else {
                format!("ask again with one of: {}", suggestions.join(", "))
            },
        ),
        _ => Error::usage(query::explain(&e), "rephrase the question"),
    }
}
