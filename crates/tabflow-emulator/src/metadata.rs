//! Metadata API (GraphQL) over a site: a small GraphQL parser, validation against the lineage
//! subset of Tableau's schema, and an executor. Errors come back as GraphQL does, HTTP 200
//! with `errors[]`, so callers see Tableau's behaviour.
//!
//! Supported: operations with variables (and defaults), aliases, arguments of every literal
//! kind, fragments (named and inline with type conditions), `@include`/`@skip`,
//! `__typename`; root fields `publishedDatasources`, `workbooks`, `databaseTables`,
//! `embeddedDatasources` and their `...Connection` forms with `first`/`after`/`offset`,
//! `filter` (incl. `...Within`) and `orderBy`. Lineage comes from workbooks'
//! `datasource_ids`; sheets are views; a sheet's fields are the workbook's `fields_used`.

use std::collections::BTreeMap;

use base64::Engine;
use serde_json::{Map, Value, json};
use tabflow_site::Site;
use tabflow_wire::graphql::{GraphqlError, Location, Request, Response};

// ---------------------------------------------------------------- lexer

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Punct(char),
    Spread,
    Name(String),
    Int(i64),
    Float(f64),
    Str(String),
    Eof,
}

struct Lexer<'a> {
    src: &'a [u8],
    pos: usize,
    line: u32,
    col: u32,
}

fn syntax(msg: String, line: u32, col: u32) -> GraphqlError {
    GraphqlError {
        message: format!("Invalid Syntax : {msg}"),
        locations: vec![Location { line, column: col }],
        path: vec![],
        extensions: Some(json!({"classification": "InvalidSyntax"})),
    }
}

impl<'a> Lexer<'a> {
    fn bump(&mut self) -> u8 {
        let c = self.src[self.pos];
        self.pos += 1;
        if c == b'\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        c
    }

    fn tokens(mut self) -> Result<Vec<(Tok, u32, u32)>, GraphqlError> {
        let mut out = Vec::new();
        loop {
            while self.pos < self.src.len() {
                let c = self.src[self.pos];
                if c.is_ascii_whitespace() || c == b',' || c == 0xEF || c == 0xBB || c == 0xBF {
                    self.bump();
                } else if c == b'#' {
                    while self.pos < self.src.len() && self.src[self.pos] != b'\n' {
                        self.bump();
                    }
                } else {
                    break;
                }
            }
            let (line, col) = (self.line, self.col);
            if self.pos >= self.src.len() {
                out.push((Tok::Eof, line, col));
                return Ok(out);
            }
            let c = self.src[self.pos];
            let tok = match c {
                b'{' | b'}' | b'(' | b')' | b':' | b'!' | b'$' | b'[' | b']' | b'=' | b'@' | b'|' => {
                    self.bump();
                    Tok::Punct(c as char)
                }
                b'.' => {
                    if self.src[self.pos..].starts_with(b"...") {
                        self.bump();
                        self.bump();
                        self.bump();
                        Tok::Spread
                    } else {
                        return Err(syntax("offending token '.'".into(), line, col));
                    }
                }
                b'"' => {
                    if self.src[self.pos..].starts_with(b"\"\"\"") {
                        for _ in 0..3 {
                            self.bump();
                        }
                        let start = self.pos;
                        while self.pos < self.src.len() && !self.src[self.pos..].starts_with(b"\"\"\"") {
                            self.bump();
                        }
                        if self.pos >= self.src.len() {
                            return Err(syntax("unterminated block string".into(), line, col));
                        }
                        let s = String::from_utf8_lossy(&self.src[start..self.pos]).into_owned();
                        for _ in 0..3 {
                            self.bump();
                        }
                        Tok::Str(s)
                    } else {
                        self.bump();
                        let mut s = Vec::new();
                        loop {
                            if self.pos >= self.src.len() || self.src[self.pos] == b'\n' {
                                return Err(syntax("unterminated string".into(), line, col));
                            }
                            let c = self.bump();
                            match c {
                                b'"' => break,
                                b'\\' => {
                                    if self.pos >= self.src.len() {
                                        return Err(syntax("unterminated string".into(), line, col));
                                    }
                                    let e = self.bump();
                                    match e {
                                        b'n' => s.push(b'\n'),
                                        b't' => s.push(b'\t'),
                                        b'r' => s.push(b'\r'),
                                        b'u' => {
                                            let mut hex = String::new();
                                            while hex.len() < 4 && self.pos < self.src.len() {
                                                hex.push(self.bump() as char);
                                            }
                                            let ch = u32::from_str_radix(&hex, 16)
                                                .ok()
                                                .and_then(char::from_u32)
                                                .unwrap_or('\u{fffd}');
                                            let mut b = [0u8; 4];
                                            s.extend_from_slice(ch.encode_utf8(&mut b).as_bytes());
                                        }
                                        other => s.push(other),
                                    }
                                }
                                other => s.push(other),
                            }
                        }
                        Tok::Str(String::from_utf8_lossy(&s).into_owned())
                    }
                }
                b'-' | b'0'..=b'9' => {
                    let start = self.pos;
                    self.bump();
                    let mut float = false;
                    while self.pos < self.src.len() {
                        let d = self.src[self.pos];
                        if d.is_ascii_digit() {
                            self.bump();
                        } else if matches!(d, b'.' | b'e' | b'E' | b'+') || (d == b'-' && float) {
                            float = true;
                            self.bump();
                        } else {
                            break;
                        }
                    }
                    let text = std::str::from_utf8(&self.src[start..self.pos]).unwrap_or("");
                    if float {
                        Tok::Float(text.parse().map_err(|_| syntax(format!("offending token '{text}'"), line, col))?)
                    } else {
                        Tok::Int(text.parse().map_err(|_| syntax(format!("offending token '{text}'"), line, col))?)
                    }
                }
                c if c.is_ascii_alphabetic() || c == b'_' => {
                    let start = self.pos;
                    while self.pos < self.src.len()
                        && (self.src[self.pos].is_ascii_alphanumeric() || self.src[self.pos] == b'_')
                    {
                        self.bump();
                    }
                    Tok::Name(String::from_utf8_lossy(&self.src[start..self.pos]).into_owned())
                }
                _ => {
                    let ch =
                        String::from_utf8_lossy(&self.src[self.pos..(self.pos + 1).min(self.src.len())]).into_owned();
                    return Err(syntax(format!("offending token '{ch}'"), line, col));
                }
            };
            out.push((tok, line, col));
        }
    }
}

// ---------------------------------------------------------------- syntax tree

#[derive(Debug, Clone)]
enum Val {
    Var(String),
    Lit(Value),
    List(Vec<Val>),
    Obj(Vec<(String, Val)>),
}

