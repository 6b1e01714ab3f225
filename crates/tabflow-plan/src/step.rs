//! Step kinds: what a step of a plan does, as one enum instead of strings matched in the
//! planner, the engine and the CLI.
//!
//! A step's effect class (`read`, `write`, `destructive`) and rollback class (`exact`,
//! `snapshot`, `lossy`, `none`) are not a matter of opinion: they follow from its kind and
//! its changes ([`StepKind::derive`]). The planner sets them through [`crate::Step::new`],
//! and a plan file or the validator refuses a step whose stored classes differ from the
//! derived ones — the file is never trusted for them (DESIGN.md §2.4).

use serde::{Deserialize, Serialize};

use crate::plan::{Change, Effect, Item, RollbackClass};

/// What a step does. Serialized as the kebab-case names plans have always used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepKind {
    // Reads: they list what the plan found and change nothing.
    /// Workbooks not viewed since a cutoff (archive, staged delete).
    FindStaleWorkbooks,
    /// Datasources not accessed since a cutoff.
    FindStaleDatasources,
    /// Groups of duplicate datasources (consolidation).
    FindDuplicateDatasources,
    /// Deprecated datasources and the workbooks using them (migration).
    FindDeprecatedDatasources,
    /// What a departing user owns, subscribes to and is granted (offboarding).
    InventoryUser,
    /// Effective permissions and findings (permission audit).
    AuditPermissions,
    /// A Phase-1 question answered from the site read.
    AnswerQuery,
    /// Users with no sign-in for a while, what they own, and who is kept (license reclamation).
    FindInactiveUsers,
    /// Subscriptions of unlicensed users, to archived content, or suspended (cleanup).
    FindSubscriptions,
    /// Extract refresh tasks with their schedules, failures and the days since their
    /// content's last view; the recommendations (refresh health review).
    FindExtractRefreshes,
    /// Who is told after the run (the outbox sends; nothing on the site changes).
    NotifyOwners,
    /// A recurring review stored when the plan is applied (in tabflow's store, not the site).
    ScheduleReview,
    // Writes: they add to the site and are undone exactly or from a saved copy.
    /// A project the plan needs (the archive or quarantine project).
    CreateProject,
    /// Workbooks republished against another published datasource.
    RepointWorkbooks,
    // Destructive: they move, re-own, revoke or delete, and need an approval.
    /// Workbooks moved to the archive project and tagged.
    ArchiveWorkbooks,
    /// Datasources moved to the archive project and tagged.
    ArchiveDatasources,
    /// Workbooks moved to another project.
    MoveWorkbooks,
    /// Content moved to the quarantine project; deleted for real after the grace period.
    StageDelete,
    /// Content handed to new owners.
    TransferOwnership,
    /// A user's groups, explicit grants and licence taken away.
    RemoveAccess,
    /// Permission rules or project locking changed.
    UpdatePermissions,
    /// A user account deleted (an undo re-creates it under a new id).
    DeleteUser,
    /// Users' site roles lowered (license reclamation); undone exactly.
    ChangeSiteRoles,
    /// Subscriptions deleted (an undo re-creates each one under a new id).
    RemoveSubscriptions,
    /// Extract refresh tasks deleted (an undo re-creates each one under a new id).
    RemoveExtractRefreshes,
    /// Extract refresh tasks given another schedule of their own (Cloud); undone exactly.
    RescheduleExtractRefreshes,
    /// Extract refresh tasks moved to another Server schedule: re-created there (a new id)
    /// and the old task deleted; an undo re-creates each on its old schedule (another new id)
    /// and deletes the moved one.
    MoveExtractRefreshes,
    /// Server schedules suspended or resumed (server-wide: every site's refreshes on them);
    /// undone exactly.
    SetScheduleState,
    /// The compensations of one step of an earlier run (a rollback plan, whose
    /// `rollback_of` names the run): its items are the ones that run changed, its changes
    /// put them back. Destructive: a rollback is approved like any destructive plan.
    Compensate,
}

