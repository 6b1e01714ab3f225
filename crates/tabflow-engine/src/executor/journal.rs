//! The run's write-ahead journal writer: group commit of journal entries and audit records,
//! each acknowledged only once durable, and the reading of a journal back (last phase per item).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::{mpsc, oneshot};

use super::ExecError;
use crate::audit::NewRecord;
use crate::store::{Entry, Fence, NewEntry, Phase, Store, StoreError};

// ------------------------------------------------------------------------ journal writer

struct WriteReq {
    entries: Vec<NewEntry>,
    audit: Vec<NewRecord>,
    ack: oneshot::Sender<Result<(), String>>,
}

/// Group commit: everything queued while the previous transaction was being written goes
/// into the next one. Each request is acknowledged only once durable.
#[derive(Clone)]
pub(super) struct Recorder {
    tx: mpsc::UnboundedSender<WriteReq>,
    /// False only for the benchmark baseline: writes are acknowledged without being stored.
    enabled: bool,
    /// The run's lease: each batch is written only while it still holds (see
    /// [`super::lease`]); a stale one fails the batch with "lease lost".
    pub(super) fence: Option<Fence>,
    /// Set once the lease is known lost (a fenced write refused, or the heartbeat's renewal):
    /// the run checks it before every call to the site.
    pub(super) lost: Arc<AtomicBool>,
}

impl Recorder {
    pub(super) fn start(
        store: Store,
        enabled: bool,
        fence: Option<Fence>,
        lost: Arc<AtomicBool>,
    ) -> (Recorder, tokio::task::JoinHandle<()>) {
        Recorder::start_with(store, enabled, fence, lost, None)
    }

    /// [`Recorder::start`] for a shared run's worker: with `claims`, each entry of a claimed
    /// item is written only while its claim still holds (see [`super::shared`]).
    pub(super) fn start_with(
        store: Store,
        enabled: bool,
        fence: Option<Fence>,
        lost: Arc<AtomicBool>,
        claims: Option<Arc<super::shared::Claims>>,
    ) -> (Recorder, tokio::task::JoinHandle<()>) {
        let fenced = fence.clone();
        let claims_here = claims.clone();
        let lost_here = lost.clone();
        let (tx, mut rx) = mpsc::unbounded_channel::<WriteReq>();
        let handle = tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                while let Ok(more) = rx.try_recv() {
                    batch.push(more);
                    if batch.len() >= 512 {
                        break;
                    }
                }
                if let Some(claims) = &claims_here {
                    // Per item claim: a batch refused for one lost claim is written request by
                    // request, so only the requests of the lost item fail.
                    let all: Vec<NewEntry> = batch.iter().flat_map(|b| b.entries.iter().cloned()).collect();
                    let audit: Vec<NewRecord> = batch.iter().flat_map(|b| b.audit.iter().cloned()).collect();
                    let res = claims.write(&store, &all, audit).await;
                    if res.is_ok() || batch.len() == 1 {
                        for b in batch {
                            let _ = b.ack.send(res.clone());
                        }
                        continue;
                    }
                    for mut b in batch {
                        let audit = std::mem::take(&mut b.audit);
                        let r = claims.write(&store, &b.entries, audit).await;
                        let _ = b.ack.send(r);
                    }
                    continue;
                }
                let entries: Vec<NewEntry> = batch.iter().flat_map(|b| b.entries.iter().cloned()).collect();
                let audit: Vec<NewRecord> = batch.iter_mut().flat_map(|b| std::mem::take(&mut b.audit)).collect();
                let mut res = store.append_fenced(fenced.as_ref(), &entries).await.map_err(|e| {
                    if matches!(e, StoreError::LeaseLost(_)) {
                        lost_here.store(true, Ordering::SeqCst);
                    }
                    e.to_string()
                });
                if res.is_ok() && !audit.is_empty() {
                    res = crate::audit::append_many(&store, audit).await.map(|_| ()).map_err(|e| e.to_string());
                }
                for b in batch {
                    let _ = b.ack.send(res.clone());
                }
            }
        });
        (Recorder { tx, enabled, fence, lost }, handle)
    }

    pub(super) async fn write(&self, entries: Vec<NewEntry>, audit: Vec<NewRecord>) -> Result<(), ExecError> {
        match self.send(entries, audit)? {
            Some(rx) => Recorder::wait(rx).await,
            None => Ok(()),
        }
    }

    /// Queues a write without waiting for it to be durable; the caller waits later.
    pub(super) fn send(&self, entries: Vec<NewEntry>, audit: Vec<NewRecord>) -> Result<Option<Ack>, ExecError> {
        if !self.enabled {
            return Ok(None);
        }
        let (ack, rx) = oneshot::channel();
        self.tx
            .send(WriteReq { entries, audit, ack })
            .map_err(|_| ExecError::Refused("the journal writer stopped".into()))?;
        Ok(Some(rx))
    }

    pub(super) async fn wait(rx: Ack) -> Result<(), ExecError> {
        rx.await
            .map_err(|_| ExecError::Refused("the journal writer stopped".into()))?
            .map_err(|e| ExecError::Refused(format!("cannot write the journal: {e}")))
    }
}

pub(super) type Ack = oneshot::Receiver<Result<(), String>>;

/// What the journal says about each (step, item): its last phase.
pub(super) fn last_phases(journal: &[Entry]) -> HashMap<(String, String), Phase> {
    let mut m = HashMap::new();
    for e in journal {
        m.insert((e.step_id.clone(), e.item_id.clone()), e.phase);
    }
    m
}
