//! Internet messages (RFC 5322 with MIME): the headers, encoded per RFC 2047 where they hold
//! more than printable ASCII, and a UTF-8 text body in quoted-printable, so every line stays
//! ASCII and within 78 characters whatever the names and items are called.

use chrono::{DateTime, Utc};

/// A person with an address: `Maria Garcia <mgarcia@example.com>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    pub name: String,
    pub address: String,
}

impl Mailbox {
    /// Reads `Name <address>`, `"Name" <address>` or a bare `address`.
    pub fn parse(text: &str) -> Result<Mailbox, String> {
        let text = text.trim();
        let (name, address) = match (text.rfind('<'), text.ends_with('>')) {
            (Some(open), true) => {
                let name = text[..open].trim();
                let name = name.strip_prefix('"').and_then(|n| n.strip_suffix('"')).unwrap_or(name);
                (name.replace("\\\"", "\"").replace("\\\\", "\\"), text[open + 1..text.len() - 1].trim())
            }
            _ => (String::new(), text),
        };
        check_address(address)?;
        Ok(Mailbox { name, address: address.to_string() })
    }

    /// The header form: the display name (quoted or encoded when it has to be) and `<address>`.
    fn header_words(&self) -> Vec<String> {
        let mut words = phrase(&self.name);
        words.push(format!("<{}>", self.address));
        words
    }

    /// The part after the `@` (for Message-IDs).
    pub fn domain(&self) -> &str {
        self.address.rsplit_once('@').map(|(_, d)| d).unwrap_or("localhost")
    }
}

/// Whether `address` can go into an SMTP envelope and an address header as it is: one `@`
/// with something on either side, printable ASCII, no spaces, brackets or line breaks.
pub fn check_address(address: &str) -> Result<(), String> {
    let Some((local, domain)) = address.rsplit_once('@') else {
        return Err(format!("'{address}' is not an email address (no @)"));
    };
    if local.is_empty() || domain.is_empty() {
        return Err(format!("'{address}' is not an email address"));
    }
    if let Some(c) = address.chars().find(|c| !c.is_ascii_graphic() || matches!(c, '<' | '>' | ',' | ';')) {
        let what = if c.is_ascii() { format!("{c:?}") } else { format!("the non-ASCII character {c:?}") };
        return Err(format!("'{}' cannot be used as an email address: it contains {what}", address.escape_debug()));
    }
    Ok(())
}

/// One message ready for SMTP `DATA` (before dot-stuffing, which is the transport's job).
pub struct Email<'a> {
    pub from: &'a Mailbox,
    pub to: &'a Mailbox,
    pub subject: &'a str,
    pub body: &'a str,
    pub date: DateTime<Utc>,
    /// Without the angle brackets: `tabflow.42.1f0c…@example.com`.
    pub message_id: String,
    /// More headers (`X-Tabflow-Run`), ASCII values.
    pub extra: Vec<(&'a str, String)>,
}

impl Email<'_> {
    /// The message as CRLF-terminated ASCII lines.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut header = |name: &str, words: Vec<String>| out.push_str(&fold(name, &words));
        header("Date", vec![self.date.to_rfc2822()]);
        header("From", self.from.header_words());
        header("To", self.to.header_words());
        header("Subject", unstructured(self.subject));
        header("Message-ID", vec![format!("<{}>", self.message_id)]);
        header("MIME-Version", vec!["1.0".into()]);
        header("Content-Type", vec!["text/plain;".into(), "charset=utf-8".into()]);
        header("Content-Transfer-Encoding", vec!["quoted-printable".into()]);
        // RFC 3834: an automatic message, so autoresponders do not answer it.
        header("Auto-Submitted", vec!["auto-generated".into()]);
        for (name, value) in &self.extra {
            header(name, unstructured(value));
        }
        out.push_str("\r\n");
        out.push_str(&quoted_printable(self.body));
        out
    }
}

/// A header line folded at spaces between words so that lines stay within 78 characters
/// (a word longer than that stays whole, within SMTP's 998).
fn fold(name: &str, words: &[String]) -> String {
    let mut out = format!("{name}:");
    let mut line = out.len();
    let mut empty = true;
    for w in words {
        if line + 1 + w.len() > 78 && !empty {
            out.push_str("\r\n");
            line = 0;
        }
        out.push(' ');
        out.push_str(w);
        line += 1 + w.len();
        empty = false;
    }
    out.push_str("\r\n");
    out
}

/// Printable ASCII that cannot be mistaken for an encoded word.
fn plain(text: &str) -> bool {
    text.bytes().all(|b| (0x20..0x7f).contains(&b)) && !text.contains("=?")
}

