//! The emulator's Metadata API (GraphQL, `tabflow_emulator::metadata::execute`): the parser
//! (async-graphql-parser plus the emulator's bracket pre-check and error shaping), the shape
//! limits (size, depth, nodes, fragment cycles), validation against the schema subset and
//! execution over the demo site.
//!
//! Included as a module by `crates/tabflow-emulator/tests/it/fuzz.rs`, which replays
//! `fuzz/corpus/graphql/` on the stable toolchain.

use std::sync::OnceLock;

use tabflow_site::Site;
use tabflow_wire::graphql::Request;

/// The demo site, built once: every input runs against the same data.
fn site() -> &'static Site {
    static SITE: OnceLock<Site> = OnceLock::new();
    SITE.get_or_init(tabflow_site::generate::demo)
}

/// Arbitrary bytes as a Metadata API request: first as the JSON envelope a client POSTs
/// (`{"query", "variables", "operationName"}`), then the whole text as the query itself.
/// Either answer is data, or errors, never neither; a refused query carries no data.
pub fn graphql(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(req) = serde_json::from_str::<Request>(&text) {
        check(&req);
    }
    check(&Request { query: text.into_owned(), variables: None, operation_name: None });
}

fn check(req: &Request) {
    let r = tabflow_emulator::metadata::execute(site(), req);
    assert!(r.data.is_some() || !r.errors.is_empty(), "an answer with neither data nor errors");
    // What the emulator answers must serialise (it is sent as JSON).
    assert!(serde_json::to_string(&r).is_ok(), "an answer that does not serialise");
}
