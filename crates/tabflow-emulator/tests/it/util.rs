use tabflow_emulator::{Options, Running};
use tabflow_site::Site;
use tabflow_wire::xml;

pub struct Client {
    pub http: reqwest::Client,
    pub url: String,
    pub token: String,
    pub site_id: String,
}

pub const V: &str = "3.25";

pub fn demo_site() -> Site {
    let mut s = tabflow_site::generate::demo();
    s.shift_time_to(chrono::Utc::now());
    s
}

pub async fn start_demo() -> Running {
    tabflow_emulator::start(Options::new(demo_site())).await.expect("emulator starts")
}

pub fn pat_body(name: &str, secret: &str, site: &str) -> String {
    format!(
        r#"<tsRequest><credentials personalAccessTokenName="{name}" personalAccessTokenSecret="{secret}"><site contentUrl="{site}"/></credentials></tsRequest>"#
    )
}

pub async fn sign_in_body(url: &str, body: String) -> (u16, String) {
    let r = reqwest::Client::new().post(format!("{url}/api/{V}/auth/signin")).body(body).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

pub async fn sign_in(url: &str) -> Client {
    let (status, text) = sign_in_body(url, pat_body("tabflow", "tabflow", "demo")).await;
    assert_eq!(status, 200, "{text}");
    let doc = xml::parse_response(&text).unwrap();
    let c = doc.credentials.unwrap();
    Client {
        http: reqwest::Client::new(),
        url: url.to_string(),
        token: c.token.unwrap(),
        site_id: c.site.unwrap().id.unwrap(),
    }
}

impl Client {
    pub fn site_url(&self, path: &str) -> String {
        format!("{}/api/{V}/sites/{}/{}", self.url, self.site_id, path.trim_start_matches('/'))
    }

    pub async fn send(&self, method: reqwest::Method, path: &str, body: Option<String>) -> (u16, String) {
        let mut rb = self.http.request(method, self.site_url(path)).header("X-Tableau-Auth", &self.token);
        if let Some(b) = body {
            rb = rb.body(b);
        }
        let r = rb.send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        self.send(reqwest::Method::GET, path, None).await
    }

    pub async fn get_doc(&self, path: &str) -> xml::TsResponse {
        let (s, t) = self.get(path).await;
        assert_eq!(s, 200, "GET {path}: {t}");
        xml::parse_response(&t).unwrap()
    }

    pub async fn put(&self, path: &str, body: &str) -> (u16, String) {
        self.send(reqwest::Method::PUT, path, Some(body.to_string())).await
    }

    pub async fn post(&self, path: &str, body: &str) -> (u16, String) {
        self.send(reqwest::Method::POST, path, Some(body.to_string())).await
    }

    pub async fn delete(&self, path: &str) -> (u16, String) {
        self.send(reqwest::Method::DELETE, path, None).await
    }
}

/// The `<error code>` of an error body.
pub fn error_code(body: &str) -> String {
    xml::parse_response(body)
        .ok()
        .and_then(|d| d.error)
        .map(|e| e.code)
        .unwrap_or_else(|| format!("<not an error body: {body}>"))
}
