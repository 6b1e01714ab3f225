//! Purging staged deletes whose grace period has passed.

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
) -> Result<Purge, ExecError> {
    let now = clock.now();
    let site_id = client.session().await.site_id;
    let mut purged = vec![];
    let mut kept = vec![];
    let mut waiting = vec![];
    let mut other_site = vec![];
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
        // A damaged backup keeps its item (and only its item) from being deleted.
        // Checked piece by piece: a 2 GB backup is never held whole.
        let intact = match store.backup_intact(&s.run_id, &s.item_id).await {
            Ok(b) => b,
            Err(e) => {
                kept.push(format!("{} ({}): {e}, not deleted", s.name, s.item_id));
                continue;
            }
        };
        let Some(intact) = intact else {
            kept.push(format!("{} ({}): no backup in the store, not deleted", s.name, s.item_id));
            continue;
        };
        let recorded = store.backup_sha(&s.run_id, &s.item_id).await.ok().flatten();
        if !intact || s.backup_sha256.as_ref().is_some_and(|h| Some(h) != recorded.as_ref()) {
            kept.push(format!("{} ({}): the backup does not match its checksum, not deleted", s.name, s.item_id));
            continue;
        }
        // Only what is still where the staged delete put it: an item someone moved out of
        // quarantine (or renamed, or edited since) was taken back, and is not deleted.
        match still_quarantined(client, store, &s).await {
            Ok(None) => {}
            Ok(Some(why)) => {
                kept.push(format!("{} ({}): {why}, not deleted", s.name, s.item_id));
                continue;
            }
            Err(e) => {
                kept.push(format!("{} ({}): {e}", s.name, s.item_id));
                continue;
            }
        }
        let result = match s.item_type.as_str() {
            "workbook" => client.delete_workbook(&tabflow_wire::ids::WorkbookId::new(&s.item_id)).await,
            "datasource" => client.delete_datasource(&tabflow_wire::ids::DatasourceId::new(&s.item_id)).await,
            other => {
                kept.push(format!("{} ({}): items of type {other} are not purged", s.name, s.item_id));
                continue;
            }
        };
        match result {
            Ok(()) => {}
            Err(e) if e.status() == Some(404) => {}
            Err(e) => {
                kept.push(format!("{} ({}): {e}", s.name, s.item_id));
                continue;
            }
        }
        store.mark_purged(&s.item_id, &s.run_id).await?;
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
        purged.push(format!("{} ({})", s.name, s.item_id));
    }
    Ok(Purge { purged, kept, waiting, other_site })
}

/// Why a staged item is no longer the one the staged delete left (None: it still is): it was
/// moved out of the quarantine project, renamed, or re-published since. Gone already is fine.
async fn still_quarantined(client: &Client, store: &Store, s: &StagedRow) -> Result<Option<String>, ExecError> {
    let journal = store.journal(&s.run_id).await?;
    let Some(left) = journal
        .iter()
        .rev()
        .find(|e| e.item_id == s.item_id && matches!(e.phase, Phase::Applied | Phase::AlreadyApplied))
    else {
        return Ok(Some("the run's journal has no record of moving it to quarantine".into()));
    };
    let left: Image = serde_json::from_value(left.image.clone())
        .map_err(|e| ExecError::Refused(format!("the journal's image of {} is unreadable: {e}", s.item_id)))?;
    let now = ops::read_image(client, &s.item_type, &s.item_id, false)
        .await
        .map_err(|e| ExecError::Refused(e.to_string()))?;
    if !now.exists {
        return Ok(None);
    }
    if now.project_id != left.project_id {
        return Ok(Some("it was moved out of the quarantine project after the staged delete".into()));
    }
    if now.name != left.name {
        return Ok(Some(format!("it was renamed to '{}' after the staged delete", now.name.unwrap_or_default())));
    }
    // The move into quarantine itself updates it; an edit is a later update (five minutes of
    // slack for the server's clock).
    let updated = now.updated_at.as_deref().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
    if let Some(t) = updated
        && t.with_timezone(&Utc) > s.quarantined_at + chrono::Duration::minutes(5)
    {
        return Ok(Some(format!("it was changed at {t} after the staged delete, so the saved file is out of date")));
    }
    Ok(None)
}