/// An unstructured value (Subject): its words as they are, or RFC 2047 encoded words.
fn unstructured(text: &str) -> Vec<String> {
    let text = text.replace(['\r', '\n', '\t'], " ");
    if plain(&text) {
        let words: Vec<String> = text.split(' ').filter(|w| !w.is_empty()).map(str::to_string).collect();
        if words.join(" ") == text.trim() {
            return words;
        }
    }
    encoded_words(&text)
}

/// A display name: atoms, a quoted string, or encoded words.
fn phrase(name: &str) -> Vec<String> {
    let name = name.replace(['\r', '\n', '\t'], " ");
    let name = name.trim();
    if name.is_empty() {
        return vec![];
    }
    if !plain(name) {
        return encoded_words(name);
    }
    let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~ ".contains(c);
    if name.chars().all(atext) {
        name.split(' ').filter(|w| !w.is_empty()).map(str::to_string).collect()
    } else {
        vec![format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))]
    }
}

/// `=?utf-8?B?…?=` words of at most 39 bytes of text each (64 characters, so even the first
/// fits on a line after `Subject: `), never splitting a character.
fn encoded_words(text: &str) -> Vec<String> {
    use base64::Engine;
    let mut words = vec![];
    let mut chunk = String::new();
    for c in text.chars() {
        if chunk.len() + c.len_utf8() > 39 {
            words.push(std::mem::take(&mut chunk));
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(chunk);
    }
    words
        .iter()
        .map(|w| format!("=?utf-8?B?{}?=", base64::engine::general_purpose::STANDARD.encode(w.as_bytes())))
        .collect()
}

/// RFC 2045 quoted-printable with CRLF line breaks: lines of at most 76 characters (soft
/// breaks `=` at the end), `=`, control and non-ASCII bytes as `=XX`, and spaces or tabs
/// before a line break encoded so no transport can strip them.
pub fn quoted_printable(text: &str) -> String {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    let lines: Vec<&str> = text.split('\n').collect();
    let last = lines.len() - 1;
    for (n, line) in lines.iter().enumerate() {
        if n == last && line.is_empty() {
            break;
        }
        let bytes = line.as_bytes();
        let mut width = 0;
        for (i, &b) in bytes.iter().enumerate() {
            let at_end = i + 1 == bytes.len();
            let literal = (b'!'..=b'~').contains(&b) && b != b'=' || (b == b' ' || b == b'\t') && !at_end;
            let token = if literal { (b as char).to_string() } else { format!("={b:02X}") };
            // Keep room for the soft break's `=`, so a continued line is at most 76 long.
            if width + token.len() > 75 && !(at_end && width + token.len() <= 76) {
                out.push_str("=\r\n");
                width = 0;
            }
            out.push_str(&token);
            width += token.len();
        }
        out.push_str("\r\n");
    }
    out
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

    fn sample<'a>(from: &'a Mailbox, to: &'a Mailbox, subject: &'a str, body: &'a str) -> String {
        Email {
            from,
            to,
            subject,
            body,
            date: DateTime::parse_from_rfc3339("2026-11-25T10:00:00Z").unwrap().with_timezone(&Utc),
            message_id: "tabflow.1.abc@example.com".into(),
            extra: vec![("X-Tabflow-Run", "r-1".into())],
        }
        .render()
    }

    #[test]
    fn mailboxes_parse_with_and_without_names() {
        let check = |input: &str, name: &str, address: &str| {
            assert_eq!(
                Mailbox::parse(input).unwrap(),
                Mailbox { name: name.into(), address: address.into() },
                "{input}"
            )
        };
        check("tabflow@example.com", "", "tabflow@example.com");
        check("Tabflow <tabflow@example.com>", "Tabflow", "tabflow@example.com");
        check("\"Ops, Tableau\" <ops@example.com>", "Ops, Tableau", "ops@example.com");
        check("  <a@b.example>  ", "", "a@b.example");
        for bad in ["", "nobody", "a@", "@b", "a b@c", "x <a@b\r\nBcc: evil@x>", "jörg@example.com"] {
            assert!(Mailbox::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn ascii_headers_stay_readable_and_names_with_specials_are_quoted() {
        let from = Mailbox::parse("tabflow <tabflow@example.com>").unwrap();
        let to = Mailbox { name: "Garcia, Maria".into(), address: "mgarcia@example.com".into() };
        let m = sample(&from, &to, "tabflow: you now own 3 items", "Hello\n");
        assert!(
            m.starts_with("Date: Wed, 25 Nov 2026 10:00:00 +0000\r\nFrom: tabflow <tabflow@example.com>\r\n"),
            "{m}"
        );
        assert!(m.contains("\r\nTo: \"Garcia, Maria\" <mgarcia@example.com>\r\n"), "{m}");
        assert!(m.contains("\r\nSubject: tabflow: you now own 3 items\r\n"), "{m}");
        assert!(m.contains("\r\nMessage-ID: <tabflow.1.abc@example.com>\r\n"), "{m}");
        assert!(m.contains("\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"), "{m}");
        assert!(m.contains("\r\nContent-Transfer-Encoding: quoted-printable\r\n"), "{m}");
        assert!(m.ends_with("\r\n\r\nHello\r\n"), "{m}");
    }

    #[test]
    fn non_ascii_subjects_and_names_are_encoded_words_within_limits() {
        use base64::Engine;
        let from = Mailbox::parse("tabflow@example.com").unwrap();
        let to = Mailbox { name: "Zoë Čapek".into(), address: "zc@example.com".into() };
        let subject = "tabflow: 12 éléments ont changé dans vos projets « Finance » et « Ventes Europe »";
        let m = sample(&from, &to, subject, "x");
        let head = m.split("\r\n\r\n").next().unwrap();
        assert!(head.is_ascii());
        // Unfold, then decode every encoded word: the text comes back exactly.
        let unfolded = head.replace("\r\n ", " ");
        let decode = |line: &str| -> String {
            line.split(' ')
                .filter_map(|w| w.strip_prefix("=?utf-8?B?").and_then(|w| w.strip_suffix("?=")))
                .map(|w| String::from_utf8(base64::engine::general_purpose::STANDARD.decode(w).unwrap()).unwrap())
                .collect()
        };
        let subject_line = unfolded.lines().find(|l| l.starts_with("Subject: ")).unwrap();
        assert_eq!(decode(subject_line), subject);
        let to_line = unfolded.lines().find(|l| l.starts_with("To: ")).unwrap();
        assert_eq!(decode(to_line), "Zoë Čapek");
        assert!(to_line.ends_with(" <zc@example.com>"), "{to_line}");
        for line in head.split("\r\n") {
            assert!(line.len() <= 78, "header line of {} characters: {line}", line.len());
            for w in line.split(' ').filter(|w| w.starts_with("=?")) {
                assert!(w.len() <= 75, "encoded word of {} characters", w.len());
            }
        }
    }

    #[test]
    fn line_breaks_in_names_and_subjects_cannot_inject_headers() {
        let from = Mailbox::parse("tabflow@example.com").unwrap();
        let to = Mailbox { name: "Eve\r\nBcc: victim@example.com".into(), address: "eve@example.com".into() };
        let m = sample(&from, &to, "hi\r\nBcc: other@example.com", "x");
        let head = m.split("\r\n\r\n").next().unwrap();
        assert!(!head.split("\r\n").any(|l| l.starts_with("Bcc")), "{head}");
    }

    #[test]
    fn long_ascii_subjects_fold_at_spaces() {
        let from = Mailbox::parse("tabflow@example.com").unwrap();
        let to = Mailbox::parse("a@example.com").unwrap();
        let subject = format!("{}{}", "a-rather-long-first-word-for-the-first-line ".repeat(2), "word ".repeat(60));
        let m = sample(&from, &to, subject.trim(), "x");
        let head = m.split("\r\n\r\n").next().unwrap();
        assert!(head.split("\r\n").all(|l| l.len() <= 78), "{head}");
        assert!(head.replace("\r\n ", " ").contains(&format!("Subject: {}", subject.trim())));
    }

    #[test]
    fn quoted_printable_round_trips_and_keeps_lines_short() {
        let body = "Request: archive old workbooks in Finance\n\n\
                    - Quarterly Revenue = Budget (Finance / Planning): moved to Archive; tagged archived-by-tabflow, reviewed-2026-11 \n\
                    - Übersicht Umsätze 🚀 \t\n.just a dot line\nlast line without break";
        let qp = quoted_printable(body);
        assert!(qp.is_ascii());
        for line in qp.split("\r\n") {
            assert!(line.len() <= 76, "line of {}: {line}", line.len());
            assert!(!line.ends_with(' ') && !line.ends_with('\t'), "trailing whitespace survives: {line:?}");
        }
        assert!(!qp.replace("\r\n", "").contains('\n') && !qp.replace("\r\n", "").contains('\r'));
        let expected = format!("{}\r\n", body.replace('\n', "\r\n"));
        assert_eq!(String::from_utf8(decode_qp(&qp)).unwrap(), expected);
        assert!(qp.contains("=3D Budget"), "{qp}");
    }

    #[test]
    fn quoted_printable_never_splits_an_escape() {
        let qp = quoted_printable(&"é".repeat(60));
        for line in qp.split("\r\n").filter(|l| !l.is_empty()) {
            let body = line.strip_suffix('=').unwrap_or(line);
            assert!(body.len() % 3 == 0 && body.starts_with('='), "{line}");
        }
        assert_eq!(String::from_utf8(decode_qp(&qp)).unwrap(), format!("{}\r\n", "é".repeat(60)));
    }
}
