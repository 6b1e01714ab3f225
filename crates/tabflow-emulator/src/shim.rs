//! TEMPORARY: signatures of content/metadata/vizql while they are written; replaced by the
//! real modules before landing.
#![allow(dead_code, unused_variables)]
pub mod content {
    use tabflow_site::{Datasource, Site, Workbook};
    #[derive(Debug)]
    pub struct E(pub String);
    impl std::fmt::Display for E {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(&self.0)
        }
    }
    pub struct Part { pub name: String, pub filename: Option<String>, pub content_type: Option<String>, pub data: Vec<u8> }
    pub struct PublishedRef { pub content_url: String, pub name: String }
    pub struct TwbInfo { pub published_datasources: Vec<PublishedRef>, pub fields_used: Vec<String>, pub worksheets: Vec<String> }
    pub struct TdsInfo { pub kind: String, pub server: String, pub database: String, pub table: String, pub custom_sql: Option<String>, pub fields: Vec<String> }
    pub fn workbook_twb(site: &Site, wb: &Workbook, host: &str) -> String { String::new() }
    pub fn datasource_tds(site: &Site, ds: &Datasource) -> String { String::new() }
    pub fn parse_twb(x: &str) -> Result<TwbInfo, E> { Err(E("pending".into())) }
    pub fn parse_tds(x: &str) -> Result<TdsInfo, E> { Err(E("pending".into())) }
    pub fn parse_multipart(ct: &str, body: &[u8]) -> Result<Vec<Part>, E> { Err(E("pending".into())) }
    pub fn unpack_document(f: &str, d: &[u8]) -> Result<String, E> { Err(E("pending".into())) }
    pub fn content_disposition(k: &str, f: &str) -> String { format!("attachment; name=\"{k}\"; filename=\"{f}\"") }
}
pub mod metadata {
    pub fn execute(site: &tabflow_site::Site, req: &tabflow_wire::graphql::Request) -> tabflow_wire::graphql::Response {
        tabflow_wire::graphql::Response { data: None, errors: vec![] }
    }
}
pub mod vizql {
    use tabflow_site::Site;
    pub struct VdsError;
    impl VdsError {
        pub fn status(&self) -> u16 { 500 }
        pub fn to_json(&self) -> serde_json::Value { serde_json::Value::Null }
    }
    pub fn read_metadata(site: &Site, b: &serde_json::Value) -> Result<serde_json::Value, VdsError> { Err(VdsError) }
    pub fn query_datasource(site: &Site, b: &serde_json::Value) -> Result<serde_json::Value, VdsError> { Err(VdsError) }
    pub fn usage_stats(site: &Site, k: &str, l: &str) -> Option<serde_json::Value> { None }
}
