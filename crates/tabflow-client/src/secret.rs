//! A credential held in `secrecy`'s [`SecretString`] (zeroed on drop, read only through
//! [`ExposeSecret`]). The newtype only makes `Debug` and `Display` print `[redacted]`, so a
//! credential inside a `{:?}`-printed config or error shows as that and nothing else.

use std::fmt;

pub use secrecy::ExposeSecret;
use secrecy::SecretString;

#[derive(Clone)]
pub struct Secret(SecretString);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(SecretString::from(s.into()))
    }
}

impl ExposeSecret<str> for Secret {
    /// The secret itself, for the one place that must send it.
    fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "[redacted] [redacted]");
        assert_eq!(s.expose_secret(), "hunter2");
        assert_eq!(s.clone().expose_secret(), "hunter2");
    }
}