#[derive(Debug, Clone)]
struct Field {
    alias: Option<String>,
    name: String,
    args: Vec<(String, Val)>,
    directives: Vec<(String, Vec<(String, Val)>)>,
    selection: Vec<Selection>,
    line: u32,
    col: u32,
}

#[derive(Debug, Clone)]
enum Selection {
    Field(Field),
    Inline { on: Option<String>, directives: Vec<(String, Vec<(String, Val)>)>, selection: Vec<Selection> },
    Spread { name: String, directives: Vec<(String, Vec<(String, Val)>)>, line: u32, col: u32 },
}

struct Operation {
    name: Option<String>,
    kind: String,
    vars: Vec<(String, bool, Option<Val>)>,
    selection: Vec<Selection>,
}

struct Fragment {
    on: String,
    selection: Vec<Selection>,
}

struct Parser {
    toks: Vec<(Tok, u32, u32)>,
    i: usize,
}

impl Parser {
    fn peek(&self) -> &Tok {
        &self.toks[self.i].0
    }
    fn here(&self) -> (u32, u32) {
        (self.toks[self.i].1, self.toks[self.i].2)
    }
    fn err<T>(&self, what: &str) -> Result<T, GraphqlError> {
        let (l, c) = self.here();
        let tok = match self.peek() {
            Tok::Punct(p) => p.to_string(),
            Tok::Spread => "...".into(),
            Tok::Name(n) => n.clone(),
            Tok::Int(n) => n.to_string(),
            Tok::Float(f) => f.to_string(),
            Tok::Str(s) => format!("\"{s}\""),
            Tok::Eof => "<EOF>".into(),
        };
        Err(syntax(format!("offending token '{tok}' at line {l} column {c} ({what})"), l, c))
    }
    fn next(&mut self) -> Tok {
        let t = self.toks[self.i].0.clone();
        if self.i < self.toks.len() - 1 {
            self.i += 1;
        }
        t
    }
    fn punct(&mut self, p: char) -> Result<(), GraphqlError> {
        if *self.peek() == Tok::Punct(p) {
            self.next();
            Ok(())
        } else {
            self.err(&format!("expected '{p}'"))
        }
    }
    fn is(&self, p: char) -> bool {
        *self.peek() == Tok::Punct(p)
    }
    fn name(&mut self) -> Result<String, GraphqlError> {
        match self.peek().clone() {
            Tok::Name(n) => {
                self.next();
                Ok(n)
            }
            _ => self.err("expected a name"),
        }
    }

    fn document(&mut self) -> Result<(Vec<Operation>, BTreeMap<String, Fragment>), GraphqlError> {
        let mut ops = Vec::new();
        let mut frags = BTreeMap::new();
        loop {
            match self.peek().clone() {
                Tok::Eof => break,
                Tok::Punct('{') => ops.push(Operation {
                    name: None,
                    kind: "query".into(),
                    vars: vec![],
                    selection: self.selection_set(0)?,
                }),
                Tok::Name(n) if n == "fragment" => {
                    self.next();
                    let name = self.name()?;
                    match self.next() {
                        Tok::Name(on) if on == "on" => {}
                        _ => return self.err("expected 'on'"),
                    }
                    let on = self.name()?;
                    self.directives()?;
                    let selection = self.selection_set(0)?;
                    frags.insert(name, Fragment { on, selection });
                }
                Tok::Name(n) if n == "query" || n == "mutation" || n == "subscription" => {
                    self.next();
                    let name = if let Tok::Name(_) = self.peek() { Some(self.name()?) } else { None };
                    let mut vars = Vec::new();
                    if self.is('(') {
                        self.next();
                        while !self.is(')') {
                            self.punct('$')?;
                            let v = self.name()?;
                            self.punct(':')?;
                            let non_null = self.type_ref()?;
                            let default = if self.is('=') {
                                self.next();
                                Some(self.value(true)?)
                            } else {
                                None
                            };
                            vars.push((v, non_null, default));
                        }
                        self.next();
                    }
                    self.directives()?;
                    ops.push(Operation { name, kind: n, vars, selection: self.selection_set(0)? });
                }
                _ => return self.err("expected a query, mutation or fragment"),
            }
        }
        Ok((ops, frags))
    }

    /// Parses a type reference; answers whether it is non-null.
    fn type_ref(&mut self) -> Result<bool, GraphqlError> {
        if self.is('[') {
            self.next();
            self.type_ref()?;
            self.punct(']')?;
        } else {
            self.name()?;
        }
        if self.is('!') {
            self.next();
            return Ok(true);
        }
        Ok(false)
    }

    fn value(&mut self, constant: bool) -> Result<Val, GraphqlError> {
        Ok(match self.next() {
            Tok::Punct('$') if !constant => Val::Var(self.name()?),
            Tok::Int(n) => Val::Lit(json!(n)),
            Tok::Float(f) => Val::Lit(json!(f)),
            Tok::Str(s) => Val::Lit(Value::String(s)),
            Tok::Name(n) if n == "true" => Val::Lit(Value::Bool(true)),
            Tok::Name(n) if n == "false" => Val::Lit(Value::Bool(false)),
            Tok::Name(n) if n == "null" => Val::Lit(Value::Null),
            Tok::Name(n) => Val::Lit(Value::String(n)),
            Tok::Punct('[') => {
                let mut items = Vec::new();
                while !self.is(']') {
                    if *self.peek() == Tok::Eof {
                        return self.err("unterminated list");
                    }
                    items.push(self.value(constant)?);
                }
                self.next();
                Val::List(items)
            }
            Tok::Punct('{') => {
                let mut fields = Vec::new();
                while !self.is('}') {
                    let k = self.name()?;
                    self.punct(':')?;
                    fields.push((k, self.value(constant)?));
                }
                self.next();
                Val::Obj(fields)
            }
            _ => {
                self.i = self.i.saturating_sub(1);
                return self.err("expected a value");
            }
        })
    }

    fn arguments(&mut self) -> Result<Vec<(String, Val)>, GraphqlError> {
        let mut args = Vec::new();
        if self.is('(') {
            self.next();
            while !self.is(')') {
                let k = self.name()?;
                self.punct(':')?;
                args.push((k, self.value(false)?));
            }
            self.next();
        }
        Ok(args)
    }

    fn directives(&mut self) -> Result<Vec<(String, Vec<(String, Val)>)>, GraphqlError> {
        let mut out = Vec::new();
        while self.is('@') {
            self.next();
            let n = self.name()?;
            out.push((n, self.arguments()?));
        }
        Ok(out)
    }

