//! Resources and prompts. Resources: `tabflow://plans/{id}` (a stored plan of the connected
//! site, `tabflow-plan/2` JSON) and `tabflow://runs/{id}/report` (a run's report, Markdown,
//! with every configured secret redacted); the latest runs' reports are listed. Prompts: the
//! seed's workflows (content cleanup, user migration, permission audit, datasource migration)
//! and what Tableau's own MCP server offers as prompts (stale content, license reclamation),
//! each telling the assistant which tools to call and that a person approves in the console.

use rmcp::ErrorData;
use rmcp::model::{
    GetPromptResult, JsonObject, Prompt, PromptArgument, PromptMessage, ReadResourceResult, Resource, ResourceContents,
    ResourceTemplate, Role,
};
use serde_json::Value;

use crate::server::TabflowMcp;

pub fn templates() -> Vec<ResourceTemplate> {
    vec![
        ResourceTemplate::new("tabflow://plans/{id}", "plan")
            .with_description(
                "A stored plan of the connected site (tabflow-plan/2 JSON): steps, items, checks, impact, questions",
            )
            .with_mime_type("application/json"),
        ResourceTemplate::new("tabflow://runs/{id}/report", "run report")
            .with_description("A run's report (Markdown): what changed, what was skipped or failed, how to undo it")
            .with_mime_type("text/markdown"),
    ]
}

/// The resources of the latest runs (their reports).
pub fn run_resources(runs: &[tabflow_app::RunRow]) -> Vec<Resource> {
    runs.iter()
        .map(|r| {
            Resource::new(format!("tabflow://runs/{}/report", r.id), format!("report of run {}", r.id))
                .with_description(format!("{} — {} ({})", r.request, r.status.as_str(), crate::views::ts(r.created_at)))
                .with_mime_type("text/markdown")
        })
        .collect()
}

fn not_found(uri: &str) -> ErrorData {
    ErrorData::resource_not_found(
        format!("no resource '{uri}'; tabflow has tabflow://plans/{{id}} and tabflow://runs/{{id}}/report"),
        None,
    )
}

impl TabflowMcp {
    pub(crate) async fn read(&self, uri: &str) -> Result<ReadResourceResult, ErrorData> {
        let rest = uri.strip_prefix("tabflow://").ok_or_else(|| not_found(uri))?;
        let parts: Vec<&str> = rest.split('/').collect();
        let refused = |r: rmcp::model::CallToolResult| {
            let e = r.structured_content.unwrap_or(Value::Null);
            let msg = format!(
                "{} ({})",
                e["error"]["message"].as_str().unwrap_or("refused"),
                e["error"]["hint"].as_str().unwrap_or("")
            );
            if e["error"]["code"] == "not-found" {
                ErrorData::resource_not_found(msg, None)
            } else {
                ErrorData::invalid_params(msg, None)
            }
        };
        match parts.as_slice() {
            ["plans", id] if !id.is_empty() => {
                let plan = self.plan_here(id.to_string()).await.map_err(refused)?;
                let text = plan.to_json();
                Ok(ReadResourceResult::new(vec![
                    ResourceContents::text(text, uri.to_string()).with_mime_type("application/json"),
                ]))
            }
            ["runs", id, "report"] if !id.is_empty() => {
                let id = id.to_string();
                let text = self
                    .call(move |app| async move {
                        let r = app.run_report(&id).await?;
                        Ok(app.redact_text(&r.render(tabflow_workflows::report::Format::Markdown)))
                    })
                    .await
                    .map_err(refused)?;
                Ok(ReadResourceResult::new(vec![
                    ResourceContents::text(text, uri.to_string()).with_mime_type("text/markdown"),
                ]))
            }
            _ => Err(not_found(uri)),
        }
    }
}

struct PromptDef {
    name: &'static str,
    description: &'static str,
    /// (name, description, default)
    args: &'static [(&'static str, &'static str, &'static str)],
    text: fn(&dyn Fn(&str) -> String) -> String,
}

const APPROVAL: &str = "Show me the plan's summary, its checks and the items it changes, and ask me its questions (answer_questions with my answers). When I agree, call request_approval and give me the console URL: a person with the approver role approves there; my answer in this chat is not an approval. Only after I tell you it was approved, call start_run and report its progress and result (run_status for later).";

