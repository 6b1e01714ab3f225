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
//!
//! While a run writes ([`Slots::room_for_writes`]), reads are also held to what the writes leave
//! (16 − 8 by default): the executor's items then read at the pace their writes go out.
//! Without it, an apply's items in flight (twice the write cap) all read at once, wait
//! together for the 8 writes, and leave the reads idle meanwhile, so the writes later ran
//! short of items read (measured: 3 to 6 writes in flight for a quarter of an apply's write
//! phase).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::oneshot;

#[derive(Debug)]
struct State {
    free: usize,
    writes: VecDeque<oneshot::Sender<Slot>>,
    reads: VecDeque<oneshot::Sender<Slot>>,
    /// Reads holding a slot now.
    reading: usize,
    /// Most reads in flight while `reserved` > 0.
    read_cap: usize,
    /// Live [`WriteRoom`]s.
    reserved: usize,
}

impl State {
    fn read_allowed(&self) -> bool {
        self.reserved == 0 || self.reading < self.read_cap
    }
}

/// `n` slots; see the module's documentation.
#[derive(Debug, Clone)]
pub(crate) struct Slots(Arc<Mutex<State>>);

/// One call's slot: given back (to the next waiting write, else read) when dropped.
#[derive(Debug)]
pub(crate) struct Slot {
    state: Option<Arc<Mutex<State>>>,
    read: bool,
}

/// Holds reads to what the writes leave of the slots until dropped ([`Slots::room_for_writes`]).
#[derive(Debug)]
pub struct WriteRoom(Option<Arc<Mutex<State>>>);

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

impl Slots {
    /// `n` slots, of which reads keep `n - writes` while a [`WriteRoom`] lives (all of them when
    /// that leaves none).
    pub(crate) fn new(n: usize, writes: usize) -> Slots {
        let n = n.max(1);
        let read_cap = if n > writes { n - writes } else { n };
        Slots(Arc::new(Mutex::new(State {
            free: n,
            writes: VecDeque::new(),
            reads: VecDeque::new(),
            reading: 0,
            read_cap,
            reserved: 0,
        })))
    }

    /// Keeps room for writes until the answer is dropped: reads in flight stay within what
    /// the write cap leaves of the slots.
    pub(crate) fn room_for_writes(&self) -> WriteRoom {
        lock(&self.0).reserved += 1;
        WriteRoom(Some(self.0.clone()))
    }

    /// Waits for a slot: a write is served before every waiting read, each kind in the order
    /// asked. Dropping the future gives up its place (a slot handed to it meanwhile goes on).
    pub(crate) async fn acquire(&self, write: bool) -> Slot {
        let rx = {
            let mut s = lock(&self.0);
            let ahead =
                if write { s.writes.is_empty() } else { s.writes.is_empty() && s.reads.is_empty() && s.read_allowed() };
            if s.free > 0 && ahead {
                s.free -= 1;
                if !write {
                    s.reading += 1;
                }
                return Slot { state: Some(self.0.clone()), read: !write };
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

/// Hands a free slot of `s` to the next waiting write, else to the next waiting read if reads
/// may take one more; answers whether it was handed over (else it stays free).
fn hand_over(state: &Arc<Mutex<State>>, s: &mut State) -> bool {
    loop {
        let (tx, read) = match s.writes.pop_front() {
            Some(tx) => (tx, false),
            None if s.read_allowed() => match s.reads.pop_front() {
                Some(tx) => (tx, true),
                None => return false,
            },
            None => return false,
        };
        // Handed over in place; a waiter that gave up answers it back, and it goes to the
        // next one (emptied first: dropping it would give it back again, under this lock).
        match tx.send(Slot { state: Some(state.clone()), read }) {
            Ok(()) => {
                if read {
                    s.reading += 1;
                }
                return true;
            }
            Err(mut back) => drop(back.state.take()),
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let Some(state) = self.state.take() else { return };
        let mut s = lock(&state);
        if self.read {
            s.reading -= 1;
        }
        if !hand_over(&state, &mut s) {
            s.free += 1;
        }
    }
}

impl Drop for WriteRoom {
    fn drop(&mut self) {
        let Some(state) = self.0.take() else { return };
        let mut s = lock(&state);
        s.reserved -= 1;
        // Reads held back by the reservation take the slots it kept free.
        while s.free > 0 && hand_over(&state, &mut s) {
            s.free -= 1;
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
        let slots = Slots::new(2, 1);
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
    async fn with_room_kept_for_writes_reads_take_only_what_the_writes_leave() {
        // 4 slots, writes capped at 2 elsewhere: reads keep 2 while the room is kept.
        let slots = Slots::new(4, 2);
        let room = slots.room_for_writes();
        let r1 = slots.acquire(false).await;
        let r2 = slots.acquire(false).await;
        let third = tokio::time::timeout(Duration::from_millis(20), slots.acquire(false)).await;
        assert!(third.is_err(), "a third read went in while two slots are kept for writes");
        // A read waits; the writes still get the two kept slots at once.
        let (s2, waiting_read) = (slots.clone(), tokio::sync::oneshot::channel::<()>());
        let (tx, mut rx) = waiting_read;
        let reader = tokio::spawn(async move {
            let slot = s2.acquire(false).await;
            let _ = tx.send(());
            slot
        });
        tokio::time::sleep(Duration::from_millis(5)).await;
        let w1 = tokio::time::timeout(Duration::from_millis(20), slots.acquire(true)).await.expect("a kept slot");
        let w2 = tokio::time::timeout(Duration::from_millis(20), slots.acquire(true)).await.expect("a kept slot");
        assert!(rx.try_recv().is_err());
        // A write ending frees a slot the waiting read may not take; a read ending does.
        drop(w1);
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(rx.try_recv().is_err(), "the read took a slot kept for writes");
        assert_eq!(free(&slots), 1);
        drop(r1);
        let r3 = tokio::time::timeout(Duration::from_secs(2), reader).await.expect("the read went in").unwrap();
        assert_eq!(free(&slots), 1, "r1's slot went to the read, w1's stays free");
        // Without the room, reads take every free slot again, waiting ones first.
        let more = slots.clone();
        let late = tokio::spawn(async move { more.acquire(false).await });
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(!late.is_finished());
        drop(room);
        let r4 = tokio::time::timeout(Duration::from_secs(2), late).await.expect("freed by the room's end").unwrap();
        assert_eq!((free(&slots), lock(&slots.0).reading), (0, 3), "the kept slot went to the read");
        drop((r2, r3, r4, w2));
        assert_eq!(free(&slots), 4);
        assert_eq!(lock(&slots.0).reading, 0);
    }

    #[tokio::test]
    async fn room_for_writes_changes_nothing_when_reads_and_writes_share_one_cap() {
        let slots = Slots::new(2, 2);
        let _room = slots.room_for_writes();
        let _a = slots.acquire(false).await;
        let _b = tokio::time::timeout(Duration::from_millis(20), slots.acquire(false)).await.expect("both slots");
    }

    #[tokio::test]
    async fn a_waiter_that_gives_up_loses_no_slot() {
        let slots = Slots::new(1, 1);
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
