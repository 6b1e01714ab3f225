use axum::Router;
use axum::routing::{get, post};
use tabflow_client::{Client, Config, Credentials, Error, ExposeSecret, Secret};

use crate::*;

async fn serve(app: Router) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    format!("http://{addr}")
}

#[tokio::test]
async fn signs_in_with_pat_password_and_jwt() {
    let emu = demo().await;
    let c = connect(&emu).await;
    let s = c.session().await;
    assert_eq!(s.api_version, tabflow_wire::API_VERSION);
    assert!(!s.site_id.is_empty());
    let pw = Credentials::Password { username: "jsmith".into(), password: Secret::new("tabflow") };
    let c2 = Client::connect(Config::new(emu.url.clone(), "demo", pw)).await.unwrap();
    let me = c2.session().await.user_id;
    assert_eq!(c2.user(&me.as_str().into()).await.unwrap().name.as_deref(), Some("jsmith"));
    c2.sign_out().await.unwrap();
}

#[tokio::test]
async fn wrong_credentials_name_the_problem() {
    let emu = demo().await;
    let bad = Credentials::Pat { name: "tabflow".into(), secret: Secret::new("wrong-secret") };
    let e = Client::connect(Config::new(emu.url.clone(), "demo", bad)).await.unwrap_err();
    assert!(matches!(e, Error::SignIn { .. }), "{e:?}");
    assert!(e.to_string().contains("401001"), "{e}");
    assert!(!e.to_string().contains("wrong-secret") && !format!("{e:?}").contains("wrong-secret"));
    assert!(e.hint().unwrap().contains("TABLEAU_PAT_NAME"));
    let e = Client::connect(Config::new(emu.url.clone(), "nosuchsite", pat())).await.unwrap_err();
    assert!(matches!(e, Error::SignIn { .. }));
}

#[tokio::test]
async fn unreachable_and_schemeless_servers() {
    // A port nothing listens on.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    let e = Client::connect(Config::new(format!("http://127.0.0.1:{port}"), "demo", pat())).await.unwrap_err();
    assert!(matches!(e, Error::Connect { .. }), "{e:?}");
    assert!(e.hint().is_some());
    let e = Client::connect(Config::new("tableau.example.com", "demo", pat())).await.unwrap_err();
    assert!(e.to_string().contains("needs a scheme"), "{e}");
}

#[tokio::test]
async fn tls_to_a_plain_server_is_a_connect_error() {
    let emu = demo().await;
    let url = emu.url.replace("http://", "https://");
    let e = Client::connect(Config::new(url, "demo", pat())).await.unwrap_err();
    assert!(matches!(e, Error::Connect { .. }), "{e:?}");
}

#[tokio::test]
async fn non_xml_error_pages_are_protocol_errors() {
    let url =
        serve(Router::new().route(
            "/api/2.4/serverInfo",
            get(|| async { (axum::http::StatusCode::BAD_GATEWAY, "<html>nginx</html>") }),
        ))
        .await;
    let e = Client::connect(Config::new(url, "demo", pat())).await.unwrap_err();
    assert!(matches!(e, Error::Protocol { status: 502, .. }), "{e:?}");
    assert!(e.to_string().contains("nginx"));
}

