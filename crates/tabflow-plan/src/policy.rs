//! The policy file (TOML): what no plan may touch and how much a destructive step may do.
//!
//! ```toml
//! protected_projects = ["Executive", "Regulatory"]   # by name, and everything inside them
//! protected_tags = ["legal-hold"]
//! max_items_per_destructive_step = 500              # blast radius
//! required_approvers = 1                            # distinct approvers for destructive steps
//! approval_ttl_hours = 24
//! quarantine_project = "tabflow Quarantine"
//! grace_days = 30                                   # staged delete → real delete
//! archive_tag = "archived-by-tabflow"
//! access_allowed_groups = ["Finance", "Executive"]  # who should reach sensitive content
//! approver_must_differ_from_requester = true        # between API tokens (`tabflow serve`)
//! auto_run_on_approval = true                       # start a run once its approval is complete (default: on for scheduled plans, off otherwise)
//! ```

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    pub protected_projects: Vec<String>,
    pub protected_tags: Vec<String>,
    pub max_items_per_destructive_step: usize,
    pub required_approvers: usize,
    pub approval_ttl_hours: i64,
    pub quarantine_project: String,
    pub grace_days: i64,
    pub archive_tag: String,
    /// Groups expected to hold access to sensitive content (the permission audit flags any
    /// other group). Empty = no expectation.
    pub access_allowed_groups: Vec<String>,
    /// An API token that asked for a plan (planned it, or requested its approval) may not
    /// approve it. The terminal operator who plans and approves at once is one person acting
    /// alone and is not concerned.
    pub approver_must_differ_from_requester: bool,
    /// Whether the run starts by itself once its approval is complete (every destructive
    /// item approved by `required_approvers` distinct approvers): `tabflow serve` starts it as
    /// the approver who completed it, `tabflow worker` starts an approved scheduled plan.
    /// Absent: on for plans a schedule made, off for plans a person asked for (the requester
    /// or an approver presses Run, `POST /api/v1/runs`). [`Policy::auto_run`] applies it.
    pub auto_run_on_approval: Option<bool>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            protected_projects: vec![],
            protected_tags: vec![],
            max_items_per_destructive_step: 1000,
            required_approvers: 1,
            approval_ttl_hours: 24,
            quarantine_project: "tabflow Quarantine".into(),
            grace_days: 30,
            archive_tag: "archived-by-tabflow".into(),
            access_allowed_groups: vec![],
            approver_must_differ_from_requester: true,
            auto_run_on_approval: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the policy file {path} is not valid: {detail}")]
pub struct PolicyError {
    pub path: String,
    pub detail: String,
}

/// The hours an approval may stay valid (`approval_ttl_hours`): one hour to a year.
pub const APPROVAL_TTL_HOURS: std::ops::RangeInclusive<i64> = 1..=8_784;

/// The days a staged delete may wait (`grace_days`): none to ten years.
pub const GRACE_DAYS: std::ops::RangeInclusive<i64> = 0..=3_660;

impl Policy {
    /// Whether a completed approval starts the run by itself: the policy's
    /// `auto_run_on_approval` when set, else on for a plan a schedule made and off otherwise.
    pub fn auto_run(&self, scheduled: bool) -> bool {
        self.auto_run_on_approval.unwrap_or(scheduled)
    }

    pub fn from_toml(text: &str, path: &str) -> Result<Policy, PolicyError> {
        // Where and what, never the offending line's text (the parser's own message quotes it).
        let p: Policy = toml::from_str(text).map_err(|e| PolicyError {
            path: path.into(),
            detail: tabflow_site::text::toml_error(text, e.message(), e.span()),
        })?;
        for (key, value, range) in [
            ("approval_ttl_hours", p.approval_ttl_hours, &APPROVAL_TTL_HOURS),
            ("grace_days", p.grace_days, &GRACE_DAYS),
        ] {
            if !range.contains(&value) {
                return Err(PolicyError {
                    path: path.into(),
                    detail: format!("{key} = {value} is out of range ({} to {})", range.start(), range.end()),
                });
            }
        }
        if p.required_approvers == 0 {
            return Err(PolicyError { path: path.into(), detail: "required_approvers must be at least 1".into() });
        }
        if p.max_items_per_destructive_step == 0 {
            return Err(PolicyError {
                path: path.into(),
                detail: "max_items_per_destructive_step must be at least 1".into(),
            });
        }
        Ok(p)
    }

    /// Reads `path` if it exists; the defaults otherwise.
    pub fn load(path: &std::path::Path) -> Result<Policy, PolicyError> {
        match std::fs::read_to_string(path) {
            Ok(t) => Policy::from_toml(&t, &path.display().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Policy::default()),
            Err(e) => Err(PolicyError { path: path.display().to_string(), detail: e.to_string() }),
        }
    }

    pub fn is_protected_tag(&self, tag: &str) -> bool {
        self.protected_tags.iter().any(|t| t.eq_ignore_ascii_case(tag))
    }

    pub fn is_protected_project(&self, name: &str) -> bool {
        self.protected_projects.iter().any(|t| t.eq_ignore_ascii_case(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_rejects() {
        let p = Policy::from_toml("protected_tags = [\"legal-hold\"]\nrequired_approvers = 2", "p.toml").unwrap();
        assert!(p.is_protected_tag("Legal-Hold"));
        assert_eq!(p.required_approvers, 2);
        assert_eq!(p.grace_days, 30);
        let e = Policy::from_toml("protected_tag = []", "p.toml").unwrap_err();
        assert!(e.to_string().contains("protected_tag"), "{e}");
        assert!(Policy::from_toml("required_approvers = 0", "p.toml").is_err());
        for bad in ["approval_ttl_hours = 9223372036854775807", "grace_days = -1", "grace_days = 100000000000"] {
            let e = Policy::from_toml(bad, "p.toml").unwrap_err().to_string();
            assert!(e.contains("out of range") && e.contains(bad.split(' ').next().unwrap()), "{e}");
        }
        let e = Policy::from_toml("archive_tag = 5\nquarantine_project = hunter2", "p.toml").unwrap_err().to_string();
        assert!(e.contains("line 2") && !e.contains("hunter2"), "{e}");
    }
}
