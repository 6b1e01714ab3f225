//! Where to connect and how to sign in: flags, `TABLEAU_*` environment variables, or a
//! profile in the TOML config file.

use std::time::Duration;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::secret::Secret;

/// Calls per second a rate limit may be (`--rate-limit`, `rate_limit_per_s`): from one call
/// every 100 seconds to 10,000 a second.
pub const RATE_LIMIT_RANGE: std::ops::RangeInclusive<f64> = 0.01..=10_000.0;

/// The most calls in flight at once (`--concurrency`, `concurrency`, `read_concurrency`).
pub const MAX_CONCURRENCY: usize = 1024;

/// Checks a rate limit: `None` when it is usable, else what is wrong with it.
pub fn check_rate_limit(r: f64) -> Option<String> {
    (!RATE_LIMIT_RANGE.contains(&r)).then(|| {
        // 1e-300 written out is 300 zeros: tiny and huge numbers in exponent form.
        let plain = r == 0.0 || !r.is_finite() || (1e-3..1e7).contains(&r.abs());
        let shown = if plain { format!("{r}") } else { format!("{r:e}") };
        format!("{shown} calls per second is out of range ({} to {})", RATE_LIMIT_RANGE.start(), RATE_LIMIT_RANGE.end())
    })
}

/// Checks a concurrency: `None` when it is usable, else what is wrong with it.
pub fn check_concurrency(n: usize) -> Option<String> {
    (!(1..=MAX_CONCURRENCY).contains(&n))
        .then(|| format!("{n} calls in flight is out of range (1 to {MAX_CONCURRENCY})"))
}

/// How to sign in.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// Personal access token.
    Pat { name: String, secret: Secret },
    /// User name and password (Tableau Server; not with MFA on Cloud).
    Password { username: String, password: Secret },
    /// A connected-app JWT, already signed.
    Jwt { token: Secret },
}

/// Client settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// `https://tableau.example.com` (no `/api` suffix).
    pub server: String,
    /// The site's content URL (`""` = the Default site).
    pub site: String,
    pub credentials: Credentials,
    /// Calls that change the site (anything but GET/HEAD) in flight at once.
    pub concurrency: usize,
    /// Reads (GET/HEAD) in flight at once. Reads change nothing and are retried safely, and a
    /// whole-site read is thousands of them, so they get a wider cap than writes; the calls
    /// in flight never exceed the larger of the two caps. Tableau Cloud meters calls per
    /// site and operation over time, not how many are open: a 429 is waited out as Tableau
    /// says. Lower it (`read_concurrency` in the profile, or `--concurrency`, which caps
    /// both) for a small Tableau Server.
    pub read_concurrency: usize,
    /// Calls per second (token bucket); `None` = unlimited.
    pub rate_limit_per_s: Option<f64>,
    /// Per-call timeout.
    pub timeout: Duration,
    /// Retries for transient failures (idempotent calls) and 429s (any call).
    pub max_retries: u32,
    /// First backoff step; doubles each retry, with full jitter.
    pub backoff_base: Duration,
    /// Longest single wait (backoff or Retry-After).
    pub max_wait: Duration,
    /// How long in all one call keeps waiting out 429 answers (rate limiting) before it gives
    /// up. A 429 means the call was not processed, so waiting is always safe; the limit only
    /// bounds how long a run can stall behind a throttled site.
    pub rate_limit_patience: Duration,
    /// Force an API version instead of negotiating with `serverInfo`.
    pub api_version: Option<String>,
    /// The largest API answer (XML or JSON) read into memory: 256 MiB. A larger one is
    /// refused before (from Content-Length) or while it is read, with [`crate::Error::TooLarge`].
    pub max_response_bytes: u64,
    /// The largest workbook or datasource file downloaded (held in memory for the backup
    /// before a change): 1 GiB, which is also the most the SQLite store keeps in one value.
    pub max_download_bytes: u64,
}

/// Default for [`Config::max_response_bytes`].
pub const MAX_RESPONSE_BYTES: u64 = 256 << 20;
/// Default for [`Config::max_download_bytes`].
pub const MAX_DOWNLOAD_BYTES: u64 = 1 << 30;

