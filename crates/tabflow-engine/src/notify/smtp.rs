//! SMTP for the notification emails, through lettre's connection API.
//!
//! lettre does the protocol: connecting (implicit TLS, or `STARTTLS` per RFC 3207, with rustls
//! on aws-lc-rs and the platform verifier — the stack reqwest already brings — plus the CA of
//! `TABFLOW_SMTP_CA_FILE`), `EHLO`, `AUTH PLAIN` or `LOGIN`, the commands, reading and parsing
//! replies, and dot-stuffing the message. This module drives an [`AsyncSmtpConnection`] step
//! by step instead of handing messages to lettre's `AsyncSmtpTransport`, because the transport
//! cannot keep these promises:
//!
//! - the password goes only over TLS, to this machine, or with `?tls=none` (the transport
//!   authenticates on a plain connection when an opportunistic `STARTTLS` was not offered);
//! - errors name the step the server refused (`AUTH for the user 'ann' (PLAIN)`, `RCPT
//!   TO:<…>`), a missing `STARTTLS` or mechanism says what to change, and [`Error::temporary`]
//!   tells a 4xx answer or an unreachable server from what needs a fix first;
//! - `TABFLOW_LOG=debug` shows the exchange without the credentials (lettre's own `tracing`
//!   logs the `AUTH` argument) and server answers are scrubbed of the password
//!   ([`Config::scrub`]) before they are logged or stored;
//! - every step has a timeout (lettre's async connection times out only the TCP connect);
//! - a refused recipient leaves the session usable after `RSET` (the transport drops it).
//!
//! The settings ([`Config::parse`]) are tabflow's own: `smtp://`/`smtps://` with `?tls=`, the
//! default per host and the precedence of `TABFLOW_SMTP_USERNAME`/`_PASSWORD`. The password is a
//! [`SecretString`]: never in `Debug`, errors or the outbox.
// Reads SMTP servers' replies (issue #17: no panic from outside data).
#![cfg_attr(not(test), deny(clippy::indexing_slicing, clippy::string_slice, clippy::unwrap_used))]

use std::fmt::Display;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use lettre::Message;
use lettre::transport::smtp::Error as SmtpError;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt, Rset};
use lettre::transport::smtp::extension::{ClientId, Extension};
use lettre::transport::smtp::response::Response;
use secrecy::{ExposeSecret, SecretString};

/// When the connection is encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tls {
    /// `smtps://`: TLS from the first byte (port 465).
    Implicit,
    /// `STARTTLS` before anything else is sent; a server that does not offer it is an error.
    Required,
    /// `STARTTLS` when the server offers it, plain text otherwise.
    Opportunistic,
    /// Never (`?tls=none`).
    Off,
}

impl Tls {
    pub fn as_str(self) -> &'static str {
        match self {
            Tls::Implicit => "implicit",
            Tls::Required => "required",
            Tls::Opportunistic => "opportunistic",
            Tls::Off => "none",
        }
    }
}

