//! Run ownership: the lease a process holds on a run while it executes, resumes or rolls it
//! back. This is the one mechanism by which processes — on one machine or on several sharing
//! a PostgreSQL store — agree on who may write for a run; the worker and scale-out build on it.
//!
//! - **Claim**: one conditional UPDATE of the run's row (`lease_owner`, `lease_expires_at`,
//!   `lease_epoch`, see [`Store::claim_lease`]) succeeds when the lease is free, lapsed, or
//!   already ours, and raises the fencing epoch. Of two concurrent claimants exactly one wins;
//!   the other is refused with a message naming the holder and the expiry.
//! - **Heartbeat**: while the run executes, the holder renews the expiry every third of the
//!   lease ([`RunOptions::lease`](super::RunOptions::lease), 60 s by default).
//! - **Fencing**: every journal append and run-status write carries the epoch
//!   ([`Store::append_fenced`]); one with a stale epoch fails with "lease lost" and writes
//!   nothing, and since every write to the site is preceded by its journal intent, the run
//!   stops without touching the site again.
//! - **Release** when the run finishes; a crashed holder's lease lapses at its expiry. On the
//!   same machine a holder whose process is gone is known at once, and its lease is taken over
//!   with the same compare-and-set (conditioned on that owner and epoch), so a resume after a
//!   crash does not wait for the expiry.
//!
//! Expiry compares the clocks of the processes involved: hosts sharing a store are expected
//! to keep their clocks in sync (NTP) to well within the lease.

use std::sync::Arc;
use std::time::Duration;

use super::ExecError;
use crate::Clock;
use crate::store::{Fence, RunRow, Store};

/// The host name a front end read from its environment (`HOSTNAME`, `COMPUTERNAME`), for
/// systems without `/proc/sys/kernel/hostname` or `/etc/hostname`; the engine reads no
/// environment itself. Set it before the first run; later calls are ignored.
pub fn set_host_name(name: String) {
    let _ = HOST_NAME.set(name);
}

static HOST_NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// This process's name as a lease owner: `host:pid:random` (the random part tells apart two
/// processes that reuse a pid).
pub fn owner_id() -> String {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .or_else(|_| std::fs::read_to_string("/etc/hostname"))
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .or_else(|| HOST_NAME.get().cloned())
            .unwrap_or_else(|| "localhost".into());
        let random = uuid::Uuid::new_v4().simple().to_string();
        format!("{}:{}:{}", host.replace(':', "-"), std::process::id(), &random[..8])
    })
    .clone()
}

/// Whether a lease owner is a process on this machine that no longer runs (Linux only;
/// elsewhere a holder is never presumed gone before its lease lapses).
fn gone_from_this_host(owner: &str) -> bool {
    let me = owner_id();
    let (Some((host, rest)), Some((my_host, _))) = (owner.split_once(':'), me.split_once(':')) else {
        return false;
    };
    let Some(pid) = rest.split(':').next().and_then(|p| p.parse::<u32>().ok()) else { return false };
    host == my_host
        && pid != std::process::id()
        && std::path::Path::new("/proc/self").exists()
        && !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

fn expiry(clock: &dyn Clock, ttl: Duration) -> chrono::DateTime<chrono::Utc> {
    clock.now() + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::seconds(60))
}

/// A lease this process holds, renewed in the background until [`Held::release`].
pub(super) struct Held {
    pub(super) fence: Fence,
    /// Set when a renewal finds the lease taken over (the journal writer sets it too).
    pub(super) lost: Arc<std::sync::atomic::AtomicBool>,
    heartbeat: tokio::task::JoinHandle<()>,
}

impl Held {
    /// Starts renewing `fence` every third of `ttl`.
    pub(super) fn start(store: &Store, clock: Arc<dyn Clock>, fence: Fence, ttl: Duration) -> Held {
        let (store, f) = (store.clone(), fence.clone());
        let lost = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let lost_here = lost.clone();
        let heartbeat = tokio::spawn(async move {
            let every = (ttl / 3).max(Duration::from_millis(100));
            loop {
                tokio::time::sleep(every).await;
                match store.renew_lease(&f, expiry(clock.as_ref(), ttl)).await {
                    Ok(true) => {}
                    Ok(false) => {
                        lost_here.store(true, std::sync::atomic::Ordering::SeqCst);
                        tracing::warn!(run = %f.run_id, "the run's lease was taken over; its next write will stop it");
                        return;
                    }
                    // A passing store error: the next beat tries again; the fence decides.
                    Err(e) => tracing::warn!(run = %f.run_id, "renewing the run's lease: {e}"),
                }
            }
        });
        Held { fence, lost, heartbeat }
    }

