//! Bearer tokens and roles: [`Auth`] answers 401 without a live token; [`need`] answers 403
//! when the token's role may not do what is asked. JSON bodies are read by [`Body`], whose
//! refusals are JSON errors too (400 malformed, 413 too large, 422 wrong shape).

use std::sync::Arc;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use tabflow_app::{Caller, Permission};

use crate::{ApiError, Shared, call};

/// The authenticated caller.
pub struct Auth(pub Caller);

impl FromRequestParts<Arc<Shared>> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, shared: &Arc<Shared>) -> Result<Self, ApiError> {
        let header = parts.headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or("");
        let token = header
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim().to_string())
            .filter(|t| !t.is_empty());
        let Some(token) = token else {
            return Err(ApiError::unauthorized("this route needs a bearer token"));
        };
        match call(&shared.app, move |app| async move { app.authenticate(&token).await }).await? {
            Some(c) => Ok(Auth(c)),
            None => {
                Err(ApiError::unauthorized("the bearer token is not a live token of this server (unknown or revoked)"))
            }
        }
    }
}

/// Refuses (403) a caller whose role may not do `p`.
pub fn need(caller: &Caller, p: Permission) -> Result<(), ApiError> {
    if caller.role.may(p) {
        return Ok(());
    }
    let who = match p {
        Permission::Read => "any role",
        Permission::Request => "the requester or admin role",
        Permission::Approve => "the approver or admin role",
        Permission::Start | Permission::Rollback => "the requester, approver or admin role",
        Permission::ManageTokens => "the admin role",
    };
    Err(ApiError::forbidden(
        format!("token '{}' has the {} role; this needs {who}", caller.name, caller.role.as_str()),
        "use a token with that role (an admin makes one with `tabflow tokens create NAME --role ROLE`)",
    ))
}

/// A JSON request body.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Body(v)),
            Err(r) => Err(match r.status() {
                StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too-large",
                    format!("the request body is larger than {} bytes", crate::BODY_LIMIT),
                    "send a shorter request; select items by step id (s2) rather than listing thousands of pairs",
                ),
                StatusCode::UNPROCESSABLE_ENTITY => ApiError::usage(
                    format!("the JSON body does not have the expected fields: {}", r.body_text()),
                    "see the route's request body in /api/openapi.json",
                ),
                StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::bad_request(
                    "the request body is not declared as JSON",
                    "send `Content-Type: application/json`",
                ),
                _ => ApiError::bad_request(
                    format!("the request body is not valid JSON: {}", r.body_text()),
                    "send a JSON object (see the route's request body in /api/openapi.json)",
                ),
            }),
        }
    }
}
