use serde_json::json;

use crate::util::*;

async fn set_faults(url: &str, v: serde_json::Value) -> u16 {
    reqwest::Client::new().post(format!("{url}/_emulator/faults")).json(&v).send().await.unwrap().status().as_u16()
}

async fn stats(url: &str) -> serde_json::Value {
    reqwest::get(format!("{url}/_emulator/stats")).await.unwrap().json().await.unwrap()
}

fn rename(id: &str, name: &str) -> (String, String) {
    (format!("workbooks/{id}"), format!(r#"<tsRequest><workbook name="{name}"/></tsRequest>"#))
}

#[tokio::test]
async fn stats_count_requests_routes_and_writes() {
    let emu = start_demo().await;
    let c = sign_in(&emu.url).await;
    reqwest::Client::new().post(format!("{}/_emulator/stats/reset", emu.url)).send().await.unwrap();
    let id = emu.emulator.snapshot().workbooks[0].id.clone();
    c.get(&format!("workbooks/{id}")).await;
    c.get(&format!("workbooks/{id}")).await;
    let (p, b) = rename(&id, "Renamed");
    c.put(&p, &b).await;
    let s = stats(&emu.url).await;
    assert_eq!(s["requests"], 3);
    assert_eq!(s["writes"], 1);
    assert_eq!(s["by_route"]["GET /api/{v}/sites/{s}/workbooks/{id}"], 2);
    assert_eq!(s["by_route"]["PUT /api/{v}/sites/{s}/workbooks/{id}"], 1);
    assert_eq!(s["writes_by_resource"][&id], 1);
}

#[tokio::test]
async fn stats_keep_high_water_marks_of_requests_in_flight_and_per_second() {
    let emu = start_demo().await;
    let c = sign_in(&emu.url).await;
    set_faults(&emu.url, json!({"latency_ms": 300})).await;
    reqwest::Client::new().post(format!("{}/_emulator/stats/reset", emu.url)).send().await.unwrap();
    // Five at once (each held 300 ms by the latency), then two more one after the other.
    let p = "workbooks?pageSize=1";
    let answers = tokio::join!(c.get(p), c.get(p), c.get(p), c.get(p), c.get(p));
    assert_eq!([answers.0.0, answers.1.0, answers.2.0, answers.3.0, answers.4.0], [200; 5]);
    c.get("workbooks?pageSize=1").await;
    c.get("workbooks?pageSize=1").await;
    let s = stats(&emu.url).await;
    assert_eq!(s["requests"], 7);
    assert_eq!(s["in_flight_max"], 5, "{s}");
    // The two later calls arrived 300 and 600 ms after the five: all seven in one second.
    assert_eq!(s["max_per_second"], 7, "{s}");
    // A second later the window has slid past them all: one call alone in its second.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    reqwest::Client::new().post(format!("{}/_emulator/stats/reset", emu.url)).send().await.unwrap();
    c.get("workbooks?pageSize=1").await;
    tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
    c.get("workbooks?pageSize=1").await;
    let s = stats(&emu.url).await;
    assert_eq!((s["in_flight_max"].as_u64(), s["max_per_second"].as_u64()), (Some(1), Some(1)), "{s}");
    // A DELETE is counted per resource whatever its answer (the second one is a 404).
    let id = emu.emulator.snapshot().workbooks[0].id.clone();
    set_faults(&emu.url, json!({})).await;
    assert_eq!(c.send(reqwest::Method::DELETE, &format!("workbooks/{id}"), None).await.0, 204);
    assert_eq!(c.send(reqwest::Method::DELETE, &format!("workbooks/{id}"), None).await.0, 404);
    let s = stats(&emu.url).await;
    assert_eq!(s["deletes_by_resource"][&id], 2, "{s}");
    assert_eq!(s["writes_by_resource"][&id], 1, "{s}");
    reqwest::Client::new().post(format!("{}/_emulator/stats/reset", emu.url)).send().await.unwrap();
    let s = stats(&emu.url).await;
    assert_eq!((s["in_flight_max"].as_u64(), s["max_per_second"].as_u64()), (Some(0), Some(0)), "{s}");
}

#[tokio::test]
async fn stats_count_requests_sent_during_an_announced_retry_after() {
    let emu = start_demo().await;
    let c = sign_in(&emu.url).await;
    set_faults(&emu.url, json!({"rate_limit_per_s": 2})).await;
    let mut statuses = vec![];
    for _ in 0..4 {
        statuses.push(c.get("workbooks?pageSize=1").await.0);
    }
    // The third answer is a 429 with Retry-After 1; the fourth call did not wait for it.
    assert_eq!(statuses, vec![200, 200, 429, 429]);
    let s = stats(&emu.url).await;
    assert_eq!((s["rate_limited"].as_u64(), s["during_retry_after"].as_u64()), (Some(2), Some(1)), "{s}");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(c.get("workbooks?pageSize=1").await.0, 200);
    assert_eq!(stats(&emu.url).await["during_retry_after"], 1);
}

#[tokio::test]
async fn fail_nth_write_changes_nothing() {
    let emu = start_demo().await;
    let c = sign_in(&emu.url).await;
    let ids: Vec<String> = emu.emulator.snapshot().workbooks.iter().take(3).map(|w| w.id.clone()).collect();
    assert_eq!(set_faults(&emu.url, json!({"fail_nth_write": 2, "error_status": 503})).await, 200);
    let mut statuses = vec![];
    for (i, id) in ids.iter().enumerate() {
        let (p, b) = rename(id, &format!("Renamed {i}"));
        statuses.push(c.put(&p, &b).await.0);
    }
    assert_eq!(statuses, vec![200, 503, 200]);
    let snap = emu.emulator.snapshot();
    let name = |id: &str| snap.workbooks.iter().find(|w| w.id == id).unwrap().name.clone();
    assert_eq!(name(&ids[0]), "Renamed 0");
    assert_ne!(name(&ids[1]), "Renamed 1");
    assert_eq!(name(&ids[2]), "Renamed 2");
}

#[tokio::test]
async fn drop_nth_write_applies_then_loses_the_response() {
    let emu = start_demo().await;
    let c = sign_in(&emu.url).await;
    let id = emu.emulator.snapshot().workbooks[0].id.clone();
    set_faults(&emu.url, json!({"drop_nth_write": 1})).await;
    let (p, b) = rename(&id, "Dropped But Applied");
    let r = c.http.put(c.site_url(&p)).header("X-Tableau-Auth", &c.token).body(b).send().await;
    let lost = match r {
        Err(_) => true,
        Ok(resp) => resp.bytes().await.is_err(),
    };
    assert!(lost, "the response should be lost");
    assert_eq!(emu.emulator.snapshot().workbooks.iter().find(|w| w.id == id).unwrap().name, "Dropped But Applied");
}

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after() {
    let emu = start_demo().await;
    let c = sign_in(&emu.url).await;
    set_faults(&emu.url, json!({"rate_limit_per_s": 2})).await;
    let mut saw = None;
    for _ in 0..5 {
        let r = c.http.get(c.site_url("workbooks?pageSize=1")).header("X-Tableau-Auth", &c.token).send().await.unwrap();
        if r.status() == 429 {
            saw = Some((
                r.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string()),
                error_code(&r.text().await.unwrap()),
            ));
            break;
        }
    }
    assert_eq!(saw, Some((Some("1".into()), "429000".into())));
    assert_eq!(set_faults(&emu.url, json!({})).await, 200);
    assert_eq!(c.get("workbooks?pageSize=1").await.0, 200);
}

#[tokio::test]
async fn error_rate_one_fails_everything_and_bad_faults_are_refused() {
    let emu = start_demo().await;
    let c = sign_in(&emu.url).await;
    assert_eq!(set_faults(&emu.url, json!({"error_rate": 1.5})).await, 400);
    assert_eq!(set_faults(&emu.url, json!({"nonsense": 1})).await, 400);
    set_faults(&emu.url, json!({"error_rate": 1.0, "error_status": 502})).await;
    assert_eq!(c.get("workbooks").await.0, 502);
    // control routes are never faulted
    assert_eq!(reqwest::get(format!("{}/_emulator/stats", emu.url)).await.unwrap().status(), 200);
}

#[tokio::test]
async fn fail_nth_call_of_a_route() {
    let emu = start_demo().await;
    let c = sign_in(&emu.url).await;
    set_faults(&emu.url, json!({"fail_nth_call": {"route": "GET /api/{v}/sites/{s}/projects", "n": 2}})).await;
    assert_eq!(c.get("projects").await.0, 200);
    assert_eq!(c.get("projects").await.0, 500);
    assert_eq!(c.get("projects").await.0, 200);
}

#[tokio::test]
async fn latency_is_added() {
    let emu = start_demo().await;
    let c = sign_in(&emu.url).await;
    set_faults(&emu.url, json!({"latency_ms": 150})).await;
    // Never less than asked, one call or several at once (the timer wakes early and the
    // rest is slept precisely: a wake-up taken for the deadline would answer up to 2 ms early).
    let t = std::time::Instant::now();
    c.get("projects").await;
    assert!(t.elapsed() >= std::time::Duration::from_millis(150));
    let timed = || async {
        let t = std::time::Instant::now();
        c.get("projects").await;
        t.elapsed()
    };
    let took = tokio::join!(timed(), timed(), timed(), timed(), timed(), timed());
    for took in [took.0, took.1, took.2, took.3, took.4, took.5] {
        assert!(took >= std::time::Duration::from_millis(150), "{took:?}");
    }
    // The largest latency a faults document can give holds the request (nothing fails, the
    // connection stays open), and clearing the faults lets the next one through.
    set_faults(&emu.url, json!({"latency_ms": u64::MAX})).await;
    let held = c
        .http
        .get(c.site_url("projects"))
        .header("X-Tableau-Auth", &c.token)
        .timeout(std::time::Duration::from_millis(300))
        .send()
        .await;
    assert!(held.as_ref().is_err_and(|e| e.is_timeout()), "{held:?}");
    set_faults(&emu.url, json!({})).await;
    assert_eq!(c.get("projects").await.0, 200);
}
