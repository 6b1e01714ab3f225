//! The API's errors: `{"error": {"code", "message", "hint"}}` with a status from the
//! service's error kind.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tabflow_app::Kind;
use utoipa::ToSchema;

/// An error answered to the caller.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub hint: String,
}

/// The body of every error.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// `bad-request`, `unauthorized`, `forbidden`, `not-found`, `needs-input`,
    /// `needs-approval`, `conflict`, `too-large`, `invalid`, `failed`.
    pub code: String,
    pub message: String,
    pub hint: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>, hint: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), hint: hint.into() }
    }
    pub fn bad_request(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad-request", message, hint)
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            message,
            "send `Authorization: Bearer TOKEN` with a token from `tabflow tokens create NAME --role ROLE`",
        )
    }
    pub fn forbidden(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message, hint)
    }
    pub fn not_found(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", message, hint)
    }
    pub fn usage(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message, hint)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "failed", message, "see the server's log and the audit log")
    }
}

impl From<tabflow_app::Error> for ApiError {
    fn from(e: tabflow_app::Error) -> Self {
        let (status, code) = match e.kind {
            Kind::Usage => (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
            Kind::Failed => (StatusCode::INTERNAL_SERVER_ERROR, "failed"),
            Kind::NeedsInput => (StatusCode::CONFLICT, "needs-input"),
            Kind::NeedsApproval(_) => (StatusCode::CONFLICT, "needs-approval"),
            Kind::Forbidden => (StatusCode::FORBIDDEN, "forbidden"),
            Kind::NotFound => (StatusCode::NOT_FOUND, "not-found"),
        };
        ApiError { status, code, message: e.message, hint: e.hint }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody { error: ErrorDetail { code: self.code.into(), message: self.message, hint: self.hint } };
        let mut r = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        r
    }
}
