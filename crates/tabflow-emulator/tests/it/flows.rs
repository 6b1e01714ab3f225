//! Tableau Prep flows: list (paging, filter, sort), get, update owner and project, tags,
//! permissions, delete, and what user and project deletion do to flows.

use tabflow_wire::xml;

use crate::util::*;

#[tokio::test]
async fn list_pages_filters_and_sorts_flows() {
    let emu = start_demo().await;
    let c = sign_in(&emu.url).await;
    let snap = emu.emulator.snapshot();
    let n = snap.flows.len();
    assert!(n >= 2, "the demo has flows");

    // Paging never loses or repeats a flow.
    let mut seen = std::collections::BTreeSet::new();
    for page in 1..=n.div_ceil(5) {
        let d = c.get_doc(&format!("flows?pageSize=5&pageNumber={page}")).await;
        assert_eq!(d.pagination.unwrap().total_available, n.to_string());
        for f in d.flows.unwrap().flow {
            assert!(f.project.as_ref().unwrap().name.is_some(), "TSC needs <project id name/>");
            assert!(f.owner.as_ref().unwrap().id.is_some());
            assert!(seen.insert(f.id.unwrap()));
        }
    }
    assert_eq!(seen.len(), n);

    let john = snap.users.iter().find(|u| u.name == "jsmith").unwrap();
    let d = c.get_doc("flows?filter=ownerName:eq:jsmith").await;
    let johns = d.flows.unwrap().flow;
    assert_eq!(johns.len(), 1);
    assert_eq!(johns[0].owner.as_ref().unwrap().id.as_deref(), Some(john.id.as_str()));
    let project = snap.projects.iter().find(|p| p.id == snap.flows[1].project_id).unwrap();
    let d = c.get_doc(&format!("flows?filter=projectName:eq:{}", project.name.replace(' ', "%20"))).await;
    let in_project = d.flows.unwrap().flow;
    let expected = snap.flows.iter().filter(|f| f.project_id == project.id).count();
    assert_eq!(in_project.len(), expected);

    let d = c.get_doc("flows?sort=name:desc&pageSize=1000").await;
    let names: Vec<String> = d.flows.unwrap().flow.into_iter().map(|f| f.name.unwrap()).collect();
    let mut sorted = names.clone();
    sorted.sort_by_key(|s| std::cmp::Reverse(s.to_lowercase()));
    assert_eq!(names, sorted);

    let (s, t) = c.get("flows?filter=hitsTotal:gt:3").await;
    assert_eq!((s, error_code(&t)), (400, "400065".to_string()), "{t}");
}

