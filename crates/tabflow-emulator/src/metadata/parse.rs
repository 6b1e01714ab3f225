//! Query text → the small query AST the executor walks. async-graphql-parser (a pest grammar)
//! does the parsing; this file turns its document into [`Document`], maps its errors to
//! Tableau's `Invalid Syntax` shape, and enforces the query-shape limits described in the
//! module comment of `metadata/mod.rs` ([`MAX_QUERY_BYTES`], [`MAX_DEPTH`], [`MAX_NODES`]).
//!
//! Before the parser runs, [`prepare`] makes one lexical pass over the text (strings and
//! comments skipped) for three things the parser does not do for us:
//! - bracket nesting: async-graphql-parser bounds only selection sets, and its value and type
//!   rules recurse without a limit, so nesting deeper than [`MAX_NESTING`] is refused before
//!   parsing and hostile input (`[[[[…`) can never exhaust the stack;
//! - integer literals outside 64 bits: the parser turns them into floats, graphql-java refuses
//!   them (`not a valid Int`);
//! - `\u{1F600}` escapes and surrogate pairs (`\uD83D\uDE00`), which the current GraphQL spec
//!   allows and the grammar does not: each is replaced by the character it names, padded
//!   with spaces after the string's closing quote so every later line and column is kept.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use async_graphql_parser::types::{self as gql, DocumentOperations, ExecutableDocument, OperationType};
use async_graphql_parser::{Error as ParseError, Pos, Positioned};
use async_graphql_value::{Name, Value as GqlValue};
use serde_json::{Value, json};
use tabflow_wire::graphql::{GraphqlError, Location};

/// Largest query text accepted, in bytes.
pub(super) const MAX_QUERY_BYTES: usize = 256 * 1024;
/// Deepest nesting accepted: fields with a sub-selection, inline fragments and fragment
/// spreads each open one level, counted with fragments expanded.
pub(super) const MAX_DEPTH: usize = 20;
/// Most selections accepted (fields, fragment spreads and inline fragments), counted with
/// fragments expanded, so a fragment spread twice counts twice.
pub(super) const MAX_NODES: usize = 1000;
/// Deepest bracket nesting (`{`, `[`, `(`) the parser is given: a little room above
/// [`MAX_DEPTH`] for arguments, values and list types; the exact selection depth is checked
/// on the AST, with fragments expanded.
const MAX_NESTING: usize = MAX_DEPTH + 8;

// ---------------------------------------------------------------- query AST

#[derive(Debug, Clone)]
pub(super) enum Val {
    Var(String),
    Lit(Value),
    List(Vec<Val>),
    Obj(Vec<(String, Val)>),
}

pub(super) type Args = Vec<(String, Val)>;
pub(super) type Directives = Vec<(String, Args)>;

#[derive(Debug, Clone)]
pub(super) struct Field {
    pub alias: Option<String>,
    pub name: String,
    pub args: Args,
    pub directives: Directives,
    pub selection: Vec<Selection>,
    pub at: Location,
}

#[derive(Debug, Clone)]
pub(super) enum Selection {
    Field(Field),
    Inline { on: Option<String>, directives: Directives, selection: Vec<Selection> },
    Spread { name: String, directives: Directives, at: Location },
}

#[derive(Debug, Clone)]
pub(super) struct VarDef {
    pub name: String,
    pub non_null: bool,
    pub default: Option<Val>,
}

#[derive(Debug, Clone)]
pub(super) struct Operation {
    pub name: Option<String>,
    /// `query`, `mutation` or `subscription` (an anonymous `{ ... }` is a query).
    pub kind: String,
    pub vars: Vec<VarDef>,
    pub selection: Vec<Selection>,
}

#[derive(Debug, Clone)]
pub(super) struct Fragment {
    pub on: String,
    pub selection: Vec<Selection>,
}

pub(super) struct Document {
    pub ops: Vec<Operation>,
    pub frags: BTreeMap<String, Fragment>,
}

// ---------------------------------------------------------------- errors