impl Config {
    pub fn new(server: impl Into<String>, site: impl Into<String>, credentials: Credentials) -> Config {
        Config {
            server: server.into().trim_end_matches('/').to_string(),
            site: site.into(),
            credentials,
            concurrency: 8,
            read_concurrency: 16,
            rate_limit_per_s: None,
            timeout: Duration::from_secs(120),
            max_retries: 6,
            backoff_base: Duration::from_millis(250),
            max_wait: Duration::from_secs(60),
            rate_limit_patience: Duration::from_secs(300),
            api_version: None,
            max_response_bytes: MAX_RESPONSE_BYTES,
            max_download_bytes: MAX_DOWNLOAD_BYTES,
        }
    }

    /// Credentials from `TABLEAU_PAT_NAME`/`TABLEAU_PAT_SECRET`, `TABLEAU_USERNAME`/
    /// `TABLEAU_PASSWORD` or `TABLEAU_JWT`, in that order; `None` when none is set.
    pub fn credentials_from_env() -> Option<Credentials> {
        credentials_from(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    }

    /// Reads a profile from a TOML config file:
    /// ```toml
    /// [profiles.prod]
    /// server = "https://tableau.example.com"
    /// site = "finance"
    /// pat_name = "tabflow"
    /// pat_secret_env = "PROD_PAT_SECRET"   # or pat_secret = "..." (discouraged)
    /// concurrency = 8        # writes in flight (and reads too, unless read_concurrency is set)
    /// read_concurrency = 16  # reads in flight
    /// rate_limit_per_s = 10
    /// ```
    pub fn from_profile(toml_text: &str, profile: &str) -> Result<Config> {
        // The parser's own message quotes the offending line, which may hold a secret: only
        // where (line, column, key) and what, never the value.
        let file: ConfigFile = toml::from_str(toml_text).map_err(|e| {
            Error::Config(format!(
                "the config file is not valid: {}",
                tabflow_site::text::toml_error(toml_text, e.message(), e.span())
            ))
        })?;
        let p = file.profiles.get(profile).ok_or_else(|| {
            let known: Vec<&String> = file.profiles.keys().collect();
            Error::Config(format!("no profile '{profile}' in the config file (profiles: {known:?})"))
        })?;
        let env = |name: &Option<String>| name.as_ref().and_then(|n| std::env::var(n).ok());
        let credentials = if let Some(name) = &p.pat_name {
            let secret = env(&p.pat_secret_env).or_else(|| p.pat_secret.clone()).ok_or_else(|| {
                Error::Config(format!(
                    "profile '{profile}' names a PAT but no pat_secret_env (or pat_secret) that is set"
                ))
            })?;
            Credentials::Pat { name: name.clone(), secret: Secret::new(secret) }
        } else if let Some(user) = &p.username {
            let password = env(&p.password_env).or_else(|| p.password.clone()).ok_or_else(|| {
                Error::Config(format!("profile '{profile}' names a user but no password_env (or password) that is set"))
            })?;
            Credentials::Password { username: user.clone(), password: Secret::new(password) }
        } else if let Some(jwt) = env(&p.jwt_env) {
            Credentials::Jwt { token: Secret::new(jwt) }
        } else {
            return Err(Error::Config(format!(
                "profile '{profile}' has no credentials (pat_name, username or jwt_env)"
            )));
        };
        let mut c = Config::new(p.server.clone(), p.site.clone().unwrap_or_default(), credentials);
        for (key, n) in [("concurrency", p.concurrency), ("read_concurrency", p.read_concurrency)] {
            if let Some(problem) = n.and_then(check_concurrency) {
                return Err(Error::Config(format!("profile '{profile}': {key}: {problem}")));
            }
        }
        if let Some(problem) = p.rate_limit_per_s.and_then(check_rate_limit) {
            return Err(Error::Config(format!("profile '{profile}': rate_limit_per_s: {problem}")));
        }
        if let Some(t) = p.timeout_s
            && !(1..=86_400).contains(&t)
        {
            return Err(Error::Config(format!(
                "profile '{profile}': timeout_s: {t} seconds is out of range (1 to 86400)"
            )));
        }
        if let Some(n) = p.concurrency {
            c.concurrency = n.max(1);
            c.read_concurrency = n.max(1);
        }
        if let Some(n) = p.read_concurrency {
            c.read_concurrency = n.max(1);
        }
        c.rate_limit_per_s = p.rate_limit_per_s;
        if let Some(t) = p.timeout_s {
            c.timeout = Duration::from_secs(t.max(1));
        }
        Ok(c)
    }
}

impl Config {
    /// A profile's `store` and `policy` keys (the front end's defaults for its state store
    /// and policy file); errors as [`Config::from_profile`], without reading any secret.
    pub fn profile_store(toml_text: &str, profile: &str) -> Result<(Option<String>, Option<std::path::PathBuf>)> {
        let file: ConfigFile = toml::from_str(toml_text).map_err(|e| {
            Error::Config(format!(
                "the config file is not valid: {}",
                tabflow_site::text::toml_error(toml_text, e.message(), e.span())
            ))
        })?;
        let p = file
            .profiles
            .get(profile)
            .ok_or_else(|| Error::Config(format!("no profile '{profile}' in the config file")))?;
        Ok((p.store.clone(), p.policy.clone()))
    }
}

fn credentials_from(get: impl Fn(&str) -> Option<String>) -> Option<Credentials> {
    if let (Some(name), Some(secret)) = (get("TABLEAU_PAT_NAME"), get("TABLEAU_PAT_SECRET")) {
        return Some(Credentials::Pat { name, secret: Secret::new(secret) });
    }
    if let (Some(username), Some(password)) = (get("TABLEAU_USERNAME"), get("TABLEAU_PASSWORD")) {
        return Some(Credentials::Password { username, password: Secret::new(password) });
    }
    get("TABLEAU_JWT").map(|t| Credentials::Jwt { token: Secret::new(t) })
}

#[derive(Debug, Deserialize)]
struct ConfigFile {
    #[serde(default)]
    profiles: std::collections::BTreeMap<String, Profile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Profile {
    server: String,
    site: Option<String>,
    pat_name: Option<String>,
    pat_secret: Option<String>,
    pat_secret_env: Option<String>,
    username: Option<String>,
    password: Option<String>,
    password_env: Option<String>,
    jwt_env: Option<String>,
    concurrency: Option<usize>,
    read_concurrency: Option<usize>,
    rate_limit_per_s: Option<f64>,
    timeout_s: Option<u64>,
    /// The front end's state store and policy file for this profile (not the client's).
    store: Option<String>,
    policy: Option<std::path::PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_order_and_redaction() {
        let vars = [("TABLEAU_PAT_NAME", "n"), ("TABLEAU_PAT_SECRET", "s3cret"), ("TABLEAU_USERNAME", "u")];
        let get = |k: &str| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string());
        let c = credentials_from(get).unwrap();
        assert!(matches!(&c, Credentials::Pat { name, .. } if name == "n"));
        assert!(!format!("{c:?}").contains("s3cret"));
        assert!(credentials_from(|_| None).is_none());
    }

