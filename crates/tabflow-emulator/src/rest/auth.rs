//! Sign-in (PAT, password, connected-app JWT), sign-out, site switch, serverInfo, sites.

use axum::http::HeaderMap;
use base64::Engine;
use chrono::Utc;
use tabflow_wire::{ApiError, xml};

use super::{Auth, Q, Res, Shr, no_content, ok_xml, parse_body};
use crate::server::{Fail, Shared};
use crate::state::Session;

pub(crate) async fn server_info() -> Res {
    let mut r = xml::TsResponse::new();
    r.server_info = Some(xml::ServerInfo {
        product_version: xml::ProductVersion {
            build: "20251.25.0101.0000".into(),
            version: tabflow_wire::PRODUCT_VERSION.into(),
        },
        rest_api_version: tabflow_wire::API_VERSION.into(),
    });
    ok_xml(&r)
}

fn credentials_xml(shared: &Shared, session: &Session) -> xml::Credentials {
    let st = shared.read();
    let left = session.expires - Utc::now();
    let secs = left.num_seconds().max(0);
    xml::Credentials {
        token: Some(session.token.clone()),
        estimated_time_to_expiration: Some(format!("{}:{:02}:{:02}", secs / 3600, (secs / 60) % 60, secs % 60)),
        site: Some(xml::Site {
            id: Some(st.site.site.id.clone()),
            content_url: Some(st.site.site.content_url.clone()),
            ..xml::Site::default()
        }),
        user: Some(xml::IdRef::id(session.user_id.clone())),
        ..xml::Credentials::default()
    }
}

fn new_token() -> String {
    // Tableau tokens look like base64 of random bytes followed by `|` and the site LUID.
    let a = uuid::Uuid::new_v4();
    let b = uuid::Uuid::new_v4();
    format!("{}{}", a.simple(), b.simple())
}

/// Checks a connected-app JWT (HS256 with the emulator's secret) and returns its subject.
fn verify_jwt(jwt: &str, secret: &str) -> Result<String, String> {
    use hmac::{KeyInit, Mac};
    let parts: Vec<&str> = jwt.split('.').collect();
    if parts.len() != 3 {
        return Err("the JWT does not have three parts".into());
    }
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header: serde_json::Value = b64
        .decode(parts[0].trim_end_matches('='))
        .ok()
        .and_then(|h| serde_json::from_slice(&h).ok())
        .ok_or("the JWT header is not base64url JSON")?;
    if header.get("alg").and_then(|a| a.as_str()) != Some("HS256") {
        return Err("only HS256 connected-app tokens are accepted".into());
    }
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).map_err(|e| e.to_string())?;
    mac.update(format!("{}.{}", parts[0], parts[1]).as_bytes());
    let sig = b64.decode(parts[2].trim_end_matches('=')).map_err(|_| "the JWT signature is not base64url")?;
    mac.verify_slice(&sig).map_err(|_| "the JWT signature does not match the connected app's secret")?;
    let claims: serde_json::Value = b64
        .decode(parts[1].trim_end_matches('='))
        .ok()
        .and_then(|c| serde_json::from_slice(&c).ok())
        .ok_or("the JWT claims are not base64url JSON")?;
    if let Some(exp) = claims.get("exp").and_then(|e| e.as_i64())
        && exp < Utc::now().timestamp()
    {
        return Err("the JWT has expired".into());
    }
    claims.get("sub").and_then(|s| s.as_str()).map(str::to_string).ok_or_else(|| "the JWT has no sub claim".into())
}

pub(crate) async fn sign_in(shared: Shr, body: String) -> Res {
    let shared = shared.0;
    let req = parse_body(&body)?;
    let creds = req.credentials.ok_or_else(|| super::missing("a <credentials> element"))?;
    let content_url = creds.site.as_ref().and_then(|s| s.content_url.clone()).unwrap_or_default();
    let opts = &shared.options;
    let fail = |detail: &str| Fail(ApiError::signin_failed(detail.to_string()));
    let session = {
        let mut st = shared.write();
        if !content_url.eq_ignore_ascii_case(&st.site.site.content_url) {
            return Err(fail(
                "Error signing in to Tableau Server: the site content URL is not valid for these credentials.",
            ));
        }
        let (user_idx, pat_name) = if let Some(name) = &creds.personal_access_token_name {
            let secret = creds.personal_access_token_secret.as_deref().unwrap_or("");
            if name != &opts.pat_name || secret != opts.pat_secret {
                return Err(fail("Error signing in to Tableau Server"));
            }
            let admin = st
                .site
                .users
                .iter()
                .position(|u| u.name == "admin")
                .or_else(|| st.site.users.iter().position(|u| tabflow_wire::capability::is_admin_role(&u.site_role)))
                .ok_or_else(|| fail("The token's owner no longer exists on this site."))?;
            (admin, Some(name.clone()))
        } else if let Some(jwt) = &creds.jwt {
            let sub =
                verify_jwt(jwt, &opts.jwt_secret).map_err(|e| fail(&format!("Error signing in with a JWT: {e}")))?;
            let i = st
                .idx
                .users_by_name
                .get(&sub.to_lowercase())
                .copied()
                .ok_or_else(|| fail("The JWT's subject is not a user of this site."))?;
            (i, None)
        } else if let Some(name) = &creds.name {
            let i = st.idx.users_by_name.get(&name.to_lowercase()).copied();
            match i {
                Some(i) if creds.password.as_deref() == Some(opts.password.as_str()) => (i, None),
                _ => return Err(fail("Error signing in to Tableau Server")),
            }
        } else {
            return Err(Fail(ApiError::bad_request(
                "The credentials element needs a personal access token, a name and password, or a jwt.",
            )));
        };
        let mut user_id = st.site.users[user_idx].id.clone();
        // Administrator impersonation: <credentials ...><user id="..."/></credentials>
        if let Some(imp) = creds.user.as_ref().and_then(|u| u.id.clone()) {
            if !tabflow_wire::capability::is_admin_role(&st.site.users[user_idx].site_role) {
                return Err(Fail(ApiError::forbidden("403005", "Only administrators can impersonate users.")));
            }
            st.user(&imp).map_err(Fail)?;
            user_id = imp;
        }
        if st.site.users[user_idx].site_role == "Unlicensed" {
            return Err(fail("Error signing in to Tableau Server: the user is unlicensed."));
        }
        if let Some(p) = &pat_name {
            // One session per PAT: a new sign-in ends the previous one (Tableau answers 401002 after).
            st.sessions.retain(|_, s| s.pat_name.as_deref() != Some(p.as_str()));
        }
        let now = Utc::now();
        st.sessions.retain(|_, s| s.expires > now);
        let session = Session {
            token: new_token(),
            user_id,
            site_id: st.site.site.id.clone(),
            expires: now + opts.session_ttl,
            pat_name,
        };
        st.sessions.insert(session.token.clone(), session.clone());
        if let Some(u) = st.idx.users.get(&session.user_id).copied() {
            st.site.users[u].last_login = Some(now);
        }
        session
    };
    let mut r = xml::TsResponse::new();
    r.credentials = Some(credentials_xml(&shared, &session));
    ok_xml(&r)
}