    fn selection_set(&mut self, depth: usize) -> Result<Vec<Selection>, GraphqlError> {
        if depth > 40 {
            return self.err("selections nested too deeply");
        }
        self.punct('{')?;
        let mut out = Vec::new();
        while !self.is('}') {
            let (line, col) = self.here();
            match self.peek().clone() {
                Tok::Spread => {
                    self.next();
                    match self.peek().clone() {
                        Tok::Name(n) if n == "on" => {
                            self.next();
                            let on = Some(self.name()?);
                            let directives = self.directives()?;
                            out.push(Selection::Inline { on, directives, selection: self.selection_set(depth + 1)? });
                        }
                        Tok::Name(_) => {
                            let name = self.name()?;
                            out.push(Selection::Spread { name, directives: self.directives()?, line, col });
                        }
                        _ => {
                            let directives = self.directives()?;
                            out.push(Selection::Inline {
                                on: None,
                                directives,
                                selection: self.selection_set(depth + 1)?,
                            });
                        }
                    }
                }
                Tok::Name(_) => {
                    let first = self.name()?;
                    let (alias, name) = if self.is(':') {
                        self.next();
                        (Some(first), self.name()?)
                    } else {
                        (None, first)
                    };
                    let args = self.arguments()?;
                    let directives = self.directives()?;
                    let selection = if self.is('{') { self.selection_set(depth + 1)? } else { vec![] };
                    out.push(Selection::Field(Field { alias, name, args, directives, selection, line, col }));
                }
                _ => return self.err("expected a field"),
            }
        }
        self.next();
        if out.is_empty() {
            return self.err("empty selection set");
        }
        Ok(out)
    }
}

// ---------------------------------------------------------------- schema

/// The named type of `field` on `ty`; `None` when the field does not exist. Scalars are "".
fn field_type(ty: &str, field: &str) -> Option<&'static str> {
    if field == "__typename" {
        return Some("");
    }
    let t = match (ty, field) {
        ("Query", "publishedDatasources") => "PublishedDatasource",
        ("Query", "publishedDatasourcesConnection") => "PublishedDatasourcesConnection",
        ("Query", "workbooks") => "Workbook",
        ("Query", "workbooksConnection") => "WorkbooksConnection",
        ("Query", "databaseTables") => "DatabaseTable",
        ("Query", "databaseTablesConnection") => "DatabaseTablesConnection",
        ("Query", "embeddedDatasources") => "EmbeddedDatasource",
        ("Query", "embeddedDatasourcesConnection") => "EmbeddedDatasourcesConnection",
        ("PublishedDatasourcesConnection", "nodes") => "PublishedDatasource",
        ("WorkbooksConnection", "nodes") => "Workbook",
        ("DatabaseTablesConnection", "nodes") => "DatabaseTable",
        ("EmbeddedDatasourcesConnection", "nodes") => "EmbeddedDatasource",
        (t, "pageInfo") if t.ends_with("Connection") => "PageInfo",
        (t, "totalCount") if t.ends_with("Connection") => "",
        ("PageInfo", "hasNextPage" | "endCursor" | "hasPreviousPage" | "startCursor") => "",
        (
            "PublishedDatasource",
            "id"
            | "luid"
            | "name"
            | "projectName"
            | "projectVizportalUrlId"
            | "isCertified"
            | "certificationNote"
            | "certifierDisplayName"
            | "description"
            | "hasExtracts"
            | "uri"
            | "vizportalUrlId"
            | "createdAt"
            | "updatedAt"
            | "containsUnsupportedCustomSql"
            | "hasActiveWarning"
            | "extractLastRefreshTime",
        ) => "",
        ("PublishedDatasource", "owner" | "certifier" | "downstreamOwners") => "TableauUser",
        ("PublishedDatasource" | "EmbeddedDatasource", "fields") => "Field",
        ("PublishedDatasource" | "EmbeddedDatasource" | "Workbook", "upstreamTables") => "DatabaseTable",
        ("PublishedDatasource" | "Workbook" | "EmbeddedDatasource", "upstreamDatabases") => "Database",
        ("PublishedDatasource" | "DatabaseTable", "downstreamWorkbooks") => "Workbook",
        ("PublishedDatasource", "downstreamSheets") => "Sheet",
        ("PublishedDatasource" | "Workbook", "tags") => "Tag",
        (
            "Workbook",
            "id"
            | "luid"
            | "name"
            | "projectName"
            | "projectLuid"
            | "projectVizportalUrlId"
            | "createdAt"
            | "updatedAt"
            | "description"
            | "uri"
            | "vizportalUrlId"
            | "containerName",
        ) => "",
        ("Workbook", "owner") => "TableauUser",
        ("Workbook" | "Sheet" | "EmbeddedDatasource", "upstreamDatasources") => "PublishedDatasource",
        ("Workbook", "embeddedDatasources") => "EmbeddedDatasource",
        ("Workbook", "sheets" | "dashboards") => "Sheet",
        ("TableauUser", "id" | "luid" | "username" | "name" | "email") => "",
        ("Field", "id" | "name" | "fullyQualifiedName" | "description" | "isHidden" | "dataType") => "",
        ("Field", "datasource") => "PublishedDatasource",
        ("DatabaseTable", "id" | "luid" | "name" | "schema" | "fullName" | "connectionType" | "isEmbedded") => "",
        ("DatabaseTable", "database") => "Database",
        ("DatabaseTable", "downstreamDatasources") => "PublishedDatasource",
        ("Database", "id" | "luid" | "name" | "connectionType" | "hostName" | "port" | "isEmbedded") => "",
        ("Sheet", "id" | "luid" | "name" | "path" | "createdAt" | "updatedAt") => "",
        ("Sheet", "workbook") => "Workbook",
        ("Sheet", "upstreamFields" | "datasourceFields") => "Field",
        ("EmbeddedDatasource", "id" | "name" | "hasExtracts") => "",
        ("EmbeddedDatasource", "parentPublishedDatasources") => "PublishedDatasource",
        ("EmbeddedDatasource", "workbook") => "Workbook",
        ("Tag", "id" | "name") => "",
        _ => return None,
    };
    Some(t)
}

/// Types an inline fragment may name on a field of type `ty`.
fn fragment_applies(on: &str, ty: &str) -> bool {
    on == ty
        || matches!(
            (on, ty),
            ("Datasource", "PublishedDatasource" | "EmbeddedDatasource") | ("DatabaseServer", "Database") | ("Node", _)
        )
        || (ty == "Database" && matches!(on, "DatabaseServer" | "File" | "CloudFile" | "WebDataConnector"))
}

// ---------------------------------------------------------------- execution