#[tokio::test]
async fn get_update_tag_permission_and_delete_a_flow() {
    let emu = start_demo().await;
    let c = sign_in(&emu.url).await;
    let snap = emu.emulator.snapshot();
    let flow = &snap.flows[0];
    let user = |name: &str| snap.users.iter().find(|u| u.name == name).unwrap().id.clone();

    let d = c.get_doc(&format!("flows/{}", flow.id)).await;
    assert_eq!(d.flow.unwrap().name.as_deref(), Some(flow.name.as_str()));
    let (s, t) = c.get("flows/00000000-0000-4000-8000-000000000000").await;
    assert_eq!((s, error_code(&t)), (404, "404004".to_string()), "{t}");

    // The owner, as TSC sends it: the unchanged project along with the new owner.
    let tom = user("tbaker");
    let body =
        format!(r#"<tsRequest><flow><project id="{}" /><owner id="{tom}" /></flow></tsRequest>"#, flow.project_id);
    let (s, t) = c.put(&format!("flows/{}", flow.id), &body).await;
    assert_eq!(s, 200, "{t}");
    assert_eq!(xml::parse_response(&t).unwrap().flow.unwrap().owner.unwrap().id, Some(tom.clone()));
    assert_eq!(emu.emulator.snapshot().flows[0].owner_id, tom);

    // An Explorer cannot own a flow; an unknown project or owner is 404; nothing changes.
    let doe = user("jdoe");
    let (s, t) = c
        .put(&format!("flows/{}", flow.id), &format!(r#"<tsRequest><flow><owner id="{doe}"/></flow></tsRequest>"#))
        .await;
    assert_eq!((s, error_code(&t)), (403, "403141".to_string()), "{t}");
    assert!(t.contains("Creator license"), "{t}");
    let (s, t) = c
        .put(
            &format!("flows/{}", flow.id),
            r#"<tsRequest><flow><project id="00000000-0000-4000-8000-000000000000"/></flow></tsRequest>"#,
        )
        .await;
    assert_eq!((s, error_code(&t)), (404, "404005".to_string()), "{t}");
    let (s, _) = c.put(&format!("flows/{}", flow.id), "<tsRequest><flow/></tsRequest>").await;
    assert_eq!(s, 400);
    assert_eq!(emu.emulator.snapshot().flows[0].owner_id, tom);

    // Move it.
    let archive = snap.projects.iter().find(|p| p.name == "Archive").unwrap();
    let (s, t) = c
        .put(
            &format!("flows/{}", flow.id),
            &format!(r#"<tsRequest><flow><project id="{}"/></flow></tsRequest>"#, archive.id),
        )
        .await;
    assert_eq!(s, 200, "{t}");
    assert_eq!(emu.emulator.snapshot().flows[0].project_id, archive.id);

    // A non-administrator may not change a flow's owner.
    let (s, t) = sign_in_body(
        &emu.url,
        r#"<tsRequest><credentials name="slee" password="tabflow"><site contentUrl="demo"/></credentials></tsRequest>"#
            .into(),
    )
    .await;
    assert_eq!(s, 200, "{t}");
    let token = xml::parse_response(&t).unwrap().credentials.unwrap().token.unwrap();
    // Not a second PAT sign-in: that would end `c`'s session.
    let sarah = Client { http: reqwest::Client::new(), url: c.url.clone(), token, site_id: c.site_id.clone() };
    let (s, t) = sarah
        .put(
            &format!("flows/{}", flow.id),
            &format!(r#"<tsRequest><flow><owner id="{}"/></flow></tsRequest>"#, user("slee")),
        )
        .await;
    assert_eq!(s, 403, "{t}");

    // Tags and permissions, as on other content.
    let (s, t) = c
        .put(&format!("flows/{}/tags", flow.id), r#"<tsRequest><tags><tag label="etl-reviewed"/></tags></tsRequest>"#)
        .await;
    assert_eq!(s, 200, "{t}");
    assert!(emu.emulator.snapshot().flows[0].tags.contains(&"etl-reviewed".to_string()));
    let (s, _) = c.delete(&format!("flows/{}/tags/etl-reviewed", flow.id)).await;
    assert_eq!(s, 204);
    let body = format!(
        r#"<tsRequest><permissions><granteeCapabilities><user id="{doe}"/><capabilities><capability name="Read" mode="Allow"/></capabilities></granteeCapabilities></permissions></tsRequest>"#
    );
    let (s, t) = c.put(&format!("flows/{}/permissions", flow.id), &body).await;
    assert_eq!(s, 200, "{t}");
    let p = c.get_doc(&format!("flows/{}/permissions", flow.id)).await.permissions.unwrap();
    assert_eq!(p.flow.unwrap().id.as_deref(), Some(flow.id.as_str()));
    assert_eq!(p.grantee_capabilities.len(), 1);
    let (s, _) = c.delete(&format!("flows/{}/permissions/users/{doe}/Read/Allow", flow.id)).await;
    assert_eq!(s, 204);

    let (s, _) = c.delete(&format!("flows/{}", flow.id)).await;
    assert_eq!(s, 204);
    assert!(!emu.emulator.snapshot().flows.iter().any(|f| f.id == flow.id));
    assert_eq!(c.get(&format!("flows/{}", flow.id)).await.0, 404);
}

#[tokio::test]
async fn a_flow_owner_owns_content_and_map_assets_to_moves_flows() {
    let emu = start_demo().await;
    let c = sign_in(&emu.url).await;
    // A new Creator who owns nothing but one flow.
    let (s, t) = c.post("users", r#"<tsRequest><user name="prepper" siteRole="Creator"/></tsRequest>"#).await;
    assert_eq!(s, 201, "{t}");
    let uid = xml::parse_response(&t).unwrap().user.unwrap().id.unwrap();
    let flow = emu.emulator.snapshot().flows[1].clone();
    let (s, t) = c
        .put(&format!("flows/{}", flow.id), &format!(r#"<tsRequest><flow><owner id="{uid}"/></flow></tsRequest>"#))
        .await;
    assert_eq!(s, 200, "{t}");
    let (s, t) = c.delete(&format!("users/{uid}")).await;
    assert_eq!((s, error_code(&t)), (409, "409003".to_string()), "a flow owner owns content: {t}");
    let admin = emu.emulator.snapshot().users.iter().find(|u| u.name == "admin").unwrap().id.clone();
    let (s, t) = c.delete(&format!("users/{uid}?mapAssetsTo={admin}")).await;
    assert_eq!(s, 204, "{t}");
    let after = emu.emulator.snapshot();
    assert_eq!(after.flows.iter().find(|f| f.id == flow.id).unwrap().owner_id, admin);
    assert!(after.check().is_ok());

    // Deleting a project deletes its flows.
    let project = flow.project_id.clone();
    let (s, t) = c.delete(&format!("projects/{project}")).await;
    assert_eq!(s, 204, "{t}");
    let after = emu.emulator.snapshot();
    assert!(!after.flows.iter().any(|f| f.project_id == project));
    assert!(after.check().is_ok());
}
