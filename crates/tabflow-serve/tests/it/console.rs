//! The web console over real HTTP: sign in with a token (HttpOnly, SameSite=Strict session
//! cookie), CSRF refusal, a requester asks and answers and asks approval for all but two
//! workbooks (no approve button), an approver sees that selection ticked and approves it, the
//! requester runs it, the run's events end with `finished`, the approver rolls back with
//! confirmation, the audit page shows the chain intact; a revoked token's session ends.

use std::collections::BTreeMap;

use html::*;
use reqwest::StatusCode;
use tabflow_app::Policy;

use crate::support::*;

/// Minimal HTML/form helpers (no HTML parser in the tree: the pages are ours and regular).
mod html {
    /// Every `value="…"` of inputs named `name` (with `checked` if `only_checked`).
    pub fn inputs(html: &str, name: &str, only_checked: bool) -> Vec<String> {
        html.split("<input")
            .skip(1)
            .filter_map(|tag| {
                let tag = &tag[..tag.find('>').unwrap_or(tag.len())];
                if !tag.contains(&format!("name=\"{name}\"")) || (only_checked && !tag.contains(" checked")) {
                    return None;
                }
                let v = tag.split("value=\"").nth(1)?;
                Some(v[..v.find('"')?].to_string())
            })
            .collect()
    }
}

pub(crate) struct Browser<'a> {
    env: &'a Env,
    http: reqwest::Client,
    cookie: Option<String>,
}

pub(crate) struct Got {
    pub status: StatusCode,
    pub location: String,
    pub set_cookie: String,
    pub body: String,
}

impl<'a> Browser<'a> {
    pub(crate) fn new(env: &'a Env) -> Self {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Browser { env, http, cookie: None }
    }

    async fn send(&self, rb: reqwest::RequestBuilder) -> Got {
        let rb = match &self.cookie {
            Some(c) => rb.header("cookie", c),
            None => rb,
        };
        let r = rb.send().await.unwrap();
        assert_eq!(r.headers().get("cache-control").and_then(|v| v.to_str().ok()), Some("no-store"));
        let h = |k: &str| r.headers().get(k).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let (location, set_cookie) = (h("location"), h("set-cookie"));
        Got { status: r.status(), location, set_cookie, body: r.text().await.unwrap() }
    }

    pub(crate) async fn get(&self, path: &str) -> Got {
        self.send(self.http.get(format!("{}{path}", self.env.server.url))).await
    }

    pub(crate) async fn post(&self, path: &str, form: &[(&str, &str)]) -> Got {
        let body: String = url_encode(form);
        self.send(
            self.http
                .post(format!("{}{path}", self.env.server.url))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body),
        )
        .await
    }

    pub(crate) async fn sign_in(&mut self, token: &str) {
        let g = self.post("/console/login", &[("token", token)]).await;
        assert_eq!(g.status, StatusCode::SEE_OTHER, "{}", g.body);
        assert!(g.set_cookie.contains("HttpOnly") && g.set_cookie.contains("SameSite=Strict"), "{}", g.set_cookie);
        assert!(!g.set_cookie.contains(token), "the cookie is not the token");
        self.cookie = Some(g.set_cookie.split(';').next().unwrap().to_string());
    }

    /// The CSRF token of a page's forms.
    pub(crate) async fn csrf(&self, path: &str) -> String {
        let g = self.get(path).await;
        inputs(&g.body, "csrf", false).into_iter().next().expect("a CSRF field")
    }
}