#[derive(Debug, Clone, PartialEq)]
enum Obj {
    Query,
    Pds(usize),
    Wb(usize),
    User(usize),
    Field { ds: Option<usize>, name: String },
    Table(usize),
    Database(usize),
    Sheet(usize, usize),
    Embedded(usize, usize),
    Tag(String),
    PageInfo { next: bool, cursor: Option<String> },
    Conn { nodes: Vec<Obj>, next: bool, cursor: Option<String>, total: usize },
}

/// The Metadata API's own id for an item: a GUID derived from its LUID, different from it.
/// (FNV-1a over the LUID with two seeds: cheap enough to compute per request at 100k items.)
pub fn metadata_guid(luid: &str) -> String {
    let h = |seed: u64| {
        let mut x = 0xcbf2_9ce4_8422_2325u64 ^ seed;
        for b in luid.bytes() {
            x ^= b as u64;
            x = x.wrapping_mul(0x0100_0000_01b3);
        }
        x ^ (x >> 29)
    };
    let (a, b) = (h(0x6d65_7461), h(0x6461_7461));
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0x0fff,
        0x8000 | ((b >> 48) & 0x3fff),
        b & 0xffff_ffff_ffff
    )
}

/// Opaque cursor: the last item's id and, as a hint, its position in the ordered list.
fn cursor_for(ty: &str, id: &str, pos: usize) -> String {
    let v = json!({"type": ty, "scope": "sites/1", "sortOrderValue": {"lastId": id}, "pos": pos});
    base64::engine::general_purpose::STANDARD.encode(v.to_string())
}

fn cursor_id(c: &str) -> Option<(String, Option<usize>)> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(c).ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    let id = v.get("sortOrderValue")?.get("lastId")?.as_str()?.to_string();
    Some((id, v.get("pos").and_then(|p| p.as_u64()).map(|p| p as usize)))
}

struct Exec<'a> {
    site: &'a Site,
    vars: Map<String, Value>,
    frags: &'a BTreeMap<String, Fragment>,
    errors: Vec<GraphqlError>,
    index: Option<std::rc::Rc<Index>>,
}

/// Lookups built once per request, when first needed.
struct Index {
    ds_by_id: std::collections::HashMap<String, usize>,
    /// datasource index -> workbooks using it
    downstream: Vec<Vec<usize>>,
    user_by_id: std::collections::HashMap<String, usize>,
    project_name: std::collections::HashMap<String, String>,
}

fn type_of(o: &Obj) -> &'static str {
    match o {
        Obj::Query => "Query",
        Obj::Pds(_) => "PublishedDatasource",
        Obj::Wb(_) => "Workbook",
        Obj::User(_) => "TableauUser",
        Obj::Field { .. } => "Field",
        Obj::Table(_) => "DatabaseTable",
        Obj::Database(_) => "Database",
        Obj::Sheet(..) => "Sheet",
        Obj::Embedded(..) => "EmbeddedDatasource",
        Obj::Tag(_) => "Tag",
        Obj::PageInfo { .. } => "PageInfo",
        Obj::Conn { .. } => "Connection",
    }
}

fn typename(o: &Obj) -> &'static str {
    match o {
        Obj::Database(_) => "DatabaseServer",
        Obj::Field { .. } => "ColumnField",
        other => type_of(other),
    }
}

impl<'a> Exec<'a> {
    fn index(&mut self) -> std::rc::Rc<Index> {
        if self.index.is_none() {
            let site = self.site;
            let ds_by_id: std::collections::HashMap<String, usize> =
                site.datasources.iter().enumerate().map(|(i, d)| (d.id.clone(), i)).collect();
            let mut downstream = vec![Vec::new(); site.datasources.len()];
            for (wi, w) in site.workbooks.iter().enumerate() {
                for d in &w.datasource_ids {
                    if let Some(&di) = ds_by_id.get(d) {
                        downstream[di].push(wi);
                    }
                }
            }
            let user_by_id = site.users.iter().enumerate().map(|(i, u)| (u.id.clone(), i)).collect();
            let project_name = site.projects.iter().map(|p| (p.id.clone(), p.name.clone())).collect();
            self.index = Some(std::rc::Rc::new(Index { ds_by_id, downstream, user_by_id, project_name }));
        }
        self.index.clone().expect("built above")
    }

    fn eval(&self, v: &Val) -> Value {
        match v {
            Val::Var(n) => self.vars.get(n).cloned().unwrap_or(Value::Null),
            Val::Lit(l) => l.clone(),
            Val::List(items) => Value::Array(items.iter().map(|i| self.eval(i)).collect()),
            Val::Obj(fields) => Value::Object(fields.iter().map(|(k, v)| (k.clone(), self.eval(v))).collect()),
        }
    }

    fn args(&self, f: &Field) -> Map<String, Value> {
        f.args.iter().map(|(k, v)| (k.clone(), self.eval(v))).collect()
    }

    fn included(&self, directives: &[(String, Vec<(String, Val)>)]) -> bool {
        for (name, args) in directives {
            let cond = args
                .iter()
                .find(|(k, _)| k == "if")
                .map(|(_, v)| self.eval(v))
                .and_then(|v| v.as_bool())
                .unwrap_or(true);
            match name.as_str() {
                "include" if !cond => return false,
                "skip" if cond => return false,
                _ => {}
            }
        }
        true
    }

    /// Checks every field against the schema before anything runs.
    fn validate(&mut self, ty: &str, sel: &[Selection], path: &str, depth: usize) {
        if depth > 40 {
            return;
        }
        for s in sel {
            match s {
                Selection::Field(f) => {
                    let here = if path.is_empty() { f.name.clone() } else { format!("{path}/{}", f.name) };
                    let Some(ft) = field_type(ty, &f.name) else {
                        self.errors.push(GraphqlError {
                            message: format!(
                                "Validation error of type FieldUndefined: Field '{}' in type '{ty}' is undefined @ '{here}'",
                                f.name
                            ),
                            locations: vec![Location { line: f.line, column: f.col }],
                            path: vec![],
                            extensions: Some(json!({"classification": "ValidationError"})),
                        });
                        continue;
                    };
                    if ft.is_empty() && !f.selection.is_empty() {
                        self.errors.push(GraphqlError::with_code(
                            format!("Validation error of type SubSelectionNotAllowed: Sub selection not allowed on leaf type of field {} @ '{here}'", f.name),
                            "ValidationError",
                        ));
                    } else if !ft.is_empty() && f.selection.is_empty() {
                        self.errors.push(GraphqlError::with_code(
                            format!("Validation error of type SubSelectionRequired: Sub selection required for type {ft} of field {} @ '{here}'", f.name),
                            "ValidationError",
                        ));
                    } else if !ft.is_empty() {
                        self.validate(ft, &f.selection, &here, depth + 1);
                    }
                }
                Selection::Inline { on, selection, .. } => {
                    let t = on.as_deref().unwrap_or(ty);
                    self.validate(
                        if fragment_applies(t, ty) && field_type(t, "id").is_some() { t } else { ty },
                        selection,
                        path,
                        depth + 1,
                    );
                }
                Selection::Spread { name, line, col, .. } => match self.frags.get(name) {
                    Some(fr) => {
                        let on = fr.on.clone();
                        let sel = fr.selection.clone();
                        self.validate(
                            if field_type(&on, "__typename").is_some() && on != "Query" { &on } else { ty },
                            &sel,
                            path,
                            depth + 1,
                        )
                    }
                    None => self.errors.push(GraphqlError {
                        message: format!("Validation error of type UndefinedFragment: Undefined fragment {name}"),
                        locations: vec![Location { line: *line, column: *col }],
                        path: vec![],
                        extensions: None,
                    }),
                },
            }
        }
    }