    /// Stops the heartbeat and gives the lease up.
    pub(super) async fn release(self, store: &Store) {
        self.heartbeat.abort();
        if let Err(e) = store.release_lease(&self.fence).await {
            tracing::warn!(run = %self.fence.run_id, "releasing the run's lease: {e}");
        }
    }
}

/// Claims `run`'s lease for `me` (this process's [`owner_id`], or a worker's own id), or
/// refuses naming the holder and its expiry. An owner re-claims its own lease: two workers of
/// one process must therefore claim under their own ids, never under the process's.
pub(super) async fn claim(
    store: &Store,
    clock: &dyn Clock,
    run: &RunRow,
    ttl: Duration,
    me: &str,
) -> Result<Fence, ExecError> {
    let until = expiry(clock, ttl);
    if let Some(f) = store.claim_lease(&run.id, me, clock.now(), until, None).await? {
        return Ok(f);
    }
    // Held by someone else: read who, and take it over only from a process gone from here.
    let now = store.run(&run.id).await?;
    if let Some(holder) = now.lease_owner.as_deref()
        && gone_from_this_host(holder)
        && let Some(f) = store.claim_lease(&run.id, me, clock.now(), until, Some((holder, now.lease_epoch))).await?
    {
        tracing::info!(run = %run.id, "took over the lease of {holder}, a process that no longer runs");
        return Ok(f);
    }
    let holder = now.lease_owner.unwrap_or_else(|| "another process".into());
    let until = now.lease_expires_at.map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string()).unwrap_or_default();
    Err(ExecError::Refused(format!(
        "run {} is being executed by {holder} (its lease runs until {until}); wait for it to finish, or — if that process is gone — for the lease to lapse, then run `tabflow runs resume {}` again",
        run.id, run.id
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::RunStatus;

    #[tokio::test]
    async fn the_heartbeat_keeps_a_short_lease_alive_and_release_frees_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).await.unwrap();
        let run = RunRow {
            id: "r-1".into(),
            plan_id: "p-1".into(),
            status: RunStatus::Running,
            request: "x".into(),
            created_at: chrono::Utc::now(),
            finished_at: None,
            actor: "a".into(),
            lease_owner: None,
            lease_expires_at: None,
            lease_epoch: 0,
            approval_id: None,
            summary: serde_json::json!({}),
            fingerprint: None,
        };
        store.insert_run(&run).await.unwrap();
        let clock: Arc<dyn Clock> = Arc::new(crate::SystemClock);
        let ttl = Duration::from_millis(600);
        let fence = claim(&store, clock.as_ref(), &run, ttl, &owner_id()).await.unwrap();
        assert_eq!((fence.owner.as_str(), fence.epoch), (owner_id().as_str(), 1));
        let held = Held::start(&store, clock.clone(), fence, ttl);
        // Three leases long: without the heartbeat it would have lapsed twice over.
        tokio::time::sleep(Duration::from_millis(1800)).await;
        let now = store.run("r-1").await.unwrap();
        assert!(now.lease_expires_at.unwrap() > chrono::Utc::now(), "{now:?}");
        let other =
            store.claim_lease("r-1", "elsewhere:1:x", chrono::Utc::now(), chrono::Utc::now(), None).await.unwrap();
        assert!(other.is_none(), "a renewed lease was taken");
        // Another owner of this same process (a second in-process worker) is refused too: an
        // owner re-claims only its own lease.
        let sibling = claim(&store, clock.as_ref(), &now, ttl, "bench-worker-1:1").await;
        assert!(matches!(sibling, Err(ExecError::Refused(_))), "{:?}", sibling.map(|f| f.epoch));
        // The holder may claim again (a new epoch); the old fence is then stale.
        let e = claim(&store, clock.as_ref(), &now, ttl, &owner_id()).await.map(|f| f.epoch);
        assert_eq!(e.ok(), Some(2), "the holder itself may claim again");
        held.release(&store).await;
        let after = store.run("r-1").await.unwrap();
        assert_eq!(after.lease_owner, Some(owner_id()), "release by a stale fence is a no-op");
        store.close().await;
    }

    #[test]
    fn an_owner_on_this_host_whose_process_is_gone_is_recognised() {
        let me = owner_id();
        let host = me.split(':').next().unwrap();
        assert!(!gone_from_this_host(&me));
        assert!(
            gone_from_this_host(&format!("{host}:4000000000:abcd")) || !std::path::Path::new("/proc/self").exists()
        );
        assert!(!gone_from_this_host("another-host:4000000000:abcd"));
    }
}
