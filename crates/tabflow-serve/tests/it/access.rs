//! Tokens and roles on every route (401 without a token or with a revoked one, 403 for the
//! wrong role), JSON errors for bad bodies (400, 413, 422), and the listen-address guard.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tabflow_app::Policy;

use crate::support::*;

struct Route {
    method: Method,
    path: &'static str,
    body: Option<Value>,
    /// The token names allowed.
    allowed: &'static [&'static str],
    /// What an allowed token gets (None: not sent by this test; the flow test does it).
    ok: Option<StatusCode>,
}

const ALL: &[&str] = &["viewer", "requester", "approver", "approver2", "admin"];

fn routes() -> Vec<Route> {
    let r = |method: Method, path, body: Option<Value>, allowed, ok| Route { method, path, body, allowed, ok };
    let nf = Some(StatusCode::NOT_FOUND);
    vec![
        r(
            Method::POST,
            "/api/v1/plans",
            Some(json!({"request": "archive workbooks in Finance not viewed in 90 days"})),
            &["requester", "admin"],
            None,
        ),
        r(Method::GET, "/api/v1/plans/p-none", None, ALL, nf),
        r(
            Method::POST,
            "/api/v1/plans/p-none/answers",
            Some(json!({"q1": "archive-all"})),
            &["requester", "admin"],
            nf,
        ),
        r(
            Method::POST,
            "/api/v1/plans/p-none/approvals",
            Some(json!({"decision": "approve", "items": "all"})),
            &["approver", "approver2", "admin"],
            nf,
        ),
        r(
            Method::POST,
            "/api/v1/plans/p-none/approval-requests",
            Some(json!({"items": "all"})),
            &["requester", "admin"],
            nf,
        ),
        r(Method::GET, "/api/v1/plans/p-none/approval-requests", None, ALL, nf),
        r(Method::GET, "/api/v1/plans/p-none/approval-requests/ar-none", None, ALL, nf),
        r(
            Method::POST,
            "/api/v1/runs",
            Some(json!({"plan_id": "p-none"})),
            &["requester", "approver", "approver2", "admin"],
            nf,
        ),
        r(Method::GET, "/api/v1/runs", None, ALL, Some(StatusCode::OK)),
        r(Method::GET, "/api/v1/runs/r-none", None, ALL, nf),
        r(Method::GET, "/api/v1/runs/r-none/events", None, ALL, nf),
        r(Method::POST, "/api/v1/runs/r-none/rollback", None, &["requester", "approver", "approver2", "admin"], nf),
        r(
            Method::POST,
            "/api/v1/query",
            Some(json!({"question": "how many workbooks are in Finance?"})),
            ALL,
            Some(StatusCode::OK),
        ),
        r(Method::GET, "/api/v1/query?question=list%20projects", None, ALL, Some(StatusCode::OK)),
        r(Method::GET, "/api/v1/audit", None, ALL, Some(StatusCode::OK)),
        r(Method::GET, "/api/v1/audit/verify", None, ALL, Some(StatusCode::OK)),
        r(Method::GET, "/api/v1/tokens", None, &["admin"], Some(StatusCode::OK)),
        r(
            Method::POST,
            "/api/v1/tokens",
            Some(json!({"name": "made-by-admin", "role": "viewer"})),
            &["admin"],
            Some(StatusCode::CREATED),
        ),
        r(Method::DELETE, "/api/v1/tokens/nobody", None, &["admin"], nf),
    ]
}

