//! Evaluation of a validated query over the site state: the objects the Metadata API exposes
//! (published and embedded datasources, workbooks, sheets, tables, databases, users, fields,
//! tags, connections and their `pageInfo`), each field's value, `filter`/`orderBy`, and
//! cursor paging with opaque base64 cursors shaped like Tableau's. Lineage comes from
//! workbooks' `datasource_ids`; sheets are views; a sheet's fields are the workbook's
//! `fields_used`. Kept apart from parsing and the schema table because this is the only part
//! that knows `tabflow_site`.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use base64::Engine;
use serde_json::{Map, Value, json};
use tabflow_site::Site;
use tabflow_wire::graphql::GraphqlError;

use super::parse::{Directives, Field, Fragment, Selection, Val};
use super::schema::{field_type, fragment_applies};

/// An object of the Metadata API, by its position in the site's lists.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Obj {
    Query,
    Pds(usize),
    Wb(usize),
    User(usize),
    Field {
        ds: Option<usize>,
        name: String,
    },
    Table(usize),
    /// The custom SQL of datasource `i` (`CustomSQLTable`).
    CustomSql(usize),
    Database(usize),
    Sheet(usize, usize),
    Embedded(usize, usize),
    Tag(String),
    PageInfo {
        next: bool,
        cursor: Option<String>,
    },
    Conn {
        nodes: Vec<Obj>,
        next: bool,
        cursor: Option<String>,
        total: usize,
    },
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

/// The value of `v` under `vars` (an unset variable is `null`).
pub(super) fn eval(v: &Val, vars: &Map<String, Value>) -> Value {
    match v {
        Val::Var(n) => vars.get(n).cloned().unwrap_or(Value::Null),
        Val::Lit(l) => l.clone(),
        Val::List(items) => Value::Array(items.iter().map(|i| eval(i, vars)).collect()),
        Val::Obj(fields) => Value::Object(fields.iter().map(|(k, v)| (k.clone(), eval(v, vars))).collect()),
    }
}

fn ts(t: &chrono::DateTime<chrono::Utc>) -> Value {
    Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

fn type_of(o: &Obj) -> &'static str {
    match o {
        Obj::Query => "Query",
        Obj::Pds(_) => "PublishedDatasource",
        Obj::Wb(_) => "Workbook",
        Obj::User(_) => "TableauUser",
        Obj::Field { .. } => "Field",
        Obj::Table(_) => "DatabaseTable",
        Obj::CustomSql(_) => "CustomSQLTable",
        Obj::Database(_) => "Database",
        Obj::Sheet(..) => "Sheet",
        Obj::Embedded(..) => "EmbeddedDatasource",
        Obj::Tag(_) => "Tag",
        Obj::PageInfo { .. } => "PageInfo",
        Obj::Conn { .. } => "Connection",
    }
}

/// `__typename`: the concrete type, where the schema's type is an interface.
fn typename(o: &Obj) -> &'static str {
    match o {
        Obj::Database(_) => "DatabaseServer",
        Obj::Field { .. } => "ColumnField",
        other => type_of(other),
    }
}

/// Lookups built once per state generation, when first needed.
pub(crate) struct Index {
    ds_by_id: HashMap<String, usize>,
    /// datasource index -> workbooks using it
    downstream: Vec<Vec<usize>>,
    user_by_id: HashMap<String, usize>,
    project_name: HashMap<String, String>,
}

/// What queries computed at one state generation and later queries at the same generation
/// reuse (issue #15): the index, and each root list as filtered and ordered, so the pages of a
/// `...Connection` read with cursors filter the site once instead of once per page (the lineage
/// of a 14 000-workbook project subtree on a 100k-workbook site is 31 pages).
#[derive(Default)]
pub(crate) struct Memo {
    inner: Mutex<MemoInner>,
}

#[derive(Default)]
struct MemoInner {
    generation: u64,
    index: Option<Arc<Index>>,
    /// Root field, filter and order → the items, in order.
    roots: HashMap<String, Arc<Vec<Obj>>>,
}

