//! An emulator safe to leave running: the site check has no bypass, one user cannot read or
//! change another's favorites, subscriptions or data alerts (as Tableau), the JSON APIs
//! need a live session of a user still on the site, and a control token guards
//! `/_emulator/*`.

use tabflow_emulator::Options;
use tabflow_wire::xml;

use crate::util::*;

async fn sign_in_as(url: &str, name: &str) -> Client {
    let (status, text) = sign_in_body(
        url,
        format!(r#"<tsRequest><credentials name="{name}" password="tabflow"><site contentUrl="demo"/></credentials></tsRequest>"#),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let c = xml::parse_response(&text).unwrap().credentials.unwrap();
    Client {
        http: reqwest::Client::new(),
        url: url.to_string(),
        token: c.token.unwrap(),
        site_id: c.site.unwrap().id.unwrap(),
    }
}

fn user_id(emu: &tabflow_emulator::Running, name: &str) -> String {
    emu.emulator.snapshot().users.iter().find(|u| u.name == name).unwrap().id.clone()
}

#[tokio::test]
async fn no_query_parameter_skips_the_site_check() {
    let emu = start_demo().await;
    let c = sign_in(&emu.url).await;
    let other = "00000000-0000-0000-0000-000000000000";
    for q in ["key=1", "api_key=x&key=", "foo=bar"] {
        let r = c
            .http
            .get(format!("{}/api/{V}/sites/{other}/workbooks?{q}", emu.url))
            .header("X-Tableau-Auth", &c.token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "?{q} reached another site's workbooks");
    }
    assert_eq!(c.get("workbooks?key=1").await.0, 200, "the session's own site answers");
}

#[tokio::test]
async fn a_user_reads_and_changes_only_their_own_favorites() {
    let emu = start_demo().await;
    let admin = sign_in(&emu.url).await;
    let john = sign_in_as(&emu.url, "jdoe").await;
    let (jid, aid) = (user_id(&emu, "jdoe"), user_id(&emu, "admin"));
    assert_eq!(john.get(&format!("favorites/{jid}")).await.0, 200);
    let (s, t) = john.get(&format!("favorites/{aid}")).await;
    assert_eq!((s, error_code(&t)), (403, "403004".to_string()), "{t}");

    let wb = emu.emulator.snapshot().workbooks[0].id.clone();
    let body = format!(r#"<tsRequest><favorite label="mine"><workbook id="{wb}"/></favorite></tsRequest>"#);
    let before = emu.emulator.snapshot().favorites.len();
    assert_eq!(john.put(&format!("favorites/{aid}"), &body).await.0, 403);
    assert_eq!(emu.emulator.snapshot().favorites.len(), before, "nothing was added for the admin");
    assert_eq!(john.put(&format!("favorites/{jid}"), &body).await.0, 200);
    assert_eq!(emu.emulator.snapshot().favorites.len(), before + 1);
    assert_eq!(john.delete(&format!("favorites/{aid}/workbooks/{wb}")).await.0, 403);
    // An administrator may read and change anyone's (as on Tableau).
    assert_eq!(admin.get(&format!("favorites/{jid}")).await.0, 200);
    assert_eq!(admin.delete(&format!("favorites/{jid}/workbooks/{wb}")).await.0, 204);
}

#[tokio::test]
async fn data_alerts_and_subscriptions_of_others_are_out_of_reach() {
    let emu = start_demo().await;
    let admin = sign_in(&emu.url).await;
    let john = sign_in_as(&emu.url, "jsmith").await;
    let jid = user_id(&emu, "jsmith");
    let site = emu.emulator.snapshot();

    let all = admin.get_doc("dataAlerts?pageSize=1000").await.data_alerts.unwrap().data_alert;
    assert_eq!(all.len(), site.data_alerts.len());
    let seen = john.get_doc("dataAlerts?pageSize=1000").await.data_alerts.unwrap().data_alert;
    let his = site.data_alerts.iter().filter(|a| a.owner_id == jid || a.recipients.contains(&jid)).count();
    assert!(his > 0 && his < all.len(), "the demo gives John Smith some alerts, not all");
    assert_eq!(seen.len(), his);
    let theirs = site.data_alerts.iter().find(|a| a.owner_id != jid).unwrap();
    assert_eq!(john.delete(&format!("dataAlerts/{}", theirs.id)).await.0, 404);
    assert!(emu.emulator.snapshot().data_alerts.iter().any(|a| a.id == theirs.id), "still there");

    let subs = john.get_doc("subscriptions?pageSize=1000").await.subscriptions.unwrap().subscription;
    assert!(subs.iter().all(|s| s.user.as_ref().and_then(|u| u.id.as_deref()) == Some(jid.as_str())));
    if let Some(other) = site.subscriptions.iter().find(|s| s.user_id != jid) {
        assert_eq!(john.get(&format!("subscriptions/{}", other.id)).await.0, 404);
        assert_eq!(john.delete(&format!("subscriptions/{}", other.id)).await.0, 404);
        assert!(emu.emulator.snapshot().subscriptions.iter().any(|s| s.id == other.id));
    }
    // Subscribing someone else is for administrators.
    let view = site.workbooks[0].views[0].id.clone();
    let aid = user_id(&emu, "admin");
    let body = format!(
        r#"<tsRequest><subscription subject="x"><content id="{view}" type="View"/><schedule id="daily"/><user id="{aid}"/></subscription></tsRequest>"#
    );
    let (s, t) = john.post("subscriptions", &body).await;
    assert_eq!((s, error_code(&t)), (403, "403004".to_string()), "{t}");
}

#[tokio::test]
async fn the_json_apis_need_a_session_whose_user_is_still_on_the_site() {
    let emu = start_demo().await;
    let john = sign_in_as(&emu.url, "jdoe").await;
    let gql = |c: &Client| {
        c.http
            .post(format!("{}/api/metadata/graphql", c.url))
            .header("X-Tableau-Auth", &c.token)
            .body(r#"{"query": "{ workbooks { name } }"}"#)
            .send()
    };
    assert_eq!(gql(&john).await.unwrap().status(), 200);
    let jid = user_id(&emu, "jdoe");
    emu.emulator.with_site(|s| s.users.retain(|u| u.id != jid));
    let r = gql(&john).await.unwrap();
    assert_eq!(r.status(), 401, "a removed user's session no longer reads the site");
    let r = john
        .http
        .get(format!("{}/api/-/content/usage-stats/workbooks/x", john.url))
        .header("X-Tableau-Auth", &john.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn a_control_token_guards_the_emulator_routes() {
    let mut o = Options::new(demo_site());
    o.control_token = Some("s3cret-control".into());
    let emu = tabflow_emulator::start(o).await.unwrap();
    let http = reqwest::Client::new();
    for path in ["/_emulator/stats", "/_emulator/snapshot", "/_emulator/faults"] {
        let r = http.get(format!("{}{path}", emu.url)).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path} without the token");
        let r = http.get(format!("{}{path}", emu.url)).header("X-Emulator-Token", "wrong").send().await.unwrap();
        assert_eq!(r.status(), 401, "{path} with a wrong token");
        let r =
            http.get(format!("{}{path}", emu.url)).header("X-Emulator-Token", "s3cret-control").send().await.unwrap();
        assert_eq!(r.status(), 200, "{path} with the token");
    }
    let r = http.post(format!("{}/_emulator/faults", emu.url)).body(r#"{"latency_ms": 5000}"#).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(!format!("{:?}", emu.emulator.stats()).contains("5000"));
    // The Tableau API itself is unaffected.
    sign_in(&emu.url).await;
    // Without a token configured the routes stay open (tests and local use).
    let open = start_demo().await;
    assert_eq!(http.get(format!("{}/_emulator/stats", open.url)).send().await.unwrap().status(), 200);
}

fn chunk_body(n: usize) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(
        b"--BOUNDARY\r\nContent-Disposition: name=\"request_payload\"\r\nContent-Type: text/xml\r\n\r\n\r\n",
    );
    b.extend_from_slice(b"--BOUNDARY\r\nContent-Disposition: name=\"tableau_file\"; filename=\"file\"\r\nContent-Type: application/octet-stream\r\n\r\n");
    b.extend(std::iter::repeat_n(b'x', n));
    b.extend_from_slice(b"\r\n--BOUNDARY--\r\n");
    b
}

#[tokio::test]
async fn upload_sessions_are_capped_in_number_and_bytes() {
    let mut o = Options::new(demo_site());
    o.upload_limits = tabflow_emulator::UploadLimits { sessions: 2, bytes_per_session: 1000, bytes_total: 1500 };
    let emu = tabflow_emulator::start(o).await.unwrap();
    let c = sign_in(&emu.url).await;
    let mut ids = vec![];
    for _ in 0..2 {
        let (s, t) = c.post("fileUploads", "").await;
        assert_eq!(s, 201, "{t}");
        ids.push(xml::parse_response(&t).unwrap().file_upload.unwrap().upload_session_id);
    }
    let (s, t) = c.post("fileUploads", "").await;
    assert_eq!((s, error_code(&t)), (429, "429000".to_string()), "{t}");
    let append = |id: &str, n: usize| {
        c.http
            .put(c.site_url(&format!("fileUploads/{id}")))
            .header("X-Tableau-Auth", &c.token)
            .header("Content-Type", "multipart/mixed; boundary=BOUNDARY")
            .body(chunk_body(n))
            .send()
    };
    assert_eq!(append(&ids[0], 800).await.unwrap().status(), 200);
    let r = append(&ids[0], 300).await.unwrap();
    assert_eq!(r.status(), 413, "one session past its cap");
    assert!(r.text().await.unwrap().contains("1000 bytes"));
    let r = append(&ids[1], 800).await.unwrap();
    assert_eq!(r.status(), 413, "all sessions together past their cap");
    assert_eq!(append(&ids[1], 600).await.unwrap().status(), 200, "within both caps");
}
