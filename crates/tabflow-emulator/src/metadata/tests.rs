//! Tests of the Metadata API emulation: lineage and paging results, Tableau's error shapes,
//! the query-shape limits, and hostile input (which must come back as GraphQL errors, never
//! as a panic).

use super::*;
use base64::Engine;
use serde_json::json;

fn site() -> Site {
    tabflow_site::generate::generate(&tabflow_site::generate::Options { scale: 300, seed: 4 })
}

fn run(s: &Site, q: &str, vars: Value) -> Response {
    execute(s, &Request { query: q.into(), variables: Some(vars), operation_name: None })
}

/// The single error of a refused query, as JSON (what a client receives).
fn refused(r: &Response) -> Value {
    assert!(r.data.is_none(), "a refused query has no data: {r:?}");
    assert_eq!(r.errors.len(), 1, "{:?}", r.errors);
    serde_json::to_value(&r.errors[0]).unwrap()
}

#[test]
fn lineage_of_a_datasource() {
    let s = site();
    let d = s.datasources.iter().find(|d| s.workbooks.iter().any(|w| w.datasource_ids.contains(&d.id))).unwrap();
    let r = run(
        &s,
        "query ds($l: String!) { publishedDatasources(filter: {luid: $l}) { luid name projectName fields { name } \
         upstreamTables { name schema database { name connectionType } } downstreamWorkbooks { luid name } owner { username } } }",
        json!({"l": d.id}),
    );
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let n = &r.data.unwrap()["publishedDatasources"][0];
    assert_eq!(n["luid"], json!(d.id));
    assert_eq!(n["fields"].as_array().unwrap().len(), d.fields.len());
    let want = s.workbooks.iter().filter(|w| w.datasource_ids.contains(&d.id)).count();
    assert_eq!(n["downstreamWorkbooks"].as_array().unwrap().len(), want);
}