/// Where and how to connect: from `TABFLOW_SMTP_URL` (see [`Config::parse`]).
#[derive(Clone)]
pub struct Config {
    pub host: String,
    pub port: u16,
    pub tls: Tls,
    pub username: Option<String>,
    password: Option<SecretString>,
    /// PEM certificates trusted besides the system's (a private CA).
    pub ca_file: Option<PathBuf>,
    /// For the connection and each step after it.
    pub timeout: Duration,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .field("ca_file", &self.ca_file)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Config {
    /// Reads `smtp://[user[:password]@]host[:port][?tls=required|opportunistic|none]` or
    /// `smtps://[user[:password]@]host[:port]`. Ports default to 587 (submission) and 465.
    /// Without `?tls=`, `smtp://` requires STARTTLS except to this machine (`localhost`,
    /// `127.0.0.0/8`, `::1`), where it is used when offered. `username` and `password` (from
    /// `TABFLOW_SMTP_USERNAME` / `TABFLOW_SMTP_PASSWORD`) take precedence over the URL's.
    /// The error never contains the password.
    pub fn parse(
        text: &str,
        username: Option<String>,
        password: Option<String>,
        ca_file: Option<PathBuf>,
    ) -> Result<Config, String> {
        let shown = tabflow_client::repository::redact_url(text);
        let url = url::Url::parse(text.trim()).map_err(|e| format!("'{shown}' is not a URL ({e})"))?;
        let implicit = match url.scheme() {
            "smtp" => false,
            "smtps" => true,
            other => return Err(format!("'{shown}' has the scheme '{other}:'; use smtp:// or smtps://")),
        };
        let host = match url.host() {
            Some(url::Host::Domain(d)) if !d.is_empty() => d.to_string(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            _ => return Err(format!("'{shown}' names no host")),
        };
        if !matches!(url.path(), "" | "/") || url.fragment().is_some() {
            return Err(format!("'{shown}' has a path; give only smtp://host:port"));
        }
        let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
        let mut tls = None;
        for (k, v) in url.query_pairs() {
            match (k.as_ref(), v.as_ref()) {
                ("tls", "required") => tls = Some(Tls::Required),
                ("tls", "opportunistic") => tls = Some(Tls::Opportunistic),
                ("tls", "none") => tls = Some(Tls::Off),
                ("tls", other) => {
                    return Err(format!("?tls={other} is not a TLS mode; use required, opportunistic or none"));
                }
                (other, _) => return Err(format!("'{shown}' has the unknown parameter '{other}'; only ?tls= is read")),
            }
        }
        let tls = match (implicit, tls) {
            (true, None) => Tls::Implicit,
            (true, Some(_)) => return Err("smtps:// is always TLS; ?tls= applies to smtp:// only".into()),
            (false, Some(t)) => t,
            (false, None) if is_loopback(&host) => Tls::Opportunistic,
            (false, None) => Tls::Required,
        };
        let username = username.or_else(|| Some(decode(url.username())).filter(|u| !u.is_empty()));
        let password = password.or_else(|| url.password().map(decode)).filter(|p| !p.is_empty());
        if password.is_some() && username.is_none() {
            return Err("a password is set but no user name: put it in the URL (smtp://USER:PASSWORD@host) or TABFLOW_SMTP_USERNAME".into());
        }
        Ok(Config {
            port: url.port().unwrap_or(if implicit { 465 } else { 587 }),
            host,
            tls,
            username,
            password: password.map(SecretString::from),
            ca_file,
            timeout: Duration::from_secs(30),
        })
    }

    /// `host:port`, for messages.
    pub fn server(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// `text` with the password (plain and in every form AUTH sends it) replaced, for
    /// anything that is stored or shown: a server may echo what it was sent.
    pub fn scrub(&self, text: &str) -> String {
        let Some(password) = self.password.as_ref().map(ExposeSecret::expose_secret) else {
            return text.to_string();
        };
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let user = self.username.as_deref().unwrap_or_default();
        let mut forms = vec![b64(&format!("\0{user}\0{password}")), b64(password), password.to_string()];
        forms.retain(|f| !f.is_empty());
        forms.iter().fold(text.to_string(), |t, f| t.replace(f.as_str(), "[redacted]"))
    }

    /// TLS for the configured host: the system's roots through the platform verifier, plus
    /// the certificates of `ca_file`.
    fn tls_parameters(&self) -> Result<TlsParameters, Error> {
        let tls_error = |detail: String| Error::Tls { server: self.server(), detail };
        let mut builder = TlsParameters::builder(self.host.clone());
        if let Some(path) = &self.ca_file {
            let unreadable = |e: &dyn Display| {
                tls_error(format!("cannot read the CA file {} (TABFLOW_SMTP_CA_FILE): {e}", path.display()))
            };
            let pem = std::fs::read(path).map_err(|e| unreadable(&e))?;
            if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
                return Err(tls_error(format!("the CA file {} holds no PEM certificate", path.display())));
            }
            builder = builder.add_root_certificate(Certificate::from_pem(&pem).map_err(|e| unreadable(&e))?);
        }
        builder.build_rustls().map_err(|e| tls_error(cause(&e)))
    }

    /// The outcome of one step, run under the timeout, as this module's [`Error`].
    async fn step<T>(
        &self,
        during: &str,
        handshake: bool,
        work: impl Future<Output = Result<T, SmtpError>>,
    ) -> Result<T, Error> {
        let server = self.server();
        match tokio::time::timeout(self.timeout, work).await {
            Ok(Ok(done)) => Ok(done),
            Err(_) => Err(Error::Timeout { server, secs: self.timeout.as_secs(), during: during.into() }),
            Ok(Err(e)) => {
                let detail = self.scrub(&cause(&e));
                if let Some(code) = e.status() {
                    tracing::debug!(server = %server, "smtp < {} {detail}", u16::from(code));
                    let reply = Reply { code: code.into(), text: detail };
                    return Err(Error::Refused { server, command: during.into(), reply });
                }
                // tokio-rustls reports a failed handshake (an untrusted certificate, a wrong
                // name) as invalid data.
                let invalid_data = io_kind(&e) == Some(std::io::ErrorKind::InvalidData);
                Err(if e.is_timeout() {
                    Error::Timeout { server, secs: self.timeout.as_secs(), during: during.into() }
                } else if e.is_tls() || (handshake && invalid_data) {
                    let hint = if self.ca_file.is_none() && detail.contains("certificate") {
                        " (if the server's certificate comes from a private CA, set TABFLOW_SMTP_CA_FILE to its PEM file)"
                    } else {
                        ""
                    };
                    Error::Tls { server, detail: format!("{detail}{hint}") }
                } else if e.is_response() || e.is_client() {
                    Error::Protocol { server, during: during.into(), detail }
                } else if during == CONNECTING {
                    Error::Connect { server, detail }
                } else {
                    Error::Io { server, during: during.into(), detail }
                })
            }
        }
    }
}

const CONNECTING: &str = "connecting";

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().map(|ip| ip.is_loopback()).unwrap_or(false)
}

/// What went wrong, without lettre's prefixes ("permanent error (535): ", "Connection error: ").
fn cause(mut e: &SmtpError) -> String {
    loop {
        match std::error::Error::source(e) {
            Some(source) => match source.downcast_ref::<SmtpError>() {
                Some(inner) => e = inner,
                None => return source.to_string(),
            },
            None => return e.to_string(),
        }
    }
}

fn io_kind(e: &SmtpError) -> Option<std::io::ErrorKind> {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        source = s.source();
    }
    None
}

