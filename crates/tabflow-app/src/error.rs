//! The service's one error type: what went wrong, the fix, and a kind a front end maps to its
//! own answer (the CLI to an exit code, the HTTP API to a status, the MCP server to a tool
//! error). Nothing here prints or exits.

use tabflow_engine::approval::Missing;

/// What kind of problem it is, for the front end's mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// The caller asked for something malformed or impossible (CLI exit 2).
    Usage,
    /// The request was fine but could not be done (CLI exit 1).
    Failed,
    /// The plan has unanswered questions (CLI exit 3).
    NeedsInput,
    /// A destructive plan has no valid approval yet, and why (CLI exit 3).
    NeedsApproval(Missing),
}

/// An error naming the problem (`message`) and the fix (`hint`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    pub kind: Kind,
    pub message: String,
    pub hint: String,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: Kind, message: impl Into<String>, hint: impl Into<String>) -> Error {
        Error { kind, message: message.into(), hint: hint.into() }
    }

    pub fn usage(message: impl Into<String>, hint: impl Into<String>) -> Error {
        Error::new(Kind::Usage, message, hint)
    }

    pub fn failed(message: impl Into<String>, hint: impl Into<String>) -> Error {
        Error::new(Kind::Failed, message, hint)
    }

    /// A store problem: the message as the store gave it, and `hint`.
    pub(crate) fn store(e: impl std::fmt::Display, hint: impl Into<String>) -> Error {
        Error::failed(e.to_string(), hint)
    }

    /// A Tableau client error, with the client's hint or a reachability hint for `server`.
    pub fn client(e: tabflow_client::Error, server: &str) -> Error {
        let hint = e.hint().unwrap_or_else(|| format!("check that {server} is a reachable Tableau site"));
        Error::failed(e.to_string(), hint)
    }
}

/// Why a plan cannot run yet, in words.
pub fn missing_text(m: &Missing) -> String {
    match m {
        Missing::NotEnoughApprovers { have, need } => {
            format!("the policy needs {need} distinct approvers; {have} approved so far")
        }
        Missing::Rejected(who) => format!("{who} rejected this plan"),
        Missing::Expired => "the approval expired".into(),
        Missing::Stale => "the approval was for an older version of the plan".into(),
        Missing::None => "no approval".into(),
    }
}
