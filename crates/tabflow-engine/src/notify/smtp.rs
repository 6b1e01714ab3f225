//! A small SMTP client (RFC 5321) on tokio, for the notification emails.
//!
//! One session per batch: greeting, `EHLO` (`HELO` when the server does not know `EHLO`),
//! `STARTTLS` (RFC 3207) or implicit TLS through rustls — the same rustls, aws-lc-rs provider
//! and platform verifier reqwest uses, so it adds no crate — then `AUTH PLAIN` (or `AUTH
//! LOGIN` when that is all the server offers, RFC 4954), and per message `MAIL FROM`, `RCPT
//! TO`, `DATA` with dot-stuffing, `RSET` after a refusal; `QUIT` at the end. Every read and
//! write has a timeout. A 4xx answer is temporary and a 5xx permanent ([`Error::temporary`]).
//!
//! The password is held in a [`Secret`] and only ever written to the socket; it never appears
//! in `Debug`, errors or the outbox (server answers are scrubbed too: [`Config::scrub`]).

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use tabflow_client::secret::Secret;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::rustls;

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
    password: Option<Secret>,
    /// PEM certificates trusted besides the system's (a private CA).
    pub ca_file: Option<PathBuf>,
    /// For each connect, read and write.
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
            password: password.map(Secret::new),
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
        let Some(password) = self.password.as_ref().map(Secret::expose) else { return text.to_string() };
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let user = self.username.as_deref().unwrap_or_default();
        let mut forms = vec![b64(&format!("\0{user}\0{password}")), b64(password), password.to_string()];
        forms.retain(|f| !f.is_empty());
        forms.iter().fold(text.to_string(), |t, f| t.replace(f.as_str(), "[redacted]"))
    }

    fn loopback(&self) -> bool {
        is_loopback(&self.host)
    }
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().map(|ip| ip.is_loopback()).unwrap_or(false)
}