/// Root lists kept per generation (a plan runs a few lineage queries at a time).
const MEMO_ROOTS: usize = 16;

impl Memo {
    /// The inner state for `generation`, emptied when it was kept for another one.
    fn at(&self, generation: u64) -> Option<std::sync::MutexGuard<'_, MemoInner>> {
        let mut m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if m.generation != generation {
            if generation < m.generation {
                return None;
            }
            *m = MemoInner { generation, ..MemoInner::default() };
        }
        Some(m)
    }
}

pub(super) struct Exec<'a> {
    site: &'a Site,
    vars: Map<String, Value>,
    frags: &'a BTreeMap<String, Fragment>,
    pub errors: Vec<GraphqlError>,
    index: Option<Arc<Index>>,
    /// The memo and the generation of `site` (read under the same lock).
    memo: Option<(&'a Memo, u64)>,
}

impl<'a> Exec<'a> {
    pub(super) fn new(site: &'a Site, vars: Map<String, Value>, frags: &'a BTreeMap<String, Fragment>) -> Exec<'a> {
        Exec { site, vars, frags, errors: vec![], index: None, memo: None }
    }

    /// Reuses what earlier queries at `generation` computed, and keeps what this one computes.
    pub(super) fn with_memo(mut self, memo: &'a Memo, generation: u64) -> Exec<'a> {
        self.memo = Some((memo, generation));
        self
    }

    fn index(&mut self) -> Arc<Index> {
        if let Some(ix) = &self.index {
            return ix.clone();
        }
        if let Some((memo, generation)) = self.memo
            && let Some(ix) = memo.at(generation).and_then(|m| m.index.clone())
        {
            self.index = Some(ix.clone());
            return ix;
        }
        let site = self.site;
        let ds_by_id: HashMap<String, usize> =
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
        let ix = Arc::new(Index { ds_by_id, downstream, user_by_id, project_name });
        self.index = Some(ix.clone());
        if let Some((memo, generation)) = self.memo
            && let Some(mut m) = memo.at(generation)
        {
            m.index = Some(ix.clone());
        }
        ix
    }

    fn included(&self, directives: &Directives) -> bool {
        for (name, args) in directives {
            let cond = args
                .iter()
                .find(|(k, _)| k == "if")
                .map(|(_, v)| eval(v, &self.vars))
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

    /// Fills `out` with the selected fields of `obj`. Recursion is bounded: the query's depth
    /// and size were checked before execution.
    pub(super) fn select(&mut self, obj: &Obj, sel: &[Selection], out: &mut Map<String, Value>) {
        let ty = type_of(obj);
        for s in sel {
            match s {
                Selection::Field(f) => {
                    if !self.included(&f.directives) {
                        continue;
                    }
                    let key = f.alias.clone().unwrap_or_else(|| f.name.clone());
                    let v = self.field(obj, f);
                    out.insert(key, v);
                }
                Selection::Inline { on, directives, selection } => {
                    if self.included(directives) && on.as_deref().is_none_or(|t| fragment_applies(t, ty)) {
                        self.select(obj, selection, out);
                    }
                }
                Selection::Spread { name, directives, .. } => {
                    let frags = self.frags;
                    if let Some(fr) = frags.get(name)
                        && self.included(directives)
                        && fragment_applies(&fr.on, ty)
                    {
                        self.select(obj, &fr.selection, out);
                    }
                }
            }
        }
    }

    fn render(&mut self, o: &Obj, f: &Field) -> Value {
        let mut m = Map::new();
        self.select(o, &f.selection, &mut m);
        Value::Object(m)
    }

    /// A list field: `filter` applied, each item rendered with the field's sub-selection.
    fn list(&mut self, items: Vec<Obj>, f: &Field, args: &Map<String, Value>) -> Value {
        let items = self.filter(items, args.get("filter"));
        Value::Array(items.iter().map(|o| self.render(o, f)).collect())
    }

    /// An object field: the object rendered, or `null`.
    fn one(&mut self, o: Option<Obj>, f: &Field) -> Value {
        o.map(|o| self.render(&o, f)).unwrap_or(Value::Null)
    }

    fn field(&mut self, obj: &Obj, f: &Field) -> Value {
        if f.name == "__typename" {
            return Value::String(typename(obj).into());
        }
        let args: Map<String, Value> = f.args.iter().map(|(k, v)| (k.clone(), eval(v, &self.vars))).collect();
        match obj {
            Obj::Query => self.root_field(f, &args),
            Obj::Conn { nodes, next, cursor, total } => match f.name.as_str() {
                "nodes" => Value::Array(nodes.iter().map(|o| self.render(o, f)).collect()),
                "pageInfo" => self.render(&Obj::PageInfo { next: *next, cursor: cursor.clone() }, f),
                "totalCount" => json!(total),
                _ => Value::Null,
            },
            Obj::PageInfo { next, cursor } => match f.name.as_str() {
                "hasNextPage" => json!(next),
                "endCursor" | "startCursor" => cursor.clone().map(Value::String).unwrap_or(Value::Null),
                "hasPreviousPage" => json!(false),
                _ => Value::Null,
            },
            Obj::Pds(i) => self.pds_field(*i, f, &args),
            Obj::Wb(i) => self.wb_field(*i, f, &args),
            Obj::User(i) => {
                let u = &self.site.users[*i];
                match f.name.as_str() {
                    "id" => json!(metadata_guid(&u.id)),
                    "luid" => json!(u.id),
                    "username" => json!(u.name),
                    "name" => json!(u.full_name),
                    "email" => json!(u.email),
                    _ => Value::Null,
                }
            }
            Obj::Field { ds, name } => self.field_field(*ds, name, f),
            Obj::Table(i) => self.table_field(*i, f, &args),
            Obj::CustomSql(i) => {
                let d = &self.site.datasources[*i];
                match f.name.as_str() {
                    "id" => json!(metadata_guid(&format!("customsql:{}", d.id))),
                    "name" => json!("Custom SQL Query"),
                    "query" => json!(d.connection.custom_sql),
                    "connectionType" => json!(d.connection.kind),
                    "isEmbedded" => json!(false),
                    "isUnsupportedCustomSql" => json!(false),
                    "database" => self.render(&Obj::Database(*i), f),
                    "downstreamDatasources" => self.list(vec![Obj::Pds(*i)], f, &args),
                    _ => Value::Null,
                }
            }
            Obj::Database(i) => self.database_field(*i, f),
            Obj::Sheet(wi, vi) => self.sheet_field(*wi, *vi, f, &args),
            Obj::Embedded(wi, k) => self.embedded_field(*wi, *k, f, &args),
            Obj::Tag(t) => match f.name.as_str() {
                "id" => json!(metadata_guid(&format!("tag:{t}"))),
                "name" => json!(t),
                _ => Value::Null,
            },
        }
    }

    /// A root field: every item of its kind, filtered and ordered; a `...Connection` pages.
    fn root_field(&mut self, f: &Field, args: &Map<String, Value>) -> Value {
        let items = self.root_items(f, args);
        if !f.name.ends_with("Connection") {
            return Value::Array(items.iter().map(|o| self.render(o, f)).collect());
        }
        match self.page(&items, args, field_type("Query", &f.name).unwrap_or("")) {
            Ok(conn) => self.render(&conn, f),
            Err(e) => {
                self.errors.push(e);
                Value::Null
            }
        }
    }

    /// The items of a root field, filtered and ordered: from the memo when a query at the same
    /// generation computed them (the state is the same, so they are the same).
    fn root_items(&mut self, f: &Field, args: &Map<String, Value>) -> Arc<Vec<Obj>> {
        let key = self.memo.map(|_| {
            let arg = |k: &str| args.get(k).map(Value::to_string).unwrap_or_default();
            format!("{}|{}|{}", f.name, arg("filter"), arg("orderBy"))
        });
        if let (Some((memo, generation)), Some(key)) = (self.memo, &key)
            && let Some(items) = memo.at(generation).and_then(|m| m.roots.get(key).cloned())
        {
            return items;
        }
        let errors = self.errors.len();
        let items = Arc::new(self.filtered_root(f, args));
        // A filter the type does not have is an error with no items: not kept.
        if let (Some((memo, generation)), Some(key)) = (self.memo, key)
            && self.errors.len() == errors
            && let Some(mut m) = memo.at(generation)
        {
            if m.roots.len() >= MEMO_ROOTS {
                m.roots.clear();
            }
            m.roots.insert(key, items.clone());
        }
        items
    }

    fn filtered_root(&mut self, f: &Field, args: &Map<String, Value>) -> Vec<Obj> {
        let site = self.site;
        let all: Vec<Obj> = match f.name.as_str() {
            n if n.starts_with("publishedDatasources") => (0..site.datasources.len()).map(Obj::Pds).collect(),
            n if n.starts_with("workbooks") => (0..site.workbooks.len()).map(Obj::Wb).collect(),
            n if n.starts_with("databaseTables") => self.tables(),
            n if n.starts_with("customSQLTables") => (0..site.datasources.len())
                .filter(|&i| site.datasources[i].connection.custom_sql.is_some())
                .map(Obj::CustomSql)
                .collect(),
            n if n.starts_with("embeddedDatasources") => site
                .workbooks
                .iter()
                .enumerate()
                .flat_map(|(wi, w)| (0..w.datasource_ids.len()).map(move |k| Obj::Embedded(wi, k)))
                .collect(),
            _ => vec![],
        };
        // The index serves the filter's project names as well as the fields.
        self.index();
        let mut items = self.filter(all, args.get("filter"));
        self.order(&mut items, args.get("orderBy"));
        items
    }

    fn pds_field(&mut self, i: usize, f: &Field, args: &Map<String, Value>) -> Value {
        let site = self.site;
        let ix = self.index();
        let d = &site.datasources[i];
        let user = |uid: &str| ix.user_by_id.get(uid).copied();
        match f.name.as_str() {
            "id" => json!(metadata_guid(&d.id)),
            "luid" => json!(d.id),
            "name" => json!(d.name),
            "projectName" => json!(ix.project_name.get(&d.project_id).cloned().unwrap_or_default()),
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
            "owner" | "certifier" => self.one(user(&d.owner_id).map(Obj::User), f),
            "downstreamOwners" => {
                let mut owners: Vec<usize> =
                    ix.downstream[i].iter().filter_map(|&k| user(&site.workbooks[k].owner_id)).collect();
                owners.sort();
                owners.dedup();
                self.list(owners.into_iter().map(Obj::User).collect(), f, args)
            }
            "fields" => {
                let items = d.fields.iter().map(|n| Obj::Field { ds: Some(i), name: n.clone() }).collect();
                self.list(items, f, args)
            }
            "upstreamTables" => {
                self.list(if d.connection.table.is_empty() { vec![] } else { vec![Obj::Table(i)] }, f, args)
            }
            "upstreamDatabases" => {
                self.list(if d.connection.database.is_empty() { vec![] } else { vec![Obj::Database(i)] }, f, args)
            }
            "downstreamWorkbooks" => self.list(ix.downstream[i].iter().map(|&k| Obj::Wb(k)).collect(), f, args),
            "downstreamSheets" => {
                let items = ix.downstream[i]
                    .iter()
                    .flat_map(|&k| (0..site.workbooks[k].views.len()).map(move |v| Obj::Sheet(k, v)))
                    .collect();
                self.list(items, f, args)
            }
            "tags" => self.list(d.tags.iter().map(|t| Obj::Tag(t.clone())).collect(), f, args),
            _ => Value::Null,
        }
    }

    fn wb_field(&mut self, i: usize, f: &Field, args: &Map<String, Value>) -> Value {
        let site = self.site;
        let ix = self.index();
        let w = &site.workbooks[i];
        let dss: Vec<usize> = w.datasource_ids.iter().filter_map(|id| ix.ds_by_id.get(id).copied()).collect();
        let sheets = |dashboards: bool| -> Vec<Obj> {
            (0..w.views.len())
                .filter(|&v| (w.views[v].sheet_type == "dashboard") == dashboards)
                .map(|v| Obj::Sheet(i, v))
                .collect()
        };
        match f.name.as_str() {
            "id" => json!(metadata_guid(&w.id)),
            "luid" => json!(w.id),
            "name" => json!(w.name),
            "projectName" | "containerName" => json!(ix.project_name.get(&w.project_id).cloned().unwrap_or_default()),
            "projectLuid" => json!(w.project_id),
            "projectVizportalUrlId" => {
                json!(site.projects.iter().position(|p| p.id == w.project_id).map(|k| (k + 1).to_string()))
            }
            "vizportalUrlId" => json!((i + 1).to_string()),
            "createdAt" => ts(&w.created_at),
            "updatedAt" => ts(&w.updated_at),
            "description" => json!(w.description),
            "uri" => json!(format!("sites/1/workbooks/{}", i + 1)),
            "owner" => self.one(ix.user_by_id.get(&w.owner_id).map(|&u| Obj::User(u)), f),
            "upstreamDatasources" => self.list(dss.iter().map(|&k| Obj::Pds(k)).collect(), f, args),
            "upstreamTables" => {
                let items = dss
                    .iter()
                    .filter(|&&k| !site.datasources[k].connection.table.is_empty())
                    .map(|&k| Obj::Table(k))
                    .collect();
                self.list(items, f, args)
            }
            "upstreamDatabases" => self.list(dss.iter().map(|&k| Obj::Database(k)).collect(), f, args),
            "embeddedDatasources" => self.list((0..dss.len()).map(|k| Obj::Embedded(i, k)).collect(), f, args),
            "sheets" => self.list(sheets(false), f, args),
            "dashboards" => self.list(sheets(true), f, args),
            "tags" => self.list(w.tags.iter().map(|t| Obj::Tag(t.clone())).collect(), f, args),
            _ => Value::Null,
        }
    }

    fn field_field(&mut self, ds: Option<usize>, name: &str, f: &Field) -> Value {
        let site = self.site;
        match f.name.as_str() {
            "id" => {
                json!(metadata_guid(&format!("{}:{name}", ds.map(|d| site.datasources[d].id.as_str()).unwrap_or(""))))
            }
            "name" => json!(name),
            "fullyQualifiedName" => json!(format!("[{name}]")),
            "description" => json!(""),
            "isHidden" => json!(false),
            "dataType" => json!("STRING"),
            "datasource" => self.one(ds.map(Obj::Pds), f),
            _ => Value::Null,
        }
    }

    /// `schema.table` of a datasource's connection, split (the schema may be empty).
    fn schema_and_table(&self, i: usize) -> (String, String) {
        let t = &self.site.datasources[i].connection.table;
        t.rsplit_once('.').map(|(s, t)| (s.to_string(), t.to_string())).unwrap_or((String::new(), t.clone()))
    }

    /// A table is the connection of datasource `i`; items sharing (server, database, table)
    /// are the same table.
    fn table_field(&mut self, i: usize, f: &Field, args: &Map<String, Value>) -> Value {
        let site = self.site;
        let c = &site.datasources[i].connection;
        let same = |x: &tabflow_site::Datasource| {
            x.connection.server == c.server && x.connection.database == c.database && x.connection.table == c.table
        };
        let (schema, table) = self.schema_and_table(i);
        match f.name.as_str() {
            "id" => json!(metadata_guid(&format!("table:{}:{}:{}", c.server, c.database, c.table))),
            "luid" => json!(""),
            "name" => json!(table),
            "schema" => json!(schema),
            "fullName" => json!(if schema.is_empty() { format!("[{table}]") } else { format!("[{schema}].[{table}]") }),
            "connectionType" => json!(c.kind),
            "isEmbedded" => json!(false),
            "database" => self.render(&Obj::Database(i), f),
            "downstreamDatasources" => {
                let items =
                    site.datasources.iter().enumerate().filter(|(_, x)| same(x)).map(|(k, _)| Obj::Pds(k)).collect();
                self.list(items, f, args)
            }
            "downstreamWorkbooks" => {
                let ids: Vec<&String> = site.datasources.iter().filter(|x| same(x)).map(|x| &x.id).collect();
                let items = site
                    .workbooks
                    .iter()
                    .enumerate()
                    .filter(|(_, w)| w.datasource_ids.iter().any(|d| ids.contains(&d)))
                    .map(|(k, _)| Obj::Wb(k))
                    .collect();
                self.list(items, f, args)
            }
            _ => Value::Null,
        }
    }

    fn database_field(&mut self, i: usize, f: &Field) -> Value {
        let c = &self.site.datasources[i].connection;
        match f.name.as_str() {
            "id" => json!(metadata_guid(&format!("db:{}:{}", c.server, c.database))),
            "luid" => json!(""),
            "name" => json!(c.database),
            "connectionType" => json!(c.kind),
            "isEmbedded" => json!(false),
            "hostName" => json!(c.server),
            "port" => json!(c.port.parse::<i64>().ok()),
            _ => Value::Null,
        }
    }

    fn sheet_field(&mut self, wi: usize, vi: usize, f: &Field, args: &Map<String, Value>) -> Value {
        let site = self.site;
        let w = &site.workbooks[wi];
        let v = &w.views[vi];
        match f.name.as_str() {
            "id" => json!(metadata_guid(&v.id)),
            "luid" => json!(v.id),
            "name" => json!(v.name),
            "path" => json!(format!("{}/{}", w.content_url, v.name)),
            "createdAt" => ts(&w.created_at),
            "updatedAt" => ts(&w.updated_at),
            "workbook" => self.render(&Obj::Wb(wi), f),
            "upstreamFields" | "datasourceFields" => {
                self.list(w.fields_used.iter().map(|n| Obj::Field { ds: None, name: n.clone() }).collect(), f, args)
            }
            "upstreamDatasources" => {
                let ix = self.index();
                let items =
                    w.datasource_ids.iter().filter_map(|id| ix.ds_by_id.get(id).copied()).map(Obj::Pds).collect();
                self.list(items, f, args)
            }
            _ => Value::Null,
        }
    }

    fn embedded_field(&mut self, wi: usize, k: usize, f: &Field, args: &Map<String, Value>) -> Value {
        let site = self.site;
        let ix = self.index();
        let w = &site.workbooks[wi];
        let ds = w.datasource_ids.get(k).and_then(|id| ix.ds_by_id.get(id).copied());
        match f.name.as_str() {
            "id" => json!(metadata_guid(&format!("{}:embedded:{k}", w.id))),
            "name" => json!(ds.map(|d| site.datasources[d].name.clone())),
            "hasExtracts" => json!(false),
            "workbook" => self.render(&Obj::Wb(wi), f),
            "parentPublishedDatasources" | "upstreamDatasources" => {
                self.list(ds.map(Obj::Pds).into_iter().collect(), f, args)
            }
            "upstreamTables" => self.list(ds.map(Obj::Table).into_iter().collect(), f, args),
            "upstreamDatabases" => self.list(ds.map(Obj::Database).into_iter().collect(), f, args),
            "fields" => self.list(w.fields_used.iter().map(|n| Obj::Field { ds, name: n.clone() }).collect(), f, args),
            _ => Value::Null,
        }
    }

    /// One `DatabaseTable` per distinct (server, database, table).
    fn tables(&self) -> Vec<Obj> {
        let mut seen = BTreeSet::new();
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

    /// The comparable value of a filter (or order, or cursor) key on an object.
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
                let (schema, table) = self.schema_and_table(*i);
                match key {
                    "name" => json!(table),
                    "schema" => json!(schema),
                    "connectionType" => json!(c.kind),
                    "id" => json!(metadata_guid(&format!("table:{}:{}:{}", c.server, c.database, c.table))),
                    _ => return None,
                }
            }
            (Obj::CustomSql(i), "id") => json!(metadata_guid(&format!("customsql:{}", site.datasources[*i].id))),
            (Obj::CustomSql(i), "query") => json!(site.datasources[*i].connection.custom_sql),
            (Obj::Field { name, .. }, "name") | (Obj::Tag(name), "name") => json!(name),
            (Obj::User(i), "luid") => json!(site.users[*i].id),
            (Obj::User(i), "username") => json!(site.users[*i].name),
            (Obj::Sheet(w, v), "name") => json!(site.workbooks[*w].views[*v].name),
            (Obj::Sheet(w, v), "luid") => json!(site.workbooks[*w].views[*v].id),
            _ => return None,
        })
    }

    /// Applies `filter` (keys ANDed; `xWithin` takes a list). A key the type does not have is
    /// a validation error and the list comes back empty.
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
        // `xWithin` lists of strings (luids, names) become hash sets once, so a query for the
        // lineage of N candidates over a site of M items costs M lookups, not N × M comparisons.
        let sets: HashMap<&str, HashSet<&str>> = f
            .iter()
            .filter(|(k, _)| k.ends_with("Within"))
            .filter_map(|(k, want)| {
                let a = want.as_array()?;
                let set: Option<HashSet<&str>> = a.iter().map(Value::as_str).collect();
                Some((k.as_str(), set?))
            })
            .collect();
        items
            .into_iter()
            .filter(|o| {
                f.iter().all(|(k, want)| {
                    let (base, within) = match k.strip_suffix("Within") {
                        Some(b) => (b, true),
                        None => (k.as_str(), false),
                    };
                    let have = self.key_value(o, base).unwrap_or(Value::Null);
                    match (within, sets.get(k.as_str())) {
                        (true, Some(set)) => have.as_str().is_some_and(|h| set.contains(h)),
                        (true, None) => want.as_array().is_some_and(|a| a.contains(&have)),
                        (false, _) => &have == want,
                    }
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
                Some(Value::String(s)) if k == "name" => s.to_lowercase(),
                Some(Value::String(s)) => s,
                Some(v) => v.to_string(),
                None => String::new(),
            }
        };
        items.sort_by_cached_key(key);
        if desc {
            items.reverse();
        }
    }

    /// One page of a `...Connection`: `first` (default 100) items after the cursor `after`
    /// or from `offset`; the two together are `INVALID_ARGUMENT`, as on Tableau.
    fn page(&self, items: &[Obj], args: &Map<String, Value>, conn_type: &str) -> Result<Obj, GraphqlError> {
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
            (Some(c), _) => self.after_cursor(items, c)?,
            (None, Some(o)) => (o.max(0) as usize).min(total),
            _ => 0,
        };
        let end = start.saturating_add(first).min(total);
        let nodes: Vec<Obj> = items[start..end].to_vec();
        let cursor = nodes
            .last()
            .and_then(|o| self.key_value(o, "id"))
            .and_then(|v| v.as_str().map(|s| cursor_for(node_type, s, end - 1)));
        Ok(Obj::Conn { nodes, next: end < total, cursor, total })
    }

    /// The position just after the item cursor `c` points at.
    fn after_cursor(&self, items: &[Obj], c: &str) -> Result<usize, GraphqlError> {
        let (id, hint) =
            cursor_id(c).ok_or_else(|| GraphqlError::with_code(format!("Invalid cursor '{c}'"), "INVALID_ARGUMENT"))?;
        let id_at = |o: &Obj| self.key_value(o, "id").and_then(|v| v.as_str().map(str::to_string));
        // The hint makes paging O(page); when the list changed, find the id by scanning.
        let found = match hint {
            Some(p) if items.get(p).is_some_and(|o| id_at(o).as_deref() == Some(id.as_str())) => Some(p),
            _ => items.iter().position(|o| id_at(o).as_deref() == Some(id.as_str())),
        };
        found.map(|p| p + 1).ok_or_else(|| {
            GraphqlError::with_code(
                format!("Invalid cursor '{c}': the item it points at no longer exists"),
                "INVALID_ARGUMENT",
            )
        })
    }
}
