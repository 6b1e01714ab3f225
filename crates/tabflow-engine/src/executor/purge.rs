//! Purging staged deletes whose grace period has passed.
//!
//! Several `tabflow worker`s may purge from one store at once, so each staged item is claimed
//! first ([`Store::claim_staged`]: a lease with a fencing epoch, `FOR UPDATE SKIP LOCKED` on
//! PostgreSQL), renewed every third of the lease while it is checked and deleted, re-checked
//! right before the DELETE is sent (Tableau cannot check the epoch), and marked purged only
//! while still held: an item is deleted and audited by one worker, never two. An item another
//! worker holds is skipped (`elsewhere`); a claim not ended by a purge is released.

use chrono::Utc;
use serde::Serialize;
use serde_json::json;
use tabflow_client::Client;

use super::ExecError;
use crate::audit::NewRecord;
use crate::ops::{self, Image};
use crate::store::{Phase, StagedRow, Store};

/// What a purge did: deleted, kept (with the reason), and still in the grace period (with the
/// day it is due).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Purge {
    pub purged: Vec<String>,
    pub kept: Vec<String>,
    pub waiting: Vec<String>,
    /// Staged on another site than the one connected to (never touched here), each with the
    /// site it came from.
    pub other_site: Vec<String>,
    /// Due, but claimed (or purged meanwhile) by another worker of the store: left to it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub elsewhere: Vec<String>,
}

/// Who purges, for the staged items' claims: a name unique to the process, and how long a
/// claim lasts without renewal (renewed every third).
#[derive(Debug, Clone)]
pub struct PurgeClaim {
    pub owner: String,
    pub lease: std::time::Duration,
}

impl PurgeClaim {
    /// A claim for a one-off purge (`tabflow runs purge`): this process, a minute's lease.
    pub fn this_process() -> PurgeClaim {
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        PurgeClaim {
            owner: format!("purge:{}:{nanos:x}", std::process::id()),
            lease: std::time::Duration::from_secs(60),
        }
    }

    fn until(&self) -> chrono::DateTime<Utc> {
        Utc::now() + chrono::Duration::from_std(self.lease).unwrap_or(chrono::Duration::seconds(60))
    }
}

/// The check right before a staged item's DELETE is sent: the claim is still this worker's,
/// at the same epoch, not lapsed.
struct StagedCheck {
    store: Store,
    item_id: String,
    run_id: String,
    owner: String,
    epoch: i64,
}

impl tabflow_client::WriteCheck for StagedCheck {
    fn check(&self) -> futures::future::BoxFuture<'_, Result<Option<std::time::Instant>, String>> {
        Box::pin(async move {
            // Taken before the question is sent: the answer may come back after a pause.
            let (now, asked) = (Utc::now(), std::time::Instant::now());
            match self.store.staged_held_until(&self.item_id, &self.run_id, &self.owner, self.epoch, now).await {
                // Sent within half of what was left of the claim, or not at all (as a run's
                // items are: see `ItemCheck`).
                Ok(Some(until)) => Ok(Some(asked + (until - now).to_std().unwrap_or_default() / 2)),
                Ok(None) => Err(format!(
                    "lease lost: the purge of {} (run {}) is no longer this worker's (epoch {}); the delete was not sent",
                    self.item_id, self.run_id, self.epoch
                )),
                Err(e) => Err(format!("the purge's lease cannot be checked: {e}")),
            }
        })
    }
}

/// What became of one claimed staged item.
enum Outcome {
    Purged,
    Kept(String),
    Lost(String),
}