/// A server's answer: its code and text lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl std::fmt::Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.code, self.lines.join(" / ").trim())
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

    /// Whether the session can go on after it (a refusal leaves it usable after `RSET`).
    fn fatal(&self) -> bool {
        !matches!(self, Error::Refused { command, .. } if command.starts_with("MAIL") || command.starts_with("RCPT") || command.starts_with("DATA") || command.starts_with("the message"))
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// An open, greeted (and, as configured, encrypted and authenticated) connection.
pub struct Session {
    io: BufReader<Box<dyn Io>>,
    config: Config,
    /// EHLO keywords, upper-cased (`AUTH PLAIN LOGIN`, `STARTTLS`, `SIZE 1000`).
    extensions: Vec<String>,
    /// `[127.0.0.1]`: what this side calls itself in EHLO (RFC 5321 §4.1.3 address literal).
    me: String,
    encrypted: bool,
    /// A previous error left the connection unusable.
    broken: bool,
}

/// Longest reply line read; RFC 5321 allows 512, servers sometimes send more.
const MAX_LINE: u64 = 4096;

impl Session {
    /// Connects, reads the greeting, says EHLO, starts TLS and authenticates as configured.
    pub async fn connect(config: &Config) -> Result<Session, Error> {
        let server = config.server();
        let secs = config.timeout.as_secs();
        let tcp = tokio::time::timeout(config.timeout, TcpStream::connect((config.host.as_str(), config.port)))
            .await
            .map_err(|_| Error::Timeout { server: server.clone(), secs, during: "connecting".into() })?
            .map_err(|e| Error::Connect { server: server.clone(), detail: e.to_string() })?;
        let me = match tcp.local_addr().map(|a| a.ip()) {
            Ok(IpAddr::V4(ip)) => format!("[{ip}]"),
            Ok(IpAddr::V6(ip)) => format!("[IPv6:{ip}]"),
            Err(_) => "[127.0.0.1]".into(),
        };
        let _ = tcp.set_nodelay(true);
        let mut encrypted = false;
        let io: Box<dyn Io> = if config.tls == Tls::Implicit {
            encrypted = true;
            Box::new(handshake(config, tcp).await?)
        } else {
            Box::new(tcp)
        };
        let mut s = Session {
            io: BufReader::new(io),
            config: config.clone(),
            extensions: vec![],
            me,
            encrypted,
            broken: false,
        };
        s.expect("the greeting", &[220]).await?;
        s.hello().await?;
        if !s.encrypted && matches!(config.tls, Tls::Required | Tls::Opportunistic) {
            if s.offers("STARTTLS") {
                s.command("STARTTLS", "STARTTLS", &[220]).await?;
                // Anything the server sent after its 220 would be read as if it came over TLS
                // (the STARTTLS command injection of CVE-2011-0411): refuse.
                if !s.io.buffer().is_empty() {
                    return Err(s.protocol("STARTTLS", "data arrived before the TLS handshake".into()));
                }
                let plain = std::mem::replace(&mut s.io, BufReader::new(Box::new(tokio::io::empty()) as Box<dyn Io>));
                let tls = handshake(config, plain.into_inner()).await?;
                s.io = BufReader::new(Box::new(tls));
                s.encrypted = true;
                // RFC 3207 §4.2: forget what was said before TLS; ask again.
                s.hello().await?;
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

    /// Sends one message: `data` is the rendered message (line breaks are normalised to
    /// CRLF and lines starting with `.` doubled here). Answers the server's final reply.
    pub async fn send(&mut self, from: &str, to: &str, data: &str) -> Result<Reply, Error> {
        let result = self.transaction(from, to, data).await;
        if let Err(e) = &result {
            // After a refusal, RSET makes the session usable again; otherwise it is done.
            if e.fatal() || self.command("RSET", "RSET", &[250]).await.is_err() {
                self.broken = true;
            }
        }
        result
    }

    /// Whether the connection can carry another message.
    pub fn usable(&self) -> bool {
        !self.broken
    }

    async fn transaction(&mut self, from: &str, to: &str, data: &str) -> Result<Reply, Error> {
        self.command(&format!("MAIL FROM:<{from}>"), &format!("MAIL FROM:<{from}>"), &[250]).await?;
        self.command(&format!("RCPT TO:<{to}>"), &format!("RCPT TO:<{to}>"), &[250, 251]).await?;
        self.command("DATA", "DATA", &[354]).await?;
        let mut bytes = transparent(data);
        bytes.extend_from_slice(b".\r\n");
        self.write(&bytes, "sending the message").await?;
        self.expect("the message", &[250]).await
    }

    /// Says goodbye; errors do not matter any more.
    pub async fn quit(mut self) {
        if !self.broken {
            let _ = self.command("QUIT", "QUIT", &[221]).await;
        }
        let _ = self.io.get_mut().shutdown().await;
    }

    fn offers(&self, keyword: &str) -> bool {
        self.extensions.iter().any(|e| e.split([' ', '=']).next() == Some(keyword))
    }

    /// The SASL mechanisms of the `AUTH` keyword (and the old `AUTH=` form).
    fn mechanisms(&self) -> Vec<String> {
        self.extensions
            .iter()
            .filter_map(|e| e.strip_prefix("AUTH ").or_else(|| e.strip_prefix("AUTH=")))
            .flat_map(|m| m.split_whitespace().map(str::to_string))
            .collect()
    }

    async fn hello(&mut self) -> Result<(), Error> {
        let ehlo = format!("EHLO {}", self.me);
        self.write_line(&ehlo, "EHLO").await?;
        let reply = self.read_reply("EHLO").await?;
        if reply.code == 250 {
            self.extensions = reply.lines.iter().skip(1).map(|l| l.trim().to_ascii_uppercase()).collect();
            return Ok(());
        }
        if !(500..600).contains(&reply.code) {
            return Err(self.refused("EHLO", reply));
        }
        // An old server that knows only HELO (RFC 5321 §3.2): no extensions.
        let helo = format!("HELO {}", self.me);
        self.command(&helo, "HELO", &[250]).await?;
        self.extensions.clear();
        Ok(())
    }

    async fn authenticate(&mut self, user: &str) -> Result<(), Error> {
        let server = self.config.server();
        if !(self.encrypted || self.config.loopback() || self.config.tls == Tls::Off) {
            return Err(Error::Unsupported(format!(
                "refusing to send the SMTP password unencrypted to {server}: the connection has no TLS; use smtps:// \
                 or a server that offers STARTTLS (or ?tls=none to allow it on a network you trust)"
            )));
        }
        let password = self.config.password.clone().unwrap_or_default();
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let mechanisms = self.mechanisms();
        let what = format!("AUTH for the user '{user}'");
        if mechanisms.iter().any(|m| m == "PLAIN") {
            let token = b64(&format!("\0{user}\0{}", password.expose()));
            self.write_line(&format!("AUTH PLAIN {token}"), "AUTH PLAIN").await?;
            let mut reply = self.read_reply("AUTH PLAIN").await?;
            if reply.code == 334 {
                // A server that wants the credentials after an empty challenge (RFC 4954 §4).
                self.write_line(&token, "AUTH PLAIN").await?;
                reply = self.read_reply("AUTH PLAIN").await?;
            }
            return if reply.code == 235 { Ok(()) } else { Err(self.refused(&format!("{what} (PLAIN)"), reply)) };
        }
        if mechanisms.iter().any(|m| m == "LOGIN") {
            self.command("AUTH LOGIN", &format!("{what} (LOGIN)"), &[334]).await?;
            self.command(&b64(user), &format!("{what} (LOGIN)"), &[334]).await?;
            self.command(&b64(password.expose()), &format!("{what} (LOGIN)"), &[235]).await?;
            return Ok(());
        }
        Err(Error::Unsupported(if mechanisms.is_empty() {
            format!(
                "the SMTP server {server} does not offer AUTH{}, but a user name is configured: remove the \
                 credentials from TABFLOW_SMTP_URL / TABFLOW_SMTP_USERNAME if it needs none",
                if self.encrypted { "" } else { " on an unencrypted connection" }
            )
        } else {
            format!(
                "the SMTP server {server} offers AUTH {}; tabflow speaks PLAIN and LOGIN (over TLS): enable one of \
                 them on the server",
                mechanisms.join(" ")
            )
        }))
    }

    /// Writes `line` and reads the reply, which must have one of the `ok` codes. `shown` is
    /// how the command is named in errors (never the credentials).
    async fn command(&mut self, line: &str, shown: &str, ok: &[u16]) -> Result<Reply, Error> {
        self.write_line(line, shown).await?;
        self.expect(shown, ok).await
    }

    async fn expect(&mut self, shown: &str, ok: &[u16]) -> Result<Reply, Error> {
        let reply = self.read_reply(shown).await?;
        if ok.contains(&reply.code) { Ok(reply) } else { Err(self.refused(shown, reply)) }
    }

    fn refused(&self, command: &str, mut reply: Reply) -> Error {
        reply.lines = reply.lines.iter().map(|l| self.config.scrub(l)).collect();
        Error::Refused { server: self.config.server(), command: command.to_string(), reply }
    }

    fn protocol(&self, during: &str, detail: String) -> Error {
        Error::Protocol { server: self.config.server(), during: during.into(), detail: self.config.scrub(&detail) }
    }

    async fn write_line(&mut self, line: &str, shown: &str) -> Result<(), Error> {
        // Only the command's name as shown in errors: never an AUTH argument.
        tracing::debug!(server = %self.config.server(), "smtp > {shown}");
        self.write(format!("{line}\r\n").as_bytes(), shown).await
    }

    async fn write(&mut self, bytes: &[u8], during: &str) -> Result<(), Error> {
        let server = self.config.server();
        let secs = self.config.timeout.as_secs();
        let io = self.io.get_mut();
        let done = tokio::time::timeout(self.config.timeout, async {
            io.write_all(bytes).await?;
            io.flush().await
        })
        .await;
        match done {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Error::Io { server, during: during.into(), detail: e.to_string() }),
            Err(_) => Err(Error::Timeout { server, secs, during: during.into() }),
        }
    }

    /// One reply: lines `250-…` continued until `250 …` (RFC 5321 §4.2.1).
    async fn read_reply(&mut self, during: &str) -> Result<Reply, Error> {
        let server = self.config.server();
        let secs = self.config.timeout.as_secs();
        let mut lines = vec![];
        let mut code = None;
        loop {
            let mut raw = vec![];
            let read =
                tokio::time::timeout(self.config.timeout, (&mut self.io).take(MAX_LINE).read_until(b'\n', &mut raw))
                    .await
                    .map_err(|_| Error::Timeout { server: server.clone(), secs, during: during.into() })?
                    .map_err(|e| Error::Io { server: server.clone(), during: during.into(), detail: e.to_string() })?;
            if read == 0 {
                return Err(Error::Io {
                    server,
                    during: during.into(),
                    detail: "the server closed the connection".into(),
                });
            }
            if !raw.ends_with(b"\n") {
                return Err(self.protocol(during, format!("a reply line longer than {MAX_LINE} bytes")));
            }
            let line = String::from_utf8_lossy(&raw);
            let line = line.trim_end_matches(['\r', '\n']);
            let (digits, rest) = line.split_at(line.len().min(3));
            let this: u16 = match digits.parse() {
                Ok(c) if digits.len() == 3 && (200..600).contains(&c) => c,
                _ => return Err(self.protocol(during, format!("'{}'", line.chars().take(80).collect::<String>()))),
            };
            if code.is_some_and(|c| c != this) {
                return Err(self.protocol(during, format!("a reply that changes its code ({line})")));
            }
            code = Some(this);
            let (more, text) = match rest.chars().next() {
                Some('-') => (true, &rest[1..]),
                Some(' ') => (false, &rest[1..]),
                None => (false, ""),
                Some(_) => return Err(self.protocol(during, format!("'{line}'"))),
            };
            lines.push(text.to_string());
            if !more {
                let reply = Reply { code: this, lines };
                tracing::debug!(server = %server, "smtp < {}", self.config.scrub(&reply.to_string()));
                return Ok(reply);
            }
            if lines.len() > 200 {
                return Err(self.protocol(during, "a reply of more than 200 lines".into()));
            }
        }
    }
}

/// The TLS handshake on `io`, verifying the server's certificate for the configured host
/// against the system's roots (plus `ca_file`).
async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
    config: &Config,
    io: S,
) -> Result<tokio_rustls::client::TlsStream<S>, Error> {
    let server = config.server();
    let tls_error = |detail: String| Error::Tls { server: server.clone(), detail };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut extra = vec![];
    if let Some(path) = &config.ca_file {
        use rustls::pki_types::pem::PemObject;
        let certs = rustls::pki_types::CertificateDer::pem_file_iter(path)
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map_err(|e| {
                tls_error(format!("cannot read the CA file {} (TABFLOW_SMTP_CA_FILE): {e}", path.display()))
            })?;
        if certs.is_empty() {
            return Err(tls_error(format!("the CA file {} holds no PEM certificate", path.display())));
        }
        extra = certs;
    }
    let verifier = rustls_platform_verifier::Verifier::new_with_extra_roots(extra, provider.clone())
        .map_err(|e| tls_error(e.to_string()))?;
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from(config.host.clone())
        .map_err(|e| tls_error(format!("'{}' is not a host name TLS can check: {e}", config.host)))?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls));
    tokio::time::timeout(config.timeout, connector.connect(name, io))
        .await
        .map_err(|_| Error::Timeout {
            server: server.clone(),
            secs: config.timeout.as_secs(),
            during: "TLS handshake".into(),
        })?
        .map_err(|e| {
            let hint = if config.ca_file.is_none() && e.to_string().contains("certificate") {
                " (if the server's certificate comes from a private CA, set TABFLOW_SMTP_CA_FILE to its PEM file)"
            } else {
                ""
            };
            tls_error(format!("{e}{hint}"))
        })
}

