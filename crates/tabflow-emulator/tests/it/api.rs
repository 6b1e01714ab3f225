use std::collections::HashSet;

use tabflow_wire::xml;

use crate::util::*;

#[tokio::test]
async fn server_info_needs_no_auth_and_names_the_version() {
    let emu = start_demo().await;
    let r = reqwest::get(format!("{}/api/2.4/serverInfo", emu.url)).await.unwrap();
    assert_eq!(r.status(), 200);
    let doc = xml::parse_response(&r.text().await.unwrap()).unwrap();
    assert_eq!(doc.server_info.unwrap().rest_api_version, tabflow_wire::API_VERSION);
}

#[tokio::test]
async fn sign_in_variants_and_failures() {
    let emu = start_demo().await;
    // PAT
    sign_in(&emu.url).await;
    // username/password
    let (s, t) = sign_in_body(
        &emu.url,
        r#"<tsRequest><credentials name="admin" password="tabflow"><site contentUrl="demo"/></credentials></tsRequest>"#.into(),
    )
    .await;
    assert_eq!(s, 200, "{t}");
    // wrong secret, wrong password, wrong site: 401001 and no session
    for body in [
        pat_body("tabflow", "nope", "demo"),
        r#"<tsRequest><credentials name="admin" password="x"><site contentUrl="demo"/></credentials></tsRequest>"#
            .into(),
        pat_body("tabflow", "tabflow", "elsewhere"),
    ] {
        let (s, t) = sign_in_body(&emu.url, body).await;
        assert_eq!((s, error_code(&t)), (401, "401001".to_string()), "{t}");
    }
    // malformed XML: 400000
    let (s, t) = sign_in_body(&emu.url, "<tsRequest><credentials".into()).await;
    assert_eq!((s, error_code(&t)), (400, "400000".to_string()));
}