/// Staged deletes whose grace period has passed: deletes each one that is still in
/// quarantine, unchanged since, and whose backup exists. "Now" is `clock`'s (the engine's
/// injected clock), so grace periods can be tested without waiting. Only items staged on the
/// connected site are considered: `server` is the connection's label (as plans record it)
/// and the site id is the client's; an item whose run's plan is for another site (or cannot
/// be found) is listed in `other_site` and left alone.
pub async fn purge_due(
    client: &Client,
    store: &Store,
    clock: &dyn crate::Clock,
    actor: &str,
    force_now: bool,
    server: &str,
    claim: &PurgeClaim,
) -> Result<Purge, ExecError> {
    let now = clock.now();
    let site_id = client.session().await.site_id;
    let mut purged = vec![];
    let mut kept = vec![];
    let mut waiting = vec![];
    let mut other_site = vec![];
    let mut elsewhere = vec![];
    // Per run: None = the connected site, Some(where) = another one.
    let mut site_of_run: std::collections::HashMap<String, Option<String>> = Default::default();
    for s in store.staged().await? {
        if s.purged_at.is_some() {
            continue;
        }
        if !site_of_run.contains_key(&s.run_id) {
            let elsewhere = match store.run(&s.run_id).await {
                Ok(run) => match store.plan(&run.plan_id).await {
                    Ok(plan) => match plan.check_site(server, &site_id) {
                        Ok(()) => None,
                        Err(_) => Some(format!(
                            "site '{}' at {}",
                            if plan.site.content_url.is_empty() { &plan.site.id } else { &plan.site.content_url },
                            plan.site.server
                        )),
                    },
                    Err(_) => Some(format!("an unknown site (run {}'s plan is not in the store)", s.run_id)),
                },
                Err(_) => Some(format!("an unknown site (run {} is not in the store)", s.run_id)),
            };
            site_of_run.insert(s.run_id.clone(), elsewhere);
        }
        if let Some(Some(elsewhere)) = site_of_run.get(&s.run_id) {
            other_site.push(format!("{} ({}): staged by run {} on {elsewhere}", s.name, s.item_id, s.run_id));
            continue;
        }
        if !force_now && s.purge_after > now {
            waiting.push(format!("{} ({}): due {}", s.name, s.item_id, s.purge_after.format("%Y-%m-%d %H:%M UTC")));
            continue;
        }
        // Leases are real time (a worker's liveness), whatever clock decides what is due.
        let Some(epoch) = store.claim_staged(&s.item_id, &s.run_id, &claim.owner, Utc::now(), claim.until()).await?
        else {
            elsewhere.push(format!("{} ({}): another worker is purging it", s.name, s.item_id));
            continue;
        };
        let renew = {
            let (store, item, run, owner, claim) =
                (store.clone(), s.item_id.clone(), s.run_id.clone(), claim.owner.clone(), claim.clone());
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep((claim.lease / 3).max(std::time::Duration::from_millis(100))).await;
                    match store.renew_staged(&item, &run, &owner, epoch, claim.until()).await {
                        Ok(true) => {}
                        Ok(false) => break,
                        Err(e) => tracing::warn!(item, "renewing the purge's claim: {e}"),
                    }
                }
            })
        };
        let check = std::sync::Arc::new(StagedCheck {
            store: store.clone(),
            item_id: s.item_id.clone(),
            run_id: s.run_id.clone(),
            owner: claim.owner.clone(),
            epoch,
        });
        let outcome = tabflow_client::fenced(check, purge_one(client, store, actor, &s, &claim.owner, epoch)).await;
        renew.abort();
        let outcome = match outcome {
            Ok(o) => o,
            Err(e) => {
                let _ = store.release_staged(&s.item_id, &s.run_id, &claim.owner, epoch).await;
                return Err(e);
            }
        };
        match outcome {
            Outcome::Purged => purged.push(format!("{} ({})", s.name, s.item_id)),
            Outcome::Kept(why) => {
                store.release_staged(&s.item_id, &s.run_id, &claim.owner, epoch).await?;
                kept.push(format!("{} ({}): {why}", s.name, s.item_id));
            }
            Outcome::Lost(why) => elsewhere.push(format!("{} ({}): {why}", s.name, s.item_id)),
        }
    }
    Ok(Purge { purged, kept, waiting, other_site, elsewhere })
}

