//! Approvals against a real store: the terminal counts as one approver whatever name it
//! claims, a second approver must be authenticated (an API token of the approver role), and
//! several approvers' (step, item) pairs intersect.

use std::collections::BTreeSet;

use serde_json::Value;
use tabflow_engine::approval::{self, Approver, Decision, Missing, Selection};
use tabflow_engine::plan::{Change, Item, Plan, SiteRef, Step, StepKind};
use tabflow_engine::{Facts, Policy, Store, ValidatedPlan, validate};

/// One workbook moved to another project (s1) and tagged (s2): the same item in two
/// destructive steps.
fn plan(store: &Store) -> ValidatedPlan {
    let site = tabflow_site::generate::demo();
    let w = &site.workbooks[0];
    let to = site.projects.iter().find(|p| p.id != w.project_id && p.parent_id.is_none()).unwrap();
    let site_ref =
        SiteRef { server: "https://t.example.com".into(), content_url: "demo".into(), id: site.site.id.clone() };
    let mut p = Plan::draft("move and tag", site_ref, vec![], site.now);
    let item = Item { kind: "workbook".into(), id: w.id.clone(), name: w.name.clone(), ..Item::default() };
    let change = |field: &str, before: Value, after: Value, ids: Option<(&str, &str)>| Change {
        item: w.id.clone(),
        field: field.into(),
        before,
        after,
        before_id: ids.map(|i| i.0.to_string()),
        after_id: ids.map(|i| i.1.to_string()),
        after_ref: None,
    };
    p.steps.push(Step::new(
        "s1".into(),
        StepKind::MoveWorkbooks,
        "move".into(),
        vec![],
        vec![item.clone()],
        vec![change("project", Value::Null, Value::Null, Some((&w.project_id, &to.id)))],
        Value::Null,
    ));
    let mut tags = w.tags.clone();
    tags.push("reviewed".into());
    p.steps.push(Step::new(
        "s2".into(),
        StepKind::ArchiveWorkbooks,
        "tag".into(),
        vec!["s1".into()],
        vec![item],
        vec![change("tags", serde_json::json!(w.tags), serde_json::json!(tags), None)],
        Value::Null,
    ));
    let admin = site.users.iter().find(|u| u.site_role.starts_with("SiteAdministrator")).unwrap();
    let policy = Policy { max_items_per_destructive_step: usize::MAX, ..Policy::default() };
    validate(p, &Facts::from_site(&site, &admin.name), &policy, store.plan_key())
        .unwrap_or_else(|p| panic!("{:?}", p.validation.findings))
}

#[tokio::test]
async fn the_terminal_is_one_approver_whatever_name_it_claims() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("t.db")).await.unwrap();
    let vp = plan(&store);
    for name in ["alice", "bob", "carol"] {
        approval::decide(&store, &vp, &Approver::terminal(name), Decision::Approve, Selection::All, 24).await.unwrap();
    }
    match approval::grant_for(&store, &vp, 2).await.unwrap() {
        Err(Missing::NeedsAuthenticatedApprover { need: 2, terminal_names }) => {
            assert_eq!(terminal_names, vec!["alice", "bob", "carol"]);
        }
        other => panic!("three names at one terminal made {other:?}"),
    }
    // With one approver needed, the terminal is enough.
    assert!(approval::grant_for(&store, &vp, 1).await.unwrap().is_ok());

    // An authenticated approver is a second one; the run gets the pairs both approved.
    let w = &vp.plan().steps[0].items[0].id;
    let only_move = Selection::parse(vp.plan(), "s1").unwrap();
    approval::decide(&store, &vp, &Approver::api_token("reviewer-token", false), Decision::Approve, only_move, 24)
        .await
        .unwrap();
    let grant = approval::grant_for(&store, &vp, 2).await.unwrap().unwrap();
    assert_eq!(grant.approvers.len(), 2, "{:?}", grant.approvers);
    assert_eq!(grant.items, Some(BTreeSet::from([format!("s1/{w}")])), "the tag step (s2) was not approved by both");
    store.close().await;
}

#[tokio::test]
async fn a_pair_the_plan_does_not_hold_is_refused_and_nothing_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("t.db")).await.unwrap();
    let vp = plan(&store);
    let w = vp.plan().steps[0].items[0].id.clone();
    // A bare id changed by two destructive steps is ambiguous.
    let e = Selection::parse(vp.plan(), &w).unwrap_err();
    assert!(e.message.contains("steps s1 and s2") && e.fix.contains(&format!("s1/{w} or s2/{w}")), "{e:?}");
    let forged = Selection::Pairs(BTreeSet::from([("s1".to_string(), "w-elsewhere".to_string())]));
    let e =
        approval::decide(&store, &vp, &Approver::terminal("alice"), Decision::Approve, forged, 24).await.unwrap_err();
    assert!(e.to_string().contains("s1/w-elsewhere"), "{e}");
    assert!(store.approvals_for(&vp.plan().id).await.unwrap().is_empty());
    store.close().await;
}