/// Tableau's (graphql-java's) syntax error: `Invalid Syntax : offending token '…' at line L
/// column C (what was expected)`, with the location and `classification: InvalidSyntax`.
fn syntax(token: &str, at: Location, what: &str) -> GraphqlError {
    GraphqlError {
        message: format!(
            "Invalid Syntax : offending token '{token}' at line {} column {} ({what})",
            at.line, at.column
        ),
        locations: vec![at],
        path: vec![],
        extensions: Some(json!({"classification": "InvalidSyntax"})),
    }
}

/// A validation error as graphql-java words it: `Validation error of type KIND: …`.
fn invalid(kind: &str, message: &str, at: Pos) -> GraphqlError {
    GraphqlError {
        message: format!("Validation error of type {kind}: {message}"),
        locations: vec![loc(at)],
        path: vec![],
        extensions: Some(json!({"classification": "ValidationError"})),
    }
}

/// A query refused for its shape (size, depth, node count), as graphql-java's limit
/// instrumentations answer: no data, one error, `classification: ExecutionAborted`.
fn limit(message: String) -> GraphqlError {
    GraphqlError {
        message,
        locations: vec![],
        path: vec![],
        extensions: Some(json!({"classification": "ExecutionAborted"})),
    }
}

fn depth_exceeded(depth: usize) -> GraphqlError {
    limit(format!("maximum query depth exceeded {depth} > {MAX_DEPTH}"))
}

fn loc(p: Pos) -> Location {
    Location { line: p.line as u32, column: p.column as u32 }
}

/// At most 40 characters of an offending token, cut on a character boundary.
fn shorten(token: &str) -> String {
    match token.char_indices().nth(40) {
        Some((i, _)) => format!("{}…", &token[..i]),
        None => token.to_string(),
    }
}

/// Byte offset of a 1-based line and column (columns count characters), clamped to `src`.
fn offset(src: &str, at: Pos) -> usize {
    let start = match at.line {
        0 | 1 => 0,
        n => src.match_indices('\n').nth(n - 2).map_or(src.len(), |(i, _)| i + 1),
    };
    let line = &src[start..];
    start + line.char_indices().nth(at.column.saturating_sub(1)).map_or(line.len(), |(i, _)| i)
}

/// The token starting at byte `at` as a user would name it: a word or number, a string up to
/// its closing quote (or the end of the line), `...`, one character, or `<EOF>`.
fn token_at(src: &str, at: usize) -> String {
    let rest = &src[at..];
    let Some(first) = rest.chars().next() else { return "<EOF>".into() };
    let word = |c: char| c.is_alphanumeric() || c == '_';
    let len = if rest.starts_with("...") {
        3
    } else if first == '"' {
        rest[1..]
            .find(['"', '\n', '\r'])
            .map_or(rest.len(), |i| if rest[1 + i..].starts_with('"') { i + 2 } else { i + 1 })
    } else if word(first) || first == '-' {
        rest.char_indices()
            .skip(1)
            .find(|(_, c)| !(word(*c) || matches!(c, '.' | '+' | '-')))
            .map_or(rest.len(), |(i, _)| i)
    } else {
        first.len_utf8()
    };
    shorten(&rest[..len])
}

/// A grammar rule as what a user would type or recognise.
fn spell(rule: &str) -> &str {
    match rule {
        "EOI" => "<EOF>",
        "executable_definition" => "a query, mutation or fragment",
        "selection_set" => "'{'",
        "selection" => "a field or fragment",
        "arguments" | "variable_definitions" => "'('",
        "directive" | "directives" => "'@'",
        "alias" => "':'",
        "default_value" => "'='",
        "type_condition" => "'on'",
        "type_" => "a type",
        "value" => "a value",
        "const_value" => "a constant value",
        "argument" => "an argument",
        "object_field" | "const_object_field" => "an object field",
        "name" => "a name",
        "variable" | "variable_definition" => "a variable",
        other => other,
    }
}

