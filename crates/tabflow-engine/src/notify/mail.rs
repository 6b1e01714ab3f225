//! The notification email, built with lettre's message builder: RFC 5322 headers (names and
//! subjects beyond printable ASCII as RFC 2047 encoded words, folded within 78 characters) and
//! a UTF-8 `text/plain` body in quoted-printable, so every line is ASCII whatever the names and
//! items are called. What is tabflow's own: the headers it promises (`Auto-Submitted:
//! auto-generated`, `X-Tabflow-Run`), and addresses limited to ASCII (a non-ASCII one needs
//! SMTPUTF8 end to end, which tabflow does not ask servers for).

use chrono::{DateTime, Utc};
use lettre::message::header::{ContentTransferEncoding, ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, SinglePart};
use lettre::{Address, Message};

/// Reads `Name <address>`, `"Name" <address>` or a bare `address`.
pub fn parse_mailbox(text: &str) -> Result<Mailbox, String> {
    let text = text.trim();
    let mailbox: Mailbox =
        text.parse().map_err(|e| format!("'{}' is not an email address ({e})", text.escape_debug()))?;
    check_address(mailbox.email.as_ref())?;
    Ok(mailbox)
}

/// `address` as it can go into an SMTP envelope and an address header: lettre's syntax check,
/// ASCII only.
pub fn check_address(address: &str) -> Result<Address, String> {
    if let Some(c) = address.chars().find(|c| !c.is_ascii()) {
        return Err(format!(
            "'{}' cannot be used as an email address: it contains the non-ASCII character {c:?}",
            address.escape_debug()
        ));
    }
    address.parse().map_err(|e| format!("'{}' is not an email address ({e})", address.escape_debug()))
}

/// One notification email.
pub struct Email<'a> {
    pub from: &'a Mailbox,
    pub to: &'a Mailbox,
    pub subject: &'a str,
    pub body: &'a str,
    pub date: DateTime<Utc>,
    /// Without the angle brackets: `tabflow.42.1f0c…@example.com`.
    pub message_id: String,
    /// For `X-Tabflow-Run`.
    pub run_id: &'a str,
}