pub(crate) async fn sign_out(shared: Shr, headers: HeaderMap) -> Res {
    if let Some(t) = headers.get("x-tableau-auth").and_then(|v| v.to_str().ok()) {
        shared.0.write().sessions.remove(t);
    }
    no_content()
}

pub(crate) async fn switch_site(shared: Shr, auth: Auth, body: String) -> Res {
    let req = parse_body(&body)?;
    let content_url =
        req.site.and_then(|s| s.content_url).ok_or_else(|| super::missing("a <site contentUrl> element"))?;
    let session = {
        let mut st = shared.0.write();
        if !content_url.eq_ignore_ascii_case(&st.site.site.content_url) {
            return Err(Fail(ApiError::new(
                "401003",
                "Switch Site Error",
                format!("The site '{content_url}' does not exist or the user has no access to it."),
            )));
        }
        let mut s = auth.0.clone();
        st.sessions.remove(&s.token);
        s.token = new_token();
        st.sessions.insert(s.token.clone(), s.clone());
        s
    };
    let mut r = xml::TsResponse::new();
    r.credentials = Some(credentials_xml(&shared.0, &session));
    ok_xml(&r)
}

fn site_xml(shared: &Shared) -> xml::Site {
    let st = shared.read();
    xml::Site {
        id: Some(st.site.site.id.clone()),
        name: Some(st.site.site.name.clone()),
        content_url: Some(st.site.site.content_url.clone()),
        admin_mode: Some("ContentAndUsers".into()),
        state: Some("Active".into()),
    }
}

pub(crate) async fn list_sites(shared: Shr, _auth: Auth, q: Q) -> Res {
    let lq = super::list_query(&q.0).map_err(Fail)?;
    let one = [site_xml(&shared.0)];
    let (page, pagination) = super::select(one.iter().collect(), &lq, |_, _| None).map_err(Fail)?;
    let mut r = xml::TsResponse::new();
    r.pagination = Some(pagination);
    r.sites = Some(xml::Sites { site: page.into_iter().cloned().collect() });
    ok_xml(&r)
}

pub(crate) async fn get_site(
    shared: Shr,
    auth: Auth,
    axum::extract::Path((_v, s)): axum::extract::Path<(String, String)>,
    q: Q,
) -> Res {
    let key = q.0.iter().find(|(k, _)| k == "key").map(|(_, v)| v.as_str()).unwrap_or("id");
    let site = site_xml(&shared.0);
    let matches = match key {
        "name" => site.name.as_deref() == Some(s.as_str()),
        "contentUrl" => site.content_url.as_deref().is_some_and(|c| c.eq_ignore_ascii_case(&s)),
        _ => site.id.as_deref() == Some(s.as_str()) && auth.0.site_id == s,
    };
    if !matches {
        return Err(Fail(ApiError::not_found("404000", "Site", &s)));
    }
    let mut r = xml::TsResponse::new();
    r.site = Some(site);
    ok_xml(&r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hmac::{KeyInit, Mac};

    fn jwt(sub: &str, secret: &str) -> String {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let h = b64.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let c = b64.encode(format!(r#"{{"sub":"{sub}","exp":{}}}"#, Utc::now().timestamp() + 600));
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{h}.{c}").as_bytes());
        format!("{h}.{c}.{}", b64.encode(mac.finalize().into_bytes()))
    }

    #[test]
    fn jwt_checks_signature() {
        assert_eq!(verify_jwt(&jwt("admin", "tabflow"), "tabflow").unwrap(), "admin");
        assert!(verify_jwt(&jwt("admin", "other"), "tabflow").unwrap_err().contains("signature"));
        assert!(verify_jwt("a.b", "tabflow").is_err());
    }
}
