//! Metadata API (GraphQL): queries with cursor paging and error handling, and the lineage
//! reads the workflows need.

use serde_json::{Value, json};

use crate::client::{Body, Client, Request};
use crate::error::{Error, Result};

/// One published datasource's lineage.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasourceLineage {
    pub luid: String,
    pub name: String,
    pub fields: Vec<String>,
    /// (database, schema, table, connection type)
    pub upstream_tables: Vec<(String, String, String, String)>,
    pub downstream_workbooks: Vec<String>,
}

/// One workbook's lineage.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkbookLineage {
    pub luid: String,
    pub datasources: Vec<String>,
    /// Field names its sheets use.
    pub fields_used: Vec<String>,
}

fn graphql_errors(v: &Value) -> Option<String> {
    let errs = v.get("errors")?.as_array()?;
    if errs.is_empty() {
        return None;
    }
    Some(
        errs.iter()
            .map(|e| e.get("message").and_then(|m| m.as_str()).unwrap_or("unknown error").to_string())
            .collect::<Vec<_>>()
            .join("; "),
    )
}

impl Client {
    /// Runs a query; GraphQL `errors` become [`Error::Graphql`] (a partial `data` is not
    /// trusted: lineage with holes would mislead the validator).
    pub async fn metadata(&self, query: &str, variables: Value) -> Result<Value> {
        let mut r = Request::new(reqwest::Method::POST, "/api/metadata/graphql").unscoped().idempotent(true);
        r.body = Some(Body::Json(json!({ "query": query, "variables": variables })));
        let v = self.send_json(r).await?;
        if let Some(msg) = graphql_errors(&v) {
            return Err(Error::Graphql(msg));
        }
        v.get("data").cloned().ok_or_else(|| Error::Graphql("the answer has neither data nor errors".into()))
    }

    /// Runs a `...Connection(first: $first, after: $after)` query under `root` and collects
    /// every node across pages.
    pub async fn metadata_paged(
        &self,
        query: &str,
        root: &str,
        variables: Value,
        page_size: u32,
    ) -> Result<Vec<Value>> {
        self.metadata_paged_map(query, root, variables, page_size, |v| v.clone()).await
    }