    fn select(&mut self, obj: &Obj, sel: &[Selection], out: &mut Map<String, Value>, depth: usize) {
        if depth > 60 {
            return;
        }
        let ty = type_of(obj);
        for s in sel {
            match s {
                Selection::Field(f) => {
                    if !self.included(&f.directives) {
                        continue;
                    }
                    let key = f.alias.clone().unwrap_or_else(|| f.name.clone());
                    let v = self.field(obj, f, depth);
                    out.insert(key, v);
                }
                Selection::Inline { on, directives, selection } => {
                    if self.included(directives) && on.as_deref().is_none_or(|t| fragment_applies(t, ty)) {
                        self.select(obj, selection, out, depth + 1);
                    }
                }
                Selection::Spread { name, directives, .. } => {
                    if let Some(fr) = self.frags.get(name)
                        && self.included(directives)
                        && fragment_applies(&fr.on, ty)
                    {
                        let sel = fr.selection.clone();
                        self.select(obj, &sel, out, depth + 1);
                    }
                }
            }
        }
    }

    fn render(&mut self, o: &Obj, f: &Field, depth: usize) -> Value {
        let mut m = Map::new();
        self.select(o, &f.selection, &mut m, depth + 1);
        Value::Object(m)
    }

    fn field(&mut self, obj: &Obj, f: &Field, depth: usize) -> Value {
        if f.name == "__typename" {
            return Value::String(typename(obj).into());
        }
        let args = self.args(f);
        let site = self.site;
        let ts =
            |t: &chrono::DateTime<chrono::Utc>| Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        let ix = self.index();
        let project_name = |pid: &str| ix.project_name.get(pid).cloned().unwrap_or_default();
        let user_idx = |uid: &str| ix.user_by_id.get(uid).copied();
        let list = |this: &mut Self, items: Vec<Obj>| -> Value {
            let items = this.filter(items, args.get("filter"));
            Value::Array(items.iter().map(|o| this.render(o, f, depth)).collect())
        };
        match obj {
            Obj::Query => {
                let all: Vec<Obj> = match f.name.as_str() {
                    n if n.starts_with("publishedDatasources") => (0..site.datasources.len()).map(Obj::Pds).collect(),
                    n if n.starts_with("workbooks") => (0..site.workbooks.len()).map(Obj::Wb).collect(),
                    n if n.starts_with("databaseTables") => self.tables(),
                    n if n.starts_with("embeddedDatasources") => site
                        .workbooks
                        .iter()
                        .enumerate()
                        .flat_map(|(wi, w)| (0..w.datasource_ids.len()).map(move |k| Obj::Embedded(wi, k)))
                        .collect(),
                    _ => vec![],
                };
                let mut items = self.filter(all, args.get("filter"));
                self.order(&mut items, args.get("orderBy"));
                if f.name.ends_with("Connection") {
                    match self.page(items, &args, field_type("Query", &f.name).unwrap_or("")) {
                        Ok(conn) => self.render(&conn, f, depth),
                        Err(e) => {
                            self.errors.push(e);
                            Value::Null
                        }
                    }
                } else {
                    Value::Array(items.iter().map(|o| self.render(o, f, depth)).collect())
                }
            }
            Obj::Conn { nodes, next, cursor, total } => match f.name.as_str() {
                "nodes" => Value::Array(nodes.iter().map(|o| self.render(o, f, depth)).collect()),
                "pageInfo" => self.render(&Obj::PageInfo { next: *next, cursor: cursor.clone() }, f, depth),
                "totalCount" => json!(total),
                _ => Value::Null,
            },
            Obj::PageInfo { next, cursor } => match f.name.as_str() {
                "hasNextPage" => json!(next),
                "endCursor" | "startCursor" => cursor.clone().map(Value::String).unwrap_or(Value::Null),
                "hasPreviousPage" => json!(false),
                _ => Value::Null,
            },
            Obj::Pds(i) => {
                let d = &site.datasources[*i];
                match f.name.as_str() {
                    "id" => json!(metadata_guid(&d.id)),
                    "luid" => json!(d.id),
                    "name" => json!(d.name),
                    "projectName" => json!(project_name(&d.project_id)),
                    "projectVizportalUrlId" | "vizportalUrlId" => json!((i + 1).to_string()),
                    "isCertified" => json!(d.certified),
                    "certificationNote" => json!(d.certification_note),
                    "certifierDisplayName" => {
                        if d.certified {
                            json!("Site Admin")
                        } else {
                            Value::Null
                        }
                    }
                    "description" => json!(d.description),
                    "hasExtracts" => json!(d.has_extracts),
                    "uri" => json!(format!("sites/1/datasources/{}", i + 1)),
                    "createdAt" => d.created_at.as_ref().map(ts).unwrap_or(Value::Null),
                    "updatedAt" => ts(&d.updated_at),
                    "extractLastRefreshTime" => {
                        if d.has_extracts {
                            ts(&d.updated_at)
                        } else {
                            Value::Null
                        }
                    }
                    "containsUnsupportedCustomSql" | "hasActiveWarning" => json!(false),
                    "owner" | "downstreamOwners" | "certifier" => {
                        let u = user_idx(&d.owner_id).map(Obj::User);
                        if f.name == "downstreamOwners" {
                            let mut owners: Vec<usize> = ix.downstream[*i]
                                .iter()
                                .filter_map(|&k| user_idx(&site.workbooks[k].owner_id))
                                .collect();
                            owners.sort();
                            owners.dedup();
                            list(self, owners.into_iter().map(Obj::User).collect())
                        } else {
                            u.map(|o| self.render(&o, f, depth)).unwrap_or(Value::Null)
                        }
                    }
                    "fields" => {
                        list(self, d.fields.iter().map(|n| Obj::Field { ds: Some(*i), name: n.clone() }).collect())
                    }
                    "upstreamTables" => {
                        list(self, if d.connection.table.is_empty() { vec![] } else { vec![Obj::Table(*i)] })
                    }
                    "upstreamDatabases" => {
                        list(self, if d.connection.database.is_empty() { vec![] } else { vec![Obj::Database(*i)] })
                    }
                    "downstreamWorkbooks" => list(self, ix.downstream[*i].iter().map(|&k| Obj::Wb(k)).collect()),
                    "downstreamSheets" => list(
                        self,
                        ix.downstream[*i]
                            .iter()
                            .flat_map(|&k| (0..site.workbooks[k].views.len()).map(move |v| Obj::Sheet(k, v)))
                            .collect(),
                    ),
                    "tags" => list(self, d.tags.iter().map(|t| Obj::Tag(t.clone())).collect()),
                    _ => Value::Null,
                }
            }
            Obj::Wb(i) => {
                let w = &site.workbooks[*i];
                let dss: Vec<usize> = w.datasource_ids.iter().filter_map(|id| ix.ds_by_id.get(id).copied()).collect();
                match f.name.as_str() {
                    "id" => json!(metadata_guid(&w.id)),
                    "luid" => json!(w.id),
                    "name" => json!(w.name),
                    "projectName" | "containerName" => json!(project_name(&w.project_id)),
                    "projectLuid" => json!(w.project_id),
                    "projectVizportalUrlId" => {
                        json!(site.projects.iter().position(|p| p.id == w.project_id).map(|k| (k + 1).to_string()))
                    }
                    "vizportalUrlId" => json!((i + 1).to_string()),
                    "createdAt" => ts(&w.created_at),
                    "updatedAt" => ts(&w.updated_at),
                    "description" => json!(w.description),
                    "uri" => json!(format!("sites/1/workbooks/{}", i + 1)),
                    "owner" => {
                        user_idx(&w.owner_id).map(|u| self.render(&Obj::User(u), f, depth)).unwrap_or(Value::Null)
                    }
                    "upstreamDatasources" => list(self, dss.iter().map(|&k| Obj::Pds(k)).collect()),
                    "upstreamTables" => list(
                        self,
                        dss.iter()
                            .filter(|&&k| !site.datasources[k].connection.table.is_empty())
                            .map(|&k| Obj::Table(k))
                            .collect(),
                    ),
                    "upstreamDatabases" => list(self, dss.iter().map(|&k| Obj::Database(k)).collect()),
                    "embeddedDatasources" => list(self, (0..dss.len()).map(|k| Obj::Embedded(*i, k)).collect()),
                    "sheets" => list(
                        self,
                        (0..w.views.len())
                            .filter(|&v| w.views[v].sheet_type != "dashboard")
                            .map(|v| Obj::Sheet(*i, v))
                            .collect(),
                    ),
                    "dashboards" => list(
                        self,
                        (0..w.views.len())
                            .filter(|&v| w.views[v].sheet_type == "dashboard")
                            .map(|v| Obj::Sheet(*i, v))
                            .collect(),
                    ),
                    "tags" => list(self, w.tags.iter().map(|t| Obj::Tag(t.clone())).collect()),
                    _ => Value::Null,
                }
            }
            Obj::User(i) => {
                let u = &site.users[*i];
                match f.name.as_str() {
                    "id" => json!(metadata_guid(&u.id)),
                    "luid" => json!(u.id),
                    "username" => json!(u.name),
                    "name" => json!(u.full_name),
                    "email" => json!(u.email),
                    _ => Value::Null,
                }
            }
            Obj::Field { ds, name } => match f.name.as_str() {
                "id" => json!(metadata_guid(&format!(
                    "{}:{name}",
                    ds.map(|d| site.datasources[d].id.as_str()).unwrap_or("")
                ))),
                "name" => json!(name),
                "fullyQualifiedName" => json!(format!("[{name}]")),
                "description" => json!(""),
                "isHidden" => json!(false),
                "dataType" => json!("STRING"),
                "datasource" => ds.map(|d| self.render(&Obj::Pds(d), f, depth)).unwrap_or(Value::Null),
                _ => Value::Null,
            },
            Obj::Table(i) | Obj::Database(i) => {
                let d = &site.datasources[*i];
                let c = &d.connection;
                let (schema, table) = c
                    .table
                    .rsplit_once('.')
                    .map(|(s, t)| (s.to_string(), t.to_string()))
                    .unwrap_or((String::new(), c.table.clone()));
                let is_table = matches!(obj, Obj::Table(_));
                match (is_table, f.name.as_str()) {
                    (true, "id") => json!(metadata_guid(&format!("table:{}:{}:{}", c.server, c.database, c.table))),
                    (false, "id") => json!(metadata_guid(&format!("db:{}:{}", c.server, c.database))),
                    (_, "luid") => json!(""),
                    (true, "name") => json!(table),
                    (false, "name") => json!(c.database),
                    (true, "schema") => json!(schema),
                    (true, "fullName") => {
                        json!(if schema.is_empty() { format!("[{table}]") } else { format!("[{schema}].[{table}]") })
                    }
                    (_, "connectionType") => json!(c.kind),
                    (_, "isEmbedded") => json!(false),
                    (false, "hostName") => json!(c.server),
                    (false, "port") => json!(c.port.parse::<i64>().ok()),
                    (true, "database") => self.render(&Obj::Database(*i), f, depth),
                    (true, "downstreamDatasources") => {
                        let same: Vec<Obj> = site
                            .datasources
                            .iter()
                            .enumerate()
                            .filter(|(_, x)| {
                                x.connection.server == c.server
                                    && x.connection.database == c.database
                                    && x.connection.table == c.table
                            })
                            .map(|(k, _)| Obj::Pds(k))
                            .collect();
                        list(self, same)
                    }
                    (true, "downstreamWorkbooks") => {
                        let ids: Vec<&String> = site
                            .datasources
                            .iter()
                            .filter(|x| {
                                x.connection.server == c.server
                                    && x.connection.database == c.database
                                    && x.connection.table == c.table
                            })
                            .map(|x| &x.id)
                            .collect();
                        list(
                            self,
                            site.workbooks
                                .iter()
                                .enumerate()
                                .filter(|(_, w)| w.datasource_ids.iter().any(|d| ids.contains(&d)))
                                .map(|(k, _)| Obj::Wb(k))
                                .collect(),
                        )
                    }
                    _ => Value::Null,
                }
            }
            Obj::Sheet(wi, vi) => {
                let w = &site.workbooks[*wi];
                let v = &w.views[*vi];
                match f.name.as_str() {
                    "id" => json!(metadata_guid(&v.id)),
                    "luid" => json!(v.id),
                    "name" => json!(v.name),
                    "path" => json!(format!("{}/{}", w.content_url, v.name)),
                    "createdAt" => ts(&w.created_at),
                    "updatedAt" => ts(&w.updated_at),
                    "workbook" => self.render(&Obj::Wb(*wi), f, depth),
                    "upstreamFields" | "datasourceFields" => {
                        list(self, w.fields_used.iter().map(|n| Obj::Field { ds: None, name: n.clone() }).collect())
                    }
                    "upstreamDatasources" => {
                        let dss: Vec<Obj> = w
                            .datasource_ids
                            .iter()
                            .filter_map(|id| ix.ds_by_id.get(id).copied())
                            .map(Obj::Pds)
                            .collect();
                        list(self, dss)
                    }
                    _ => Value::Null,
                }
            }
            Obj::Embedded(wi, k) => {
                let w = &site.workbooks[*wi];
                let ds = w.datasource_ids.get(*k).and_then(|id| ix.ds_by_id.get(id).copied());
                match f.name.as_str() {
                    "id" => json!(metadata_guid(&format!("{}:embedded:{k}", w.id))),
                    "name" => json!(ds.map(|d| site.datasources[d].name.clone())),
                    "hasExtracts" => json!(false),
                    "workbook" => self.render(&Obj::Wb(*wi), f, depth),
                    "parentPublishedDatasources" | "upstreamDatasources" => {
                        list(self, ds.map(Obj::Pds).into_iter().collect())
                    }
                    "upstreamTables" => list(self, ds.map(Obj::Table).into_iter().collect()),
                    "upstreamDatabases" => list(self, ds.map(Obj::Database).into_iter().collect()),
                    "fields" => list(self, w.fields_used.iter().map(|n| Obj::Field { ds, name: n.clone() }).collect()),
                    _ => Value::Null,
                }
            }
            Obj::Tag(t) => match f.name.as_str() {
                "id" => json!(metadata_guid(&format!("tag:{t}"))),
                "name" => json!(t),
                _ => Value::Null,
            },
        }
    }