impl Email<'_> {
    /// The message, with the envelope from its From and To.
    pub fn build(&self) -> Result<Message, String> {
        // One line each: a line break in a name or subject can never start a header.
        let line = |text: &str| text.replace(['\r', '\n', '\t'], " ");
        let to =
            Mailbox::new(self.to.name.as_deref().map(line).filter(|n| !n.trim().is_empty()), self.to.email.clone());
        let header = |name: &'static str, value: String| HeaderValue::new(HeaderName::new_from_ascii_str(name), value);
        Message::builder()
            .date(self.date.into())
            .from(self.from.clone())
            .to(to)
            .subject(line(self.subject))
            .message_id(Some(format!("<{}>", self.message_id)))
            // RFC 3834: an automatic message, so autoresponders do not answer it.
            .raw_header(header("Auto-Submitted", "auto-generated".into()))
            .raw_header(header("X-Tabflow-Run", line(self.run_id)))
            .singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_PLAIN)
                    .header(ContentTransferEncoding::QuotedPrintable)
                    .body(self.body.to_string()),
            )
            .map_err(|e| format!("the message cannot be built: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_qp(text: &str) -> Vec<u8> {
        let joined = text.replace("=\r\n", "");
        let b = joined.as_bytes();
        let mut out = vec![];
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'=' {
                out.push(u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap(), 16).unwrap());
                i += 3;
            } else {
                out.push(b[i]);
                i += 1;
            }
        }
        out
    }

    /// A header line's value as a mail client shows it: RFC 2047 words (`=?utf-8?b?…?=`)
    /// decoded, the space between two of them dropped (RFC 2047 §6.2).
    fn decoded(line: &str) -> String {
        use base64::Engine;
        let (_, value) = line.split_once(": ").unwrap();
        let mut out = String::new();
        let mut after_word = false;
        for token in value.split(' ') {
            let word = token.strip_prefix("=?utf-8?b?").and_then(|w| w.strip_suffix("?="));
            if !(out.is_empty() || (after_word && word.is_some())) {
                out.push(' ');
            }
            match word {
                Some(w) => out.push_str(
                    &String::from_utf8(base64::engine::general_purpose::STANDARD.decode(w).unwrap()).unwrap(),
                ),
                None => out.push_str(token),
            }
            after_word = word.is_some();
        }
        out
    }

    fn sample(from: &Mailbox, to: &Mailbox, subject: &str, body: &str) -> String {
        let m = Email {
            from,
            to,
            subject,
            body,
            date: DateTime::parse_from_rfc3339("2026-11-25T10:00:00Z").unwrap().with_timezone(&Utc),
            message_id: "tabflow.1.abc@example.com".into(),
            run_id: "r-1",
        }
        .build()
        .unwrap();
        assert_eq!(m.envelope().to(), std::slice::from_ref(&to.email));
        assert_eq!(m.envelope().from(), Some(&from.email));
        String::from_utf8(m.formatted()).unwrap()
    }

    fn named(name: &str, address: &str) -> Mailbox {
        Mailbox::new(Some(name.into()), address.parse().unwrap())
    }

    #[test]
    fn mailboxes_parse_with_and_without_names() {
        let check = |input: &str, name: Option<&str>, address: &str| {
            let m = parse_mailbox(input).unwrap();
            assert_eq!((m.name.as_deref(), m.email.as_ref()), (name, address), "{input}");
        };
        check("tabflow@example.com", None, "tabflow@example.com");
        check("Tabflow <tabflow@example.com>", Some("Tabflow"), "tabflow@example.com");
        check("\"Ops, Tableau\" <ops@example.com>", Some("Ops, Tableau"), "ops@example.com");
        check("  <a@b.example>  ", None, "a@b.example");
        for bad in ["", "nobody", "a@", "@b", "a b@c", "x <a@b\r\nBcc: evil@x>", "jörg@example.com"] {
            assert!(parse_mailbox(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(check_address("jörg@example.com").unwrap_err().contains("non-ASCII character 'ö'"));
    }

    #[test]
    fn the_promised_headers_are_there_and_readable() {
        let from = parse_mailbox("tabflow <tabflow@example.com>").unwrap();
        let to = named("Garcia, Maria", "mgarcia@example.com");
        let m = sample(&from, &to, "tabflow: you now own 3 items", "Hello\n");
        for header in [
            "Date: Wed, 25 Nov 2026 10:00:00 +0000\r\n",
            "From: tabflow <tabflow@example.com>\r\n",
            "Subject: tabflow: you now own 3 items\r\n",
            "Message-ID: <tabflow.1.abc@example.com>\r\n",
            "Auto-Submitted: auto-generated\r\n",
            "X-Tabflow-Run: r-1\r\n",
            "MIME-Version: 1.0\r\n",
            "Content-Type: text/plain; charset=utf-8\r\n",
            "Content-Transfer-Encoding: quoted-printable\r\n",
        ] {
            assert!(m.starts_with(header) || m.contains(&format!("\r\n{header}")), "no {header:?} in {m}");
        }
        assert!(m.contains("\r\n\r\nHello\r\n"), "{m:?}");
        // A name with a comma is one encoded word, not two addresses.
        let to_line = m.lines().find(|l| l.starts_with("To: ")).unwrap();
        assert_eq!(decoded(to_line), "Garcia, Maria <mgarcia@example.com>");
    }

    #[test]
    fn non_ascii_subjects_and_names_are_encoded_words_within_limits() {
        let from = parse_mailbox("tabflow@example.com").unwrap();
        let to = named("Zoë Čapek", "zc@example.com");
        let subject = "tabflow: 12 éléments ont changé dans vos projets « Finance » et « Ventes Europe »";
        let m = sample(&from, &to, subject, "x");
        let head = m.split("\r\n\r\n").next().unwrap();
        assert!(head.is_ascii(), "{head}");
        for line in head.split("\r\n") {
            assert!(line.len() <= 78, "header line of {} characters: {line}", line.len());
        }
        // Unfold, then decode every encoded word: the text comes back exactly.
        let unfolded = head.replace("\r\n ", " ");
        let subject_line = unfolded.lines().find(|l| l.starts_with("Subject: ")).unwrap();
        assert_eq!(decoded(subject_line), subject);
        let to_line = unfolded.lines().find(|l| l.starts_with("To: ")).unwrap();
        assert_eq!(decoded(to_line), "Zoë Čapek <zc@example.com>");
    }

    #[test]
    fn line_breaks_in_names_and_subjects_cannot_inject_headers() {
        let from = parse_mailbox("tabflow@example.com").unwrap();
        let to = named("Eve\r\nBcc: victim@example.com", "eve@example.com");
        let m = sample(&from, &to, "hi\r\nBcc: other@example.com", "x");
        let head = m.split("\r\n\r\n").next().unwrap();
        assert!(!head.split("\r\n").any(|l| l.starts_with("Bcc")), "{head}");
    }

    #[test]
    fn long_ascii_subjects_fold_within_the_line_limit() {
        let from = parse_mailbox("tabflow@example.com").unwrap();
        let to = parse_mailbox("a@example.com").unwrap();
        let subject = format!("{}{}", "a-rather-long-first-word-for-the-first-line ".repeat(2), "word ".repeat(60));
        let m = sample(&from, &to, subject.trim(), "x");
        let head = m.split("\r\n\r\n").next().unwrap();
        assert!(head.split("\r\n").all(|l| l.len() <= 78), "{head}");
        assert!(head.replace("\r\n ", " ").contains(&format!("Subject: {}", subject.trim())), "{head}");
    }

    #[test]
    fn the_body_is_quoted_printable_with_short_ascii_lines() {
        let body = "Request: archive old workbooks in Finance\n\n\
                    - Quarterly Revenue = Budget (Finance / Planning): moved to Archive; tagged archived-by-tabflow, reviewed-2026-11 \n\
                    - Übersicht Umsätze 🚀 \t\n.just a dot line\nlast line without break";
        let from = parse_mailbox("tabflow@example.com").unwrap();
        let to = parse_mailbox("a@example.com").unwrap();
        let m = sample(&from, &to, "s", body);
        let qp = m.split_once("\r\n\r\n").unwrap().1;
        assert!(qp.is_ascii());
        for line in qp.split("\r\n") {
            assert!(line.len() <= 76, "line of {}: {line}", line.len());
            assert!(!line.ends_with(' ') && !line.ends_with('\t'), "trailing whitespace survives: {line:?}");
        }
        let decoded = String::from_utf8(decode_qp(qp)).unwrap();
        assert_eq!(decoded.trim_end(), body.replace('\n', "\r\n"));
        assert!(qp.contains("=3D Budget"), "{qp}");
    }
}