#[test]
fn cursor_paging_visits_everything_once() {
    let s = site();
    let q = "query wbs($first: Int, $after: String) { workbooksConnection(first: $first, after: $after) { \
             nodes { luid upstreamDatasources { luid } } pageInfo { hasNextPage endCursor } totalCount } }";
    let mut after = Value::Null;
    let mut seen = std::collections::BTreeSet::new();
    loop {
        let r = run(&s, q, json!({"first": 37, "after": after}));
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        let c = &r.data.unwrap()["workbooksConnection"];
        assert_eq!(c["totalCount"], json!(s.workbooks.len()));
        for n in c["nodes"].as_array().unwrap() {
            assert!(seen.insert(n["luid"].as_str().unwrap().to_string()));
        }
        if !c["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            break;
        }
        after = c["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(seen.len(), s.workbooks.len());
}

#[test]
fn cursor_has_tableaus_shape() {
    let s = site();
    let r = run(&s, "{ publishedDatasourcesConnection(first: 1) { nodes { id } pageInfo { endCursor } } }", json!({}));
    let c = &r.data.unwrap()["publishedDatasourcesConnection"];
    let raw = base64::engine::general_purpose::STANDARD.decode(c["pageInfo"]["endCursor"].as_str().unwrap()).unwrap();
    let cursor: Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(cursor["type"], json!("PublishedDatasource"));
    assert_eq!(cursor["scope"], json!("sites/1"));
    assert_eq!(cursor["sortOrderValue"]["lastId"], c["nodes"][0]["id"]);
}

#[test]
fn fragments_aliases_typename_and_within() {
    let s = site();
    let ids: Vec<&str> = s.datasources.iter().take(2).map(|d| d.id.as_str()).collect();
    let r = run(
        &s,
        "query { a: publishedDatasources(filter: {luidWithin: $ids}) { ...F __typename } } fragment F on PublishedDatasource { luid }",
        json!({}),
    );
    assert!(!r.errors.is_empty(), "undeclared variable must be an error");
    let r = run(
        &s,
        "query q($ids: [String]) { a: publishedDatasources(filter: {luidWithin: $ids}) { ...F __typename ... on PublishedDatasource { name } } } fragment F on PublishedDatasource { luid }",
        json!({"ids": ids}),
    );
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let a = r.data.unwrap()["a"].as_array().unwrap().clone();
    assert_eq!(a.len(), 2);
    assert_eq!(a[0]["__typename"], json!("PublishedDatasource"));
    assert!(a[0]["name"].is_string() && a[0]["luid"].is_string());
}

#[test]
fn nested_aliases_interface_fragments_and_directives() {
    let s = site();
    let d = &s.datasources[0];
    let r = run(
        &s,
        "query q($l: String!, $no: Boolean = false) { first: publishedDatasources(filter: {luid: $l}) { \
           ...on Datasource { dsName: name } \
           who: owner { handle: username } \
           hidden: luid @include(if: $no) \
           shown: luid @skip(if: $no) \
           ...T } } \
         fragment T on Node { __typename }",
        json!({"l": d.id}),
    );
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let n = &r.data.unwrap()["first"][0];
    assert_eq!(n["dsName"], json!(d.name));
    assert!(n["who"]["handle"].is_string());
    assert!(n.get("hidden").is_none());
    assert_eq!(n["shown"], json!(d.id));
    assert_eq!(n["__typename"], json!("PublishedDatasource"));
}

#[test]
fn errors_are_graphql_errors() {
    let s = site();
    let r = run(&s, "{ publishedDatasources { nosuch } }", json!({}));
    assert!(r.data.is_none());
    assert!(
        r.errors[0].message.contains("Field 'nosuch' in type 'PublishedDatasource' is undefined"),
        "{:?}",
        r.errors
    );
    let r = run(&s, "{ publishedDatasources { luid ", json!({}));
    assert!(r.errors[0].message.starts_with("Invalid Syntax"));
    let r = run(&s, "query q($x: String!) { workbooks(filter: {luid: $x}) { luid } }", json!({}));
    assert!(r.errors[0].message.contains("Variable 'x'"));
    let r = run(&s, "{ workbooksConnection(first: 5, after: \"bm9wZQ==\") { nodes { luid } } }", json!({}));
    assert!(r.errors[0].message.contains("Invalid cursor"));
    let r = run(&s, "{ workbooksConnection(first: 5, after: \"x\", offset: 3) { nodes { luid } } }", json!({}));
    assert!(r.errors[0].message.contains("cannot be used together"));
    let r = run(&s, "{ workbooks(filter: {color: \"red\"}) { luid } }", json!({}));
    assert!(!r.errors.is_empty());
    let r = run(&s, "mutation { workbooks { luid } }", json!({}));
    assert!(r.errors[0].message.contains("read-only"), "{:?}", r.errors);
}

#[test]
fn syntax_error_has_tableaus_shape() {
    let s = site();
    let r = run(&s, "{\n  publishedDatasources {\n    luid\n", json!({}));
    assert_eq!(
        refused(&r),
        json!({
            "message": "Invalid Syntax : offending token '<EOF>' at line 4 column 1 (expected '{', a field or fragment, '@', '(', or '}')",
            "locations": [{"line": 4, "column": 1}],
            "extensions": {"classification": "InvalidSyntax"}
        })
    );
    let r = run(&s, "{ workbooks { luid } } }", json!({}));
    let e = refused(&r);
    assert!(
        e["message"].as_str().unwrap().starts_with("Invalid Syntax : offending token '}' at line 1 column 24"),
        "{e}"
    );
    assert_eq!(e["locations"], json!([{"line": 1, "column": 24}]));
    // A type-system definition is not a query.
    let e = refused(&run(&s, "type Foo { a: Int }", json!({})));
    assert!(e["message"].as_str().unwrap().contains("offending token 'type' at line 1 column 1"), "{e}");
    // An Int out of range is refused rather than wrapped.
    let e = refused(&run(&s, "{ workbooksConnection(first: 99999999999999999999) { totalCount } }", json!({})));
    assert!(e["message"].as_str().unwrap().contains("not a valid Int"), "{e}");
}

#[test]
fn unknown_field_has_tableaus_shape() {
    let s = site();
    let r = run(&s, "{ workbooks {\n  luid\n  upstreamDatasources { nosuch } } }", json!({}));
    assert_eq!(
        refused(&r),
        json!({
            "message": "Validation error of type FieldUndefined: Field 'nosuch' in type 'PublishedDatasource' is undefined @ 'workbooks/upstreamDatasources/nosuch'",
            "locations": [{"line": 3, "column": 25}],
            "extensions": {"classification": "ValidationError"}
        })
    );
    // Every unknown field is reported, not only the first.
    let r = run(&s, "{ workbooks { a b } nope { c } }", json!({}));
    assert!(r.data.is_none());
    assert_eq!(r.errors.len(), 3, "{:?}", r.errors);
}

/// `{ f { f { … luid … } } }` with `levels` levels of selection (the root field is level 1).
fn nested(levels: usize) -> String {
    let mut q = String::from("{ ");
    for _ in 1..levels {
        q.push_str("workbooks { ");
    }
    q.push_str("luid");
    for _ in 1..levels {
        q.push_str(" }");
    }
    q.push_str(" }");
    q
}

#[test]
fn depth_limit() {
    let s = site();
    // At the limit the query gets as far as validation (`luid` is not a root field) ...
    let r = run(&s, &nested(parse::MAX_DEPTH), json!({}));
    assert!(r.errors[0].message.contains("FieldUndefined"), "{:?}", r.errors);
    // ... one level more is refused before anything runs.
    let e = refused(&run(&s, &nested(parse::MAX_DEPTH + 1), json!({})));
    assert_eq!(
        e,
        json!({
            "message": format!("maximum query depth exceeded {} > {}", parse::MAX_DEPTH + 1, parse::MAX_DEPTH),
            "extensions": {"classification": "ExecutionAborted"}
        })
    );
    // Fragments count where they are spread.
    let mut q = String::from("{ workbooks { ...F0 } }");
    for i in 0..parse::MAX_DEPTH {
        q.push_str(&format!(" fragment F{i} on Workbook {{ owner {{ ...F{} }} }}", i + 1));
    }
    q.push_str(&format!(" fragment F{} on TableauUser {{ luid }}", parse::MAX_DEPTH));
    let e = refused(&run(&s, &q, json!({})));
    assert!(e["message"].as_str().unwrap().starts_with("maximum query depth exceeded"), "{e}");
    // Far beyond the bracket nesting the parser is given: the same error, before parsing.
    let e = refused(&run(&s, &nested(5000), json!({})));
    assert!(e["message"].as_str().unwrap().starts_with("maximum query depth exceeded"), "{e}");
}

#[test]
fn node_limit() {
    let s = site();
    let fields = |n: usize| format!("{{ workbooks {{ {} }} }}", vec!["luid"; n].join(" "));
    // The root field plus MAX_NODES - 1 fields runs; one more is refused.
    let r = run(&s, &fields(parse::MAX_NODES - 1), json!({}));
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let e = refused(&run(&s, &fields(parse::MAX_NODES), json!({})));
    assert!(e["message"].as_str().unwrap().starts_with("maximum query complexity exceeded"), "{e}");
    assert_eq!(e["extensions"], json!({"classification": "ExecutionAborted"}));
    // Fragments are counted expanded: each level spreads the next twice (2^12 selections,
    // within the depth limit).
    let mut q = String::from("{ workbooks { ...F0 } }");
    for i in 0..12 {
        q.push_str(&format!(" fragment F{i} on Workbook {{ ...F{0} ...F{0} }}", i + 1));
    }
    q.push_str(" fragment F12 on Workbook { luid }");
    let e = refused(&run(&s, &q, json!({})));
    assert!(e["message"].as_str().unwrap().starts_with("maximum query complexity exceeded"), "{e}");
    // A fragment that spreads itself would never finish expanding.
    let e = refused(&run(
        &s,
        "{ workbooks { ...A } } fragment A on Workbook { luid ...B } fragment B on Workbook { name ...A }",
        json!({}),
    ));
    assert!(e["message"].as_str().unwrap().contains("FragmentCycle"), "{e}");
}

#[test]
fn size_limit() {
    let s = site();
    let pad = " ".repeat(parse::MAX_QUERY_BYTES);
    let e = refused(&run(&s, &format!("{{ workbooks {{ luid }} }}{pad}"), json!({})));
    assert!(e["message"].as_str().unwrap().contains("More than 262144 bytes"), "{e}");
    assert_eq!(e["extensions"], json!({"classification": "InvalidSyntax"}));
}

/// A small pseudo-random generator (xorshift), so the hostile inputs are reproducible.
fn xorshift(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

#[test]
fn garbage_never_panics() {
    let s = site();
    let pieces = [
        "{",
        "}",
        "(",
        ")",
        "query",
        "$a",
        ":",
        "\"x",
        "...",
        "on",
        "workbooks",
        "luid",
        "[",
        "]",
        "@skip",
        "#c\n",
        "1.5e",
        "-",
        "fragment",
        "\"\\u",
        "\"\"\"",
        "=",
        "!",
        "é",
        "🙂",
    ];
    let mut x: u64 = 11;
    for _ in 0..2000 {
        let mut q = String::new();
        for _ in 0..12 {
            q.push_str(pieces[(xorshift(&mut x) % pieces.len() as u64) as usize]);
            q.push(' ');
        }
        let r = run(&s, &q, json!({}));
        assert!(r.data.is_some() || !r.errors.is_empty());
    }
}

#[test]
fn hostile_input_is_refused_not_fatal() {
    let s = site();
    let mut x: u64 = 7;
    // A megabyte of random bytes (made valid UTF-8): refused for its size.
    let bytes: Vec<u8> = (0..1 << 20).map(|_| xorshift(&mut x) as u8).collect();
    let megabyte = String::from_utf8_lossy(&bytes).into_owned();
    assert!(refused(&run(&s, &megabyte, json!({})))["message"].as_str().unwrap().contains("More than"));
    // Just under the size limit, the parser itself has to get through the garbage.
    let cut = megabyte.char_indices().map(|(i, _)| i).take_while(|i| *i < parse::MAX_QUERY_BYTES - 8).last().unwrap();
    let e = refused(&run(&s, &megabyte[..cut], json!({})));
    assert!(e["message"].as_str().unwrap().starts_with("Invalid Syntax"), "{e}");
    // Deep nesting of every bracket kind, in selections, arguments and variable types.
    let deep = 100_000;
    for q in [
        "{".repeat(deep),
        format!("{{ a{} }}", "{ a".repeat(deep)),
        format!("{{ workbooks(filter: {}) {{ luid }} }}", "[".repeat(deep)),
        format!("{{ workbooks(filter: {}1{}) {{ luid }} }}", "{a: ".repeat(deep), "}".repeat(deep)),
        format!("query q($v: {}String{}) {{ workbooks {{ luid }} }}", "[".repeat(deep), "]".repeat(deep)),
        format!("{{ workbooks {{ {}luid }} }}", "... on Workbook { ".repeat(deep)),
    ] {
        let r = run(&s, &q, json!({}));
        assert!(r.data.is_none() && !r.errors.is_empty(), "{:?}", r.errors);
    }
    // Non-ASCII: in names it is a syntax error (with a character column); in strings it is data.
    let e = refused(&run(&s, "{ workbooks { ñame } }", json!({})));
    assert_eq!(e["locations"], json!([{"line": 1, "column": 15}]));
    for q in [
        "{ wörkbooks { luid } }",
        "{ 工作簿 }",
        "\u{feff}{ workbooks { 🙂 } }",
        "{ a(x: \"\\uD800\") }",
        "{ a(x: \"\\u{110000}\") }",
    ] {
        let r = run(&s, q, json!({}));
        assert!(r.data.is_none() && r.errors[0].message.starts_with("Invalid Syntax"), "{q}: {:?}", r.errors);
    }
    let r = run(&s, "{ workbooks(filter: {name: \"Über 🙂 \\u00e9 \\u{1F600}\"}) { luid } }", json!({}));
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.data.unwrap()["workbooks"], json!([]));
    // A long offending token is cut in the message.
    let e = refused(&run(&s, &format!("{{ a(x: \"{}) }}", "é".repeat(5000)), json!({})));
    assert!(e["message"].as_str().unwrap().len() < 300, "{e}");
}

#[test]
fn parser_edges() {
    let s = site();
    // `\u{…}` escapes and surrogate pairs name characters ...
    let w = &s.workbooks[0];
    let mut chars = w.name.chars();
    let first = chars.next().unwrap() as u32;
    let rest: String = chars.collect();
    for escaped in [format!("\\u{{{first:x}}}"), format!("\\u{{000{first:X}}}")] {
        let q = format!("{{ workbooks(filter: {{name: \"{escaped}{rest}\"}}) {{ luid }} }}");
        let r = run(&s, &q, json!({}));
        assert!(r.errors.is_empty(), "{q}: {:?}", r.errors);
        assert!(r.data.unwrap()["workbooks"].as_array().unwrap().iter().any(|n| n["luid"] == json!(w.id)), "{q}");
    }
    // ... and every later location stays where the user typed it.
    for q in [
        "{ workbooks(filter: {name: \"\\uD83D\\uDE00 \\u{1F600}\"}) { nosuch } }",
        "{ workbooks(filter: {name: \"x\"}) { nosuch } }",
    ] {
        let e = refused(&run(&s, q, json!({})));
        let column = q[..q.find("nosuch").unwrap()].chars().count() + 1;
        assert_eq!(e["locations"], json!([{"line": 1, "column": column}]), "{q}");
    }
    // A lone surrogate is still a syntax error.
    let e = refused(&run(&s, "{ workbooks(filter: {name: \"\\uDE00\\uD83D\"}) { luid } }", json!({})));
    assert!(e["message"].as_str().unwrap().starts_with("Invalid Syntax"), "{e}");
    // An Int out of range is refused wherever it stands.
    let e = refused(&run(&s, "{ workbooks(filter: {luidWithin: [1, -99999999999999999999]}) { luid } }", json!({})));
    assert!(
        e["message"].as_str().unwrap().contains("'-99999999999999999999' at line 1 column 38 (not a valid Int)"),
        "{e}"
    );
    // A syntax error before nesting that is too deep is reported as the syntax error.
    let e = refused(&run(&s, &format!("{{ workbooks ) {} }}", "[".repeat(100)), json!({})));
    assert!(
        e["message"].as_str().unwrap().starts_with("Invalid Syntax : offending token ')' at line 1 column 13"),
        "{e}"
    );
    // Operations and fragments are unique, an anonymous operation stands alone.
    for (q, kind) in [
        ("query a { workbooks { luid } } query a { workbooks { name } }", "DuplicateOperationName"),
        (
            "{ workbooks { ...F } } fragment F on Workbook { luid } fragment F on Workbook { name }",
            "DuplicateFragmentName",
        ),
        ("{ workbooks { luid } } query b { workbooks { name } }", "LoneAnonymousOperation"),
    ] {
        let e = refused(&run(&s, q, json!({})));
        assert!(e["message"].as_str().unwrap().starts_with(&format!("Validation error of type {kind}")), "{e}");
    }
}

#[tokio::test]
async fn http_answers_limits_with_200_and_graphql_errors() {
    let mut site = tabflow_site::generate::demo();
    site.shift_time_to(chrono::Utc::now());
    let running = crate::start(crate::Options::new(site)).await.expect("emulator starts");
    let http = reqwest::Client::new();
    let signin = r#"<tsRequest><credentials personalAccessTokenName="tabflow" personalAccessTokenSecret="tabflow"><site contentUrl="demo"/></credentials></tsRequest>"#;
    let text = http
        .post(format!("{}/api/3.25/auth/signin", running.url))
        .body(signin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token = tabflow_wire::xml::parse_response(&text).unwrap().credentials.unwrap().token.unwrap();
    let url = format!("{}/api/metadata/graphql", running.url);
    for query in [nested(200), "{".repeat(1 << 20), "{ workbooks { luid ".into()] {
        let r = http
            .post(&url)
            .header("X-Tableau-Auth", &token)
            .json(&json!({"query": query, "variables": null}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let body: Value = r.json().await.unwrap();
        assert!(body.get("data").is_none() && body["errors"][0]["message"].is_string(), "{body}");
    }
    let r = http.post(&url).json(&json!({"query": "{ workbooks { luid } }"})).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    running.stop().await;
}

#[test]
fn guid_differs_from_luid() {
    let g = metadata_guid("6d13b0ca-043d-4d42-8c9d-3f3313ea3a00");
    assert_ne!(g, "6d13b0ca-043d-4d42-8c9d-3f3313ea3a00");
    assert!(tabflow_wire::ids::is_luid(&g));
}

/// Every page of a filtered `workbooksConnection`, followed by cursor, as (nodes, pages).
fn all_pages(s: &Site, memo: Option<(&Memo, u64)>, projects: &[&str]) -> (Vec<Value>, usize) {
    let q = "query wbs($first: Int, $after: String, $projects: [String]) { \
             workbooksConnection(first: $first, after: $after, filter: {projectNameWithin: $projects}) { \
             nodes { luid name projectName upstreamDatasources { luid } sheets { upstreamFields { name } } } \
             pageInfo { hasNextPage endCursor } totalCount } }";
    let (mut nodes, mut pages, mut after) = (vec![], 0, Value::Null);
    loop {
        let vars = json!({"first": 7, "after": after, "projects": projects});
        let r = super::run(s, &Request { query: q.into(), variables: Some(vars), operation_name: None }, memo);
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        let c = r.data.unwrap()["workbooksConnection"].clone();
        nodes.extend(c["nodes"].as_array().unwrap().iter().cloned());
        pages += 1;
        if c["pageInfo"]["hasNextPage"] != json!(true) {
            return (nodes, pages);
        }
        after = c["pageInfo"]["endCursor"].clone();
    }
}

#[test]
fn pages_read_through_the_memo_are_those_computed_anew_and_a_new_generation_is_computed_anew() {
    let mut s = site();
    let mut names: Vec<&str> = s.projects.iter().map(|p| p.name.as_str()).collect();
    names.sort();
    names.dedup();
    let projects: Vec<String> = names.iter().take(names.len() / 2).map(|n| n.to_string()).collect();
    let projects: Vec<&str> = projects.iter().map(String::as_str).collect();
    let memo = Memo::default();
    let (fresh, pages) = all_pages(&s, None, &projects);
    assert!(pages > 3, "a list of several pages: {pages}");
    assert_eq!(all_pages(&s, Some((&memo, 1)), &projects), (fresh.clone(), pages));
    // Read again at the same generation: from the memo, the same answer.
    assert_eq!(all_pages(&s, Some((&memo, 1)), &projects), (fresh.clone(), pages));

    // A workbook moved out of those projects: the next generation sees it gone.
    let first = fresh[0]["luid"].as_str().unwrap().to_string();
    let outside = s.projects.iter().find(|p| !projects.contains(&p.name.as_str())).unwrap().id.clone();
    s.workbooks.iter_mut().find(|w| w.id == first).unwrap().project_id = outside;
    let (moved, _) = all_pages(&s, None, &projects);
    assert_eq!(moved.len(), fresh.len() - 1);
    assert_eq!(all_pages(&s, Some((&memo, 2)), &projects).0, moved);
    // An older generation is never kept over a newer one.
    assert_eq!(all_pages(&s, Some((&memo, 1)), &projects).0, moved);
}