    /// One `DatabaseTable` per distinct (server, database, table).
    fn tables(&self) -> Vec<Obj> {
        let mut seen = std::collections::BTreeSet::new();
        self.site
            .datasources
            .iter()
            .enumerate()
            .filter(|(_, d)| !d.connection.table.is_empty())
            .filter(|(_, d)| {
                seen.insert((d.connection.server.clone(), d.connection.database.clone(), d.connection.table.clone()))
            })
            .map(|(k, _)| Obj::Table(k))
            .collect()
    }

    /// The comparable value of a filter key on an object.
    fn key_value(&self, o: &Obj, key: &str) -> Option<Value> {
        let site = self.site;
        let ix = self.index.as_ref();
        let pname = |pid: &str| match ix {
            Some(ix) => ix.project_name.get(pid).cloned().unwrap_or_default(),
            None => site.projects.iter().find(|p| p.id == pid).map(|p| p.name.clone()).unwrap_or_default(),
        };
        Some(match (o, key) {
            (Obj::Pds(i), _) => {
                let d = &site.datasources[*i];
                match key {
                    "id" => json!(metadata_guid(&d.id)),
                    "luid" => json!(d.id),
                    "name" => json!(d.name),
                    "projectName" | "containerName" => json!(pname(&d.project_id)),
                    "isCertified" => json!(d.certified),
                    "vizportalUrlId" => json!((i + 1).to_string()),
                    "hasActiveWarning" | "containsUnsupportedCustomSql" => json!(false),
                    _ => return None,
                }
            }
            (Obj::Wb(i), _) => {
                let w = &site.workbooks[*i];
                match key {
                    "id" => json!(metadata_guid(&w.id)),
                    "luid" => json!(w.id),
                    "name" => json!(w.name),
                    "projectName" | "containerName" => json!(pname(&w.project_id)),
                    "projectLuid" => json!(w.project_id),
                    "vizportalUrlId" => json!((i + 1).to_string()),
                    _ => return None,
                }
            }
            (Obj::Table(i), _) => {
                let c = &site.datasources[*i].connection;
                match key {
                    "name" => json!(c.table.rsplit('.').next().unwrap_or("")),
                    "schema" => json!(c.table.rsplit_once('.').map(|(s, _)| s).unwrap_or("")),
                    "connectionType" => json!(c.kind),
                    "id" => json!(metadata_guid(&format!("table:{}:{}:{}", c.server, c.database, c.table))),
                    _ => return None,
                }
            }
            (Obj::Field { name, .. }, "name") | (Obj::Tag(name), "name") => json!(name),
            (Obj::User(i), "luid") => json!(site.users[*i].id),
            (Obj::User(i), "username") => json!(site.users[*i].name),
            (Obj::Sheet(w, v), "name") => json!(site.workbooks[*w].views[*v].name),
            (Obj::Sheet(w, v), "luid") => json!(site.workbooks[*w].views[*v].id),
            _ => return None,
        })
    }

