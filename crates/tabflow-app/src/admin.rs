//! The store's housekeeping a front end offers besides plans and runs: the notification
//! outbox (and delivering again what did not go out), what was learned from earlier choices,
//! and the stored recurring reviews.

use tabflow_engine::notify::{self, Tally};
use tabflow_engine::store::{LearningRow, OutboxRow, ScheduleRow};

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

    /// What was learned from earlier choices, newest first.
    pub async fn learning(&self) -> Result<Vec<LearningRow>> {
        self.store.learning().await.map_err(|e| Error::store(e, "check the state store"))
    }

    /// Forgets everything learned; answers how many records were dropped.
    pub async fn reset_learning(&self) -> Result<u64> {
        self.store.reset_learning().await.map_err(|e| Error::store(e, "check the state store"))
    }

    /// The stored recurring reviews.
    pub async fn schedules(&self) -> Result<Vec<ScheduleRow>> {
        self.store.schedules().await.map_err(|e| Error::store(e, "check the state store"))
    }

    /// Forgets one recurring review; a usage error when there is none with that id.
    pub async fn remove_schedule(&self, id: &str) -> Result<()> {
        let removed = self.store.remove_schedule(id).await.map_err(|e| Error::store(e, "check the state store"))?;
        if !removed {
            return Err(Error::usage(format!("no schedule '{id}'"), "see tabflow schedule list"));
        }
        Ok(())
    }
}
