//! Metadata API (GraphQL) envelopes: `POST /api/metadata/graphql` with `{"query","variables"}`;
//! answers are HTTP 200 with `data` and/or `errors[]`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub query: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variables: Option<serde_json::Value>,
    #[serde(default, rename = "operationName", skip_serializing_if = "Option::is_none")]
    pub operation_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<GraphqlError>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GraphqlError {
    pub message: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub locations: Vec<Location>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub path: Vec<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Location {
    pub line: u32,
    pub column: u32,
}

/// `pageInfo` of a `...Connection`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PageInfo {
    pub has_next_page: bool,
    pub end_cursor: Option<String>,
}

impl GraphqlError {
    pub fn new(message: impl Into<String>) -> GraphqlError {
        GraphqlError { message: message.into(), locations: vec![], path: vec![], extensions: None }
    }

    /// An error with Tableau's `extensions.code` (e.g. `INVALID_ARGUMENT`, `NODE_LIMIT_EXCEEDED`).
    pub fn with_code(message: impl Into<String>, code: &str) -> GraphqlError {
        GraphqlError { extensions: Some(serde_json::json!({ "code": code })), ..GraphqlError::new(message) }
    }
}