    fn filter(&mut self, items: Vec<Obj>, filter: Option<&Value>) -> Vec<Obj> {
        let Some(Value::Object(f)) = filter else { return items };
        let Some(first) = items.first() else { return items };
        for k in f.keys() {
            let base = k.strip_suffix("Within").unwrap_or(k);
            if self.key_value(first, base).is_none() {
                self.errors.push(GraphqlError::with_code(
                    format!("Validation error of type WrongType: argument 'filter' contains a field not in '{}_Filter': '{k}'", type_of(first)),
                    "ValidationError",
                ));
                return vec![];
            }
        }
        items
            .into_iter()
            .filter(|o| {
                f.iter().all(|(k, want)| {
                    let (base, within) = match k.strip_suffix("Within") {
                        Some(b) => (b, true),
                        None => (k.as_str(), false),
                    };
                    let have = self.key_value(o, base).unwrap_or(Value::Null);
                    if within { want.as_array().is_some_and(|a| a.contains(&have)) } else { &have == want }
                })
            })
            .collect()
    }

    /// Orders by `orderBy`; without one the site's own stable order is kept (Tableau documents
    /// "by ID", and ids are opaque, so any stable order is indistinguishable to clients).
    fn order(&self, items: &mut [Obj], order_by: Option<&Value>) {
        let Some(order_by) = order_by.filter(|o| !o.is_null()) else { return };
        let field = order_by.get("field").and_then(|f| f.as_str()).unwrap_or("ID").to_ascii_lowercase();
        let desc = order_by.get("direction").and_then(|d| d.as_str()).is_some_and(|d| d.eq_ignore_ascii_case("DESC"));
        let key = |o: &Obj| -> String {
            let k = if field == "name" { "name" } else { "id" };
            match self.key_value(o, k) {
                Some(Value::String(s)) => {
                    if k == "name" {
                        s.to_lowercase()
                    } else {
                        s
                    }
                }
                Some(v) => v.to_string(),
                None => String::new(),
            }
        };
        items.sort_by_cached_key(key);
        if desc {
            items.reverse();
        }
    }

