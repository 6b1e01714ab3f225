//! Query text → the small query AST the executor walks. apollo-parser does the lexing and
//! parsing (spec-complete, error-tolerant, with a recursion limit so hostile nesting cannot
//! overflow the stack); this file turns its concrete syntax tree into [`Document`], maps its
//! errors to Tableau's `Invalid Syntax` shape, and enforces the query-shape limits described
//! in the module comment of `metadata/mod.rs` ([`MAX_QUERY_BYTES`], [`MAX_DEPTH`],
//! [`MAX_NODES`]). The CST is converted only when apollo-parser reported no error, so every
//! node the conversion asks for is present.

use std::collections::{BTreeMap, BTreeSet};

use apollo_parser::cst::{self, CstNode};
use apollo_parser::{Parser, TextRange};
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

/// Byte offsets → 1-based line and column (columns count characters).
struct Lines<'a> {
    src: &'a str,
    starts: Vec<usize>,
}

impl<'a> Lines<'a> {
    fn new(src: &'a str) -> Lines<'a> {
        let mut starts = vec![0];
        starts.extend(src.bytes().enumerate().filter(|(_, b)| *b == b'\n').map(|(i, _)| i + 1));
        Lines { src, starts }
    }

    fn at(&self, offset: usize) -> Location {
        let offset = offset.min(self.src.len());
        let line = self.starts.partition_point(|s| *s <= offset).max(1);
        let start = self.starts[line - 1];
        let column = self.src.get(start..offset).map_or(offset - start, |s| s.chars().count()) + 1;
        Location { line: line as u32, column: column as u32 }
    }

    fn range(&self, r: TextRange) -> Location {
        self.at(usize::from(r.start()))
    }
}

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

/// apollo-parser's message with its token kind names (`expected R_CURLY, got EOF`) spelled
/// as the characters a user typed.
fn readable(message: &str) -> String {
    const KINDS: &[(&str, &str)] = &[
        ("L_CURLY", "'{'"),
        ("R_CURLY", "'}'"),
        ("L_PAREN", "'('"),
        ("R_PAREN", "')'"),
        ("L_BRACK", "'['"),
        ("R_BRACK", "']'"),
        ("COLON", "':'"),
        ("DOLLAR", "'$'"),
        ("BANG", "'!'"),
        ("EOF", "<EOF>"),
    ];
    message
        .split(' ')
        .map(|w| {
            let (word, tail) = w.find([',', '.']).map_or((w, ""), |i| w.split_at(i));
            match KINDS.iter().find(|(k, _)| *k == word) {
                Some((_, t)) => format!("{t}{tail}"),
                None => w.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// At most 40 characters of an offending token, cut on a character boundary.
fn shorten(token: &str) -> String {
    match token.char_indices().nth(40) {
        Some((i, _)) => format!("{}…", &token[..i]),
        None => token.to_string(),
    }
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
    let lines = Lines::new(src);
    // Values and types nest too, so the parser gets a little room above MAX_DEPTH; the exact
    // depth is checked on the AST, with fragments expanded.
    let tree = Parser::new(src).recursion_limit(MAX_DEPTH + 8).parse();
    if let Some(e) = tree.errors().min_by_key(|e| (e.index(), !e.is_limit())) {
        if e.is_limit() {
            return Err(depth_exceeded(tree.recursion_limit().high));
        }
        let token = if e.is_eof() { "<EOF>".to_string() } else { shorten(e.data()) };
        return Err(syntax(&token, lines.at(e.index()), &readable(e.message())));
    }
    let conv = Conv { lines: &lines };
    let mut doc = Document { ops: vec![], frags: BTreeMap::new() };
    for def in tree.document().definitions() {
        match def {
            cst::Definition::OperationDefinition(op) => doc.ops.push(conv.operation(&op)?),
            cst::Definition::FragmentDefinition(fr) => {
                let name = conv.name(fr.fragment_name().and_then(|n| n.name()), fr.syntax())?;
                let on =
                    conv.name(fr.type_condition().and_then(|t| t.named_type()).and_then(|t| t.name()), fr.syntax())?;
                let selection = conv.selection_set(fr.selection_set(), fr.syntax())?;
                doc.frags.insert(name, Fragment { on, selection });
            }
            other => {
                let word = other.syntax().first_token().map(|t| t.text().to_string()).unwrap_or_default();
                let at = lines.range(other.syntax().text_range());
                return Err(syntax(&word, at, "expected a query, mutation or fragment"));
            }
        }
    }
    Ok(doc)
}

/// CST → AST conversion over an error-free tree. A missing node still becomes a syntax error
/// rather than a panic.
struct Conv<'a> {
    lines: &'a Lines<'a>,
}

impl Conv<'_> {
    fn missing(&self, near: &apollo_parser::SyntaxNode) -> GraphqlError {
        let text = near.text().to_string();
        syntax(&shorten(&text), self.lines.range(near.text_range()), "incomplete definition")
    }

    fn name(&self, n: Option<cst::Name>, near: &apollo_parser::SyntaxNode) -> Result<String, GraphqlError> {
        n.map(|n| n.text().to_string()).ok_or_else(|| self.missing(near))
    }

    fn operation(&self, op: &cst::OperationDefinition) -> Result<Operation, GraphqlError> {
        let kind = match op.operation_type() {
            Some(t) if t.mutation_token().is_some() => "mutation",
            Some(t) if t.subscription_token().is_some() => "subscription",
            _ => "query",
        };
        let mut vars = Vec::new();
        for v in op.variable_definitions().iter().flat_map(|d| d.variable_definitions()) {
            let name = self.name(v.variable().and_then(|x| x.name()), v.syntax())?;
            let non_null = matches!(v.ty(), Some(cst::Type::NonNullType(_)));
            let default = match v.default_value().and_then(|d| d.value()) {
                Some(d) => Some(self.value(&d)?),
                None => None,
            };
            vars.push(VarDef { name, non_null, default });
        }
        Ok(Operation {
            name: op.name().map(|n| n.text().to_string()),
            kind: kind.into(),
            vars,
            selection: self.selection_set(op.selection_set(), op.syntax())?,
        })
    }

    fn selection_set(
        &self,
        set: Option<cst::SelectionSet>,
        near: &apollo_parser::SyntaxNode,
    ) -> Result<Vec<Selection>, GraphqlError> {
        let set = set.ok_or_else(|| self.missing(near))?;
        set.selections().map(|s| self.selection(&s)).collect()
    }

    fn selection(&self, s: &cst::Selection) -> Result<Selection, GraphqlError> {
        Ok(match s {
            cst::Selection::Field(f) => {
                let name_node = f.alias().and_then(|a| a.name()).or_else(|| f.name());
                let at = name_node.map_or_else(|| f.syntax().text_range(), |n| n.syntax().text_range());
                Selection::Field(Field {
                    alias: f.alias().and_then(|a| a.name()).map(|n| n.text().to_string()),
                    name: self.name(f.name(), f.syntax())?,
                    args: self.arguments(f.arguments())?,
                    directives: self.directives(f.directives())?,
                    selection: match f.selection_set() {
                        Some(set) => self.selection_set(Some(set), f.syntax())?,
                        None => vec![],
                    },
                    at: self.lines.range(at),
                })
            }
            cst::Selection::FragmentSpread(sp) => {
                let at = sp.dotdotdot_token().map_or_else(|| sp.syntax().text_range(), |t| t.text_range());
                Selection::Spread {
                    name: self.name(sp.fragment_name().and_then(|n| n.name()), sp.syntax())?,
                    directives: self.directives(sp.directives())?,
                    at: self.lines.range(at),
                }
            }
            cst::Selection::InlineFragment(inl) => Selection::Inline {
                on: inl
                    .type_condition()
                    .and_then(|t| t.named_type())
                    .and_then(|t| t.name())
                    .map(|n| n.text().to_string()),
                directives: self.directives(inl.directives())?,
                selection: self.selection_set(inl.selection_set(), inl.syntax())?,
            },
        })
    }

    fn arguments(&self, args: Option<cst::Arguments>) -> Result<Args, GraphqlError> {
        let mut out = Vec::new();
        for a in args.iter().flat_map(|a| a.arguments()) {
            let name = self.name(a.name(), a.syntax())?;
            let value = a.value().ok_or_else(|| self.missing(a.syntax()))?;
            out.push((name, self.value(&value)?));
        }
        Ok(out)
    }

    fn directives(&self, ds: Option<cst::Directives>) -> Result<Directives, GraphqlError> {
        let mut out = Vec::new();
        for d in ds.iter().flat_map(|d| d.directives()) {
            out.push((self.name(d.name(), d.syntax())?, self.arguments(d.arguments())?));
        }
        Ok(out)
    }

    fn value(&self, v: &cst::Value) -> Result<Val, GraphqlError> {
        let bad = |what: &str| {
            let text = v.syntax().text().to_string();
            syntax(&shorten(&text), self.lines.range(v.syntax().text_range()), what)
        };
        Ok(match v {
            cst::Value::Variable(x) => Val::Var(self.name(x.name(), x.syntax())?),
            cst::Value::StringValue(s) => Val::Lit(Value::String(String::from(s))),
            cst::Value::IntValue(n) => {
                let text = n.int_token().map(|t| t.text().to_string()).unwrap_or_default();
                Val::Lit(json!(text.parse::<i64>().map_err(|_| bad("not a valid Int"))?))
            }
            cst::Value::FloatValue(n) => {
                let text = n.float_token().map(|t| t.text().to_string()).unwrap_or_default();
                Val::Lit(json!(text.parse::<f64>().map_err(|_| bad("not a valid Float"))?))
            }
            cst::Value::BooleanValue(b) => Val::Lit(Value::Bool(b.true_token().is_some())),
            cst::Value::NullValue(_) => Val::Lit(Value::Null),
            cst::Value::EnumValue(e) => Val::Lit(Value::String(self.name(e.name(), e.syntax())?)),
            cst::Value::ListValue(l) => Val::List(l.values().map(|x| self.value(&x)).collect::<Result<_, _>>()?),
            cst::Value::ObjectValue(o) => {
                let mut fields = Vec::new();
                for f in o.object_fields() {
                    let k = self.name(f.name(), f.syntax())?;
                    let x = f.value().ok_or_else(|| self.missing(f.syntax()))?;
                    fields.push((k, self.value(&x)?));
                }
                Val::Obj(fields)
            }
        })
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