/// Checks and deletes one claimed staged item, and records its purge while the claim holds.
async fn purge_one(
    client: &Client,
    store: &Store,
    actor: &str,
    s: &StagedRow,
    owner: &str,
    epoch: i64,
) -> Result<Outcome, ExecError> {
    // A damaged backup keeps its item (and only its item) from being deleted.
    // Checked piece by piece: a 2 GB backup is never held whole.
    let intact = match store.backup_intact(&s.run_id, &s.item_id).await {
        Ok(b) => b,
        Err(e) => return Ok(Outcome::Kept(format!("{e}, not deleted"))),
    };
    let Some(intact) = intact else {
        return Ok(Outcome::Kept("no backup in the store, not deleted".into()));
    };
    let recorded = store.backup_sha(&s.run_id, &s.item_id).await.ok().flatten();
    if !intact || s.backup_sha256.as_ref().is_some_and(|h| Some(h) != recorded.as_ref()) {
        return Ok(Outcome::Kept("the backup does not match its checksum, not deleted".into()));
    }
    // Only what is still where the staged delete put it: an item someone moved out of
    // quarantine (or renamed, or edited since) was taken back, and is not deleted. One
    // already gone (deleted by hand, or by a worker whose claim lapsed after its delete)
    // needs no call.
    match still_quarantined(client, store, s).await {
        Ok(Still::Gone) => {}
        Ok(Still::There) => {
            let result = match s.item_type.as_str() {
                "workbook" => client.delete_workbook(&tabflow_wire::ids::WorkbookId::new(&s.item_id)).await,
                "datasource" => client.delete_datasource(&tabflow_wire::ids::DatasourceId::new(&s.item_id)).await,
                other => return Ok(Outcome::Kept(format!("items of type {other} are not purged"))),
            };
            match result {
                Ok(()) => {}
                Err(e) if e.status() == Some(404) => {}
                Err(tabflow_client::Error::Fenced(why)) => return Ok(Outcome::Lost(why)),
                Err(e) => return Ok(Outcome::Kept(e.to_string())),
            }
        }
        Ok(Still::Changed(why)) => return Ok(Outcome::Kept(format!("{why}, not deleted"))),
        Err(e) => return Ok(Outcome::Kept(e.to_string())),
    }
    if !store.mark_purged_fenced(&s.item_id, &s.run_id, owner, epoch).await? {
        return Ok(Outcome::Lost(format!(
            "deleted, but the claim (epoch {epoch}) was taken over before it was recorded; the new holder records it"
        )));
    }
    crate::audit::append(
        store,
        NewRecord {
            actor: actor.into(),
            action: "purge".into(),
            run_id: Some(s.run_id.clone()),
            item_id: Some(s.item_id.clone()),
            before: Some(json!({"name": s.name, "type": s.item_type, "backup_sha256": s.backup_sha256})),
            outcome: "deleted".into(),
            ..Default::default()
        },
    )
    .await?;
    Ok(Outcome::Purged)
}

/// Where a staged item stands now.
enum Still {
    /// Where the staged delete left it.
    There,
    /// Not on the site any more.
    Gone,
    /// Taken back (moved, renamed or changed since): why.
    Changed(String),
}

/// Whether a staged item is still the one the staged delete left: it may have been moved out
/// of the quarantine project, renamed, or re-published since, or be gone already.
async fn still_quarantined(client: &Client, store: &Store, s: &StagedRow) -> Result<Still, ExecError> {
    let journal = store.journal(&s.run_id).await?;
    let Some(left) = journal
        .iter()
        .rev()
        .find(|e| e.item_id == s.item_id && matches!(e.phase, Phase::Applied | Phase::AlreadyApplied))
    else {
        return Ok(Still::Changed("the run's journal has no record of moving it to quarantine".into()));
    };
    let left: Image = serde_json::from_value(left.image.clone())
        .map_err(|e| ExecError::Refused(format!("the journal's image of {} is unreadable: {e}", s.item_id)))?;
    let now = ops::read_image(client, &s.item_type, &s.item_id, false)
        .await
        .map_err(|e| ExecError::Refused(e.to_string()))?;
    if !now.exists {
        return Ok(Still::Gone);
    }
    if now.project_id != left.project_id {
        return Ok(Still::Changed("it was moved out of the quarantine project after the staged delete".into()));
    }
    if now.name != left.name {
        return Ok(Still::Changed(format!(
            "it was renamed to '{}' after the staged delete",
            now.name.unwrap_or_default()
        )));
    }
    // The move into quarantine itself updates it; an edit is a later update (five minutes of
    // slack for the server's clock).
    let updated = now.updated_at.as_deref().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
    if let Some(t) = updated
        && t.with_timezone(&Utc) > s.quarantined_at + chrono::Duration::minutes(5)
    {
        return Ok(Still::Changed(format!(
            "it was changed at {t} after the staged delete, so the saved file is out of date"
        )));
    }
    Ok(Still::There)
}
