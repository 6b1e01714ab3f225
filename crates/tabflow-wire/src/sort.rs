//! The REST `sort=` expression: `field:asc|desc[,field:asc|desc...]`.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Asc,
    Desc,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Sort {
    pub keys: Vec<(String, Direction)>,
}

/// What is wrong with a sort expression.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid sort expression {expression:?}: {reason}")]
pub struct ParseError {
    pub expression: String,
    pub reason: String,
}

impl Sort {
    pub fn by(mut self, field: &str, direction: Direction) -> Sort {
        self.keys.push((field.to_string(), direction));
        self
    }

    pub fn parse_query_value(raw: &str) -> Result<Sort, ParseError> {
        let plus = raw.replace('+', " ");
        Sort::parse(&percent_encoding::percent_decode_str(&plus).decode_utf8_lossy())
    }

    pub fn parse(expr: &str) -> Result<Sort, ParseError> {
        let mut keys = Vec::new();
        for part in expr.split(',') {
            let (field, dir) = part.split_once(':').ok_or_else(|| ParseError {
                expression: expr.to_string(),
                reason: format!("{part:?} needs a direction (field:asc or field:desc)"),
            })?;
            let dir = match dir {
                "asc" => Direction::Asc,
                "desc" => Direction::Desc,
                other => {
                    return Err(ParseError {
                        expression: expr.to_string(),
                        reason: format!("unknown direction {other:?}; use asc or desc"),
                    });
                }
            };
            if field.is_empty() {
                return Err(ParseError { expression: expr.to_string(), reason: "empty field name".into() });
            }
            keys.push((field.to_string(), dir));
        }
        Ok(Sort { keys })
    }

    pub fn render_encoded(&self) -> String {
        self.to_string().replace(':', "%3A").replace(',', "%2C")
    }
}

impl fmt::Display for Sort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (k, d)) in self.keys.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{k}:{}", if *d == Direction::Asc { "asc" } else { "desc" })?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used, reason = "tests: a panic is a failure")]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let s = Sort::parse("updatedAt:asc,name:desc").unwrap();
        assert_eq!(s.keys[1], ("name".to_string(), Direction::Desc));
        assert_eq!(s.to_string(), "updatedAt:asc,name:desc");
        assert_eq!(Sort::parse_query_value(&s.render_encoded()).unwrap(), s);
        assert!(Sort::parse("name").is_err());
        assert!(Sort::parse("name:up").is_err());
    }
}
