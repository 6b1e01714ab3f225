//! Approvals through the service: anyone (a planner, an LLM, an MCP tool call) may *request*
//! one; only an [`Approver`] — made by a front end that authenticated a person — can decide.
//! Expiry is measured on the service's clock.

use serde::Serialize;
use tabflow_engine::approval::{self, Approver, Decision, Grant, Missing, Selection};
use tabflow_engine::store::ApprovalRow;

use crate::App;
use crate::error::{Error, Result};

/// A recorded request for approval (stored with the plan's approvals, audited).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ApprovalRequest {
    pub id: String,
    pub plan_id: String,
    pub fingerprint: String,
    /// The (step, item) pairs asked for as `"s2/<item id>"` (`None` = all destructive items).
    pub items: Option<Vec<String>>,
    pub requested_by: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// The decision value approval rows of a request carry; never counted as an approval.
pub const REQUEST: &str = "request";

impl App {
    /// Records that `actor` asks for approval of (part of) a stored plan. Grants nothing.
    pub async fn request_approval(&self, plan_id: &str, selection: Selection, actor: &str) -> Result<ApprovalRequest> {
        let request = self.record_approval_request(plan_id, selection, actor).await?;
        // The webhook hears of it (event `plan-awaiting-approval`) when configured for it.
        if self.delivery.wants("plan-awaiting-approval")
            && let Ok(plan) = self.get_plan(plan_id).await
        {
            let _ = self.tell_approvers(&plan, &format!("{actor} asked for an approval"), None).await;
        }
        Ok(request)
    }

    /// Records and audits an approval request without telling anyone (a schedule or an event
    /// from Tableau tells the approvers itself, with where the plan came from).
    pub(crate) async fn record_approval_request(
        &self,
        plan_id: &str,
        selection: Selection,
        actor: &str,
    ) -> Result<ApprovalRequest> {
        let plan = self.get_plan(plan_id).await?;
        // The same refusal an approval gets: a pair the plan does not hold is named, not ignored.
        if let Selection::Pairs(pairs) = &selection
            && let Some((step, item)) =
                pairs.iter().find(|(s, i)| !plan.destructive_items().contains(&(s.as_str(), i.as_str())))
        {
            return Err(Error::usage(
                format!("{} is not a destructive (step, item) pair of plan {plan_id}", approval::pair_key(step, item)),
                "ask for step ids (s2) or step/item pairs (s2/ITEM) listed by `tabflow plan --json`",
            ));
        }
        let items = selection.stored();
        let now = self.clock.now();
        let row = ApprovalRow {
            id: tabflow_engine::plan::new_id("ar", now),
            plan_id: plan.id.clone(),
            fingerprint: plan.fingerprint.clone(),
            decision: REQUEST.into(),
            items: items.clone(),
            approver: actor.to_string(),
            channel: "request".into(),
            created_at: now,
            expires_at: tabflow_site::time::hours_after(now, self.policy.approval_ttl_hours.max(1)),
            used_by_run: None,
        };
        self.store.insert_approval(&row).await.map_err(|e| Error::store(e, "check the state store"))?;
        tabflow_engine::audit::append(
            &self.store,
            tabflow_engine::audit::NewRecord {
                actor: actor.to_string(),
                action: "approval.requested".into(),
                plan_id: Some(plan.id.clone()),
                after: Some(serde_json::json!({"request": row.id, "items": items, "fingerprint": plan.fingerprint})),
                outcome: "recorded".into(),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| Error::store(e, "check the state store"))?;
        Ok(ApprovalRequest {
            id: row.id,
            plan_id: row.plan_id,
            fingerprint: row.fingerprint,
            items,
            requested_by: row.approver,
            created_at: now,
        })
    }

    /// The approval requests recorded for a plan, oldest first.
    pub async fn approval_requests(&self, plan_id: &str) -> Result<Vec<ApprovalRequest>> {
        let rows = self.store.approvals_for(plan_id).await.map_err(|e| Error::store(e, "check the state store"))?;
        Ok(rows
            .into_iter()
            .filter(|r| r.decision == REQUEST)
            .map(|r| ApprovalRequest {
                id: r.id,
                plan_id: r.plan_id,
                fingerprint: r.fingerprint,
                items: r.items,
                requested_by: r.approver,
                created_at: r.created_at,
            })
            .collect())
    }

    /// Records a person's decision on a plan (validated against the live site unless this
    /// service validated it already), bound to its fingerprint and the selected (step, item)
    /// pairs (a pair the plan does not hold is refused),
    /// expiring after the policy's `approval_ttl_hours` on the service's clock.
    pub async fn approve(
        &self,
        approver: &Approver,
        plan_id: &str,
        decision: Decision,
        selection: Selection,
    ) -> Result<ApprovalRow> {
        let vp = self.validated_plan(plan_id).await?;
        self.check_not_requester(approver, plan_id).await?;
        let row = approval::decide_at(
            &self.store,
            &vp,
            approver,
            decision,
            selection,
            self.policy.approval_ttl_hours,
            self.clock.now(),
        )
        .await
        .map_err(|e| {
            Error::usage(
                e.to_string(),
                "approve step ids (s2) or step/item pairs (s2/ITEM) listed by `tabflow plan --json`",
            )
        })?;
        self.audit_rollback_decision(vp.plan(), approver, &row).await?;
        Ok(row)
    }

    /// Whether a stored plan may run now: the grant its approvals give, or what is missing.
    pub async fn approval_status(&self, plan_id: &str) -> Result<std::result::Result<Grant, Missing>> {
        let plan = match self.cached(plan_id) {
            Some(v) => v.into_plan(),
            None => self.get_plan(plan_id).await?,
        };
        approval::grant_at(&self.store, &plan, self.policy.required_approvers, self.clock.now())
            .await
            .map_err(|e| Error::store(e, "check the state store"))
    }
}