/// The message for `DATA`, before lettre's dot-stuffing. A single part (as `mail` builds)
/// ends with a CRLF even after a body that ends with one, and lettre follows the data with
/// CRLF "." CRLF, whose first CRLF ends the last line: without both, the body arrives as
/// written instead of with one or two empty lines more.
fn data(message: &Message) -> Vec<u8> {
    let mut data = message.formatted();
    let extra = if data.ends_with(b"\r\n\r\n") {
        4
    } else if data.ends_with(b"\r\n") {
        2
    } else {
        0
    };
    data.truncate(data.len() - extra);
    data
}

/// A server's answer: its code and text (the lines joined).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub text: String,
}

impl Reply {
    fn of(response: &Response) -> Reply {
        Reply { code: response.code().into(), text: response.message().collect::<Vec<_>>().join(" ") }
    }
}

impl std::fmt::Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.code, self.text.trim())
    }
}

/// What went wrong talking to the server. Never holds the password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server could not be reached.
    #[error("cannot connect to the SMTP server {server}: {detail}")]
    Connect { server: String, detail: String },
    /// The server did not answer in time.
    #[error("the SMTP server {server} did not answer within {secs} s ({during})")]
    Timeout { server: String, secs: u64, during: String },
    /// The connection broke.
    #[error("the connection to the SMTP server {server} broke ({during}): {detail}")]
    Io { server: String, during: String, detail: String },
    /// The TLS handshake (or its configuration) failed.
    #[error("TLS with the SMTP server {server} failed: {detail}")]
    Tls { server: String, detail: String },
    /// The server answered something that is not SMTP.
    #[error("the SMTP server {server} answered something that is not SMTP ({during}): {detail}")]
    Protocol { server: String, during: String, detail: String },
    /// The server refused a command.
    #[error("the SMTP server {server} refused {command}: {reply}")]
    Refused { server: String, command: String, reply: Reply },
    /// The configuration asks for something this server does not offer (STARTTLS, AUTH), or
    /// that would send the password in clear; the text says what to change.
    #[error("{0}")]
    Unsupported(String),
}

