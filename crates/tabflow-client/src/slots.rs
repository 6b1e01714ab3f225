//! The client's cap on calls in flight, shared by reads and writes, handed to a waiting write
//! before any waiting read.
//!
//! Reads and writes have caps of their own (16 and 8 by default) and together stay within
//! the larger. With one first-come queue, an apply's re-reads of its next items (two calls
//! each) queued ahead of the writes of the items already read: the first writes waited a
//! second wave of re-reads, and the writes, the bound of an apply, ran below their cap.
//! Writes first keeps them flowing (the gap between an item's re-read and its write stays
//! one round trip, as before); reads cannot starve, since writes hold at most their own cap
//! and the rest is the reads'.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::oneshot;

#[derive(Debug)]
struct State {
    free: usize,
    writes: VecDeque<oneshot::Sender<Slot>>,
    reads: VecDeque<oneshot::Sender<Slot>>,
}

/// `n` slots; see the module's documentation.
#[derive(Debug, Clone)]
pub(crate) struct Slots(Arc<Mutex<State>>);

/// One call's slot: given back (to the next waiting write, else read) when dropped.
#[derive(Debug)]
pub(crate) struct Slot(Option<Arc<Mutex<State>>>);

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

impl Slots {
    pub(crate) fn new(n: usize) -> Slots {
        Slots(Arc::new(Mutex::new(State { free: n.max(1), writes: VecDeque::new(), reads: VecDeque::new() })))
    }

    /// Waits for a slot: a write is served before every waiting read, each kind in the order
    /// asked. Dropping the future gives up its place (a slot handed to it meanwhile goes on).
    pub(crate) async fn acquire(&self, write: bool) -> Slot {
        let rx = {
            let mut s = lock(&self.0);
            let ahead = if write { s.writes.is_empty() } else { s.writes.is_empty() && s.reads.is_empty() };
            if s.free > 0 && ahead {
                s.free -= 1;
                return Slot(Some(self.0.clone()));
            }
            let (tx, rx) = oneshot::channel();
            if write {
                s.writes.push_back(tx);
            } else {
                s.reads.push_back(tx);
            }
            rx
        };
        match rx.await {
            Ok(slot) => slot,
            // The sender is only dropped after handing a slot over or when the state goes
            // away, which this future's own `Slots` prevents.
            Err(_) => unreachable!("a waiting slot's sender is never dropped unanswered"),
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let Some(state) = self.0.take() else { return };
        let mut s = lock(&state);
        loop {
            let Some(tx) = s.writes.pop_front().or_else(|| s.reads.pop_front()) else {
                s.free += 1;
                return;
            };
            // Handed over in place; a waiter that gave up answers it back, and it goes to the
            // next one (emptied first: dropping it would give it back again, under this lock).
            match tx.send(Slot(Some(state.clone()))) {
                Ok(()) => return,
                Err(mut back) => drop(back.0.take()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn free(s: &Slots) -> usize {
        lock(&s.0).free
    }

    #[tokio::test]
    async fn a_waiting_write_goes_before_reads_that_waited_longer() {
        let slots = Slots::new(2);
        let held = (slots.acquire(false).await, slots.acquire(false).await);
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for (name, write) in [("read-1", false), ("read-2", false), ("write-1", true), ("write-2", true)] {
            let (slots, order) = (slots.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let _slot = slots.acquire(write).await;
                order.lock().unwrap().push(name);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }));
            // Each one queued before the next asks.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        drop(held);
        for t in tasks {
            t.await.unwrap();
        }
        let order = order.lock().unwrap().clone();
        assert_eq!(&order[..2], ["write-1", "write-2"], "{order:?}");
        assert_eq!(&order[2..], ["read-1", "read-2"], "{order:?}");
        assert_eq!(free(&slots), 2);
    }

    #[tokio::test]
    async fn a_waiter_that_gives_up_loses_no_slot() {
        let slots = Slots::new(1);
        let held = slots.acquire(true).await;
        // Gives up while waiting.
        let gave_up = tokio::time::timeout(Duration::from_millis(10), slots.acquire(true)).await;
        assert!(gave_up.is_err());
        // Queued, then dropped after the slot was handed to it but before it looked.
        let (s2, s3) = (slots.clone(), slots.clone());
        let waiting = tokio::spawn(async move { s2.acquire(false).await });
        tokio::time::sleep(Duration::from_millis(5)).await;
        drop(held);
        waiting.abort();
        let _ = waiting.await;
        let next = tokio::time::timeout(Duration::from_secs(2), s3.acquire(false)).await.expect("the slot came back");
        drop(next);
        assert_eq!(free(&slots), 1);
        assert!(lock(&slots.0).writes.is_empty() && lock(&slots.0).reads.is_empty());
    }
}