    #[test]
    fn profile_parsing() {
        let text = r#"
            [profiles.prod]
            server = "https://t.example.com/"
            site = "fin"
            pat_name = "tok"
            pat_secret = "abc"
            concurrency = 4
        "#;
        let c = Config::from_profile(text, "prod").unwrap();
        assert_eq!((c.server.as_str(), c.site.as_str(), c.concurrency), ("https://t.example.com", "fin", 4));
        assert!(Config::from_profile(text, "dev").unwrap_err().to_string().contains("no profile 'dev'"));
        assert!(Config::from_profile("[profiles.x]\nserver='s'", "x").is_err());
        assert!(Config::from_profile("not toml [", "x").is_err());
        // Errors say where, never what: a secret on the broken line stays out.
        let e = Config::from_profile("[profiles.x]\nserver = 's'\npat_secret = hunter2-pw\n", "x").unwrap_err();
        assert!(e.to_string().contains("line 3") && !e.to_string().contains("hunter2"), "{e}");
        let e = Config::from_profile("[profiles.x]\nserver = 's'\nconcurrency = \"hunter2\"\n", "x").unwrap_err();
        assert!(e.to_string().contains("concurrency") && !e.to_string().contains("hunter2"), "{e}");
        for bad in ["rate_limit_per_s = 1e-30", "rate_limit_per_s = nan", "rate_limit_per_s = -1.0", "concurrency = 0"]
        {
            let text = format!("[profiles.x]\nserver = 's'\npat_name = 'n'\npat_secret = 'p'\n{bad}\n");
            let e = Config::from_profile(&text, "x").unwrap_err().to_string();
            assert!(e.contains("out of range"), "{bad}: {e}");
        }
    }
}
