//! Everything the CLI prints goes through here: every configured secret is replaced by
//! `[redacted]` and every control or escape character (ESC, C0/C1 controls, bidirectional
//! overrides; newline and tab stay) is shown as a visible `\uXXXX`, so a name that came from
//! the site can neither drive the terminal nor hide what follows it. JSON output stays valid
//! and means the same (see `tabflow_site::text::terminal_safe`).

use std::borrow::Cow;
use std::io::Write;
use std::sync::RwLock;

use tabflow_app::Redactor;

static REDACTOR: RwLock<Option<Redactor>> = RwLock::new(None);

/// Starts the list from the process's settings and its command line (URLs with a password
/// or a `?key=` given as flags).
pub fn init() {
    let mut r = Redactor::from_settings(|k| std::env::var(k).ok().filter(|v| !v.is_empty()), true);
    for arg in std::env::args().skip(1) {
        if arg.contains("://") {
            r.add_url(arg.split_once('=').map(|(_, v)| v).unwrap_or(&arg));
        }
    }
    add(&r);
}

/// Adds secrets learned later (a profile's credentials from the config file).
pub fn add(more: &Redactor) {
    let mut g = REDACTOR.write().unwrap_or_else(|e| e.into_inner());
    g.get_or_insert_with(Redactor::default).extend(more);
}

/// Adds one secret.
pub fn add_secret(secret: &str) {
    let mut r = Redactor::default();
    r.add(secret);
    add(&r);
}

/// The secrets known so far (for the application service's own list).
pub fn secrets() -> Vec<String> {
    REDACTOR.read().unwrap_or_else(|e| e.into_inner()).as_ref().map(|r| r.secrets().to_vec()).unwrap_or_default()
}

/// `text` with every known secret redacted.
pub fn redact(text: &str) -> Cow<'_, str> {
    let g = REDACTOR.read().unwrap_or_else(|e| e.into_inner());
    match g.as_ref() {
        Some(r) => Cow::Owned(r.redact(text).into_owned()),
        None => Cow::Borrowed(text),
    }
}

/// `text` as it may be printed: secrets redacted, control characters made visible.
pub fn clean(text: &str) -> String {
    let r = redact(text);
    tabflow_site::text::terminal_safe(&r).into_owned()
}

/// A writer that cleans what it is given before passing it on. Formatting macros hand it
/// whole `str` pieces, so a character is never split between two writes.
pub struct Clean<W: Write>(pub W);

impl<W: Write> Write for Clean<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        self.0.write_all(clean(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// Standard output, cleaned.
pub fn stdout() -> Clean<std::io::StdoutLock<'static>> {
    Clean(std::io::stdout().lock())
}

/// Standard error, cleaned.
pub fn stderr() -> Clean<std::io::Stderr> {
    Clean(std::io::stderr())
}

/// Prints a line on standard output, cleaned (a closed pipe is not an error).
macro_rules! outln {
    () => { $crate::term::print_out("\n") };
    ($($arg:tt)*) => { $crate::term::print_out(&format!("{}\n", format_args!($($arg)*))) };
}

/// Prints on standard output, cleaned.
macro_rules! out {
    ($($arg:tt)*) => { $crate::term::print_out(&format!($($arg)*)) };
}

/// Prints a line on standard error, cleaned.
macro_rules! errln {
    () => { $crate::term::print_err("\n") };
    ($($arg:tt)*) => { $crate::term::print_err(&format!("{}\n", format_args!($($arg)*))) };
}

/// Prints on standard error, cleaned.
macro_rules! err {
    ($($arg:tt)*) => { $crate::term::print_err(&format!($($arg)*)) };
}

pub fn print_out(s: &str) {
    let _ = stdout().write_all(s.as_bytes());
}

pub fn print_err(s: &str) {
    let _ = stderr().write_all(s.as_bytes());
}

#[cfg(test)]
mod tests {
    #[test]
    fn printed_text_is_clean() {
        super::add_secret("planted-secret-0123");
        assert_eq!(super::clean("a planted-secret-0123 b\u{1b}[2J\n"), "a [redacted] b\\u001b[2J\n");
    }
}