/// pest's account of what it expected (`expected selection or EOI`) in a user's words. pest
/// names only grammar rules, not literal tokens, so the one literal a user most often
/// misses is added back: `'}'` wherever a further selection could start, unless the
/// selection set was only just opened.
fn expected(pest_message: &str, after_open_brace: bool) -> String {
    let text = pest_message.rsplit('\n').next().unwrap_or(pest_message).trim_start();
    let text = text.strip_prefix("= ").unwrap_or(text);
    let Some(list) = text.strip_prefix("expected ") else {
        // `unexpected …; expected …`, or a message of pest's own.
        let word = |w: &str| {
            let (rule, tail) = w.split_at(w.trim_end_matches([',', ';']).len());
            format!("{}{tail}", spell(rule))
        };
        return text.split(' ').map(word).collect::<Vec<_>>().join(" ");
    };
    let mut items: Vec<&str> =
        list.split(", ").flat_map(|s| s.split(" or ")).map(|s| spell(s.trim_start_matches("or "))).collect();
    if items.contains(&"a field or fragment") && !after_open_brace {
        items.push("'}'");
    }
    let items = match items.split_last() {
        Some((last, [])) => last.to_string(),
        Some((last, [one])) => format!("{one} or {last}"),
        Some((last, rest)) => format!("{}, or {last}", rest.join(", ")),
        None => String::new(),
    };
    format!("expected {items}")
}

// ---------------------------------------------------------------- lexical pre-pass

/// What [`prepare`] found: the text to parse, its deepest bracket nesting, where (byte
/// offset) that nesting first passes [`MAX_NESTING`], and the first integer literal that
/// does not fit in 64 bits.
struct Prepared<'a> {
    text: Cow<'a, str>,
    nesting: usize,
    too_deep: Option<usize>,
    bad_int: Option<usize>,
}

/// One pass over `src` outside strings and comments (see the module comment).
fn prepare(src: &str) -> Prepared<'_> {
    let b = src.as_bytes();
    let (mut i, mut depth, mut nesting, mut too_deep, mut bad_int) = (0, 0usize, 0, None, None);
    // (start, end, replacement) of escapes to rewrite, then padding after a closing quote.
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    while i < b.len() {
        match b[i] {
            b'#' => i = src[i..].find(['\n', '\r']).map_or(b.len(), |n| i + n),
            b'"' if b[i..].starts_with(b"\"\"\"") => {
                // Block string: only `\"""` is an escape.
                let mut j = i + 3;
                while j < b.len() && !b[j..].starts_with(b"\"\"\"") {
                    j += if b[j..].starts_with(b"\\\"\"\"") { 4 } else { 1 };
                }
                i = (j + 3).min(b.len());
            }
            b'"' => {
                let (mut j, mut string_edits, mut saved) = (i + 1, Vec::new(), 0);
                while j < b.len() && !matches!(b[j], b'"' | b'\n' | b'\r') {
                    if b[j] != b'\\' {
                        j += 1;
                        continue;
                    }
                    match escape(&src[j..]) {
                        Some((len, c)) => {
                            let spelled = match c {
                                '"' => "\\\"".to_string(),
                                '\\' => "\\\\".into(),
                                '\n' => "\\n".into(),
                                '\r' => "\\r".into(),
                                c => c.to_string(),
                            };
                            saved += len - spelled.chars().count();
                            string_edits.push((j, j + len, spelled));
                            j += len;
                        }
                        None => j += 2,
                    }
                }
                // An unterminated string is left as it is, for the parser to report.
                if j < b.len() && b[j] == b'"' && !string_edits.is_empty() {
                    edits.extend(string_edits);
                    edits.push((j + 1, j + 1, " ".repeat(saved)));
                }
                i = (j + 1).min(b.len());
            }
            b'{' | b'[' | b'(' => {
                depth += 1;
                nesting = nesting.max(depth);
                if depth > MAX_NESTING {
                    too_deep = too_deep.or(Some(i));
                }
                i += 1;
            }
            b'}' | b']' | b')' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                i += b[i..].iter().take_while(|c| c.is_ascii_alphanumeric() || **c == b'_').count();
            }
            c if c.is_ascii_digit() || c == b'-' => {
                // A number: `-`? digits, then an optional fraction and exponent.
                let start = i;
                let digits = |from: usize| b[from..].iter().take_while(|c| c.is_ascii_digit()).count();
                i += usize::from(c == b'-');
                let int_digits = digits(i);
                i += int_digits;
                let int_end = i;
                if b.get(i) == Some(&b'.') {
                    i += 1 + digits(i + 1);
                }
                if matches!(b.get(i), Some(b'e' | b'E')) {
                    i += 1 + usize::from(matches!(b.get(i + 1), Some(b'+' | b'-')));
                    i += digits(i);
                }
                let int = int_digits > 0 && i == int_end;
                if int && src[start..i].parse::<i64>().is_err() {
                    bad_int = bad_int.or(Some(start));
                }
                i = i.max(start + 1);
            }
            _ => i += 1,
        }
    }
    let text = if edits.is_empty() {
        Cow::Borrowed(src)
    } else {
        let (mut out, mut at) = (String::with_capacity(src.len()), 0);
        for (start, end, with) in edits {
            out.push_str(&src[at..start]);
            out.push_str(&with);
            at = end;
        }
        out.push_str(&src[at..]);
        Cow::Owned(out)
    };
    Prepared { text, nesting, too_deep, bad_int }
}

