//! Typed Tableau ids (LUIDs). Each kind of resource has its own type so a `UserId` cannot be
//! passed where a `WorkbookId` is expected.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! ids {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {$(
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            pub fn new(id: impl Into<String>) -> Self {
                Self(id.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_string())
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self(s)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    )*};
}

ids! {
    /// A site's LUID (not its content URL).
    SiteId,
    /// A user's LUID.
    UserId,
    /// A group's LUID.
    GroupId,
    /// A project's LUID.
    ProjectId,
    /// A workbook's LUID.
    WorkbookId,
    /// A published datasource's LUID.
    DatasourceId,
    /// A view's LUID.
    ViewId,
    /// A Tableau Prep flow's LUID.
    FlowId,
    /// A subscription's LUID.
    SubscriptionId,
    /// A background job's LUID.
    JobId,
    /// A webhook's LUID.
    WebhookId,
    /// A connection's LUID.
    ConnectionId,
    /// A data alert's LUID.
    DataAlertId,
    /// A file upload session id.
    UploadSessionId,
}

/// True when `s` looks like a LUID (8-4-4-4-12 hex digits).
pub fn is_luid(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 36 {
        return false;
    }
    b.iter().enumerate().all(|(i, c)| match i {
        8 | 13 | 18 | 23 => *c == b'-',
        _ => c.is_ascii_hexdigit(),
    })
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used, reason = "tests: a panic is a failure")]
mod tests {
    use super::*;

    #[test]
    fn luid_shape() {
        assert!(is_luid("6d13b0ca-043d-4d42-8c9d-3f3313ea3a00"));
        assert!(!is_luid("6d13b0ca-043d-4d42-8c9d-3f3313ea3a0"));
        assert!(!is_luid("6d13b0ca_043d-4d42-8c9d-3f3313ea3a00"));
        assert!(!is_luid("zz13b0ca-043d-4d42-8c9d-3f3313ea3a00"));
    }

    #[test]
    fn debug_names_the_kind() {
        assert_eq!(format!("{:?}", WorkbookId::new("a")), "WorkbookId(a)");
        assert_eq!(UserId::from("x").to_string(), "x");
    }
}
