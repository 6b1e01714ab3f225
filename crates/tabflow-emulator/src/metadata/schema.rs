//! The part of Tableau's Metadata API schema the emulator serves, as one table, and the
//! validation of a query against it. Kept apart from the executor so that adding a field is a
//! one-line change here (plus its value in `execute.rs`), and so that every query is checked
//! in full before anything runs: unknown fields and wrong sub-selections come back the way
//! Tableau's graphql-java answers them (`Validation error of type FieldUndefined: …`).

use std::collections::BTreeMap;

use serde_json::json;
use tabflow_wire::graphql::GraphqlError;

use super::parse::{Fragment, Selection};

/// Result type of a scalar field.
const SCALAR: &str = "";

/// `(owner types, fields, result type)`: each field of each owner type has that result type
/// (an object type, or [`SCALAR`]). `__typename` exists on every type and is not listed.
const SCHEMA: &[(&[&str], &[&str], &str)] = &[
    // Root fields; each list has a `...Connection` twin with `first`/`after`/`offset`.
    (&["Query"], &["publishedDatasources"], "PublishedDatasource"),
    (&["Query"], &["publishedDatasourcesConnection"], "PublishedDatasourcesConnection"),
    (&["Query"], &["workbooks"], "Workbook"),
    (&["Query"], &["workbooksConnection"], "WorkbooksConnection"),
    (&["Query"], &["databaseTables"], "DatabaseTable"),
    (&["Query"], &["databaseTablesConnection"], "DatabaseTablesConnection"),
    (&["Query"], &["embeddedDatasources"], "EmbeddedDatasource"),
    (&["Query"], &["customSQLTables"], "CustomSQLTable"),
    (&["Query"], &["customSQLTablesConnection"], "CustomSQLTablesConnection"),
    (&["Query"], &["embeddedDatasourcesConnection"], "EmbeddedDatasourcesConnection"),
    // Connections.
    (&["PublishedDatasourcesConnection"], &["nodes"], "PublishedDatasource"),
    (&["WorkbooksConnection"], &["nodes"], "Workbook"),
    (&["DatabaseTablesConnection"], &["nodes"], "DatabaseTable"),
    (&["EmbeddedDatasourcesConnection"], &["nodes"], "EmbeddedDatasource"),
    (&["CustomSQLTablesConnection"], &["nodes"], "CustomSQLTable"),
    (CONNECTIONS, &["pageInfo"], "PageInfo"),
    (CONNECTIONS, &["totalCount"], SCALAR),
    (&["PageInfo"], &["hasNextPage", "endCursor", "hasPreviousPage", "startCursor"], SCALAR),
    // PublishedDatasource.
    (
        &["PublishedDatasource"],
        &[
            "id",
            "luid",
            "name",
            "projectName",
            "projectVizportalUrlId",
            "isCertified",
            "certificationNote",
            "certifierDisplayName",
            "description",
            "hasExtracts",
            "uri",
            "vizportalUrlId",
            "createdAt",
            "updatedAt",
            "containsUnsupportedCustomSql",
            "hasActiveWarning",
            "extractLastRefreshTime",
        ],
        SCALAR,
    ),
    (&["PublishedDatasource"], &["owner", "certifier", "downstreamOwners"], "TableauUser"),
    (&["PublishedDatasource", "EmbeddedDatasource"], &["fields"], "Field"),
    (&["PublishedDatasource", "EmbeddedDatasource", "Workbook"], &["upstreamTables"], "DatabaseTable"),
    (&["PublishedDatasource", "Workbook", "EmbeddedDatasource"], &["upstreamDatabases"], "Database"),
    (&["PublishedDatasource", "DatabaseTable"], &["downstreamWorkbooks"], "Workbook"),
    (&["PublishedDatasource"], &["downstreamSheets"], "Sheet"),
    (&["PublishedDatasource", "Workbook"], &["tags"], "Tag"),
    // Workbook.
    (
        &["Workbook"],
        &[
            "id",
            "luid",
            "name",
            "projectName",
            "projectLuid",
            "projectVizportalUrlId",
            "createdAt",
            "updatedAt",
            "description",
            "uri",
            "vizportalUrlId",
            "containerName",
        ],
        SCALAR,
    ),
    (&["Workbook"], &["owner"], "TableauUser"),
    (&["Workbook", "Sheet", "EmbeddedDatasource"], &["upstreamDatasources"], "PublishedDatasource"),
    (&["Workbook"], &["embeddedDatasources"], "EmbeddedDatasource"),
    (&["Workbook"], &["sheets", "dashboards"], "Sheet"),
    // Users, fields, tables, databases, sheets, embedded datasources, tags.
    (&["TableauUser"], &["id", "luid", "username", "name", "email"], SCALAR),
    (&["Field"], &["id", "name", "fullyQualifiedName", "description", "isHidden", "dataType"], SCALAR),
    (&["Field"], &["datasource"], "PublishedDatasource"),
    (&["DatabaseTable"], &["id", "luid", "name", "schema", "fullName", "connectionType", "isEmbedded"], SCALAR),
    (&["DatabaseTable"], &["database"], "Database"),
    (&["DatabaseTable", "CustomSQLTable"], &["downstreamDatasources"], "PublishedDatasource"),
    (&["CustomSQLTable"], &["id", "name", "query", "connectionType", "isEmbedded", "isUnsupportedCustomSql"], SCALAR),
    (&["CustomSQLTable"], &["database"], "Database"),
    (&["Database"], &["id", "luid", "name", "connectionType", "hostName", "port", "isEmbedded"], SCALAR),
    (&["Sheet"], &["id", "luid", "name", "path", "createdAt", "updatedAt"], SCALAR),
    (&["Sheet"], &["workbook"], "Workbook"),
    (&["Sheet"], &["upstreamFields", "datasourceFields"], "Field"),
    (&["EmbeddedDatasource"], &["id", "name", "hasExtracts"], SCALAR),
    (&["EmbeddedDatasource"], &["parentPublishedDatasources"], "PublishedDatasource"),
    (&["EmbeddedDatasource"], &["workbook"], "Workbook"),
    (&["Tag"], &["id", "name"], SCALAR),
];