    fn page(&self, items: Vec<Obj>, args: &Map<String, Value>, conn_type: &str) -> Result<Obj, GraphqlError> {
        let node_type = conn_type.trim_end_matches("sConnection");
        let first = match args.get("first") {
            None | Some(Value::Null) => 100,
            Some(v) => v.as_i64().filter(|n| *n >= 0).ok_or_else(|| {
                GraphqlError::with_code("Argument 'first' must be a non-negative Int", "INVALID_ARGUMENT")
            })? as usize,
        };
        let after = args.get("after").and_then(|a| a.as_str());
        let offset = args.get("offset").and_then(|o| o.as_i64());
        if after.is_some() && offset.is_some() {
            return Err(GraphqlError::with_code(
                "Arguments 'after' and 'offset' cannot be used together",
                "INVALID_ARGUMENT",
            ));
        }
        let total = items.len();
        let start = match (after, offset) {
            (Some(c), _) => {
                let (id, hint) = cursor_id(c)
                    .ok_or_else(|| GraphqlError::with_code(format!("Invalid cursor '{c}'"), "INVALID_ARGUMENT"))?;
                let id_at = |o: &Obj| self.key_value(o, "id").and_then(|v| v.as_str().map(str::to_string));
                // The hint makes paging O(page); when the list changed, find the id by scanning.
                let found = match hint {
                    Some(p) if items.get(p).is_some_and(|o| id_at(o).as_deref() == Some(id.as_str())) => Some(p),
                    _ => items.iter().position(|o| id_at(o).as_deref() == Some(id.as_str())),
                };
                match found {
                    Some(p) => p + 1,
                    None => {
                        return Err(GraphqlError::with_code(
                            format!("Invalid cursor '{c}': the item it points at no longer exists"),
                            "INVALID_ARGUMENT",
                        ));
                    }
                }
            }
            (None, Some(o)) => (o.max(0) as usize).min(total),
            _ => 0,
        };
        let end = (start + first).min(total);
        let nodes: Vec<Obj> = items[start..end].to_vec();
        let cursor = nodes
            .last()
            .and_then(|o| self.key_value(o, "id"))
            .and_then(|v| v.as_str().map(|s| cursor_for(node_type, s, end - 1)));
        Ok(Obj::Conn { nodes, next: end < total, cursor, total })
    }
}

/// Runs a Metadata API request against `site`.
pub fn execute(site: &Site, req: &Request) -> Response {
    let fail = |e: GraphqlError| Response { data: None, errors: vec![e] };
    if req.query.trim().is_empty() {
        return fail(GraphqlError::new("Invalid Syntax : the query is empty"));
    }
    let toks = match (Lexer { src: req.query.as_bytes(), pos: 0, line: 1, col: 1 }).tokens() {
        Ok(t) => t,
        Err(e) => return fail(e),
    };
    let (ops, frags) = match (Parser { toks, i: 0 }).document() {
        Ok(d) => d,
        Err(e) => return fail(e),
    };
    let op = match &req.operation_name {
        Some(n) => match ops.iter().find(|o| o.name.as_deref() == Some(n)) {
            Some(o) => o,
            None => return fail(GraphqlError::new(format!("Unknown operation named '{n}'."))),
        },
        None if ops.len() == 1 => &ops[0],
        None if ops.is_empty() => return fail(GraphqlError::new("Invalid Syntax : the document has no operation")),
        None => return fail(GraphqlError::new("Must provide operation name if query contains multiple operations.")),
    };
    if op.kind != "query" {
        return fail(GraphqlError::new(format!(
            "The Metadata API is read-only: '{}' operations are not supported",
            op.kind
        )));
    }
    let given = req.variables.as_ref().and_then(|v| v.as_object()).cloned().unwrap_or_default();
    let mut vars = Map::new();
    for (name, non_null, default) in &op.vars {
        match given.get(name) {
            Some(v) if !(v.is_null() && *non_null) => {
                vars.insert(name.clone(), v.clone());
            }
            _ => {
                if let Some(d) = default {
                    let e = Exec { site, vars: Map::new(), frags: &frags, errors: vec![], index: None };
                    vars.insert(name.clone(), e.eval(d));
                } else if *non_null {
                    return fail(GraphqlError::new(format!(
                        "Variable '{name}' has an invalid value: Variable '{name}' has coerced Null value for NonNull type"
                    )));
                } else {
                    vars.insert(name.clone(), Value::Null);
                }
            }
        }
    }
    let mut exec = Exec { site, vars, frags: &frags, errors: vec![], index: None };
    // Undeclared variables are a validation error.
    fn used(sel: &[Selection], out: &mut Vec<String>) {
        fn in_val(v: &Val, out: &mut Vec<String>) {
            match v {
                Val::Var(n) => out.push(n.clone()),
                Val::List(l) => l.iter().for_each(|x| in_val(x, out)),
                Val::Obj(o) => o.iter().for_each(|(_, x)| in_val(x, out)),
                Val::Lit(_) => {}
            }
        }
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
    for r in refs {
        if !op.vars.iter().any(|(n, _, _)| *n == r) {
            exec.errors.push(GraphqlError::with_code(
                format!("Validation error of type UndefinedVariable: Undefined variable {r}"),
                "ValidationError",
            ));
        }
    }
    exec.validate("Query", &op.selection, "", 0);
    if !exec.errors.is_empty() {
        return Response { data: None, errors: exec.errors };
    }
    let mut data = Map::new();
    exec.select(&Obj::Query, &op.selection, &mut data, 0);
    Response { data: Some(Value::Object(data)), errors: exec.errors }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site() -> Site {
        tabflow_site::generate::generate(&tabflow_site::generate::Options { scale: 300, seed: 4 })
    }

    fn run(s: &Site, q: &str, vars: Value) -> Response {
        execute(s, &Request { query: q.into(), variables: Some(vars), operation_name: None })
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
        ];
        let mut x: u64 = 11;
        for _ in 0..2000 {
            let mut q = String::new();
            for _ in 0..12 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                q.push_str(pieces[(x % pieces.len() as u64) as usize]);
                q.push(' ');
            }
            let _ = run(&s, &q, json!({}));
        }
    }

    #[test]
    fn guid_differs_from_luid() {
        let g = metadata_guid("6d13b0ca-043d-4d42-8c9d-3f3313ea3a00");
        assert_ne!(g, "6d13b0ca-043d-4d42-8c9d-3f3313ea3a00");
        assert!(tabflow_wire::ids::is_luid(&g));
    }
}
