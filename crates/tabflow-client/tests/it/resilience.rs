use serde_json::json;
use tabflow_client::{Client, Config, Credentials, ExposeSecret, Secret};

use crate::*;

#[tokio::test]
async fn rides_out_a_429_storm() {
    let emu = demo().await;
    let c = connect(&emu).await;
    set_faults(&emu.url, json!({"rate_limit_per_s": 5})).await;
    let projects = c.projects().page_size(5).collect().await.unwrap();
    assert_eq!(projects.len(), emu.emulator.snapshot().projects.len());
}

#[tokio::test]
async fn rides_out_a_5xx_storm_for_reads() {
    let emu = demo().await;
    let c = connect(&emu).await;
    set_faults(&emu.url, json!({"error_rate": 0.3, "error_status": 503})).await;
    let users = c.users().page_size(20).collect().await.unwrap();
    assert_eq!(users.len(), emu.emulator.snapshot().users.len());
    let s = stats(&emu.url).await;
    assert!(s["requests"].as_u64().unwrap() > users.len() as u64 / 20, "some calls were retried");
}

#[tokio::test]
async fn non_idempotent_calls_are_not_retried_blindly() {
    let emu = demo().await;
    let c = connect(&emu).await;
    reqwest::Client::new().post(format!("{}/_emulator/stats/reset", emu.url)).send().await.unwrap();
    set_faults(&emu.url, json!({"fail_nth_write": 1, "error_status": 503})).await;
    let e = c.add_group("Auditors").await.unwrap_err();
    assert_eq!(e.status(), Some(503));
    let s = stats(&emu.url).await;
    assert_eq!(s["writes"], 1, "a POST must not be repeated after a 5xx");
    assert!(!emu.emulator.snapshot().groups.iter().any(|g| g.name == "Auditors"));
    // an idempotent PUT is retried and succeeds
    set_faults(&emu.url, json!({"fail_nth_write": 1, "error_status": 503})).await;
    let wb = emu.emulator.snapshot().workbooks[0].id.clone();
    let u = tabflow_client::WorkbookUpdate { name: Some("Retried Rename".into()), ..Default::default() };
    c.update_workbook(&wb.as_str().into(), &u).await.unwrap();
    assert_eq!(emu.emulator.snapshot().workbooks[0].name, "Retried Rename");
}

#[tokio::test]
async fn signs_in_again_when_the_session_is_displaced() {
    let emu = demo().await;
    let a = connect(&emu).await;
    let _b = connect(&emu).await; // same PAT: a's session is now invalid (401002)
    let n = a.projects().collect().await.unwrap().len();
    assert_eq!(n, emu.emulator.snapshot().projects.len());
}

#[tokio::test]
async fn concurrency_cap_and_rate_limit_hold() {
    let emu = demo().await;
    let mut cfg = fast(Config::new(
        emu.url.clone(),
        "demo",
        Credentials::Pat { name: "tabflow".into(), secret: Secret::new("tabflow") },
    ));
    cfg.rate_limit_per_s = Some(20.0);
    let c = Client::connect(cfg).await.unwrap();
    let ids: Vec<tabflow_wire::ids::WorkbookId> =
        emu.emulator.snapshot().workbooks.iter().take(30).map(|w| w.id.as_str().into()).collect();
    let t = std::time::Instant::now();
    let futs = ids.iter().map(|id| c.workbook(id));
    for r in futures::future::join_all(futs).await {
        r.unwrap();
    }
    // 30 calls at 20/s with a bucket of 20: at least ~0.5 s.
    assert!(t.elapsed() >= std::time::Duration::from_millis(450), "{:?}", t.elapsed());
}

#[tokio::test]
async fn logs_never_contain_secrets() {
    use std::io::Write;
    use std::sync::{Arc, Mutex};
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let sink = buf.clone();
    let subscriber =
        tracing_subscriber::fmt().with_max_level(tracing::Level::TRACE).with_writer(move || sink.clone()).finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let emu = demo().await;
    let c = connect(&emu).await;
    set_faults(&emu.url, json!({"error_rate": 0.5})).await;
    let _ = c.users().page_size(50).collect().await;
    set_faults(&emu.url, json!({})).await;
    let _ = connect(&emu).await; // displaces c: forces a re-sign-in
    let _ = c.projects().collect().await;
    let token = c.session().await.token.expose_secret().to_string();
    let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    assert!(!text.is_empty(), "retries should have been logged");
    assert!(!text.contains(&token), "session token leaked into logs");
    assert!(!text.contains("personalAccessTokenSecret"), "sign-in body leaked into logs");
}

#[tokio::test]
async fn a_throttled_site_is_waited_out_together_within_the_patience() {
    let emu = demo().await;
    let ids: Vec<String> = emu.emulator.snapshot().workbooks.iter().take(60).map(|w| w.id.clone()).collect();
    let creds = || Credentials::Pat { name: "tabflow".into(), secret: Secret::new("tabflow") };
    let mut cfg = fast(Config::new(emu.url.clone(), "demo", creds()));
    cfg.max_wait = std::time::Duration::from_secs(2);
    cfg.max_retries = 1; // 429s are not counted against retries, only against the patience
    let c = Client::connect(cfg).await.unwrap();
    set_faults(&emu.url, json!({"rate_limit_per_s": 20})).await;
    // 60 reads at once against 20 per second: every one gets through.
    let wids: Vec<tabflow_wire::ids::WorkbookId> = ids.iter().map(|i| i.as_str().into()).collect();
    let got = futures::future::join_all(wids.iter().map(|id| c.workbook(id))).await;
    assert!(got.iter().all(|r| r.is_ok()), "{:?}", got.iter().find(|r| r.is_err()));

    // With almost no patience, a call gives up with the 429 (and says so).
    set_faults(&emu.url, json!({})).await;
    let mut cfg = fast(Config::new(emu.url.clone(), "demo", creds()));
    cfg.rate_limit_patience = std::time::Duration::from_millis(1);
    let impatient = Client::connect(cfg).await.unwrap();
    set_faults(&emu.url, json!({"rate_limit_per_s": 2})).await;
    let got = futures::future::join_all(wids.iter().take(20).map(|id| impatient.workbook(id))).await;
    let refused: Vec<_> = got.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(!refused.is_empty() && refused.iter().all(|e| e.status() == Some(429)), "{refused:?}");
}