const PROMPTS: &[PromptDef] = &[
    PromptDef {
        name: "content_cleanup",
        description: "Archive the stale workbooks of a project (the seed's content cleanup)",
        args: &[("project", "the project to clean up", "Finance"), ("days", "not accessed in this many days", "90")],
        text: |a| {
            format!(
                "Plan with plan_workflow the request \"Clean up the {} project - archive workbooks not accessed in {} days\". {APPROVAL}",
                a("project"),
                a("days")
            )
        },
    },
    PromptDef {
        name: "user_migration",
        description: "Hand a leaving user's content to someone else and remove their access",
        args: &[("user", "who is leaving", "John Smith"), ("new_owner", "who takes over their content", "Tom Baker")],
        text: |a| {
            format!(
                "Plan with plan_workflow the request \"{} is leaving; give their content to {} and remove their access\". {APPROVAL}",
                a("user"),
                a("new_owner")
            )
        },
    },
    PromptDef {
        name: "permission_audit",
        description: "Audit who can see content with a tag, and fix overly broad grants",
        args: &[("tag", "the content's tag", "sensitive")],
        text: |a| {
            format!(
                "Plan with plan_workflow the request \"audit permissions on content tagged {}\"; explain who can see what and why. If it proposes fixes: {APPROVAL}",
                a("tag")
            )
        },
    },
    PromptDef {
        name: "datasource_migration",
        description: "Repoint workbooks off deprecated datasources to their replacements",
        args: &[],
        text: |_| {
            format!("Plan with plan_workflow the request \"Migrate workbooks off deprecated datasources\". {APPROVAL}")
        },
    },
    PromptDef {
        name: "stale_content",
        description: "Find content nobody has viewed lately (read-only)",
        args: &[("days", "not viewed in this many days", "90")],
        text: |a| {
            format!(
                "Ask query_site \"workbooks not viewed in {} days\" and summarise the answer by project and owner (page through next_cursor if there are more rows). Change nothing; if I want them archived, use the content_cleanup steps.",
                a("days")
            )
        },
    },
    PromptDef {
        name: "license_reclamation",
        description: "Find licensed users who have not signed in lately (read-only)",
        args: &[("days", "not signed in for this many days", "90")],
        text: |a| {
            format!(
                "Ask query_site \"users who have not signed in for {} days\" and summarise them by site role, with how many Creator and Explorer licenses could be reclaimed. Change nothing.",
                a("days")
            )
        },
    },
    PromptDef {
        name: "extract_refresh_health",
        description: "Review extract refreshes: failing, unused, heavy in peak hours, suspended schedules",
        args: &[("days", "content unused for this many days", "90")],
        text: |a| {
            format!(
                "Plan with plan_workflow the request \"Review extract refreshes of content not viewed in {} days\" and summarise its findings: failing refreshes with their last error, refreshes of unused content, heavy refreshes in peak hours, suspended schedules, and its recommendations. Change nothing. If I want one acted on, plan the matching request (\"Suspend refreshes of unused workbooks\", \"Move heavy refreshes off-peak\", \"Suspend the refresh schedules that only refresh unused content\", \"Resume the suspended refresh schedules\") and then: {APPROVAL}",
                a("days")
            )
        },
    },
];

pub fn prompts() -> Vec<Prompt> {
    PROMPTS
        .iter()
        .map(|p| {
            let args: Vec<PromptArgument> = p
                .args
                .iter()
                .map(|(n, d, default)| {
                    PromptArgument::new(*n).with_description(format!("{d} (default {default})")).with_required(false)
                })
                .collect();
            Prompt::new(p.name, Some(p.description), (!args.is_empty()).then_some(args))
        })
        .collect()
}

pub fn prompt(name: &str, arguments: Option<&JsonObject>) -> Result<GetPromptResult, ErrorData> {
    let Some(p) = PROMPTS.iter().find(|p| p.name == name) else {
        return Err(ErrorData::invalid_params(
            format!(
                "there is no prompt '{name}'; the prompts are: {}",
                PROMPTS.iter().map(|p| p.name).collect::<Vec<_>>().join(", ")
            ),
            None,
        ));
    };
    let empty = JsonObject::new();
    let given = arguments.unwrap_or(&empty);
    if let Some(k) = given.keys().find(|k| !p.args.iter().any(|(n, _, _)| n == k)) {
        return Err(ErrorData::invalid_params(
            format!(
                "prompt {name} has no argument '{k}'; it takes: {}",
                p.args.iter().map(|(n, _, _)| *n).collect::<Vec<_>>().join(", ")
            ),
            None,
        ));
    }
    let get = |k: &str| -> String {
        match given.get(k) {
            Some(Value::String(s)) if !s.trim().is_empty() => s.trim().replace('"', "'"),
            Some(Value::Number(n)) => n.to_string(),
            _ => p.args.iter().find(|(n, _, _)| *n == k).map(|(_, _, d)| d.to_string()).unwrap_or_default(),
        }
    };
    let text = (p.text)(&get);
    Ok(GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)]).with_description(p.description))
}