impl Error {
    /// Whether the same message may go through later unchanged: a 4xx answer, or the server
    /// being unreachable or slow. A 5xx answer or a configuration mismatch needs a fix first.
    pub fn temporary(&self) -> bool {
        match self {
            Error::Refused { reply, .. } => (400..500).contains(&reply.code),
            Error::Connect { .. } | Error::Timeout { .. } | Error::Io { .. } => true,
            _ => false,
        }
    }
}

/// An open, greeted (and, as configured, encrypted and authenticated) connection.
pub struct Session {
    conn: AsyncSmtpConnection,
    config: Config,
    /// A previous error left the connection unusable.
    broken: bool,
}

impl Session {
    /// Connects, reads the greeting, says EHLO, starts TLS and authenticates as configured.
    pub async fn connect(config: &Config) -> Result<Session, Error> {
        let server = config.server();
        // The machine's name in EHLO, or `[127.0.0.1]` when it has none.
        let hello = ClientId::default();
        let implicit = if config.tls == Tls::Implicit { Some(config.tls_parameters()?) } else { None };
        tracing::debug!(server = %server, "smtp: connecting (TLS {})", config.tls.as_str());
        let address = (config.host.as_str(), config.port);
        let connecting = AsyncSmtpConnection::connect_tokio1(address, Some(config.timeout), &hello, implicit, None);
        let conn = config.step(CONNECTING, config.tls == Tls::Implicit, connecting).await?;
        tracing::debug!(server = %server, "smtp < {}", conn.server_info());
        let mut s = Session { conn, config: config.clone(), broken: false };
        if !s.conn.is_encrypted() && matches!(config.tls, Tls::Required | Tls::Opportunistic) {
            if s.conn.server_info().supports_feature(Extension::StartTls) {
                tracing::debug!(server = %server, "smtp > STARTTLS");
                let tls = config.tls_parameters()?;
                config.step("STARTTLS", true, s.conn.starttls(tls, &hello)).await?;
                tracing::debug!(server = %server, "smtp < (TLS) {}", s.conn.server_info());
            } else if config.tls == Tls::Required {
                return Err(Error::Unsupported(format!(
                    "the SMTP server {server} does not offer STARTTLS, and tabflow requires TLS to a host that is not \
                     this machine: use smtps://{}:465 if the server has implicit TLS, or add ?tls=opportunistic to \
                     TABFLOW_SMTP_URL to send unencrypted (only on a network you trust)",
                    config.host
                )));
            }
        }
        if let Some(user) = config.username.clone() {
            s.authenticate(&user).await?;
        }
        Ok(s)
    }

    /// Sends one message to its envelope's recipients. Answers the server's final reply.
    pub async fn send(&mut self, message: &Message) -> Result<Reply, Error> {
        let result = self.transaction(message).await;
        if let Err(e) = &result {
            // After a refusal, RSET makes the session usable again; otherwise it is done.
            if !matches!(e, Error::Refused { .. }) || self.command(Rset).await.is_err() {
                self.broken = true;
            }
        }
        result
    }

    /// Whether the connection can carry another message.
    pub fn usable(&self) -> bool {
        !self.broken && !self.conn.has_broken()
    }

