//! API tokens of `tabflow serve`: a name, a role, and the SHA-256 of 32 random bytes. The
//! token is shown once when it is made and never stored; a presented token is hashed and
//! compared in constant time with every live token's hash. Making and revoking tokens is
//! audited (the name and role, never the token).

use base64::Engine as _;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tabflow_engine::approval::{Approver, Channel};
use tabflow_engine::store::TokenRow;

use crate::App;
use crate::error::{Error, Kind, Result};

/// What a token's holder may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads plans, runs and the audit log.
    Viewer,
    /// Also plans, answers, requests approval and starts approved runs.
    Requester,
    /// Also approves or rejects, starts approved runs and rolls back.
    Approver,
    /// Everything, and manages tokens.
    Admin,
}

/// One thing a front end asks permission for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    Read,
    /// Plan, answer, request approval.
    Request,
    Approve,
    /// Start an approved run.
    Start,
    /// Ask for a run's rollback (its rollback plan, approved like any plan).
    Rollback,
    ManageTokens,
}

impl Role {
    pub const NAMES: &'static str = "viewer, requester, approver or admin";

    pub fn parse(s: &str) -> Result<Role> {
        match s.trim().to_ascii_lowercase().as_str() {
            "viewer" => Ok(Role::Viewer),
            "requester" => Ok(Role::Requester),
            "approver" => Ok(Role::Approver),
            "admin" => Ok(Role::Admin),
            other => Err(Error::usage(format!("'{other}' is not a role"), format!("use {}", Role::NAMES))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Requester => "requester",
            Role::Approver => "approver",
            Role::Admin => "admin",
        }
    }

    /// Whether this role may do `p`.
    pub fn may(self, p: Permission) -> bool {
        match p {
            Permission::Read => true,
            Permission::Request => matches!(self, Role::Requester | Role::Admin),
            Permission::Approve => matches!(self, Role::Approver | Role::Admin),
            Permission::Start | Permission::Rollback => matches!(self, Role::Requester | Role::Approver | Role::Admin),
            Permission::ManageTokens => self == Role::Admin,
        }
    }
}

/// A token as listed (never the token itself).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TokenInfo {
    pub name: String,
    pub role: Role,
    pub created_by: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub revoked_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// A token's holder, authenticated.
#[derive(Debug, Clone, PartialEq)]
pub struct Caller {
    pub name: String,
    pub role: Role,
}

impl Caller {
    /// How plans, requests, runs and the audit log name this caller: the token's name and
    /// the channel `api`.
    pub fn actor(&self) -> String {
        api_actor(&self.name)
    }

    /// The approver this caller is, when its role may approve.
    pub fn approver(&self) -> Option<Approver> {
        self.role.may(Permission::Approve).then(|| Approver::api_token(&self.name, false))
    }
}

/// The actor of a token's actions: `NAME via api`.
pub fn api_actor(token_name: &str) -> String {
    format!("{token_name} via api")
}

/// The prefix of every token (so a leaked one is recognisable by secret scanners).
pub const TOKEN_PREFIX: &str = "tfk_";

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if s.len() != 64 {
        return None;
    }
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Equal without an early exit (the time taken does not tell how much matched).
fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(Error::usage(
            format!("'{name}' is not a token name"),
            "use 1 to 64 letters, digits, '-', '_' or '.' (e.g. alice-approver)",
        ))
    }
}

fn info(r: TokenRow) -> Result<TokenInfo> {
    Ok(TokenInfo {
        role: Role::parse(&r.role).map_err(|_| {
            Error::failed(format!("token '{}' has an unknown role '{}'", r.name, r.role), "revoke it and make it again")
        })?,
        name: r.name,
        created_by: r.created_by,
        created_at: r.created_at,
        revoked_at: r.revoked_at,
    })
}

impl App {
    /// Makes a token: answers it (to show once) with its listing. A name already used (even
    /// by a revoked token) is refused.
    pub async fn create_token(&self, name: &str, role: Role, actor: &str) -> Result<(TokenInfo, String)> {
        check_name(name)?;
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret)
            .map_err(|e| Error::failed(format!("no randomness for a token: {e}"), "check the operating system"))?;
        let token = format!("{TOKEN_PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret));
        let row = TokenRow {
            name: name.to_string(),
            role: role.as_str().into(),
            sha256: hex(&digest(&token)),
            created_by: actor.to_string(),
            created_at: self.clock.now(),
            revoked_at: None,
        };
        self.store.insert_token(&row).await.map_err(|e| match e {
            tabflow_engine::store::StoreError::Refused(m) => {
                Error::usage(m, "pick another name, or see `tabflow tokens list`")
            }
            e => Error::store(e, "check the state store"),
        })?;
        self.audit_token(actor, "token.created", name, Some(role)).await?;
        Ok((info(row)?, token))
    }