impl StepKind {
    /// Every kind, reads first.
    pub const ALL: [StepKind; 29] = [
        StepKind::FindStaleWorkbooks,
        StepKind::FindStaleDatasources,
        StepKind::FindDuplicateDatasources,
        StepKind::FindDeprecatedDatasources,
        StepKind::InventoryUser,
        StepKind::AuditPermissions,
        StepKind::AnswerQuery,
        StepKind::FindInactiveUsers,
        StepKind::FindSubscriptions,
        StepKind::FindExtractRefreshes,
        StepKind::NotifyOwners,
        StepKind::ScheduleReview,
        StepKind::CreateProject,
        StepKind::RepointWorkbooks,
        StepKind::ArchiveWorkbooks,
        StepKind::ArchiveDatasources,
        StepKind::MoveWorkbooks,
        StepKind::StageDelete,
        StepKind::TransferOwnership,
        StepKind::RemoveAccess,
        StepKind::UpdatePermissions,
        StepKind::DeleteUser,
        StepKind::ChangeSiteRoles,
        StepKind::RemoveSubscriptions,
        StepKind::RemoveExtractRefreshes,
        StepKind::RescheduleExtractRefreshes,
        StepKind::MoveExtractRefreshes,
        StepKind::SetScheduleState,
        StepKind::Compensate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StepKind::FindStaleWorkbooks => "find-stale-workbooks",
            StepKind::FindStaleDatasources => "find-stale-datasources",
            StepKind::FindDuplicateDatasources => "find-duplicate-datasources",
            StepKind::FindDeprecatedDatasources => "find-deprecated-datasources",
            StepKind::InventoryUser => "inventory-user",
            StepKind::AuditPermissions => "audit-permissions",
            StepKind::AnswerQuery => "answer-query",
            StepKind::NotifyOwners => "notify-owners",
            StepKind::ScheduleReview => "schedule-review",
            StepKind::CreateProject => "create-project",
            StepKind::RepointWorkbooks => "repoint-workbooks",
            StepKind::ArchiveWorkbooks => "archive-workbooks",
            StepKind::ArchiveDatasources => "archive-datasources",
            StepKind::MoveWorkbooks => "move-workbooks",
            StepKind::StageDelete => "stage-delete",
            StepKind::TransferOwnership => "transfer-ownership",
            StepKind::RemoveAccess => "remove-access",
            StepKind::UpdatePermissions => "update-permissions",
            StepKind::DeleteUser => "delete-user",
            StepKind::FindInactiveUsers => "find-inactive-users",
            StepKind::ChangeSiteRoles => "change-site-roles",
            StepKind::FindSubscriptions => "find-subscriptions",
            StepKind::RemoveSubscriptions => "remove-subscriptions",
            StepKind::FindExtractRefreshes => "find-extract-refreshes",
            StepKind::RemoveExtractRefreshes => "remove-extract-refreshes",
            StepKind::RescheduleExtractRefreshes => "reschedule-extract-refreshes",
            StepKind::MoveExtractRefreshes => "move-extract-refreshes",
            StepKind::SetScheduleState => "set-schedule-state",
            StepKind::Compensate => "compensate",
        }
    }

    /// Whether steps of this kind only read: they may list items but no changes.
    pub fn is_read(self) -> bool {
        matches!(
            self,
            StepKind::FindStaleWorkbooks
                | StepKind::FindStaleDatasources
                | StepKind::FindDuplicateDatasources
                | StepKind::FindDeprecatedDatasources
                | StepKind::InventoryUser
                | StepKind::AuditPermissions
                | StepKind::AnswerQuery
                | StepKind::FindInactiveUsers
                | StepKind::FindSubscriptions
                | StepKind::FindExtractRefreshes
                | StepKind::NotifyOwners
                | StepKind::ScheduleReview
        )
    }

    /// The effect and rollback class of a step of this kind with these changes (`items` are
    /// the step's items, whose types tell what a change of `exists` means). Reads are `read`
    /// and `exact` (nothing to undo). Otherwise the kind gives the least it is, and each
    /// change can only make it more: creating a project is a write undone exactly, a repoint
    /// a write undone from the saved file, deleting a subscription is destructive and
    /// undone from its description (a new id), deleting an account is destructive and undone
    /// only in part, anything else — moves, owners, tags,
    /// permissions, site roles, groups — is destructive and undone exactly.
    pub fn derive(self, changes: &[Change], items: &[Item]) -> (Effect, RollbackClass) {
        if self.is_read() {
            return (Effect::Read, RollbackClass::Exact);
        }
        let least = match self {
            StepKind::CreateProject => (Effect::Write, RollbackClass::Exact),
            StepKind::RepointWorkbooks => (Effect::Write, RollbackClass::Snapshot),
            StepKind::DeleteUser => (Effect::Destructive, RollbackClass::Lossy),
            StepKind::RemoveSubscriptions | StepKind::RemoveExtractRefreshes | StepKind::MoveExtractRefreshes => {
                (Effect::Destructive, RollbackClass::Snapshot)
            }
            _ => (Effect::Destructive, RollbackClass::Exact),
        };
        // The first item of each id names its type (a lookup, not a scan per change).
        let mut kinds: std::collections::HashMap<&str, &str> = std::collections::HashMap::with_capacity(items.len());
        for i in items {
            kinds.entry(i.id.as_str()).or_insert(i.kind.as_str());
        }
        changes.iter().fold(least, |(effect, rollback), c| {
            let item = kinds.get(c.item.as_str()).copied().unwrap_or_default();
            let (e, r) = change_class(item, c);
            (effect.max(e), rollback.max(r))
        })
    }
}