#[tokio::test]
async fn second_pat_sign_in_displaces_the_first_session() {
    let emu = start_demo().await;
    let first = sign_in(&emu.url).await;
    assert_eq!(first.get("workbooks?pageSize=1").await.0, 200);
    let second = sign_in(&emu.url).await;
    let (s, t) = first.get("workbooks?pageSize=1").await;
    assert_eq!((s, error_code(&t)), (401, "401002".to_string()));
    assert_eq!(second.get("workbooks?pageSize=1").await.0, 200);
    // password sessions do not displace each other
    let (s, _) = sign_in_body(
        &emu.url,
        r#"<tsRequest><credentials name="admin" password="tabflow"><site contentUrl="demo"/></credentials></tsRequest>"#.into(),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(second.get("workbooks?pageSize=1").await.0, 200);
}

#[tokio::test]
async fn missing_auth_wrong_site_and_sign_out() {
    let emu = start_demo().await;
    let c = sign_in(&emu.url).await;
    let r = reqwest::get(c.site_url("workbooks")).await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(error_code(&r.text().await.unwrap()), "401002");
    let r = reqwest::Client::new()
        .get(format!("{}/api/{V}/sites/00000000-0000-0000-0000-000000000000/workbooks", emu.url))
        .header("X-Tableau-Auth", &c.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = reqwest::Client::new()
        .post(format!("{}/api/{V}/auth/signout", emu.url))
        .header("X-Tableau-Auth", &c.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(c.get("workbooks").await.0, 401);
}

#[tokio::test]
async fn paging_is_exact_and_never_repeats() {
    let emu = start_demo().await;
    let c = sign_in(&emu.url).await;
    let total = emu.emulator.snapshot().workbooks.len();
    let mut seen = HashSet::new();
    let mut page = 1;
    loop {
        let doc = c.get_doc(&format!("workbooks?pageSize=97&pageNumber={page}")).await;
        let p = doc.pagination.unwrap();
        assert_eq!(p.total_available, total.to_string());
        assert_eq!(p.page_size, "97");
        for w in doc.workbooks.unwrap().workbook {
            assert!(seen.insert(w.id.unwrap()), "repeated item on page {page}");
        }
        if page * 97 >= total {
            break;
        }
        page += 1;
    }
    assert_eq!(seen.len(), total);
    // past the end: 400006; bad sizes: 400007
    let (s, t) = c.get(&format!("workbooks?pageSize=97&pageNumber={}", page + 1)).await;
    assert_eq!((s, error_code(&t)), (400, "400006".to_string()));
    for bad in ["pageSize=0", "pageSize=1001", "pageSize=x"] {
        let (s, t) = c.get(&format!("workbooks?{bad}")).await;
        assert_eq!((s, error_code(&t)), (400, "400007".to_string()), "{bad}");
    }
    let (s, t) = c.get("workbooks?pageNumber=0").await;
    assert_eq!((s, error_code(&t)), (400, "400006".to_string()));
}

#[tokio::test]
async fn filters_sorts_and_fields() {
    let emu = start_demo().await;
    let c = sign_in(&emu.url).await;
    let snap = emu.emulator.snapshot();
    let finance = snap.projects.iter().find(|p| p.name == "Finance" && p.parent_id.is_none()).unwrap();
    let expected = snap.workbooks.iter().filter(|w| w.project_id == finance.id).count();
    // both wire forms of the same filter
    for q in ["filter=projectName:eq:Finance", "filter=projectName%3Aeq%3AFinance"] {
        let doc = c.get_doc(&format!("workbooks?pageSize=1000&{q}")).await;
        let wbs = doc.workbooks.unwrap().workbook;
        // projectName matches by name, so same-named child projects would count too
        let same_name: HashSet<&str> =
            snap.projects.iter().filter(|p| p.name == "Finance").map(|p| p.id.as_str()).collect();
        let want = snap.workbooks.iter().filter(|w| same_name.contains(w.project_id.as_str())).count();
        assert_eq!(wbs.len(), want, "{q}");
        assert!(wbs.len() >= expected);
    }
    // tags
    let sensitive = snap.workbooks.iter().filter(|w| w.tags.iter().any(|t| t == "sensitive")).count();
    assert!(sensitive > 0);
    let doc = c.get_doc("workbooks?pageSize=1000&filter=tags:eq:sensitive").await;
    assert_eq!(doc.workbooks.unwrap().workbook.len(), sensitive);
    // in, wildcard, cieq
    let names: Vec<&str> = snap.workbooks.iter().take(2).map(|w| w.name.as_str()).collect();
    let doc = c.get_doc(&format!("workbooks?pageSize=1000&filter=name:in:[{},{}]", names[0], names[1])).await;
    let got: HashSet<String> = doc.workbooks.unwrap().workbook.into_iter().map(|w| w.name.unwrap()).collect();
    assert!(got.contains(names[0]) && got.contains(names[1]));
    let prefix: String = names[0].chars().take(3).collect();
    let doc = c.get_doc(&format!("workbooks?pageSize=1000&filter=name:eq:{}*", urlencode(&prefix))).await;
    let want = snap.workbooks.iter().filter(|w| w.name.starts_with(&prefix)).count();
    assert_eq!(doc.workbooks.unwrap().workbook.len(), want);
    let doc = c.get_doc(&format!("users?filter=name:cieq:{}", "ADMIN")).await;
    assert_eq!(doc.users.unwrap().user.len(), 1);
    // sort by name desc
    let doc = c.get_doc("workbooks?pageSize=50&sort=name:desc").await;
    let names: Vec<String> =
        doc.workbooks.unwrap().workbook.into_iter().map(|w| w.name.unwrap().to_lowercase()).collect();
    let mut sorted = names.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(names, sorted);
    // updatedAt gt
    let cut = snap.now - chrono::Duration::days(30);
    let want = snap.workbooks.iter().filter(|w| w.updated_at > cut).count();
    let doc =
        c.get_doc(&format!("workbooks?pageSize=1000&filter=updatedAt:gt:{}", cut.format("%Y-%m-%dT%H:%M:%SZ"))).await;
    assert_eq!(doc.workbooks.unwrap().workbook.len(), want);
    // fields: only id,name
    let doc = c.get_doc("workbooks?pageSize=5&fields=id,name").await;
    let w = &doc.workbooks.unwrap().workbook[0];
    assert!(w.id.is_some() && w.name.is_some() && w.project.is_none() && w.size.is_none());
    // bad filters
    for bad in ["filter=name", "filter=name:like:x", "filter=nosuchfield:eq:x", "sort=name:sideways"] {
        let (s, t) = c.get(&format!("workbooks?{bad}")).await;
        assert_eq!(s, 400, "{bad}: {t}");
        assert!(error_code(&t).starts_with("400"), "{t}");
    }
}

fn urlencode(s: &str) -> String {
    s.bytes().map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

#[tokio::test]
async fn unknown_ids_are_404_with_tableau_codes() {
    let emu = start_demo().await;
    let c = sign_in(&emu.url).await;
    let nobody = "00000000-0000-0000-0000-000000000000";
    for (path, code) in [
        (format!("workbooks/{nobody}"), "404006"),
        (format!("datasources/{nobody}"), "404011"),
        (format!("users/{nobody}"), "404002"),
        (format!("workbooks/{nobody}/permissions"), "404006"),
    ] {
        let (s, t) = c.get(&path).await;
        assert_eq!((s, error_code(&t)), (404, code.to_string()), "{path}");
    }
    let (s, t) = c.put(&format!("workbooks/{nobody}"), "<tsRequest><workbook name='x'/></tsRequest>").await;
    assert_eq!((s, error_code(&t)), (404, "404006".to_string()));
    let (s, _) = c.get("nosuchcollection").await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn move_and_reown_a_workbook_then_read_back() {
    let emu = start_demo().await;
    let c = sign_in(&emu.url).await;
    let snap = emu.emulator.snapshot();
    let wb = &snap.workbooks[0];
    let target = snap.projects.iter().find(|p| p.name == "Archive").unwrap();
    let owner = snap.users.iter().find(|u| u.id != wb.owner_id && u.site_role == "Creator").unwrap();
    let (s, t) = c
        .put(
            &format!("workbooks/{}", wb.id),
            &format!(r#"<tsRequest><workbook showTabs="false"><dataAccelerationConfig/><project id="{}"/><owner id="{}"/></workbook></tsRequest>"#, target.id, owner.id),
        )
        .await;
    assert_eq!(s, 200, "{t}");
    let after = emu.emulator.snapshot();
    let w2 = after.workbooks.iter().find(|w| w.id == wb.id).unwrap();
    assert_eq!(
        (w2.project_id.as_str(), w2.owner_id.as_str(), w2.show_tabs),
        (target.id.as_str(), owner.id.as_str(), false)
    );
    assert!(w2.updated_at > wb.updated_at);
    // a bad reference changes nothing
    let (s, _) = c
        .put(&format!("workbooks/{}", wb.id), r#"<tsRequest><workbook><project id="nope"/></workbook></tsRequest>"#)
        .await;
    assert_eq!(s, 404);
    assert_eq!(emu.emulator.snapshot().workbooks.iter().find(|w| w.id == wb.id).unwrap().project_id, target.id);
}

#[tokio::test]
async fn permissions_merge_and_delete_per_capability() {
    let emu = start_demo().await;
    let c = sign_in(&emu.url).await;
    let snap = emu.emulator.snapshot();
    let wb = &snap.workbooks[3];
    let group = snap.groups.iter().find(|g| g.name == "Sales").unwrap();
    let body = format!(
        r#"<tsRequest><permissions><granteeCapabilities><group id="{}"/><capabilities><capability name="Read" mode="Allow"/><capability name="ExportData" mode="Deny"/></capabilities></granteeCapabilities></permissions></tsRequest>"#,
        group.id
    );
    let (s, t) = c.put(&format!("workbooks/{}/permissions", wb.id), &body).await;
    assert_eq!(s, 200, "{t}");
    let doc = c.get_doc(&format!("workbooks/{}/permissions", wb.id)).await;
    let gc = doc
        .permissions
        .unwrap()
        .grantee_capabilities
        .into_iter()
        .find(|g| g.grantee() == Some(("group", group.id.as_str())))
        .unwrap();
    let caps: HashSet<(String, String)> = gc.capabilities.capability.into_iter().map(|c| (c.name, c.mode)).collect();
    assert!(caps.contains(&("Read".into(), "Allow".into())) && caps.contains(&("ExportData".into(), "Deny".into())));
    // delete one capability
    let (s, _) = c.delete(&format!("workbooks/{}/permissions/groups/{}/ExportData/Deny", wb.id, group.id)).await;
    assert_eq!(s, 204);
    let (s, t) = c.delete(&format!("workbooks/{}/permissions/groups/{}/ExportData/Deny", wb.id, group.id)).await;
    assert_eq!(s, 404, "{t}");
    let snap2 = emu.emulator.snapshot();
    let rule = snap2.permissions.iter().find(|r| r.resource.id == wb.id && r.grantee.id == group.id).unwrap();
    assert!(!rule.capabilities.contains_key("ExportData") && rule.capabilities.contains_key("Read"));
    // bad capability name: 400, nothing changes
    let bad = body.replace("ExportData", "FlyToTheMoon");
    let (s, _) = c.put(&format!("workbooks/{}/permissions", wb.id), &bad).await;
    assert_eq!(s, 400);
    assert_eq!(emu.emulator.snapshot().permissions, snap2.permissions);
}

#[tokio::test]
async fn tags_add_and_delete() {
    let emu = start_demo().await;
    let c = sign_in(&emu.url).await;
    let wb = emu.emulator.snapshot().workbooks[5].clone();
    let (s, t) = c.put(&format!("workbooks/{}/tags", wb.id), r#"<tsRequest><tags><tag label="archived-by-tabflow"/><tag label="&quot;old tag&quot;"/><tag label="two words"/></tags></tsRequest>"#).await;
    assert_eq!(s, 200, "{t}");
    let tags = xml::parse_response(&t).unwrap().tags.unwrap().labels();
    assert!(tags.contains(&"archived-by-tabflow".to_string()) && tags.contains(&"old tag".to_string()));
    assert!(
        tags.contains(&"two".to_string()) && tags.contains(&"words".to_string()),
        "unquoted labels split: {tags:?}"
    );
    assert_eq!(c.delete(&format!("workbooks/{}/tags/old%20tag", wb.id)).await.0, 204);
    let after = emu.emulator.snapshot();
    let w = after.workbooks.iter().find(|w| w.id == wb.id).unwrap();
    assert!(w.tags.contains(&"archived-by-tabflow".to_string()) && !w.tags.contains(&"old tag".to_string()));
}

#[tokio::test]
async fn delete_user_maps_assets_or_refuses() {
    let emu = start_demo().await;
    let c = sign_in(&emu.url).await;
    let snap = emu.emulator.snapshot();
    let john = snap.users.iter().find(|u| u.name == "jsmith").unwrap();
    let owned = snap.workbooks.iter().filter(|w| w.owner_id == john.id).count();
    assert!(owned > 0);
    let (s, t) = c.delete(&format!("users/{}", john.id)).await;
    assert_eq!(s, 409, "{t}");
    assert!(emu.emulator.snapshot().users.iter().any(|u| u.id == john.id));
    let sarah = snap.users.iter().find(|u| u.name == "slee").unwrap();
    let (s, t) = c.delete(&format!("users/{}?mapAssetsTo={}", john.id, sarah.id)).await;
    assert_eq!(s, 204, "{t}");
    let after = emu.emulator.snapshot();
    assert!(!after.users.iter().any(|u| u.id == john.id));
    assert_eq!(after.workbooks.iter().filter(|w| w.owner_id == john.id).count(), 0);
    assert!(after.workbooks.iter().filter(|w| w.owner_id == sarah.id).count() >= owned);
    let johns_flow = snap.flows.iter().find(|f| f.owner_id == john.id).expect("John owns a flow");
    assert_eq!(after.flows.iter().find(|f| f.id == johns_flow.id).unwrap().owner_id, sarah.id, "flows move too");
    assert!(!after.groups.iter().any(|g| g.members.contains(&john.id)));
    assert!(after.check().is_ok());
}

#[tokio::test]
async fn groups_and_members() {
    let emu = start_demo().await;
    let c = sign_in(&emu.url).await;
    let (s, t) = c.post("groups", r#"<tsRequest><group name="Auditors"/></tsRequest>"#).await;
    assert_eq!(s, 201, "{t}");
    let gid = xml::parse_response(&t).unwrap().group.unwrap().id.unwrap();
    let (s, _) = c.post("groups", r#"<tsRequest><group name="auditors"/></tsRequest>"#).await;
    assert_eq!(s, 409);
    let uid = emu.emulator.snapshot().users[2].id.clone();
    let (s, t) = c.post(&format!("groups/{gid}/users"), &format!(r#"<tsRequest><user id="{uid}"/></tsRequest>"#)).await;
    assert_eq!(s, 200, "{t}");
    let doc = c.get_doc(&format!("groups/{gid}/users")).await;
    assert_eq!(doc.users.unwrap().user.len(), 1);
    let doc = c.get_doc(&format!("users/{uid}/groups")).await;
    assert!(doc.groups.unwrap().group.iter().any(|g| g.id.as_deref() == Some(gid.as_str())));
    assert_eq!(c.delete(&format!("groups/{gid}/users/{uid}")).await.0, 204);
    assert_eq!(c.delete(&format!("groups/{gid}")).await.0, 204);
    assert!(!emu.emulator.snapshot().groups.iter().any(|g| g.id == gid));
}

#[tokio::test]
async fn projects_nested_create_and_cycle_refused() {
    let emu = start_demo().await;
    let c = sign_in(&emu.url).await;
    let (s, t) = c
        .post("projects", r#"<tsRequest><project name="Quarantine" contentPermissions="LockedToProject"/></tsRequest>"#)
        .await;
    assert_eq!(s, 201, "{t}");
    let parent = xml::parse_response(&t).unwrap().project.unwrap().id.unwrap();
    let (s, t) = c
        .post("projects", &format!(r#"<tsRequest><project name="Child" parentProjectId="{parent}"/></tsRequest>"#))
        .await;
    assert_eq!(s, 201, "{t}");
    let child = xml::parse_response(&t).unwrap().project.unwrap().id.unwrap();
    let (s, _) = c
        .put(&format!("projects/{parent}"), &format!(r#"<tsRequest><project parentProjectId="{child}"/></tsRequest>"#))
        .await;
    assert_eq!(s, 409);
    let (s, _) =
        c.post("projects", r#"<tsRequest><project name="X" contentPermissions="Whatever"/></tsRequest>"#).await;
    assert_eq!(s, 400);
}

#[tokio::test]
async fn deleting_a_project_deletes_its_nested_projects_and_their_content_only() {
    let emu = start_demo().await;
    let c = sign_in(&emu.url).await;
    let before = emu.emulator.snapshot();
    let finance = before.projects.iter().find(|p| p.name == "Finance" && p.parent_id.is_none()).unwrap();
    // The subtree, computed here by hand from the parent links.
    let mut doomed = vec![finance.id.clone()];
    loop {
        let more: Vec<String> = before
            .projects
            .iter()
            .filter(|p| p.parent_id.as_ref().is_some_and(|x| doomed.contains(x)) && !doomed.contains(&p.id))
            .map(|p| p.id.clone())
            .collect();
        if more.is_empty() {
            break;
        }
        doomed.extend(more);
    }
    assert!(doomed.len() > 2, "the demo's Finance has nested projects: {doomed:?}");
    let (s, t) = c.delete(&format!("projects/{}", finance.id)).await;
    assert_eq!(s, 204, "{t}");
    let after = emu.emulator.snapshot();
    let kept: Vec<&String> = before.projects.iter().map(|p| &p.id).filter(|id| !doomed.contains(id)).collect();
    assert_eq!(after.projects.iter().map(|p| &p.id).collect::<Vec<_>>(), kept);
    let wb_left = |s: &tabflow_site::Site| s.workbooks.iter().filter(|w| !doomed.contains(&w.project_id)).count();
    assert!(after.workbooks.iter().all(|w| !doomed.contains(&w.project_id)));
    assert_eq!(after.workbooks.len(), wb_left(&before));
    assert!(after.datasources.iter().all(|d| !doomed.contains(&d.project_id)));
}

#[tokio::test]
async fn site_wide_views_page_by_page_are_the_sites_views_in_order_around_workbooks_without_views() {
    // Workbooks without views first, in the middle (two in a row) and last: a page's views
    // are found from their place in the list of all views.
    let mut site = demo_site();
    let n = site.workbooks.len();
    for i in [0, n / 2, n / 2 + 1, n - 1] {
        site.workbooks[i].views.clear();
    }
    let emu = tabflow_emulator::start(tabflow_emulator::Options::new(site)).await.expect("emulator starts");
    let c = sign_in(&emu.url).await;
    let snap = emu.emulator.snapshot();
    for (query, project) in [("", None), ("&filter=projectName:eq:Finance", Some("Finance"))] {
        let want: Vec<(String, String)> = snap
            .workbooks
            .iter()
            .filter(|w| project.is_none_or(|p| snap.projects.iter().any(|x| x.id == w.project_id && x.name == p)))
            .flat_map(|w| w.views.iter().map(|v| (w.id.clone(), v.id.clone())))
            .collect();
        assert!(want.len() > 14, "{query}: {}", want.len());
        let mut got = vec![];
        for page in 1..=want.len().div_ceil(7) {
            let doc = c.get_doc(&format!("views?pageSize=7&pageNumber={page}{query}")).await;
            assert_eq!(doc.pagination.unwrap().total_available, want.len().to_string());
            for v in doc.views.unwrap().view {
                got.push((v.workbook.unwrap().id.unwrap(), v.id.unwrap()));
            }
        }
        assert_eq!(got, want, "{query}");
    }
}

#[tokio::test]
async fn views_with_usage_match_the_site() {
    let emu = start_demo().await;
    let c = sign_in(&emu.url).await;
    let snap = emu.emulator.snapshot();
    let wb = snap.workbooks.iter().find(|w| w.views.iter().any(|v| v.total_views > 0)).unwrap();
    let doc = c.get_doc(&format!("workbooks/{}/views?includeUsageStatistics=true", wb.id)).await;
    let views = doc.views.unwrap().view;
    assert_eq!(views.len(), wb.views.len());
    for v in views {
        let model = wb.views.iter().find(|m| Some(m.id.as_str()) == v.id.as_deref()).unwrap();
        assert_eq!(v.usage.unwrap().total_view_count, model.total_views.to_string());
    }
    let total_views: usize = snap.workbooks.iter().map(|w| w.views.len()).sum();
    let doc = c.get_doc("views?pageSize=1").await;
    assert_eq!(doc.pagination.unwrap().total_available, total_views.to_string());
}

#[tokio::test]
async fn snapshot_route_round_trips() {
    let emu = start_demo().await;
    let text = reqwest::get(format!("{}/_emulator/snapshot", emu.url)).await.unwrap().text().await.unwrap();
    let site = tabflow_site::Site::from_json(&text).unwrap();
    let mut a = site.clone();
    let b = emu.emulator.snapshot();
    a.now = b.now;
    assert_eq!(a, b);
    assert_eq!(tabflow_site::Site::from_json(&site.to_json()).unwrap(), site);
}

#[tokio::test]
async fn framework_rejections_use_tableau_error_bodies() {
    let emu = start_demo().await;
    let c = sign_in(&emu.url).await;
    let id = emu.emulator.snapshot().workbooks[0].id.clone();
    let r = c
        .http
        .put(c.site_url(&format!("workbooks/{id}")))
        .header("X-Tableau-Auth", &c.token)
        .body(vec![0xff, 0xfe, 0x00, 0x3c])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(error_code(&r.text().await.unwrap()).starts_with("400"));
}