/// A `\u` escape the grammar lacks, at the start of `s`: `\u{HEX…}` naming a Unicode scalar
/// value, or a `\uXXXX\uXXXX` surrogate pair; its length in bytes and the character.
fn escape(s: &str) -> Option<(usize, char)> {
    if let Some(body) = s.strip_prefix("\\u{") {
        let digits = &body[..body.find('}')?];
        if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        let significant = digits.trim_start_matches('0');
        let code = if significant.is_empty() { 0 } else { u32::from_str_radix(significant, 16).ok()? };
        return Some((4 + digits.len(), char::from_u32(code)?));
    }
    let hex4 = |h: &str| {
        let h = h.strip_prefix("\\u")?.get(..4)?;
        if h.bytes().all(|c| c.is_ascii_hexdigit()) { u32::from_str_radix(h, 16).ok() } else { None }
    };
    let (high, low) = (hex4(s)?, hex4(s.get(6..)?)?);
    if !(0xD800..0xDC00).contains(&high) || !(0xDC00..0xE000).contains(&low) {
        return None;
    }
    Some((12, char::from_u32(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))?))
}

// ---------------------------------------------------------------- parsing

/// Parses `src` into a [`Document`]; the first problem (in source order) is the error.
pub(super) fn parse(src: &str) -> Result<Document, GraphqlError> {
    if src.trim().is_empty() {
        return Err(GraphqlError::new("Invalid Syntax : the query is empty"));
    }
    if src.len() > MAX_QUERY_BYTES {
        return Err(GraphqlError {
            message: format!(
                "Invalid Syntax : More than {MAX_QUERY_BYTES} bytes have been presented. \
                 To prevent Denial Of Service attacks, parsing has been cancelled."
            ),
            locations: vec![],
            path: vec![],
            extensions: Some(json!({"classification": "InvalidSyntax"})),
        });
    }
    let prepared = prepare(src);
    if let Some(at) = prepared.too_deep {
        // Only the text before the bracket too many is parsed (it cannot be complete, so it
        // always fails): a syntax error before that bracket comes first, as it would in a
        // parse of the whole text; failing only where the text was cut means too deep.
        let cut = pos(src, at);
        let prefix = &prepared.text[..offset(&prepared.text, cut)];
        return Err(match async_graphql_parser::parse_query(prefix) {
            Err(e @ ParseError::Syntax { start, .. }) if start < cut => parse_error(src, e, prepared.nesting),
            _ => depth_exceeded(prepared.nesting),
        });
    }
    let doc = async_graphql_parser::parse_query(&*prepared.text).map_err(|e| parse_error(src, e, prepared.nesting))?;
    if let Some(at) = prepared.bad_int {
        return Err(syntax(&token_at(src, at), loc(pos(src, at)), "not a valid Int"));
    }
    Ok(convert(doc))
}

