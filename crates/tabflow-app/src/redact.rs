//! One redaction list: every secret this process was configured with, replaced by
//! `[redacted]` wherever text leaves it — the request as stored in plans and sent to a model,
//! notes, reports, audit exports, errors and logs. Front ends build it from their settings
//! ([`Redactor::from_settings`]) and pass its secrets in `Options::secrets`; the service adds
//! the secrets of the store URL and of the connection.

use std::borrow::Cow;

/// Settings whose whole value is a secret.
pub const SECRET_SETTINGS: &[&str] = &[
    "TABLEAU_PAT_SECRET",
    "TABLEAU_PASSWORD",
    "TABLEAU_JWT",
    "TABFLOW_LLM_API_KEY",
    "TABFLOW_SMTP_PASSWORD",
    "TABFLOW_NOTIFY_WEBHOOK",
    "TABFLOW_NOTIFY_WEBHOOK_SECRET",
    "TABFLOW_EMULATOR_PAT_SECRET",
    "TABFLOW_EMULATOR_PASSWORD",
];

/// Settings holding a URL whose password (`user:password@`) and query values (`?key=…`)
/// are secrets.
pub const URL_SETTINGS: &[&str] =
    &["TABFLOW_STORE", "TABFLOW_SMTP_URL", "TABFLOW_LLM_URL", "TABFLOW_REPOSITORY_URL", "TABLEAU_SERVER"];

/// The Tableau sign-in settings, left out when the built-in demo site (whose sign-in is
/// public, DESIGN.md §4) is used.
pub const TABLEAU_SETTINGS: &[&str] = &["TABLEAU_PAT_SECRET", "TABLEAU_PASSWORD", "TABLEAU_JWT"];

/// Secrets shorter than this are not searched for in output: too many ordinary words would
/// be hit (the demo site's public secret is `tabflow`). Real tokens are far longer.
pub const MIN_SECRET_LEN: usize = 8;

/// The secrets to keep out of every output, longest first (a secret containing another is
/// replaced whole).
#[derive(Clone, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactor({} secrets)", self.secrets.len())
    }
}

impl Redactor {
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Redactor {
        let mut r = Redactor::default();
        for s in secrets {
            r.add(s);
        }
        r
    }

    /// The secrets of the settings a front end read, looked up by name
    /// ([`SECRET_SETTINGS`], [`URL_SETTINGS`]); the Tableau sign-in settings only when
    /// `tableau` (a real server, not the demo site).
    pub fn from_settings(lookup: impl Fn(&str) -> Option<String>, tableau: bool) -> Redactor {
        let mut r = Redactor::default();
        for k in SECRET_SETTINGS {
            if !tableau && TABLEAU_SETTINGS.contains(k) {
                continue;
            }
            if let Some(v) = lookup(k) {
                if k.ends_with("WEBHOOK") {
                    r.add_url(&v);
                }
                r.add(v);
            }
        }
        for k in URL_SETTINGS {
            if let Some(v) = lookup(k) {
                r.add_url(&v);
            }
        }
        r
    }

    /// Adds one secret (trimmed; ignored when shorter than [`MIN_SECRET_LEN`]).
    pub fn add(&mut self, secret: impl Into<String>) {
        let s: String = secret.into().trim().to_string();
        if s.chars().count() < MIN_SECRET_LEN || self.secrets.contains(&s) {
            return;
        }
        self.secrets.push(s);
        self.secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }

    /// Adds the secrets a URL carries (its password and query values).
    pub fn add_url(&mut self, url: &str) {
        for s in tabflow_site::text::url_secrets(url) {
            self.add(s);
        }
    }

    /// Adds every secret of another list.
    pub fn extend(&mut self, other: &Redactor) {
        for s in &other.secrets {
            self.add(s.clone());
        }
    }

    /// The secrets, longest first.
    pub fn secrets(&self) -> &[String] {
        &self.secrets
    }

    /// `text` with every secret replaced by `[redacted]`.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        if !self.secrets.iter().any(|s| text.contains(s.as_str())) {
            return Cow::Borrowed(text);
        }
        Cow::Owned(self.secrets.iter().fold(text.to_string(), |t, s| t.replace(s.as_str(), "[redacted]")))
    }
}

/// The sign-in secret of a connection (PAT secret, password or JWT).
pub(crate) fn credential_secret(config: &tabflow_client::Config) -> String {
    use tabflow_client::ExposeSecret;
    match &config.credentials {
        tabflow_client::config::Credentials::Pat { secret, .. } => secret.expose_secret().to_string(),
        tabflow_client::config::Credentials::Password { password, .. } => password.expose_secret().to_string(),
        tabflow_client::config::Credentials::Jwt { token } => token.expose_secret().to_string(),
    }
}

impl crate::App {
    /// The credentials to keep out of plans and prompts: the front end's list, the store
    /// URL's, plus the connection's own secret (the demo site's sign-in is public,
    /// DESIGN.md §4).
    pub(crate) fn secrets(&self, session: &crate::Session) -> Vec<String> {
        let mut out = self.secrets.clone();
        out.extend(self.redactor.secrets().iter().cloned());
        if !session.is_demo() {
            out.push(credential_secret(session.client.config()));
        }
        out.retain(|s| s.len() >= 4);
        out.sort_by_key(|s| std::cmp::Reverse(s.len()));
        out.dedup();
        out
    }

    /// The request as plans and models see it: any credential in it is `[redacted]`.
    pub async fn redact(&self, request: &str) -> crate::Result<String> {
        let session = self.connect().await?;
        Ok(self.secrets(session).iter().fold(request.to_string(), |r, s| r.replace(s.as_str(), "[redacted]")))
    }

    /// Text leaving the service (notes, reports, exports) with every configured secret
    /// `[redacted]`.
    pub fn redact_text(&self, text: &str) -> String {
        self.redactor.redact(text).into_owned()
    }

    /// The service's redaction list (the front end's secrets and the store URL's).
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_list_from_every_setting() {
        let vars = [
            ("TABLEAU_PAT_SECRET", "pat-secret-value-1"),
            ("TABFLOW_SMTP_PASSWORD", "smtp-password-2"),
            ("TABFLOW_NOTIFY_WEBHOOK", "https://hooks.example/T0/B0/webhook-path-3"),
            ("TABFLOW_NOTIFY_WEBHOOK_SECRET", "hmac-secret-4"),
            ("TABFLOW_STORE", "postgres://u:pg-password-5@db/t"),
            ("TABFLOW_LLM_URL", "https://llm.example/v1?key=llm-key-in-url-6"),
            ("TABFLOW_LLM_API_KEY", "llm-api-key-7"),
        ];
        let get = |k: &str| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string());
        let r = Redactor::from_settings(get, true);
        let text = vars.iter().map(|(_, v)| *v).collect::<Vec<_>>().join(" | ");
        let shown = r.redact(&text);
        for n in 1..=7 {
            assert!(!shown.contains(&format!("-{n}")), "{shown}");
        }
        // The demo site's public sign-in is not a secret; short values are not searched for.
        let demo = Redactor::from_settings(get, false);
        assert!(demo.redact("pat-secret-value-1").contains("pat-secret"));
        assert_eq!(Redactor::new(["tabflow".to_string()]).redact("tabflow runs list"), "tabflow runs list");
        assert!(!format!("{r:?}").contains("value-1"));
    }
}
