//! The REST `fields=` expression: `_all_`, `_default_`, or a list such as `id,name,owner.name`.

/// Which attributes a list response carries.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Fields {
    #[default]
    Default,
    All,
    /// Explicit names; `_default_` may appear among them to mean "the defaults plus these".
    Only(Vec<String>),
}

impl Fields {
    pub fn parse_query_value(raw: &str) -> Fields {
        let plus = raw.replace('+', " ");
        Fields::parse(&percent_encoding::percent_decode_str(&plus).decode_utf8_lossy())
    }

    pub fn parse(expr: &str) -> Fields {
        match expr.trim() {
            "" | "_default_" => Fields::Default,
            "_all_" => Fields::All,
            list => Fields::Only(list.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()),
        }
    }

    pub fn render(&self) -> String {
        match self {
            Fields::Default => "_default_".into(),
            Fields::All => "_all_".into(),
            Fields::Only(v) => v.join(","),
        }
    }

    /// Should attribute `name` (dotted for children, e.g. `owner.name`) be included?
    /// `id` is always included.
    pub fn wants(&self, name: &str) -> bool {
        match self {
            Fields::Default | Fields::All => true,
            Fields::Only(v) => {
                name == "id"
                    || v.iter()
                        .any(|f| f == name || f == "_default_" || f == "_all_" || name.starts_with(&format!("{f}.")))
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used, reason = "tests: a panic is a failure")]
mod tests {
    use super::*;

    #[test]
    fn parse() {
        assert_eq!(Fields::parse("_all_"), Fields::All);
        assert_eq!(Fields::parse(""), Fields::Default);
        let f = Fields::parse("id,name,owner.name");
        assert!(f.wants("name") && f.wants("owner.name") && f.wants("id"));
        assert!(!f.wants("size"));
        assert_eq!(Fields::parse_query_value("id%2Cname").render(), "id,name");
    }
}