/// 1-based line and character column of byte `at`.
fn pos(src: &str, at: usize) -> Pos {
    let before = &src[..at];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    Pos { line: before.matches('\n').count() + 1, column: before[line_start..].chars().count() + 1 }
}

/// The parser's error in Tableau's shape.
fn parse_error(src: &str, e: ParseError, nesting: usize) -> GraphqlError {
    match e {
        ParseError::Syntax { message, start, .. } => {
            let at = offset(src, start);
            let after_open_brace = src[..at].trim_end_matches(|c: char| c.is_whitespace() || c == ',').ends_with('{');
            let what = if message.starts_with("invalid number") {
                "not a valid Float".into()
            } else {
                expected(&message, after_open_brace)
            };
            let token = token_at(src, at);
            syntax(&token, loc(start), &what)
        }
        ParseError::RecursionLimitExceeded => depth_exceeded(nesting),
        ParseError::MissingOperation => GraphqlError::new("Invalid Syntax : the document has no operation"),
        ParseError::MultipleOperations { anonymous, .. } => {
            invalid("LoneAnonymousOperation", "Anonymous operation with other operations.", anonymous)
        }
        ParseError::OperationDuplicated { operation, second, .. } => {
            invalid("DuplicateOperationName", &format!("There can be only one operation named '{operation}'"), second)
        }
        ParseError::FragmentDuplicated { fragment, second, .. } => {
            invalid("DuplicateFragmentName", &format!("There can be only one fragment named '{fragment}'"), second)
        }
        other => GraphqlError::new(format!("Invalid Syntax : {other}")),
    }
}

/// async-graphql-parser's document → [`Document`], operations in source order.
fn convert(doc: ExecutableDocument) -> Document {
    let mut ops: Vec<(Pos, Operation)> = match doc.operations {
        DocumentOperations::Single(op) => vec![(op.pos, operation(None, op.node))],
        DocumentOperations::Multiple(ops) => {
            ops.into_iter().map(|(name, op)| (op.pos, operation(Some(name.to_string()), op.node))).collect()
        }
    };
    ops.sort_by_key(|(pos, _)| *pos);
    let frags = doc
        .fragments
        .into_iter()
        .map(|(name, f)| {
            let f = f.node;
            (
                name.to_string(),
                Fragment { on: f.type_condition.node.on.node.to_string(), selection: selections(f.selection_set.node) },
            )
        })
        .collect();
    Document { ops: ops.into_iter().map(|(_, op)| op).collect(), frags }
}

fn operation(name: Option<String>, op: gql::OperationDefinition) -> Operation {
    let kind = match op.ty {
        OperationType::Query => "query",
        OperationType::Mutation => "mutation",
        OperationType::Subscription => "subscription",
    };
    let vars = op
        .variable_definitions
        .into_iter()
        .map(|v| {
            let v = v.node;
            VarDef {
                name: v.name.node.to_string(),
                non_null: !v.var_type.node.nullable,
                default: v.default_value.map(|d| value(d.node.into_value())),
            }
        })
        .collect();
    Operation { name, kind: kind.into(), vars, selection: selections(op.selection_set.node) }
}