    async fn transaction(&mut self, message: &Message) -> Result<Reply, Error> {
        let envelope = message.envelope();
        self.command(Mail::new(envelope.from().cloned(), vec![])).await?;
        for to in envelope.to() {
            self.command(Rcpt::new(to.clone(), vec![])).await?;
        }
        self.command(Data).await?;
        let data = data(message);
        tracing::debug!(server = %self.config.server(), "smtp > (the message, {} bytes)", data.len());
        let response = self.config.step("the message", false, self.conn.message(&data)).await?;
        Ok(self.answered(&response))
    }

    /// Says goodbye; errors do not matter any more.
    pub async fn quit(mut self) {
        if self.usable() {
            tracing::debug!(server = %self.config.server(), "smtp > QUIT");
            let _ = self.config.step("QUIT", false, self.conn.quit()).await;
        }
    }

    async fn authenticate(&mut self, user: &str) -> Result<(), Error> {
        let server = self.config.server();
        let encrypted = self.conn.is_encrypted();
        if !(encrypted || is_loopback(&self.config.host) || self.config.tls == Tls::Off) {
            return Err(Error::Unsupported(format!(
                "refusing to send the SMTP password unencrypted to {server}: the connection has no TLS; use smtps:// \
                 or a server that offers STARTTLS (or ?tls=none to allow it on a network you trust)"
            )));
        }
        let Some(mechanism) = self.conn.server_info().get_auth_mechanism(&[Mechanism::Plain, Mechanism::Login]) else {
            return Err(Error::Unsupported(format!(
                "the SMTP server {server} offers neither AUTH PLAIN nor AUTH LOGIN{}, but a user name is configured: \
                 enable one of them on the server, or remove the credentials from TABFLOW_SMTP_URL / \
                 TABFLOW_SMTP_USERNAME if it needs none",
                if encrypted { "" } else { " on an unencrypted connection" }
            )));
        };
        let password = self.config.password.as_ref().map(|p| p.expose_secret().to_string()).unwrap_or_default();
        let credentials = Credentials::new(user.to_string(), password);
        tracing::debug!(server = %server, "smtp > AUTH {mechanism} (user '{user}')");
        let what = format!("AUTH for the user '{user}' ({mechanism})");
        let response = self.config.step(&what, false, self.conn.auth(&[mechanism], &credentials)).await?;
        self.answered(&response);
        Ok(())
    }

    /// Sends one command and reads its reply, which must be positive.
    async fn command(&mut self, command: impl Display) -> Result<Reply, Error> {
        let shown = command.to_string();
        let shown = shown.trim_end();
        tracing::debug!(server = %self.config.server(), "smtp > {shown}");
        let response = self.config.step(shown, false, self.conn.command(command)).await?;
        Ok(self.answered(&response))
    }

