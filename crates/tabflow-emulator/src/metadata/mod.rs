//! Metadata API (GraphQL) over a site: `POST /api/metadata/graphql` with `{"query",
//! "variables", "operationName"}`. The module is split by responsibility; this file holds
//! the HTTP handler and the request envelope (operation choice, variables, the order of
//! checks, `data`/`errors`) so the whole request path reads in one place; `parse.rs` turns the
//! query text into a small AST with async-graphql-parser, `schema.rs` is the lineage subset of
//! Tableau's schema and the validation against it, `execute.rs` evaluates over the site.
//! Errors come back as GraphQL does, HTTP 200 with `errors[]`, so callers see Tableau's
//! behaviour; only a bad token (401) and a body that is not a GraphQL request (400) differ.
//!
//! Supported: operations with variables (and defaults), aliases, arguments of every literal
//! kind, fragments (named and inline with type conditions), `@include`/`@skip`,
//! `__typename`; root fields `publishedDatasources`, `workbooks`, `databaseTables`,
//! `embeddedDatasources` and their `...Connection` forms with `first`/`after`/`offset`,
//! `filter` (incl. `...Within`) and `orderBy`.
//!
//! Limits, checked before anything runs; a query over one is refused with a single GraphQL
//! error and no `data` (HTTP 200, never a 500 or a panic):
//! - size: at most 256 KiB of query text (`parse::MAX_QUERY_BYTES`), answered as a syntax
//!   error (`classification: InvalidSyntax`), like graphql-java's parser limits;
//! - depth: at most 20 levels of nesting (`parse::MAX_DEPTH`; a root field is level 1, and
//!   each sub-selection, inline fragment and fragment spread opens one more), counted with
//!   fragments expanded: `maximum query depth exceeded N > 20`;
//! - nodes: at most 1000 selections (`parse::MAX_NODES`: fields, fragment spreads and inline
//!   fragments, a fragment counted each time it is spread): `maximum query complexity
//!   exceeded …`.
//!
//! The depth and node errors carry `classification: ExecutionAborted`, as graphql-java's
//! limit instrumentations do. A fragment that spreads itself is a `FragmentCycle` validation
//! error, and so are two operations or fragments of one name (`DuplicateOperationName`,
//! `DuplicateFragmentName`) and an anonymous operation beside others
//! (`LoneAnonymousOperation`). Bracket nesting is bounded just above the depth limit before the parser runs, so
//! nesting in values (`[[[…]]]`) and variable types is bounded too.
//!
//! Tableau's own 20,000-node limit on *results* (a `NODE_LIMIT_EXCEEDED` warning with partial
//! data) is not emulated.

mod execute;
mod parse;
mod schema;

use axum::Json;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde_json::{Map, Value};
use tabflow_site::Site;
use tabflow_wire::graphql::{GraphqlError, Request, Response};

pub(crate) use execute::Memo;
pub use execute::metadata_guid;
use execute::{Exec, Obj, eval};
use parse::{Operation, Selection, Val};

/// `POST /api/metadata/graphql`: the session from `X-Tableau-Auth`, then the request.
pub(crate) async fn graphql(shared: crate::rest::Shr, headers: HeaderMap, body: String) -> axum::response::Response {
    if let Err(r) = crate::rest::json_session(&shared.0, &headers) {
        return r;
    }
    let req: Request = match serde_json::from_str(&body) {
        Ok(r) => r,
        Err(e) => {
            let resp = Response {
                data: None,
                errors: vec![GraphqlError::new(format!("The request body is not a GraphQL request: {e}"))],
            };
            return (StatusCode::BAD_REQUEST, Json(resp)).into_response();
        }
    };
    let st = shared.0.read();
    // Loaded under the read lock: the generation of the state this request reads.
    let generation = shared.0.generation();
    Json(run(&st.site, &req, Some((&shared.0.metadata, generation)))).into_response()
}

/// Runs a Metadata API request against `site`.
pub fn execute(site: &Site, req: &Request) -> Response {
    run(site, req, None)
}

