//! TEMPORARY: signatures of content/metadata/vizql while they are written; replaced by the
//! real modules before landing.
#![allow(dead_code, unused_variables)]
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
