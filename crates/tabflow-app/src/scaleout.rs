//! Scale-out: `tabflow worker`s sharing a PostgreSQL store execute shared runs' items
//! ([`tabflow_engine::executor::SharedPass`]) and keep the site's limits together
//! ([`tabflow_engine::executor::SiteGate`]). See DESIGN.md §7, "Scale-out on PostgreSQL".

use serde_json::{Value, json};
use tabflow_client::Gate;
use tabflow_engine::executor::{Engine, SharedPass, SiteGate};

use crate::error::{Error, Result};
use crate::{App, Cancel};

impl App {
    /// Sets the connected site's limits shared by every worker of this store: at most
    /// `per_second` calls a second and `in_flight` calls at once, all workers together.
    pub async fn set_shared_site_limit(&self, per_second: i64, in_flight: i64) -> Result<String> {
        // Keyed as the session will be, without signing in: the sign-in itself is gated.
        let site = self.site_key();
        self.store
            .set_site_limit(&site, per_second, in_flight)
            .await
            .map_err(|e| Error::store(e, "check the state store"))?;
        Ok(site)
    }

    /// Makes this process's sign-in, when it has not signed in yet, keep the limits shared
    /// in the store for the site as its later calls do ([`App::use_shared_site_limit`]).
    pub fn share_site_limits_as(&self, owner: &str) {
        let _ = self.limits_owner.set(owner.to_string());
    }

    /// The gate of the site's shared limits, when some are set in the store.
    pub(crate) async fn site_gate(&self, owner: &str) -> Result<Option<std::sync::Arc<dyn Gate>>> {
        let gate = SiteGate::of(&self.store, &self.site_key(), owner)
            .await
            .map_err(|e| Error::store(e, "check the state store"))?;
        Ok(gate.map(|g| std::sync::Arc::new(g) as std::sync::Arc<dyn Gate>))
    }

    /// Makes this process's calls to the connected site keep the limits shared in the store
    /// (when some are set for the site); answers whether there are.
    pub async fn use_shared_site_limit(&self, owner: &str) -> Result<bool> {
        let session = self.connect().await?;
        match self.site_gate(owner).await? {
            Some(gate) => {
                session.client.set_gate(gate);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// One pass over the shared runs of the store: this worker's share of each (until nothing
    /// is left to claim or `cancel` is set), finishing the runs whose items are all done.
    pub async fn work_shared(
        &self,
        owner: &str,
        actor: &str,
        lease: std::time::Duration,
        batch: usize,
        cancel: Cancel,
    ) -> Result<Vec<SharedPass>> {
        let runs = self.store.shared_runs().await.map_err(|e| Error::store(e, "check the state store"))?;
        if runs.is_empty() {
            return Ok(vec![]);
        }
        let session = self.connect().await?;
        let mut ctx = self.run_ctx(&session.client, actor, false, cancel.clone());
        ctx.opts.lease = lease;
        let engine = Engine {
            client: &ctx.client,
            store: &ctx.store,
            policy: ctx.policy.clone(),
            events: None,
            clock: ctx.clock.clone(),
        };
        let mut passes = vec![];
        for run_id in runs {
            if cancel.is_cancelled() {
                break;
            }
            match engine.work_shared(&run_id, &ctx.opts, owner, batch).await {
                Ok(mut pass) => {
                    if let Some(report) = pass.finished.as_mut() {
                        let w = crate::runs::attach_reports(&ctx.store, &ctx.data_dir, &ctx.redactor, report).await;
                        pass.errors.extend(w);
                    }
                    passes.push(pass);
                }
                Err(e) => passes.push(SharedPass { run_id, errors: vec![e.to_string()], ..Default::default() }),
            }
        }
        Ok(passes)
    }

    /// What the workers are doing: each running shared run's items (or rolling-back run's
    /// compensations) by kind, status and holder, and
    /// the site limits kept in the store.
    pub async fn worker_status(&self) -> Result<Value> {
        let rows = self.store.work_status().await.map_err(|e| Error::store(e, "check the state store"))?;
        let mut runs: std::collections::BTreeMap<String, Value> = Default::default();
        for (run, kind, status, owner, n) in rows {
            // A run's work is its items (`apply`) or, once a shared rollback is queued, its
            // compensations (`rollback`).
            let r = runs.entry(format!("{run}/{kind}")).or_insert_with(
                || json!({"run_id": run, "kind": kind, "pending": 0, "claimed": 0, "done": 0, "workers": {}}),
            );
            let prev = r[status.as_str()].as_i64().unwrap_or(0);
            r[status.as_str()] = json!(prev + n);
            if status == "claimed"
                && let Some(o) = owner
            {
                r["workers"][o] = json!(n);
            }
        }
        let limits = self.store.site_limits().await.map_err(|e| Error::store(e, "check the state store"))?;
        let now = chrono::Utc::now().timestamp_millis();
        let sites: Vec<Value> = limits
            .into_iter()
            .map(|(site, per_second, in_flight, paused_until_ms, busy)| {
                let paused = (paused_until_ms > now).then(|| {
                    chrono::DateTime::from_timestamp_millis(paused_until_ms).map(|t| t.to_rfc3339()).unwrap_or_default()
                });
                json!({"site": site, "per_second": per_second, "in_flight": in_flight, "slots_held": busy, "paused_until": paused})
            })
            .collect();
        Ok(json!({"store": self.store.location(), "runs": runs.into_values().collect::<Vec<_>>(), "sites": sites}))
    }
}