async fn call(env: &Env, r: &Route, token: Option<&str>) -> Answer {
    match &r.body {
        Some(b) => env.send(r.method.clone(), r.path, token, b).await,
        None => env.raw(r.method.clone(), r.path, token, None).await,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_needs_a_live_token_of_a_role_allowed_to_use_it() {
    let env = env(Policy::default()).await;
    for r in routes() {
        let a = call(&env, &r, None).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{} {} without a token: {}", r.method, r.path, a.text);
        assert_eq!(a.code(), "unauthorized");
        let a = call(&env, &r, Some("tfk_not-a-token")).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{} {} with an unknown token: {}", r.method, r.path, a.text);
        for name in ALL {
            let a = call(&env, &r, Some(env.token(name))).await;
            if r.allowed.contains(name) {
                if let Some(ok) = r.ok {
                    assert_eq!(a.status, ok, "{} {} as {name}: {}", r.method, r.path, a.text);
                }
            } else {
                assert_eq!(a.status, StatusCode::FORBIDDEN, "{} {} as {name}: {}", r.method, r.path, a.text);
                assert_eq!(a.code(), "forbidden");
                assert!(a.json["error"]["message"].as_str().unwrap().contains(name), "{}", a.text);
            }
        }
    }
    // The refused calls changed nothing: no plan, run or token but the admin's one.
    assert!(env.app.runs(10).await.unwrap().is_empty());
    assert_eq!(env.app.tokens().await.unwrap().len(), ROLES.len() + 1);
    assert_eq!(env.emu.emulator.stats()["writes"].as_u64(), Some(0), "nothing was written to the site");

    // The OpenAPI document is public and generated from the handlers.
    let doc = env.get("/api/openapi.json", None).await;
    assert_eq!(doc.status, StatusCode::OK);
    for r in routes() {
        let path = r
            .path
            .split('?')
            .next()
            .unwrap_or_default()
            .replace("p-none", "{id}")
            .replace("ar-none", "{request}")
            .replace("r-none", "{id}")
            .replace("nobody", "{name}");
        let method = r.method.as_str().to_lowercase();
        assert!(doc.json["paths"][&path][&method].is_object(), "{method} {path} is in the OpenAPI document");
    }
    assert!(doc.json["components"]["securitySchemes"]["bearer"].is_object(), "{}", doc.text);
    // An unknown route is a JSON 404 too.
    let a = env.get("/api/v1/nothing-here", Some(env.token("viewer"))).await;
    assert_eq!((a.status, a.code()), (StatusCode::NOT_FOUND, "not-found"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bodies_are_json_errors_and_a_revoked_token_is_refused() {
    let env = env(Policy::default()).await;
    let req = Some(env.token("requester"));
    let post = |bytes: Vec<u8>, ctype: &'static str| {
        let env = &env;
        async move { env.raw(Method::POST, "/api/v1/runs", req, Some((ctype, bytes))).await }
    };
    let a = post(b"{\"plan_id\": ".to_vec(), "application/json").await;
    assert_eq!((a.status, a.code()), (StatusCode::BAD_REQUEST, "bad-request"), "{}", a.text);
    let a = post(b"{\"plan_id\": 5}".to_vec(), "application/json").await;
    assert_eq!((a.status, a.code()), (StatusCode::UNPROCESSABLE_ENTITY, "invalid"), "{}", a.text);
    assert!(a.text.contains("plan_id"), "{}", a.text);
    let a = post(b"{\"plan_id\": \"p-none\"}".to_vec(), "text/plain").await;
    assert_eq!((a.status, a.code()), (StatusCode::BAD_REQUEST, "bad-request"), "{}", a.text);
    let big = json!({"plan_id": "x".repeat(tabflow_serve::BODY_LIMIT + 1)}).to_string().into_bytes();
    let a = post(big, "application/json").await;
    assert_eq!((a.status, a.code()), (StatusCode::PAYLOAD_TOO_LARGE, "too-large"), "{}", a.text);
    // An intent and a request at once is refused by name.
    let a = env.post("/api/v1/plans", req, &json!({"request": "x", "intent": "archive-stale-content"})).await;
    assert_eq!((a.status, a.code()), (StatusCode::UNPROCESSABLE_ENTITY, "invalid"), "{}", a.text);
    // A bad body without a token is a 401 first.
    let a = env.raw(Method::POST, "/api/v1/runs", None, Some(("application/json", b"{".to_vec()))).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);

    // Revoked through the API by an admin: refused from then on, and audited.
    let viewer = env.token("viewer").to_string();
    assert_eq!(env.get("/api/v1/runs", Some(&viewer)).await.status, StatusCode::OK);
    let a = env.raw(Method::DELETE, "/api/v1/tokens/viewer", Some(env.token("admin")), None).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.text);
    let a = env.get("/api/v1/runs", Some(&viewer)).await;
    assert_eq!((a.status, a.code()), (StatusCode::UNAUTHORIZED, "unauthorized"), "{}", a.text);
    let a = env.raw(Method::DELETE, "/api/v1/tokens/viewer", Some(env.token("admin")), None).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND, "a revoked token stays revoked: {}", a.text);
    let audit = env.app.audit_records().await.unwrap();
    let revoked = audit.iter().find(|r| r.action == "token.revoked").expect("audited");
    assert_eq!(revoked.actor, "admin via api");
    assert!(!serde_json::to_string(&audit).unwrap().contains(&viewer), "the token is never in the audit log");

    // A token made by an admin through the API works at once, with its role.
    let a = env.post("/api/v1/tokens", Some(env.token("admin")), &json!({"name": "late", "role": "viewer"})).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    let late = a.json["token"].as_str().unwrap().to_string();
    assert_eq!(env.get("/api/v1/audit/verify", Some(&late)).await.json["ok"], json!(true));
    let a = env.post("/api/v1/runs", Some(&late), &json!({"plan_id": "p-none"})).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
}

#[test]
fn a_non_loopback_address_needs_insecure_listen() {
    let e = tabflow_serve::check_listen(&"0.0.0.0:8080".parse().unwrap(), false).expect_err("refused");
    assert!(e.message.contains("0.0.0.0:8080") && e.hint.contains("--insecure-listen"), "{e:?}");
    assert!(tabflow_serve::check_listen(&"0.0.0.0:8080".parse().unwrap(), true).is_ok());
    assert!(tabflow_serve::check_listen(&"127.0.0.1:8080".parse().unwrap(), false).is_ok());
    assert!(tabflow_serve::check_listen(&"[::1]:8080".parse().unwrap(), false).is_ok());
}