    /// Every token, revoked ones included, oldest first.
    pub async fn tokens(&self) -> Result<Vec<TokenInfo>> {
        let rows = self.store.tokens().await.map_err(|e| Error::store(e, "check the state store"))?;
        rows.into_iter().map(info).collect()
    }

    /// Revokes a token: it is refused from now on.
    pub async fn revoke_token(&self, name: &str, actor: &str) -> Result<()> {
        let now = self.clock.now();
        if !self.store.revoke_token(name, now).await.map_err(|e| Error::store(e, "check the state store"))? {
            return Err(Error::new(
                Kind::NotFound,
                format!("no live token named '{name}'"),
                "see `tabflow tokens list` (a revoked token stays revoked)",
            ));
        }
        self.audit_token(actor, "token.revoked", name, None).await
    }

    /// The holder of a presented token, when it is a live token of this store.
    pub async fn authenticate(&self, token: &str) -> Result<Option<Caller>> {
        let presented = digest(token.trim());
        let rows = self.store.tokens().await.map_err(|e| Error::store(e, "check the state store"))?;
        let mut found = None;
        // Every live token is compared (no early exit), each in constant time.
        for r in rows.into_iter().filter(|r| r.revoked_at.is_none()) {
            if let Some(h) = unhex(&r.sha256)
                && same(&h, &presented)
                && found.is_none()
            {
                found = Some(r);
            }
        }
        found.map(|r| info(r).map(|i| Caller { name: i.name, role: i.role })).transpose()
    }

    /// Refuses an approval by an API token that asked for the plan (planned it or requested
    /// its approval) while the policy's `approver_must_differ_from_requester` holds.
    pub(crate) async fn check_not_requester(&self, approver: &Approver, plan_id: &str) -> Result<()> {
        if !self.policy.approver_must_differ_from_requester || approver.channel() == Channel::Terminal {
            return Ok(());
        }
        let me = api_actor(approver.name());
        let planner = self.store.plan_requester(plan_id).await.map_err(|e| Error::store(e, "check the state store"))?;
        let requested = self.approval_requests(plan_id).await?.into_iter().any(|r| r.requested_by == me);
        if planner.as_deref() == Some(me.as_str()) || requested {
            return Err(Error::new(
                Kind::Forbidden,
                format!("token '{}' asked for plan {plan_id} and may not approve it too", approver.name()),
                "another approver's token approves it (the policy's approver_must_differ_from_requester)",
            ));
        }
        Ok(())
    }

    async fn audit_token(&self, actor: &str, action: &str, name: &str, role: Option<Role>) -> Result<()> {
        tabflow_engine::audit::append(
            &self.store,
            tabflow_engine::audit::NewRecord {
                actor: actor.to_string(),
                action: action.into(),
                after: Some(serde_json::json!({"token": name, "role": role.map(Role::as_str)})),
                outcome: "recorded".into(),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| Error::store(e, "check the state store"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_allow_what_the_issue_says() {
        use Permission::*;
        assert!(Role::Viewer.may(Read) && !Role::Viewer.may(Request) && !Role::Viewer.may(Start));
        assert!(Role::Requester.may(Request) && Role::Requester.may(Start) && !Role::Requester.may(Approve));
        assert!(Role::Approver.may(Approve) && Role::Approver.may(Rollback) && !Role::Approver.may(Request));
        assert!(Role::Requester.may(Rollback) && !Role::Viewer.may(Rollback), "asking for a rollback is a request");
        assert!(!Role::Approver.may(ManageTokens) && Role::Admin.may(ManageTokens));
        assert!(Role::parse("Approver").is_ok() && Role::parse("root").is_err());
    }

    #[test]
    fn hashes_round_trip_and_compare() {
        let d = digest("tfk_x");
        assert_eq!(unhex(&hex(&d)), Some(d));
        assert!(same(&d, &digest("tfk_x")) && !same(&d, &digest("tfk_y")));
        assert!(check_name("alice-approver").is_ok() && check_name("a b").is_err() && check_name("").is_err());
    }
}