/// The effect and rollback class of one change of an item of type `item`.
fn change_class(item: &str, c: &Change) -> (Effect, RollbackClass) {
    let created = c.before.is_null() || c.before == serde_json::Value::Bool(false);
    match (item, c.field.as_str()) {
        ("project", "exists") if created => (Effect::Write, RollbackClass::Exact),
        (_, "datasource") => (Effect::Write, RollbackClass::Snapshot),
        // A subscription comes back whole from its description (user, content, subject,
        // schedule) under a new id; an account loses what was not read before its deletion.
        ("subscription", "exists") => (Effect::Destructive, RollbackClass::Snapshot),
        // An extract refresh task comes back from its description (content, schedule, type)
        // under a new id.
        ("extract-refresh", "exists") => (Effect::Destructive, RollbackClass::Snapshot),
        // A task moved to another Server schedule is a new task there; its undo another one
        // on the old schedule.
        ("extract-refresh", "schedule_id") => (Effect::Destructive, RollbackClass::Snapshot),
        ("user", "exists") => (Effect::Destructive, RollbackClass::Lossy),
        _ => (Effect::Destructive, RollbackClass::Exact),
    }
}

impl std::fmt::Display for StepKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn change(item: &str, field: &str, before: Value, after: Value) -> Change {
        Change {
            item: item.into(),
            field: field.into(),
            before,
            after,
            before_id: None,
            after_id: None,
            after_ref: None,
        }
    }

    fn item(kind: &str, id: &str) -> Item {
        Item { kind: kind.into(), id: id.into(), name: id.into(), ..Item::default() }
    }

    #[test]
    fn kinds_serialize_as_the_names_plans_use() {
        for k in StepKind::ALL {
            assert_eq!(serde_json::to_value(k).unwrap(), json!(k.as_str()));
            assert_eq!(serde_json::from_value::<StepKind>(json!(k.as_str())).unwrap(), k);
        }
        assert!(serde_json::from_value::<StepKind>(json!("delete-everything")).is_err());
    }

    #[test]
    fn classes_follow_from_the_kind_and_the_changes() {
        use Effect::*;
        use RollbackClass::*;
        let wb = [item("workbook", "w")];
        let check = |kind: StepKind, changes: &[Change], items: &[Item], want: (Effect, RollbackClass)| {
            assert_eq!(kind.derive(changes, items), want, "{kind}");
        };
        // What the planner makes (the classes plans have always had).
        for k in StepKind::ALL.iter().filter(|k| k.is_read()) {
            check(*k, &[], &wb, (Read, Exact));
        }
        let moved = change("w", "project", json!("A"), json!("B"));
        let tagged = change("w", "tags", json!([]), json!(["x"]));
        for k in [StepKind::ArchiveWorkbooks, StepKind::MoveWorkbooks, StepKind::StageDelete] {
            check(k, &[moved.clone(), tagged.clone()], &wb, (Destructive, Exact));
        }
        let created = change("p", "exists", Value::Null, json!({"name": "Archive"}));
        check(StepKind::CreateProject, std::slice::from_ref(&created), &[item("project", "p")], (Write, Exact));
        let repoint = change("w", "datasource", json!({}), json!({}));
        check(StepKind::RepointWorkbooks, std::slice::from_ref(&repoint), &wb, (Write, Snapshot));
        let users = [item("user", "u")];
        let deleted = change("u", "exists", json!({"name": "jsmith"}), Value::Null);
        check(StepKind::DeleteUser, std::slice::from_ref(&deleted), &users, (Destructive, Lossy));
        let role = change("u", "site_role", json!("Creator"), json!("Unlicensed"));
        check(StepKind::RemoveAccess, std::slice::from_ref(&role), &users, (Destructive, Exact));
        // Refresh health: a schedule's state is undone exactly; a task moved to another
        // Server schedule comes back as a new task.
        let suspended = change("s", "state", json!("Active"), json!("Suspended"));
        check(StepKind::SetScheduleState, &[suspended], &[item("schedule", "s")], (Destructive, Exact));
        let task = [item("extract-refresh", "t")];
        let moved_task = change("t", "schedule_id", json!({"schedule_id": "a"}), json!({"schedule_id": "b"}));
        check(StepKind::MoveExtractRefreshes, std::slice::from_ref(&moved_task), &task, (Destructive, Snapshot));
        check(StepKind::Compensate, &[moved_task], &task, (Destructive, Snapshot));
        // The changes can only make a step more than its kind says, never less.
        check(
            StepKind::CreateProject,
            &[created, moved.clone()],
            &[item("project", "p"), item("workbook", "w")],
            (Destructive, Exact),
        );
        check(StepKind::TransferOwnership, &[deleted], &users, (Destructive, Lossy));
        check(StepKind::ArchiveWorkbooks, &[moved, repoint], &wb, (Destructive, Snapshot));
        check(StepKind::TransferOwnership, &[], &[], (Destructive, Exact));
    }
}