#[tokio::test]
async fn old_servers_are_refused_and_the_session_made_meanwhile_is_ended() {
    let info = r#"<?xml version='1.0' encoding='UTF-8'?><tsResponse xmlns="http://tableau.com/api"><serverInfo><productVersion build="x">2019.4</productVersion><restApiVersion>3.6</restApiVersion></serverInfo></tsResponse>"#;
    let creds = r#"<tsResponse xmlns="http://tableau.com/api"><credentials token="T-OLD"><site id="s1" contentUrl="demo"/><user id="u1"/></credentials></tsResponse>"#;
    let signed_out = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let so = signed_out.clone();
    let url = serve(
        Router::new()
            .route("/api/2.4/serverInfo", get(move || async move { info }))
            .route("/api/{v}/auth/signin", post(move || async move { creds }))
            .route(
                "/api/{v}/auth/signout",
                post(move |h: axum::http::HeaderMap| async move {
                    if h.get("x-tableau-auth").is_some_and(|t| t == "T-OLD") {
                        so.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                    axum::http::StatusCode::NO_CONTENT
                }),
            ),
    )
    .await;
    let e = Client::connect(Config::new(url, "demo", pat())).await.unwrap_err();
    assert!(matches!(&e, Error::Version { found, .. } if found == "3.6"), "{e:?}");
    assert_eq!(
        signed_out.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the session signed in meanwhile was not ended"
    );
}

/// serverInfo and the sign-in are one round trip: the server answers serverInfo only once
/// the sign-in has arrived (a client asking one after the other fails), and the session then
/// uses the server's version although the sign-in went to the lowest one tabflow supports.
#[tokio::test]
async fn server_info_and_the_sign_in_go_together_and_the_session_uses_the_servers_version() {
    let info = r#"<tsResponse xmlns="http://tableau.com/api"><serverInfo><productVersion build="x">2024.1</productVersion><restApiVersion>3.21</restApiVersion></serverInfo></tsResponse>"#;
    let creds = r#"<tsResponse xmlns="http://tableau.com/api"><credentials token="T-1"><site id="s1" contentUrl="demo"/><user id="u1"/></credentials></tsResponse>"#;
    let arrived = std::sync::Arc::new(tokio::sync::Notify::new());
    let versions = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let (a1, a2, v1) = (arrived.clone(), arrived.clone(), versions.clone());
    let url = serve(
        Router::new()
            .route(
                "/api/2.4/serverInfo",
                get(move || async move {
                    match tokio::time::timeout(std::time::Duration::from_secs(3), a1.notified()).await {
                        Ok(()) => (axum::http::StatusCode::OK, info),
                        Err(_) => (axum::http::StatusCode::SERVICE_UNAVAILABLE, "no sign-in arrived meanwhile"),
                    }
                }),
            )
            .route(
                "/api/{v}/auth/signin",
                post(move |axum::extract::Path(v): axum::extract::Path<String>| async move {
                    v1.lock().unwrap().push(v);
                    a2.notify_one();
                    creds
                }),
            ),
    )
    .await;
    let mut cfg = fast(Config::new(url, "demo", pat()));
    cfg.max_retries = 0;
    let c = Client::connect(cfg).await.unwrap();
    assert_eq!(c.session().await.api_version, "3.21");
    assert_eq!(*versions.lock().unwrap(), vec![tabflow_client::client::MIN_API_VERSION.to_string()]);
}

#[tokio::test]
async fn secrets_never_reach_debug_output() {
    let emu = demo().await;
    let cfg = Config::new(
        emu.url.clone(),
        "demo",
        Credentials::Pat { name: "tabflow".into(), secret: Secret::new("tabflow") },
    );
    let dbg = format!("{cfg:?}");
    assert!(dbg.contains("[redacted]") && !dbg.contains("secret: \"tabflow\""), "{dbg}");
    let c = Client::connect(cfg).await.unwrap();
    let s = c.session().await;
    assert!(!format!("{s:?}").contains(s.token.expose_secret()));
    assert!(!format!("{c:?}").contains(s.token.expose_secret()));
}

fn jwt(sub: &str, secret: &str) -> String {
    use base64::Engine;
    use hmac::{KeyInit, Mac};
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let h = b64.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let c = b64.encode(format!(r#"{{"sub":"{sub}","exp":{}}}"#, chrono::Utc::now().timestamp() + 600));
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{h}.{c}").as_bytes());
    format!("{h}.{c}.{}", b64.encode(mac.finalize().into_bytes()))
}

#[tokio::test]
async fn signs_in_with_a_connected_app_jwt() {
    let emu = demo().await;
    let c = Client::connect(Config::new(
        emu.url.clone(),
        "demo",
        Credentials::Jwt { token: Secret::new(jwt("echen", "tabflow")) },
    ))
    .await
    .unwrap();
    let me = c.session().await.user_id;
    assert_eq!(c.user(&me.as_str().into()).await.unwrap().name.as_deref(), Some("echen"));
    let forged = Credentials::Jwt { token: Secret::new(jwt("admin", "not-the-secret")) };
    let e = Client::connect(Config::new(emu.url.clone(), "demo", forged)).await.unwrap_err();
    assert!(matches!(e, Error::SignIn { .. }), "{e:?}");
}

#[tokio::test]
async fn switches_site_and_refuses_unknown_sites() {
    let emu = demo().await;
    let c = connect(&emu).await;
    let before = c.session().await;
    let after = c.switch_site("demo").await.unwrap();
    assert_ne!(before.token.expose_secret(), after.token.expose_secret());
    assert_eq!(c.projects().collect().await.unwrap().len(), emu.emulator.snapshot().projects.len());
    let e = c.switch_site("elsewhere").await.unwrap_err();
    assert_eq!(e.code(), Some("401003"));
}

/// A server that records every request it gets, with its `X-Tableau-Auth` and body.
async fn catcher() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let s = seen.clone();
    let app = Router::new().fallback(move |req: axum::extract::Request| {
        let s = s.clone();
        async move {
            let auth = req.headers().get("x-tableau-auth").map(|v| v.to_str().unwrap_or("").to_string());
            let path = req.uri().path().to_string();
            let body = axum::body::to_bytes(req.into_body(), 1 << 20).await.unwrap_or_default();
            s.lock().unwrap().push(format!("{path} auth={auth:?} body={}", String::from_utf8_lossy(&body)));
            "caught"
        }
    });
    (serve(app).await, seen)
}

fn redirect_to(target: String) -> Router {
    Router::new().fallback(move |uri: axum::http::Uri| {
        let to = format!("{target}{}", uri.path());
        async move { (axum::http::StatusCode::TEMPORARY_REDIRECT, [(axum::http::header::LOCATION, to)], "") }
    })
}

#[tokio::test]
async fn a_redirect_at_sign_in_is_refused_and_the_credentials_stay_home() {
    let (elsewhere, seen) = catcher().await;
    let url = serve(redirect_to(format!("{elsewhere}/steal?token=x"))).await;
    let e = Client::connect(fast(Config::new(url, "demo", pat()))).await.unwrap_err();
    assert!(matches!(&e, Error::Redirect { status: 307, .. }), "{e:?}");
    assert!(e.to_string().contains("/steal") && !e.to_string().contains("token=x"), "{e}");
    assert!(e.hint().unwrap().contains("--server"), "{e:?}");
    assert!(seen.lock().unwrap().is_empty(), "followed: {:?}", seen.lock().unwrap());
}

#[tokio::test]
async fn a_redirect_on_a_signed_in_call_is_refused_and_the_token_stays_home() {
    let (elsewhere, seen) = catcher().await;
    let info = r#"<tsResponse xmlns="http://tableau.com/api"><serverInfo><productVersion build="x">2025.1</productVersion><restApiVersion>3.25</restApiVersion></serverInfo></tsResponse>"#;
    let creds = r#"<tsResponse xmlns="http://tableau.com/api"><credentials token="SESSION-TOKEN-123"><site id="s1" contentUrl="demo"/><user id="u1"/></credentials></tsResponse>"#;
    let url = serve(
        Router::new()
            .route("/api/2.4/serverInfo", get(move || async move { info }))
            .route("/api/{v}/auth/signin", post(move || async move { creds }))
            .merge(redirect_to(elsewhere)),
    )
    .await;
    let c = Client::connect(fast(Config::new(url, "demo", pat()))).await.unwrap();
    let e = c.send(tabflow_client::Request::get("workbooks")).await.unwrap_err();
    assert!(matches!(&e, Error::Redirect { status: 307, .. }), "{e:?}");
    assert!(seen.lock().unwrap().is_empty(), "the session token followed the redirect: {:?}", seen.lock().unwrap());
}

#[test]
fn plain_http_to_another_machine_is_warned_about() {
    use tabflow_client::plain_http_warning;
    for local in ["http://127.0.0.1:8080", "http://localhost", "http://[::1]:9/", "https://tableau.example.com"] {
        assert_eq!(plain_http_warning(local), None, "{local}");
    }
    let w = plain_http_warning("http://tableau.example.com/#/site/x").unwrap();
    assert!(w.contains("http://tableau.example.com/") && w.contains("https://"), "{w}");
    assert!(plain_http_warning("http://10.0.0.5").is_some());
}

#[tokio::test]
async fn an_answer_larger_than_the_cap_is_refused_announced_or_not() {
    // Announced: Content-Length above the cap is refused before reading.
    let big = "x".repeat(4096);
    let url = serve(Router::new().route("/api/2.4/serverInfo", get(move || async move { big }))).await;
    let mut cfg = fast(Config::new(url, "demo", pat()));
    cfg.max_response_bytes = 1024;
    let e = Client::connect(cfg).await.unwrap_err();
    assert!(matches!(&e, Error::TooLarge { limit: 1024, what: "answer", .. }), "{e:?}");
    assert!(e.hint().is_some());
    // Not announced (chunked): cut off at the cap while reading.
    let url = serve(Router::new().route(
        "/api/2.4/serverInfo",
        get(|| async {
            let chunks = (0..64).map(|_| Ok::<_, std::io::Error>(axum::body::Bytes::from(vec![b'y'; 1024])));
            axum::body::Body::from_stream(futures::stream::iter(chunks.collect::<Vec<_>>()))
        }),
    ))
    .await;
    let mut cfg = fast(Config::new(url, "demo", pat()));
    cfg.max_response_bytes = 8 * 1024;
    let e = Client::connect(cfg).await.unwrap_err();
    assert!(matches!(&e, Error::TooLarge { limit: 8192, .. }), "{e:?}");
}

#[tokio::test]
async fn a_download_larger_than_its_cap_is_a_clear_error() {
    let emu = demo().await;
    let mut cfg = fast(Config::new(emu.url.clone(), "demo", pat()));
    cfg.max_download_bytes = 64;
    let c = Client::connect(cfg).await.unwrap();
    let wb = emu.emulator.snapshot().workbooks[0].id.clone();
    let e = c.download_workbook(&wb.as_str().into(), false).await.unwrap_err();
    assert!(matches!(&e, Error::TooLarge { what: "download", limit: 64, .. }), "{e:?}");
    assert!(e.hint().unwrap().contains("back up"), "{e:?}");
    // The API answers keep their own (larger) cap.
    assert!(c.send(tabflow_client::Request::get("workbooks")).await.is_ok());
}
