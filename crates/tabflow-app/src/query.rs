//! Phase-1 site questions ("how many workbooks are in Finance?") answered read-only from the
//! connected site, for front ends that hold a service (`tabflow serve`'s `POST
//! /api/v1/query`). The work is `tabflow_workflows::query`'s; this reads the site and maps its
//! refusals to the service's error kinds with a fix.

use tabflow_workflows::query::{self, Answer};

use crate::App;
use crate::error::{Error, Kind, Result};

/// The longest question accepted, in characters (a request is at most 2000 as well).
pub const MAX_QUESTION_CHARS: usize = 2000;

impl App {
    /// Answers a question from the live site. A question of no known kind is refused before
    /// anything is read (usage), an ambiguous name needs input (the candidates are in the
    /// message), a name the site does not hold is not found (with suggestions).
    pub async fn query(&self, question: &str) -> Result<Answer> {
        let question = question.trim();
        if question.is_empty() {
            return Err(Error::usage("no question given", "ask e.g. \"how many workbooks are in Finance?\""));
        }
        if question.chars().count() > MAX_QUESTION_CHARS {
            return Err(Error::usage(
                format!("the question is longer than {MAX_QUESTION_CHARS} characters"),
                "ask a shorter question",
            ));
        }
        // Understood before reading: a question we cannot answer costs no site read.
        let understood = query::understand(question).map_err(|e| refusal(&e))?;
        let session = self.connect().await?;
        let server = session.client.config().server.clone();
        let read =
            tabflow_client::scoped::take_full(&session.client, true).await.map_err(|e| Error::client(e, &server))?;
        let answer = query::answer_query(&read.site, question, &understood).map_err(|e| refusal(&e))?;
        Ok(redact_answer(self, answer))
    }
}

/// A refused question as the service's error, with the fix the CLI gives too.
fn refusal(e: &query::Error) -> Error {
    match e {
        query::Error::NotUnderstood { .. } => Error::usage(
            e.to_string(),
            format!(
                "I can answer questions like: {}",
                query::EXAMPLES.iter().map(|x| format!("\"{x}\"")).collect::<Vec<_>>().join(", ")
            ),
        ),
        query::Error::Ambiguous { what, .. } => Error::new(
            Kind::NeedsInput,
            query::explain(e),
            format!("ask again naming one {what} exactly (quotes keep a name together)"),
        ),
        query::Error::NotFound { suggestions, what, .. } => Error::new(
            Kind::NotFound,
            query::explain(e),
            if suggestions.is_empty() {
                format!("ask \"list {what}s\" to see the {what}s of this site")
            } else {
                format!("ask again with one of: {}", suggestions.join(", "))
            },
        ),
        _ => Error::usage(query::explain(e), "rephrase the question"),
    }
}

/// The answer's texts with every configured secret `[redacted]` (the question is the
/// caller's own text and may carry one).
fn redact_answer(app: &App, mut a: Answer) -> Answer {
    a.question = app.redact_text(&a.question);
    a.summary = app.redact_text(&a.summary);
    a.notes = a.notes.iter().map(|n| app.redact_text(n)).collect();
    a
}