    /// Like [`Client::metadata_paged`], converting each node as its page arrives, so only one
    /// page of JSON is held at a time.
    pub async fn metadata_paged_map<T>(
        &self,
        query: &str,
        root: &str,
        mut variables: Value,
        page_size: u32,
        f: impl Fn(&Value) -> T,
    ) -> Result<Vec<T>> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..100_000 {
            variables["first"] = json!(page_size);
            variables["after"] = after.as_ref().map(|a| json!(a)).unwrap_or(Value::Null);
            let data = self.metadata(query, variables.clone()).await?;
            let conn = data.get(root).ok_or_else(|| Error::Graphql(format!("the answer has no '{root}' field")))?;
            if let Some(nodes) = conn.get("nodes").and_then(|n| n.as_array()) {
                out.extend(nodes.iter().map(&f));
            }
            let info = conn.get("pageInfo");
            let more = info.and_then(|i| i.get("hasNextPage")).and_then(|h| h.as_bool()).unwrap_or(false);
            let cursor = info.and_then(|i| i.get("endCursor")).and_then(|c| c.as_str()).map(str::to_string);
            match (more, cursor) {
                (true, Some(c)) if after.as_deref() != Some(c.as_str()) => after = Some(c),
                (true, _) => {
                    return Err(Error::Graphql("the server said there are more pages but gave no new cursor".into()));
                }
                (false, _) => return Ok(out),
            }
        }
        Err(Error::Graphql("too many pages".into()))
    }

    /// Every published datasource with fields, upstream tables and downstream workbooks.
    pub async fn datasource_lineage(&self) -> Result<Vec<DatasourceLineage>> {
        let q = "query pds($first: Int, $after: String) { publishedDatasourcesConnection(first: $first, after: $after) { \
                 nodes { luid name fields { name } upstreamTables { name schema database { name connectionType } } \
                 downstreamWorkbooks { luid } } pageInfo { hasNextPage endCursor } totalCount } }";
        self.metadata_paged_map(q, "publishedDatasourcesConnection", json!({}), 500, |n| DatasourceLineage {
            luid: str_of(n, "luid"),
            name: str_of(n, "name"),
            fields: list_of(n, "fields").iter().map(|f| str_of(f, "name")).collect(),
            upstream_tables: list_of(n, "upstreamTables")
                .iter()
                .map(|t| {
                    let db = t.get("database").cloned().unwrap_or(Value::Null);
                    (str_of(&db, "name"), str_of(t, "schema"), str_of(t, "name"), str_of(&db, "connectionType"))
                })
                .collect(),
            downstream_workbooks: list_of(n, "downstreamWorkbooks").iter().map(|w| str_of(w, "luid")).collect(),
        })
        .await
    }

    /// The custom SQL of each published datasource that has one (`customSQLTables`), by the
    /// datasource's LUID.
    pub async fn custom_sql(&self) -> Result<Vec<(String, String)>> {
        let q = "query csql($first: Int, $after: String) { customSQLTablesConnection(first: $first, after: $after) { \
                 nodes { query downstreamDatasources { luid } } pageInfo { hasNextPage endCursor } totalCount } }";
        let rows = self
            .metadata_paged_map(q, "customSQLTablesConnection", json!({}), 500, |n| {
                let query = str_of(n, "query");
                list_of(n, "downstreamDatasources")
                    .iter()
                    .map(|d| (str_of(d, "luid"), query.clone()))
                    .collect::<Vec<_>>()
            })
            .await?;
        Ok(rows.into_iter().flatten().filter(|(id, q)| !id.is_empty() && !q.is_empty()).collect())
    }

    /// Every workbook with the published datasources it uses and the fields its sheets use.
    pub async fn workbook_lineage(&self) -> Result<Vec<WorkbookLineage>> {
        self.workbook_lineage_within(None).await
    }

    /// [`Client::workbook_lineage`] of the workbooks in projects of these names only
    /// (`projectNameWithin`), or of every workbook.
    pub async fn workbook_lineage_within(&self, projects: Option<&[String]>) -> Result<Vec<WorkbookLineage>> {
        let (q, vars) = match projects {
            None => (
                "query wbs($first: Int, $after: String) { workbooksConnection(first: $first, after: $after) { \
                 nodes { luid upstreamDatasources { luid } sheets { upstreamFields { name } } \
                 dashboards { upstreamFields { name } } } \
                 pageInfo { hasNextPage endCursor } totalCount } }",
                json!({}),
            ),
            Some(names) => (
                "query wbs($first: Int, $after: String, $projects: [String]) { \
                 workbooksConnection(first: $first, after: $after, filter: {projectNameWithin: $projects}) { \
                 nodes { luid upstreamDatasources { luid } sheets { upstreamFields { name } } \
                 dashboards { upstreamFields { name } } } \
                 pageInfo { hasNextPage endCursor } totalCount } }",
                json!({ "projects": names }),
            ),
        };
        self.metadata_paged_map(q, "workbooksConnection", vars, 500, workbook_node).await
    }

    /// [`Client::workbook_lineage`] of the workbooks with these luids only (`luidWithin`, in
    /// queries of at most 200 luids each).
    pub async fn workbook_lineage_of(&self, luids: &[String]) -> Result<Vec<WorkbookLineage>> {
        let q = "query wbs($first: Int, $after: String, $ids: [String]) { \
                 workbooksConnection(first: $first, after: $after, filter: {luidWithin: $ids}) { \
                 nodes { luid upstreamDatasources { luid } sheets { upstreamFields { name } } \
                 dashboards { upstreamFields { name } } } \
                 pageInfo { hasNextPage endCursor } totalCount } }";
        let mut out = Vec::with_capacity(luids.len());
        for chunk in luids.chunks(200) {
            out.extend(
                self.metadata_paged_map(q, "workbooksConnection", json!({ "ids": chunk }), 500, workbook_node).await?,
            );
        }
        Ok(out)
    }
}

/// One node of a `workbooksConnection` query: its published datasources and the fields its
/// sheets and dashboards use (sorted, once each).
fn workbook_node(n: &Value) -> WorkbookLineage {
    // Sheets and dashboards: a workbook of one dashboard has no sheet of its own.
    let mut fields: Vec<String> = list_of(n, "sheets")
        .iter()
        .chain(list_of(n, "dashboards"))
        .flat_map(|s| list_of(s, "upstreamFields").iter().map(|f| str_of(f, "name")).collect::<Vec<_>>())
        .collect();
    fields.sort();
    fields.dedup();
    WorkbookLineage {
        luid: str_of(n, "luid"),
        datasources: list_of(n, "upstreamDatasources").iter().map(|d| str_of(d, "luid")).collect(),
        fields_used: fields,
    }
}

fn str_of(v: &Value, k: &str) -> String {
    v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string()
}

fn list_of<'a>(v: &'a Value, k: &str) -> &'a [Value] {
    v.get(k).and_then(|x| x.as_array()).map(|a| a.as_slice()).unwrap_or(&[])
}