/// [`execute`], reusing what earlier requests at the same state generation computed.
fn run(site: &Site, req: &Request, memo: Option<(&Memo, u64)>) -> Response {
    let fail = |e: GraphqlError| Response { data: None, errors: vec![e] };
    let doc = match parse::parse(&req.query) {
        Ok(d) => d,
        Err(e) => return fail(e),
    };
    let op = match pick_operation(&doc.ops, req.operation_name.as_deref()) {
        Ok(op) => op,
        Err(e) => return fail(e),
    };
    if op.kind != "query" {
        return fail(GraphqlError::new(format!(
            "The Metadata API is read-only: '{}' operations are not supported",
            op.kind
        )));
    }
    if let Err(e) = parse::check_shape(&doc, op) {
        return fail(e);
    }
    let vars = match coerce_variables(op, req.variables.as_ref()) {
        Ok(v) => v,
        Err(e) => return fail(e),
    };
    let mut errors = undeclared_variables(op);
    schema::validate("Query", &op.selection, &doc.frags, &mut errors);
    if !errors.is_empty() {
        return Response { data: None, errors };
    }
    let mut exec = Exec::new(site, vars, &doc.frags);
    if let Some((memo, generation)) = memo {
        exec = exec.with_memo(memo, generation);
    }
    let mut data = Map::new();
    exec.select(&Obj::Query, &op.selection, &mut data);
    Response { data: Some(Value::Object(data)), errors: exec.errors }
}

/// The operation to run: the one named `name`, or the only one.
fn pick_operation<'d>(ops: &'d [Operation], name: Option<&str>) -> Result<&'d Operation, GraphqlError> {
    match name {
        Some(n) => ops
            .iter()
            .find(|o| o.name.as_deref() == Some(n))
            .ok_or_else(|| GraphqlError::new(format!("Unknown operation named '{n}'."))),
        None if ops.len() == 1 => Ok(&ops[0]),
        None if ops.is_empty() => Err(GraphqlError::new("Invalid Syntax : the document has no operation")),
        None => Err(GraphqlError::new("Must provide operation name if query contains multiple operations.")),
    }
}

/// The operation's variables from the request: given values, else defaults, else `null`;
/// a missing or `null` value for a non-null variable without a default is an error.
fn coerce_variables(op: &Operation, given: Option<&Value>) -> Result<Map<String, Value>, GraphqlError> {
    let given = given.and_then(|v| v.as_object());
    let mut vars = Map::new();
    for v in &op.vars {
        let value = match given.and_then(|g| g.get(&v.name)) {
            Some(x) if !(x.is_null() && v.non_null) => x.clone(),
            _ => match &v.default {
                Some(d) => eval(d, &Map::new()),
                None if v.non_null => {
                    return Err(GraphqlError::new(format!(
                        "Variable '{0}' has an invalid value: Variable '{0}' has coerced Null value for NonNull type",
                        v.name
                    )));
                }
                None => Value::Null,
            },
        };
        vars.insert(v.name.clone(), value);
    }
    Ok(vars)
}

/// Variables used in the operation's field arguments but not declared by it.
fn undeclared_variables(op: &Operation) -> Vec<GraphqlError> {
    fn in_val(v: &Val, out: &mut Vec<String>) {
        match v {
            Val::Var(n) => out.push(n.clone()),
            Val::List(l) => l.iter().for_each(|x| in_val(x, out)),
            Val::Obj(o) => o.iter().for_each(|(_, x)| in_val(x, out)),
            Val::Lit(_) => {}
        }
    }
    fn used(sel: &[Selection], out: &mut Vec<String>) {
        for s in sel {
            match s {
                Selection::Field(f) => {
                    f.args.iter().for_each(|(_, v)| in_val(v, out));
                    used(&f.selection, out);
                }
                Selection::Inline { selection, .. } => used(selection, out),
                Selection::Spread { .. } => {}
            }
        }
    }
    let mut refs = Vec::new();
    used(&op.selection, &mut refs);
    refs.into_iter()
        .filter(|r| !op.vars.iter().any(|v| v.name == *r))
        .map(|r| {
            GraphqlError::with_code(
                format!("Validation error of type UndefinedVariable: Undefined variable {r}"),
                "ValidationError",
            )
        })
        .collect()
}

#[cfg(test)]
mod tests;
