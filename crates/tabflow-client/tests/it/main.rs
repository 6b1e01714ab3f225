//! Client tests against the emulator over real HTTP on 127.0.0.1, against small
//! hand-written servers for the failure shapes the emulator never produces, and the
//! repository usage source against PostgreSQL.

mod connect;
mod paging;
mod refreshes;
mod repository;
mod resilience;
mod writes;

use tabflow_client::{Client, Config, Credentials, Secret};
use tabflow_emulator::{Options, Running};

pub fn pat() -> Credentials {
    Credentials::Pat { name: "tabflow".into(), secret: Secret::new("tabflow") }
}

pub async fn demo() -> Running {
    let mut site = tabflow_site::generate::demo();
    site.shift_time_to(chrono::Utc::now());
    tabflow_emulator::start(Options::new(site)).await.unwrap()
}

pub fn fast(mut c: Config) -> Config {
    c.backoff_base = std::time::Duration::from_millis(5);
    c.max_wait = std::time::Duration::from_millis(200);
    // Fault storms in these tests fail up to half the calls: allow enough attempts that a
    // run of failures long enough to give up is out of reach (0.5^11).
    c.max_retries = 10;
    c
}

pub async fn connect(emu: &Running) -> Client {
    Client::connect(fast(Config::new(emu.url.clone(), "demo", pat()))).await.unwrap()
}

pub async fn set_faults(url: &str, v: serde_json::Value) {
    let r = reqwest::Client::new().post(format!("{url}/_emulator/faults")).json(&v).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

pub async fn stats(url: &str) -> serde_json::Value {
    reqwest::get(format!("{url}/_emulator/stats")).await.unwrap().json().await.unwrap()
}