fn selections(set: gql::SelectionSet) -> Vec<Selection> {
    set.items
        .into_iter()
        .map(|s| match s.node {
            gql::Selection::Field(f) => {
                let at = loc(f.pos);
                let f = f.node;
                Selection::Field(Field {
                    alias: f.alias.map(|a| a.node.to_string()),
                    name: f.name.node.to_string(),
                    args: arguments(f.arguments),
                    directives: directives(f.directives),
                    selection: selections(f.selection_set.node),
                    at,
                })
            }
            gql::Selection::FragmentSpread(sp) => Selection::Spread {
                at: loc(sp.pos),
                name: sp.node.fragment_name.node.to_string(),
                directives: directives(sp.node.directives),
            },
            gql::Selection::InlineFragment(inl) => {
                let inl = inl.node;
                Selection::Inline {
                    on: inl.type_condition.map(|t| t.node.on.node.to_string()),
                    directives: directives(inl.directives),
                    selection: selections(inl.selection_set.node),
                }
            }
        })
        .collect()
}

fn arguments(args: Vec<(Positioned<Name>, Positioned<GqlValue>)>) -> Args {
    args.into_iter().map(|(k, v)| (k.node.to_string(), value(v.node))).collect()
}

fn directives(ds: Vec<Positioned<gql::Directive>>) -> Directives {
    ds.into_iter().map(|d| (d.node.name.node.to_string(), arguments(d.node.arguments))).collect()
}

fn value(v: GqlValue) -> Val {
    match v {
        GqlValue::Variable(n) => Val::Var(n.to_string()),
        GqlValue::Null => Val::Lit(Value::Null),
        GqlValue::Number(n) => Val::Lit(Value::Number(n)),
        GqlValue::String(s) => Val::Lit(Value::String(s)),
        GqlValue::Boolean(b) => Val::Lit(Value::Bool(b)),
        GqlValue::Enum(e) => Val::Lit(Value::String(e.to_string())),
        GqlValue::Binary(b) => Val::Lit(json!(b.to_vec())),
        GqlValue::List(items) => Val::List(items.into_iter().map(value).collect()),
        GqlValue::Object(fields) => Val::Obj(fields.into_iter().map(|(k, v)| (k.to_string(), value(v))).collect()),
    }
}

// ---------------------------------------------------------------- shape limits

/// Checks the operation's shape with its fragments expanded: nesting depth, number of
/// selections, and fragment cycles (which would otherwise expand forever). The walk stops at
/// the first limit crossed, so its cost is bounded by [`MAX_NODES`] whatever the query.
pub(super) fn check_shape(doc: &Document, op: &Operation) -> Result<(), GraphqlError> {
    let mut walk = Shape { frags: &doc.frags, nodes: 0, active: BTreeSet::new() };
    walk.visit(&op.selection, 1)
}

struct Shape<'a> {
    frags: &'a BTreeMap<String, Fragment>,
    nodes: usize,
    /// Fragments being expanded on the current path.
    active: BTreeSet<&'a str>,
}

impl<'a> Shape<'a> {
    fn visit(&mut self, sel: &'a [Selection], depth: usize) -> Result<(), GraphqlError> {
        if depth > MAX_DEPTH {
            return Err(depth_exceeded(depth));
        }
        for s in sel {
            self.nodes += 1;
            if self.nodes > MAX_NODES {
                return Err(limit(format!(
                    "maximum query complexity exceeded: the query selects more than {MAX_NODES} nodes \
                     (fields, fragment spreads and inline fragments, with fragments expanded)"
                )));
            }
            match s {
                Selection::Field(f) if f.selection.is_empty() => {}
                Selection::Field(f) => self.visit(&f.selection, depth + 1)?,
                Selection::Inline { selection, .. } => self.visit(selection, depth + 1)?,
                Selection::Spread { name, at, .. } => {
                    let Some((key, fr)) = self.frags.get_key_value(name.as_str()) else { continue };
                    if !self.active.insert(key.as_str()) {
                        return Err(GraphqlError {
                            message: format!(
                                "Validation error of type FragmentCycle: Fragment cycles not allowed: '{name}' spreads itself"
                            ),
                            locations: vec![*at],
                            path: vec![],
                            extensions: Some(json!({"classification": "ValidationError"})),
                        });
                    }
                    self.visit(&fr.selection, depth + 1)?;
                    self.active.remove(key.as_str());
                }
            }
        }
        Ok(())
    }
}
