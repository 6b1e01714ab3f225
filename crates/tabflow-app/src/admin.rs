//! The store's housekeeping a front end offers besides plans and runs: the notification
//! outbox (and delivering again what did not go out), what was learned from earlier choices,
//! and the stored recurring reviews.

use tabflow_engine::notify::{self, Tally};
use tabflow_engine::store::{LearningRow, OutboxRow};

use crate::App;
use crate::error::{Error, Result};

impl App {
    /// The notifications runs wrote (sent, dry or failed), newest first; only `run`'s if given.
    pub async fn outbox(&self, run: Option<&str>) -> Result<Vec<OutboxRow>> {
        self.store.outbox(run).await.map_err(|e| Error::store(e, "check the state store"))
    }

    /// Delivers again the `failed` and `dry` messages (only `run`'s if given) with the
    /// service's delivery settings; channels that already took a message are not used again.
    pub async fn retry_outbox(&self, run: Option<&str>) -> Result<Tally> {
        notify::retry(&self.store, run, &self.delivery).await.map_err(|e| Error::store(e, "check the state store"))
    }

    /// Delivers one message of the outbox again (`tabflow outbox retry --id`); refused when
    /// there is no such message or it is not one to retry.
    pub async fn retry_outbox_message(&self, id: i64) -> Result<Tally> {
        match notify::retry_one(&self.store, id, &self.delivery)
            .await
            .map_err(|e| Error::store(e, "check the state store"))?
        {
            Some(t) => Ok(t),
            None => Err(Error::usage(
                format!("outbox message {id} is not one to retry (no such message, or it was sent)"),
                "see tabflow outbox list --failed",
            )),
        }
    }

    /// What was learned from earlier choices, newest first.
    pub async fn learning(&self) -> Result<Vec<LearningRow>> {
        self.store.learning().await.map_err(|e| Error::store(e, "check the state store"))
    }

    /// Forgets everything learned; answers how many records were dropped.
    pub async fn reset_learning(&self) -> Result<u64> {
        self.store.reset_learning().await.map_err(|e| Error::store(e, "check the state store"))
    }
}
