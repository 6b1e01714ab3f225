//! Tableau's REST error bodies: `<error code="404002"><summary/><detail/></error>`.
//!
//! The first three digits of the code are the HTTP status (Tableau's errors page).

use std::fmt;

use quick_xml::escape::escape;

/// One REST API error as Tableau sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// Six digits, e.g. `404002`.
    pub code: String,
    pub summary: String,
    pub detail: String,
}

impl ApiError {
    pub fn new(code: &str, summary: impl Into<String>, detail: impl Into<String>) -> ApiError {
        ApiError { code: code.to_string(), summary: summary.into(), detail: detail.into() }
    }

    /// The HTTP status implied by the code's first three digits (500 when malformed).
    pub fn status(&self) -> u16 {
        self.code.get(..3).and_then(|s| s.parse().ok()).filter(|s| (100..600).contains(s)).unwrap_or(500)
    }

    /// The `tsResponse` document carrying this error.
    pub fn to_xml(&self) -> String {
        let mut s = String::with_capacity(200 + self.detail.len());
        s.push_str(r#"<?xml version='1.0' encoding='UTF-8'?><tsResponse xmlns="http://tableau.com/api" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="http://tableau.com/api https://help.tableau.com/samples/en-us/rest_api/ts-api_3_25.xsd"><error code=""#);
        s.push_str(&escape(&self.code));
        s.push_str(r#""><summary>"#);
        s.push_str(&escape(&self.summary));
        s.push_str("</summary><detail>");
        s.push_str(&escape(&self.detail));
        s.push_str("</detail></error></tsResponse>");
        s
    }

    // Constructors for the codes the emulator and client reason about.

    /// 400000: the request body could not be read.
    pub fn bad_request(detail: impl Into<String>) -> ApiError {
        ApiError::new("400000", "Bad Request", detail)
    }
    /// 400006: page number out of range.
    pub fn invalid_page_number(detail: impl Into<String>) -> ApiError {
        ApiError::new("400006", "Invalid page number", detail)
    }
    /// 400007: page size out of range.
    pub fn invalid_page_size(detail: impl Into<String>) -> ApiError {
        ApiError::new("400007", "Invalid page size", detail)
    }
    /// 400065: malformed filter, sort or fields expression.
    pub fn invalid_filter(detail: impl Into<String>) -> ApiError {
        ApiError::new("400065", "Bad Request", detail)
    }
    /// 401001: sign-in failed.
    pub fn signin_failed(detail: impl Into<String>) -> ApiError {
        ApiError::new("401001", "Signin Error", detail)
    }
    /// 401002: missing, invalid or expired session token.
    pub fn invalid_token() -> ApiError {
        ApiError::new("401002", "Unauthorized Access", "Invalid authentication credentials were provided.")
    }
    /// 403xxx: forbidden.
    pub fn forbidden(code: &str, detail: impl Into<String>) -> ApiError {
        ApiError::new(code, "Forbidden", detail)
    }
    /// 404xxx: a resource of `kind` with `id` does not exist.
    pub fn not_found(code: &str, kind: &str, id: &str) -> ApiError {
        ApiError::new(code, "Resource Not Found", format!("{kind} '{id}' could not be found."))
    }
    /// 405000: method not allowed on this route.
    pub fn method_not_allowed() -> ApiError {
        ApiError::new("405000", "Method Not Allowed", "Request method not supported for this resource.")
    }
    /// 409xxx: conflict (duplicate name, ...).
    pub fn conflict(code: &str, detail: impl Into<String>) -> ApiError {
        ApiError::new(code, "Resource Conflict", detail)
    }
    /// 429000: rate limited.
    pub fn too_many_requests(detail: impl Into<String>) -> ApiError {
        ApiError::new("429000", "Too Many Requests", detail)
    }
    /// 500000: the server failed.
    pub fn internal(detail: impl Into<String>) -> ApiError {
        ApiError::new("500000", "Internal Server Error", detail)
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.code, self.summary, self.detail)
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used, reason = "tests: a panic is a failure")]
mod tests {
    use super::*;

    #[test]
    fn status_from_code() {
        assert_eq!(ApiError::not_found("404002", "User", "x").status(), 404);
        assert_eq!(ApiError::invalid_token().status(), 401);
        assert_eq!(ApiError::new("abc", "", "").status(), 500);
    }

    #[test]
    fn xml_body_is_escaped() {
        let x = ApiError::bad_request("a <b> & 'c'").to_xml();
        assert!(x.contains(r#"<error code="400000">"#));
        assert!(x.contains("a &lt;b&gt; &amp; &apos;c&apos;"));
        // What is escaped reads back as written, a carriage return included (a raw `\r`
        // would come back as `\n` after XML's end-of-line normalization).
        let detail = "line one\r\nthe \"x\" <y> & 'z'";
        let back = crate::xml::parse_response(&ApiError::bad_request(detail).to_xml()).unwrap();
        assert_eq!(back.error.unwrap().detail, detail);
    }
}