    /// A positive reply, scrubbed and logged.
    fn answered(&self, response: &Response) -> Reply {
        let mut reply = Reply::of(response);
        reply.text = self.config.scrub(&reply.text);
        tracing::debug!(server = %self.config.server(), "smtp < {reply}");
        reply
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_give_host_port_tls_and_credentials() {
        let password = |c: &Config| c.password.as_ref().map(|p| p.expose_secret().to_string());
        let c = Config::parse("smtp://bob:s%40cret@mail.example.com", None, None, None).unwrap();
        assert_eq!((c.host.as_str(), c.port, c.tls), ("mail.example.com", 587, Tls::Required));
        assert_eq!(c.username.as_deref(), Some("bob"));
        assert_eq!(password(&c).as_deref(), Some("s@cret"));
        let c = Config::parse("smtps://mail.example.com", None, None, None).unwrap();
        assert_eq!((c.port, c.tls), (465, Tls::Implicit));
        let c = Config::parse("smtp://127.0.0.1:2525", None, None, None).unwrap();
        assert_eq!((c.port, c.tls), (2525, Tls::Opportunistic));
        let c = Config::parse("smtp://localhost:25?tls=required", None, None, None).unwrap();
        assert_eq!(c.tls, Tls::Required);
        let c = Config::parse("smtp://[::1]:25?tls=none", Some("ann".into()), Some("pw".into()), None).unwrap();
        assert_eq!((c.host.as_str(), c.tls, c.server()), ("::1", Tls::Off, "[::1]:25".to_string()));
        assert_eq!(c.username.as_deref(), Some("ann"));
        // The variables win over the URL's user info.
        let c = Config::parse("smtp://u:p@h.example", Some("v".into()), Some("q".into()), None).unwrap();
        assert_eq!((c.username.as_deref(), password(&c).as_deref()), (Some("v"), Some("q")));
    }

    #[test]
    fn bad_urls_are_refused_without_showing_the_password() {
        for (url, says) in [
            ("http://u:hunter22@h", "use smtp:// or smtps://"),
            ("smtp://u:hunter22@h?tls=maybe", "is not a TLS mode"),
            ("smtps://u:hunter22@h?tls=none", "always TLS"),
            ("smtp://u:hunter22@h/path", "has a path"),
            ("smtp://u:hunter22@h?tsl=none", "unknown parameter 'tsl'"),
            ("smtp://:hunter22@h", "no user name"),
            ("mail.example.com", "is not a URL"),
        ] {
            let e = Config::parse(url, None, None, None).unwrap_err();
            assert!(e.contains(says), "{url}: {e}");
            assert!(!e.contains("hunter22"), "{url}: the password is in '{e}'");
        }
    }

    #[test]
    fn debug_and_scrub_hide_the_password() {
        let c = Config::parse("smtp://bob:hunter22@h.example", None, None, None).unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter22") && shown.contains("[redacted]"), "{shown}");
        let plain = base64::engine::general_purpose::STANDARD.encode("\0bob\0hunter22");
        let login = base64::engine::general_purpose::STANDARD.encode("hunter22");
        let echoed = format!("501 bad: AUTH PLAIN {plain} / {login} / hunter22");
        assert_eq!(c.scrub(&echoed), "501 bad: AUTH PLAIN [redacted] / [redacted] / [redacted]");
    }

    #[test]
    fn a_ca_file_without_certificates_is_a_tls_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let c = Config::parse("smtps://mail.example.com", None, None, Some(path.clone())).unwrap();
        let e = c.tls_parameters().err().unwrap();
        assert!(matches!(e, Error::Tls { .. }) && !e.temporary(), "{e}");
        assert!(e.to_string().contains("holds no PEM certificate"), "{e}");
        let c = Config { ca_file: Some(dir.path().join("missing.pem")), ..c };
        assert!(c.tls_parameters().err().unwrap().to_string().contains("cannot read the CA file"));
    }

    #[test]
    fn the_body_arrives_as_written() {
        let from = crate::notify::mail::parse_mailbox("a@example.com").unwrap();
        for (body, content) in [("end", "end\r\n"), ("Hello\n", "Hello\r\n"), ("a\n\n", "a\r\n\r\n")] {
            let message = crate::notify::mail::Email {
                from: &from,
                to: &from,
                subject: "s",
                body,
                date: chrono::Utc::now(),
                message_id: "m@example.com".into(),
                run_id: "r-1",
            }
            .build()
            .unwrap();
            // What the server keeps: the data up to the CRLF that ends its last line.
            let wire = String::from_utf8(data(&message)).unwrap() + "\r\n.\r\n";
            let kept = wire.strip_suffix(".\r\n").unwrap();
            assert_eq!(kept.split_once("\r\n\r\n").unwrap().1, content, "{body:?}");
        }
    }

    #[test]
    fn refusals_are_temporary_or_permanent_by_their_code() {
        let refused = |code| Error::Refused {
            server: "h:25".into(),
            command: "RCPT TO:<a@b>".into(),
            reply: Reply { code, text: "no".into() },
        };
        assert!(refused(451).temporary());
        assert!(!refused(550).temporary());
        assert!(Error::Connect { server: "h:25".into(), detail: "refused".into() }.temporary());
        assert!(!Error::Unsupported("x".into()).temporary());
        assert_eq!(refused(550).to_string(), "the SMTP server h:25 refused RCPT TO:<a@b>: 550 no");
    }
}
