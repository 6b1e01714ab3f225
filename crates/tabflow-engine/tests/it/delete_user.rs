//! The account deletion op against the emulator over real HTTP: it refuses while the account
//! owns anything (checked at the moment of the call, not only at plan time), deletes with
//! `mapAssetsTo` otherwise, and its undo re-creates the account with what it had.

use serde_json::{Value, json};
use tabflow_client::{Capability, ContentKind, Grantee};
use tabflow_engine::ops::{self, Image, Op};
use tabflow_site::Mode;
use tabflow_wire::ids::{UserId, WorkbookId};

use crate::support::demo;

fn delete_op(user: &tabflow_site::User, to: &str, grants_on: Value) -> Op {
    Op::DeleteUser {
        user: json!({"name": user.name, "full_name": user.full_name, "email": user.email, "site_role": user.site_role, "grants_on": grants_on}),
        map_assets_to: to.into(),
    }
}

#[tokio::test]
async fn an_account_that_owns_content_is_never_deleted() {
    let (_emu, client, site) = demo().await;
    let owner = site.users.iter().find(|u| u.name == "jsmith").unwrap();
    let admin = site.users.iter().find(|u| u.name == "admin").unwrap();
    let op = delete_op(owner, &admin.id, json!([]));
    let err = ops::apply(&client, "user", &owner.id, &op, None).await.unwrap_err().to_string();
    assert!(err.contains("still owns") && err.contains("never deletes"), "{err}");
    let w = site.workbooks.iter().find(|w| w.owner_id == owner.id).unwrap();
    let n = site.workbooks.iter().filter(|w| w.owner_id == owner.id).count()
        + site.datasources.iter().filter(|d| d.owner_id == owner.id).count()
        + site.flows.iter().filter(|f| f.owner_id == owner.id).count()
        + site.projects.iter().filter(|p| p.owner_id == owner.id).count();
    assert!(err.contains(&format!("still owns {n} (workbook '")), "counts and names what it owns: {err}");
    // Still there, still the owner.
    assert!(client.user(&UserId::new(&owner.id)).await.is_ok());
    let now = client.workbook(&WorkbookId::new(&w.id)).await.unwrap();
    assert_eq!(now.owner.and_then(|o| o.id).as_deref(), Some(owner.id.as_str()));
}

#[tokio::test]
async fn a_deleted_account_is_recreated_with_its_details_grants_subscriptions_and_favorites() {
    let (_emu, client, site) = demo().await;
    let admin = site.users.iter().find(|u| u.name == "admin").unwrap();
    // Every demo user owns something: a contractor who owns nothing joins first.
    let x = tabflow_client::types::User {
        name: Some("contractor7".into()),
        site_role: Some("Explorer".into()),
        full_name: Some("Casey Contractor".into()),
        email: Some("casey@example.com".into()),
        ..Default::default()
    };
    let created = client.add_user_like(&x).await.unwrap();
    let user = &tabflow_site::User {
        id: created.id.unwrap(),
        name: "contractor7".into(),
        full_name: "Casey Contractor".into(),
        email: "casey@example.com".into(),
        site_role: "Explorer".into(),
        last_login: None,
        auth_setting: None,
    };
    let uid = UserId::new(&user.id);
    // Something of each kind to lose: a grant on a workbook, a subscription, a favorite.
    let w = &site.workbooks[0];
    client
        .add_permissions(ContentKind::Workbook, &w.id, &Grantee::User(user.id.clone()), &[("Read".into(), Mode::Allow)])
        .await
        .unwrap();
    client.create_subscription(&uid, "workbook", &w.id, "Monday numbers", "Weekly").await.unwrap();
    client.add_favorite(&uid, "Mine", "workbook", &w.id).await.unwrap();

    let op = delete_op(user, &admin.id, json!([{"type": "workbook", "id": w.id}]));
    let mut before = ops::read_image(&client, "user", &user.id, false).await.unwrap();
    ops::fill_account(&client, &mut before, std::slice::from_ref(&op)).await.unwrap();
    assert_eq!(
        before.subscriptions.as_ref().unwrap().len(),
        1 + site.subscriptions.iter().filter(|s| s.user_id == user.id).count()
    );
    assert_eq!(before.grants.as_ref().unwrap().len(), 1, "{:?}", before.grants);
    assert!(!before.favorites.as_ref().unwrap().is_empty());

    ops::apply(&client, "user", &user.id, &op, None).await.unwrap();
    assert_eq!(client.user(&uid).await.unwrap_err().status(), Some(404));
    let after: Image = ops::read_image(&client, "user", &user.id, false).await.unwrap();
    assert_eq!(ops::classify(&op, &after, None), ops::State::After);

    let Op::DeleteUser { user: desc, .. } = &op else { unreachable!() };
    let new = ops::recreate_user(&client, &before, desc).await.unwrap();
    assert_ne!(new, user.id);
    // A second undo (a rollback interrupted after the re-creation) adopts the same account.
    assert_eq!(ops::recreate_user(&client, &before, desc).await.unwrap(), new);
    let back = client.user(&UserId::new(&new)).await.unwrap();
    assert_eq!(back.name.as_deref(), Some(user.name.as_str()));
    assert_eq!(back.full_name.as_deref(), Some(user.full_name.as_str()));
    assert_eq!(back.email.as_deref(), Some(user.email.as_str()));
    assert_eq!(back.site_role.as_deref(), Some(user.site_role.as_str()));
    let mut again = ops::read_image(&client, "user", &new, false).await.unwrap();
    ops::fill_account(&client, &mut again, std::slice::from_ref(&op)).await.unwrap();
    let strip_ids = |v: &Option<Vec<Value>>| {
        let mut out: Vec<Value> = v
            .iter()
            .flatten()
            .map(|s| {
                let mut s = s.clone();
                s.as_object_mut().map(|o| o.remove("id"));
                s.as_object_mut().map(|o| o.remove("user_id"));
                s
            })
            .collect();
        out.sort_by_key(|x| x.to_string());
        out
    };
    assert_eq!(strip_ids(&again.subscriptions), strip_ids(&before.subscriptions), "subscriptions, once each");
    assert_eq!(again.favorites, before.favorites);
    let caps = client.permissions(ContentKind::Workbook, &w.id).await.unwrap();
    assert!(caps.contains(&Capability { grantee: Grantee::User(new.clone()), name: "Read".into(), mode: Mode::Allow }));
    // Every user is in All Users again.
    let groups = client.user_groups(&UserId::new(&new)).collect().await.unwrap();
    assert!(groups.iter().any(|g| g.name.as_deref() == Some("All Users")), "{groups:?}");
}