const CONNECTIONS: &[&str] = &[
    "PublishedDatasourcesConnection",
    "WorkbooksConnection",
    "DatabaseTablesConnection",
    "EmbeddedDatasourcesConnection",
    "CustomSQLTablesConnection",
];

/// The result type of `field` on `ty` ([`SCALAR`] = ""); `None` when the field does not exist.
pub(super) fn field_type(ty: &str, field: &str) -> Option<&'static str> {
    if field == "__typename" {
        return Some(SCALAR);
    }
    SCHEMA
        .iter()
        .find(|(owners, fields, _)| owners.contains(&ty) && fields.contains(&field))
        .map(|(_, _, result)| *result)
}

/// Whether a fragment on type `on` applies to an object of type `ty` (the interfaces and
/// unions of the schema: `Datasource`, `Database`'s concrete kinds, `Node`).
pub(super) fn fragment_applies(on: &str, ty: &str) -> bool {
    on == ty
        || matches!(
            (on, ty),
            ("Datasource", "PublishedDatasource" | "EmbeddedDatasource") | ("DatabaseServer", "Database") | ("Node", _)
        )
        || (ty == "Database" && matches!(on, "DatabaseServer" | "File" | "CloudFile" | "WebDataConnector"))
}

/// Checks every field of `sel` (on type `ty`) against the schema; errors are appended.
pub(super) fn validate(
    ty: &str,
    sel: &[Selection],
    frags: &BTreeMap<String, Fragment>,
    errors: &mut Vec<GraphqlError>,
) {
    Validator { frags, errors }.walk(ty, sel, "");
}

struct Validator<'a> {
    frags: &'a BTreeMap<String, Fragment>,
    errors: &'a mut Vec<GraphqlError>,
}

impl Validator<'_> {
    /// The walk terminates: the query's shape (depth, size, no fragment cycles) was checked
    /// before validation runs.
    fn walk(&mut self, ty: &str, sel: &[Selection], path: &str) {
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
                            locations: vec![f.at],
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
                        self.walk(ft, &f.selection, &here);
                    }
                }
                Selection::Inline { on, selection, .. } => {
                    let t = on.as_deref().unwrap_or(ty);
                    let t = if fragment_applies(t, ty) && field_type(t, "id").is_some() { t } else { ty };
                    self.walk(t, selection, path);
                }
                Selection::Spread { name, at, .. } => match self.frags.get(name) {
                    // A fragment is checked against its own type condition (except `Query`).
                    Some(fr) => self.walk(if fr.on != "Query" { &fr.on } else { ty }, &fr.selection, path),
                    None => self.errors.push(GraphqlError {
                        message: format!("Validation error of type UndefinedFragment: Undefined fragment {name}"),
                        locations: vec![*at],
                        path: vec![],
                        extensions: None,
                    }),
                },
            }
        }
    }
}