/// The message as SMTP `DATA` carries it (RFC 5321 §4.5.2): every line break CRLF, a `.`
/// doubled at the start of a line, ending with CRLF (the caller adds the final `.` line).
pub fn transparent(data: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 64);
    let mut at_line_start = true;
    let mut bytes = data.bytes().peekable();
    while let Some(b) = bytes.next() {
        match b {
            b'\r' | b'\n' => {
                if b == b'\r' && bytes.peek() == Some(&b'\n') {
                    bytes.next();
                }
                out.extend_from_slice(b"\r\n");
                at_line_start = true;
            }
            _ => {
                if at_line_start && b == b'.' {
                    out.push(b'.');
                }
                out.push(b);
                at_line_start = false;
            }
        }
    }
    if !at_line_start || out.is_empty() {
        out.extend_from_slice(b"\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_give_host_port_tls_and_credentials() {
        let c = Config::parse("smtp://bob:s%40cret@mail.example.com", None, None, None).unwrap();
        assert_eq!((c.host.as_str(), c.port, c.tls), ("mail.example.com", 587, Tls::Required));
        assert_eq!(c.username.as_deref(), Some("bob"));
        assert_eq!(c.password.as_ref().map(Secret::expose), Some("s@cret"));
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
        assert_eq!((c.username.as_deref(), c.password.as_ref().map(Secret::expose)), (Some("v"), Some("q")));
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
    fn data_is_dot_stuffed_with_crlf_line_breaks() {
        let check = |input: &str, expect: &str| assert_eq!(String::from_utf8(transparent(input)).unwrap(), expect);
        check(".hidden\n..two\nmid.dle\r\n.\r\nlast", "..hidden\r\n...two\r\nmid.dle\r\n..\r\nlast\r\n");
        check("a\rb\r\n\nc\r\n", "a\r\nb\r\n\r\nc\r\n");
        check("", "\r\n");
        // A lone "." line can never end the message early.
        let out = String::from_utf8(transparent("x\n.\ny")).unwrap();
        assert!(!out.contains("\r\n.\r\n"), "{out:?}");
    }

    #[test]
    fn refusals_are_temporary_or_permanent_by_their_code() {
        let refused = |code| Error::Refused {
            server: "h:25".into(),
            command: "RCPT TO:<a@b>".into(),
            reply: Reply { code, lines: vec!["no".into()] },
        };
        assert!(refused(451).temporary());
        assert!(!refused(550).temporary());
        assert!(Error::Connect { server: "h:25".into(), detail: "refused".into() }.temporary());
        assert!(!Error::Unsupported("x".into()).temporary());
        assert!(!refused(550).fatal(), "a refused recipient leaves the session usable");
        assert_eq!(refused(550).to_string(), "the SMTP server h:25 refused RCPT TO:<a@b>: 550 no");
    }
}
