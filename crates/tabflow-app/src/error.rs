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
    /// The caller may not do this (a requester approving its own request; HTTP 403).
    Forbidden,
    /// The plan, run or token named does not exist (CLI exit 1; HTTP 404).
    NotFound,
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

    /// A store lookup's failure: [`Kind::NotFound`] when the record is not there.
    pub(crate) fn lookup(e: tabflow_engine::store::StoreError, hint: impl Into<String>) -> Error {
        match e {
            tabflow_engine::store::StoreError::NotFound(m) => Error::new(Kind::NotFound, m, hint),
            e => Error::failed(e.to_string(), hint),
        }
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
        Missing::NeedsAuthenticatedApprover { need, terminal_names } => format!(
            "the policy needs {need} distinct approvers, and the terminal counts as one whatever name it runs under (approved here as {}); the other approvals must come from authenticated approvers — an API token with the approver role, through `tabflow serve`",
            terminal_names.join(", ")
        ),
        Missing::Rejected(who) => format!("{who} rejected this plan"),
        Missing::Expired => "the approval expired".into(),
        Missing::Stale => "the approval was for an older version of the plan".into(),
        Missing::None => "no approval".into(),
    }
}

/// What to do about a plan that cannot run yet.
pub fn missing_hint(m: &Missing) -> &'static str {
    match m {
        Missing::NeedsAuthenticatedApprover { .. } => {
            "nothing was changed; another approver approves with an approver token through `tabflow serve` (tabflow tokens create NAME --role approver), or lower required_approvers in the policy file if one approver is enough"
        }
        Missing::NotEnoughApprovers { .. } => {
            "another approver approves through the HTTP API or the terminal with the same plan"
        }
        Missing::Rejected(_) => "a rejected plan never runs; make a new plan with `tabflow plan` if it is still wanted",
        Missing::None | Missing::Expired | Missing::Stale => {
            "approve it (tabflow apply --approve, or an approver through the HTTP API), then start it"
        }
    }
}