fn url_encode(form: &[(&str, &str)]) -> String {
    form.iter()
        .map(|(k, v)| {
            let enc = |s: &str| {
                s.bytes()
                    .map(|b| match b {
                        b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
                        b' ' => "+".into(),
                        _ => format!("%{b:02X}"),
                    })
                    .collect::<String>()
            };
            format!("{}={}", enc(k), enc(v))
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn workbooks(site: &tabflow_site::Site) -> BTreeMap<String, (String, Vec<String>)> {
    site.workbooks.iter().map(|w| (w.id.clone(), (w.project_id.clone(), w.tags.clone()))).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requester_and_approver_work_through_the_console_with_sessions_and_csrf() {
    let env = env(Policy::default()).await;
    let before = env.emu.emulator.snapshot();
    let mut req = Browser::new(&env);
    assert_eq!(req.get("/console/ask").await.location, "/console/login", "signed out: to the sign-in page");
    let g = req.post("/console/login", &[("token", "tfk_wrong")]).await;
    assert_eq!(g.status, StatusCode::UNAUTHORIZED);
    assert!(g.set_cookie.is_empty());
    req.sign_in(env.token("requester")).await;
    let csrf = req.csrf("/console/ask").await;

    // Without the CSRF token: refused, nothing planned.
    let request = "Clean up the Finance project - archive workbooks not accessed in 90 days";
    let g = req.post("/console/ask", &[("request", request)]).await;
    assert_eq!(g.status, StatusCode::FORBIDDEN, "{}", g.body);
    assert!(g.body.contains("CSRF"));
    let g = req.post("/console/ask", &[("csrf", "0000"), ("request", request)]).await;
    assert_eq!(g.status, StatusCode::FORBIDDEN);
    assert!(env.app.audit_records().await.unwrap().iter().all(|r| r.action != "plan.created"));

    // Ask, answer the question, ask approval for all but two workbooks.
    let g = req.post("/console/ask", &[("csrf", &csrf), ("request", request)]).await;
    assert_eq!(g.status, StatusCode::SEE_OTHER, "{}", g.body);
    let page = req.get(&g.location).await.body;
    assert!(page.contains("name=\"q1\""), "the question is asked: {page}");
    let g = req.post(&format!("{}/answers", g.location), &[("csrf", &csrf), ("q1", "archive-all")]).await;
    assert_eq!(g.status, StatusCode::SEE_OTHER, "{}", g.body);
    let plan_path = g.location.clone();
    let page = req.get(&plan_path).await.body;
    let items = inputs(&page, "item", false);
    assert!(items.len() >= 3, "{page}");
    assert!(!page.contains("Approve the ticked items"), "a requester has no approve button");
    assert!(page.contains("Ask for approval"));
    let (unticked, ticked) = items.split_at(2);
    let mut form: Vec<(&str, &str)> = vec![("csrf", &csrf), ("action", "request")];
    form.extend(ticked.iter().map(|i| ("item", i.as_str())));
    let g = req.post(&format!("{plan_path}/decide"), &form).await;
    assert_eq!(g.status, StatusCode::SEE_OTHER, "{}", g.body);
    let review = g.location.clone();
    assert!(review.contains("?request=ar-"), "{review}");
    // The requester's approve is refused on the server too.
    let mut form: Vec<(&str, &str)> = vec![("csrf", &csrf), ("action", "approve")];
    form.extend(ticked.iter().map(|i| ("item", i.as_str())));
    assert_eq!(req.post(&format!("{plan_path}/decide"), &form).await.status, StatusCode::FORBIDDEN);

    // The approver opens the review with the requester's selection ticked and approves it.
    let mut appr = Browser::new(&env);
    appr.sign_in(env.token("approver")).await;
    let acsrf = appr.csrf("/console/ask").await;
    assert_ne!(acsrf, csrf, "one CSRF token per session");
    let page = appr.get(&review).await.body;
    let mut checked = inputs(&page, "item", true);
    checked.sort();
    let mut want = ticked.to_vec();
    want.sort();
    assert_eq!(checked, want, "the requester's selection is ticked");
    assert!(page.contains("Approve the ticked items"));
    let mut form: Vec<(&str, &str)> = vec![("csrf", &acsrf), ("action", "approve")];
    form.extend(checked.iter().map(|i| ("item", i.as_str())));
    let g = appr.post(&format!("{plan_path}/decide"), &form).await;
    assert_eq!(g.status, StatusCode::SEE_OTHER, "{}", g.body);
    let page = req.get(&plan_path).await.body;
    assert!(page.contains("Approved by approver"), "{page}");

    // The requester runs it; the run page follows its events to the end.
    let plan_id = plan_path.rsplit('/').next().unwrap();
    let g = req.post("/console/runs", &[("csrf", &csrf), ("plan_id", plan_id)]).await;
    assert_eq!(g.status, StatusCode::SEE_OTHER, "{}", g.body);
    let run_path = g.location.clone();
    assert!(req.get(&run_path).await.body.contains("EventSource"));
    let events = req.get(&format!("{run_path}/events")).await.body;
    assert!(events.contains("event: finished"), "{events}");
    let after = env.emu.emulator.snapshot();
    for id in unticked {
        let id = id.rsplit('/').next().unwrap();
        assert_eq!(workbooks(&before)[id], workbooks(&after)[id], "unticked workbook {id} is unchanged");
    }

    // Rollback: a plan of its own. The requester asks for it from the runs page (only once
    // confirmed) and lands on its review page; nothing changes until the approver approves.
    let run_id = run_path.rsplit('/').next().unwrap();
    let runs = req.get("/console/runs").await.body;
    assert!(runs.contains(run_id) && runs.contains("Roll back"), "{runs}");
    let g = req.post(&format!("{run_path}/rollback"), &[("csrf", &csrf)]).await;
    assert_eq!(g.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", g.body);
    let g = req.post(&format!("{run_path}/rollback"), &[("csrf", &csrf), ("confirm", "yes")]).await;
    assert_eq!(g.status, StatusCode::SEE_OTHER, "{}", g.body);
    let rb_review = g.location.clone();
    assert!(rb_review.starts_with("/console/plans/") && rb_review.contains("?request=ar-"), "{rb_review}");
    let rb_plan = rb_review.split('?').next().unwrap().to_string();
    let page = req.get(&rb_review).await.body;
    assert!(!page.contains("Approve the ticked items"), "a requester has no approve button");
    assert_ne!(workbooks(&env.emu.emulator.snapshot()), workbooks(&before), "nothing undone yet");
    // The approver approves every item on the review page, then runs it.
    let page = appr.get(&rb_review).await.body;
    let checked = inputs(&page, "item", true);
    assert!(!checked.is_empty(), "the rollback's items are ticked: {page}");
    let mut form: Vec<(&str, &str)> = vec![("csrf", &acsrf), ("action", "approve")];
    form.extend(checked.iter().map(|i| ("item", i.as_str())));
    let g = appr.post(&format!("{rb_plan}/decide"), &form).await;
    assert_eq!(g.status, StatusCode::SEE_OTHER, "{}", g.body);
    let rpid = rb_plan.rsplit('/').next().unwrap();
    let g = appr.post("/console/runs", &[("csrf", &acsrf), ("plan_id", rpid)]).await;
    assert_eq!(g.status, StatusCode::SEE_OTHER, "{}", g.body);
    assert_eq!(g.location, run_path, "the run page of the run undone shows the rollback's progress");
    let events = appr.get(&format!("{run_path}/events")).await.body;
    assert!(events.contains("rolled-back"), "{events}");
    assert_eq!(workbooks(&env.emu.emulator.snapshot()), workbooks(&before), "the site is restored");

    // Audit: chain intact; CSV for download.
    let page = appr.get("/console/audit").await.body;
    assert!(page.contains("Hash chain intact"), "{page}");
    assert!(page.contains("requester via api") && page.contains("approval.approve"), "{page}");
    assert!(appr.get("/console/audit.csv").await.body.lines().count() > 5);

    // A revoked token's session ends.
    env.app.revoke_token("requester", "test").await.unwrap();
    assert_eq!(req.get("/console/ask").await.location, "/console/login");
}
