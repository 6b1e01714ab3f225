//! The client's errors. Each says what went wrong and, through [`Error::hint`], what to do.

/// Everything a Tableau call can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Tableau answered with an `<error>` body (or a JSON error for the JSON APIs).
    #[error("Tableau answered {status} ({code} {summary}): {detail}")]
    Api { status: u16, code: String, summary: String, detail: String },
    /// Sign-in was refused (401001).
    #[error("sign-in to {server} (site '{site}') failed: {detail}")]
    SignIn { server: String, site: String, detail: String },
    /// The server could not be reached or the connection broke.
    #[error("cannot reach {url}: {detail}")]
    Connect { url: String, detail: String },
    /// The server answered something that is not Tableau's XML or JSON.
    #[error("unexpected answer from {url} (HTTP {status}): {detail}")]
    Protocol { url: String, status: u16, detail: String },
    /// The call took longer than the configured timeout.
    #[error("{method} {url} timed out after {seconds} s")]
    Timeout { method: String, url: String, seconds: u64 },
    /// The server's REST API is older than tabflow needs.
    #[error("the server speaks REST API {found}; tabflow needs {needed} or newer")]
    Version { found: String, needed: String },
    /// A GraphQL query returned errors.
    #[error("Metadata API query failed: {0}")]
    Graphql(String),
    /// Bad configuration (missing credentials, malformed URL, unreadable profile).
    #[error("{0}")]
    Config(String),
    /// The server answered with a redirect, which tabflow does not follow (it would carry
    /// credentials or the session token to another address).
    #[error("{url} answered {status}, a redirect to {location}; tabflow does not follow redirects with credentials")]
    Redirect { url: String, status: u16, location: String },
    /// An answer or download larger than the configured cap (read no further).
    #[error("the {what} from {url} is larger than {limit} bytes, the most tabflow reads")]
    TooLarge { url: String, what: &'static str, limit: u64 },
    /// A download could not be written to its file.
    #[error("{0}")]
    Io(String),
    /// The file being published could not be read (a stored backup's piece, or its
    /// checksum); nothing was published.
    #[error("the file to publish could not be read: {0}")]
    Upload(String),
    /// A list kept changing while it was read and could not be read consistently.
    #[error("the {resource} list kept changing while it was read ({detail})")]
    Unstable { resource: String, detail: String },
    /// A write was not sent: the check run right before it (see [`crate::client::fenced`])
    /// refused, e.g. because the work lease of the item was taken over by another process.
    #[error("not sent: {0}")]
    Fenced(String),
}

impl Error {
    /// Tableau's error code, when the server sent one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// HTTP status of an API error.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            Error::SignIn { .. } => "check the site content URL and the credentials (TABLEAU_PAT_NAME / TABLEAU_PAT_SECRET, or TABLEAU_USERNAME / TABLEAU_PASSWORD); a PAT may also have expired or been revoked".into(),
            Error::Connect { .. } => "check --server (scheme, host and port) and that the server is up; behind a proxy set HTTPS_PROXY".into(),
            Error::Protocol { .. } => "is --server a Tableau Server or Tableau Cloud URL? A proxy or login page may be answering instead".into(),
            Error::Timeout { .. } => "the server is slow or unreachable; retry later or raise the timeout".into(),
            Error::Version { .. } => "upgrade Tableau Server, or point tabflow at Tableau Cloud".into(),
            Error::Api { code, .. } if code.starts_with("403") => "the signed-in user lacks the permission or site role for this operation; use a site administrator's token".into(),
            Error::Api { code, .. } if code.starts_with("404") => "the item may have been deleted or moved; refresh and try again".into(),
            Error::Api { code, .. } if code == "429000" => "Tableau is rate limiting this site; lower the concurrency or try again later".into(),
            Error::Redirect { .. } => "set --server (or TABLEAU_SERVER) to the address the server redirects to, e.g. its https:// address; a redirect to another host may be a proxy or login page".into(),
            Error::TooLarge { what: "download", .. } => "the file is larger than tabflow can back up before changing it (max_download_bytes, 1 GiB by default, also SQLite's largest value); handle this item by hand, or raise the limit in code if the store can take it".into(),
            Error::TooLarge { .. } => "a proxy or server is sending far more than a Tableau answer; check --server, or ask for smaller pages".into(),
            Error::Upload(_) => "the saved copy of the file is damaged or its store cannot be read; check the state store (nothing was published from it)".into(),
            Error::Io(_) => "check the free space and permissions of the temporary directory (TMPDIR)".into(),
            Error::Config(_) => "see `tabflow --help` for the connection flags and environment variables".into(),
            _ => return None,
        })
    }

    /// Worth retrying with backoff for an idempotent call?
    pub(crate) fn is_transient(&self) -> bool {
        match self {
            Error::Api { status, .. } => *status >= 500,
            Error::Connect { .. } | Error::Timeout { .. } => true,
            Error::Protocol { status, .. } => *status >= 500,
            _ => false,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
