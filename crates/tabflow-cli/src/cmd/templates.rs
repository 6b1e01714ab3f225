//! `tabflow templates list|show|save|run|delete`: named, versioned, parameterised workflows
//! (built-in ones and the store's). A thin front end over `tabflow_app::templates`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::json;
use tabflow_app::Template;

use super::connect::Connect;
use super::workflow::{StoreArgs, open_app, parse_answers, parse_params, print_planned, whoami};
use crate::exit::{self, Code, usage};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Every template: built-in ones, then the store's (newest version of each).
    List(ListArgs),
    /// One template: its parameters and intents (TOML, or --json).
    Show(ShowArgs),
    /// Store a template (a new version when the name exists): from a plan, a run, or a TOML file.
    Save(SaveArgs),
    /// Plan a template with parameters, like any request (nothing is changed).
    Run(RunArgs),
    /// Delete a stored template (its versions stay readable for the plans made from them).
    Delete(DeleteArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    name: String,
    /// A stored version (default: the newest).
    #[arg(long)]
    version: Option<i64>,
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct SaveArgs {
    /// The template's name (lowercase letters, digits, '-').
    name: String,
    /// A plan file written by `tabflow plan -o` (or a plan id from the store).
    #[arg(long, value_name = "FILE|ID", conflicts_with_all = ["from_run", "file"])]
    from_plan: Option<String>,
    /// A run id (`tabflow runs list`): its plan's intents.
    #[arg(long, value_name = "RUN", conflicts_with = "file")]
    from_run: Option<String>,
    /// A template written in TOML (the shape `tabflow templates show` prints).
    #[arg(long)]
    file: Option<PathBuf>,
    /// Which of the plan's values become parameters (their default is the plan's value);
    /// the others stay fixed. Default: every value. An empty list: none.
    #[arg(long, value_name = "K1,K2", value_delimiter = ',')]
    param_keys: Option<Vec<String>>,
    /// The title (default: the plan's request).
    #[arg(long)]
    title: Option<String>,
    /// Write steps that may run without an approval when scheduled (create-project,
    /// repoint-workbooks); destructive steps always need one.
    #[arg(long, value_delimiter = ',')]
    unattended: Option<Vec<String>>,
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    name: String,
    /// A parameter: K=V (see `tabflow templates show NAME`).
    #[arg(long = "param", value_name = "K=V")]
    params: Vec<String>,
    /// A stored version (default: the newest).
    #[arg(long)]
    version: Option<i64>,
    /// Answer a question of the plan: q1=archive-all.
    #[arg(long = "answer", value_name = "ID=CHOICE")]
    answers: Vec<String>,
    /// Print the plan as JSON.
    #[arg(long)]
    json: bool,
    /// Also write the plan to this file (for `tabflow apply`).
    #[arg(long, short)]
    output: Option<PathBuf>,
    #[command(flatten)]
    connect: Connect,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    name: String,
    #[command(flatten)]
    store: StoreArgs,
}

pub async fn run(c: Command) -> anyhow::Result<Code> {
    match c {
        Command::List(a) => list(a).await,
        Command::Show(a) => show(a).await,
        Command::Save(a) => save(a).await,
        Command::Run(a) => run_template(a).await,
        Command::Delete(a) => delete(a).await,
    }
}

async fn list(a: ListArgs) -> anyhow::Result<Code> {
    let app = open_app(None, &a.store, Default::default(), Default::default()).await?;
    let all = app.templates().await.map_err(exit::app);
    app.close().await.map_err(exit::app)?;
    let all = all?;
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&all)?);
        return Ok(Code::Ok);
    }
    for t in &all {
        outln!("{:<26} v{:<3} {:<8} {}", t.template.name, t.template.version, t.source, t.template.title);
        outln!("      params: {}", t.template.param_summary());
    }
    outln!(
        "Run one: tabflow templates run NAME --param K=V   ·   schedule one: tabflow schedule add \"0 8 * * MON\" --template NAME"
    );
    Ok(Code::Ok)
}

async fn show(a: ShowArgs) -> anyhow::Result<Code> {
    let app = open_app(None, &a.store, Default::default(), Default::default()).await?;
    let t = app.template(&a.name, a.version).await.map_err(exit::app);
    app.close().await.map_err(exit::app)?;
    let t = t?;
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&t)?);
    } else {
        outln!("# {} v{} ({})", t.name, t.version, if t.builtin { "built-in" } else { "stored" });
        outln!("{}", t.to_toml().trim_end());
    }
    Ok(Code::Ok)
}

async fn save(a: SaveArgs) -> anyhow::Result<Code> {
    let app = open_app(None, &a.store, Default::default(), Default::default()).await?;
    let result = async {
        let keys = a
            .param_keys
            .as_ref()
            .map(|k| k.iter().map(|x| x.trim().to_string()).filter(|x| !x.is_empty()).collect::<Vec<_>>());
        let mut t: Template = if let Some(src) = &a.from_plan {
            let path = std::path::Path::new(src);
            let plan = if path.exists() {
                let text = super::read_capped(path, super::PLAN_FILE_LIMIT, "plan")?;
                app.read_plan(&text).map_err(exit::app)?
            } else {
                app.get_plan(src).await.map_err(exit::app)?
            };
            tabflow_app::templates::from_plan(&a.name, a.title.as_deref(), &plan, keys.as_deref()).map_err(exit::app)?
        } else if let Some(run) = &a.from_run {
            app.template_from_run(&a.name, a.title.as_deref(), run, keys.as_deref()).await.map_err(exit::app)?
        } else if let Some(file) = &a.file {
            let text = super::read_capped(file, 1 << 20, "template")?;
            let mut t = Template::from_toml(&text).map_err(|e| {
                usage(
                    format!("{} is not a valid template: {e}", file.display()),
                    "see tabflow templates show audit-permissions for the shape",
                )
            })?;
            t.name = a.name.clone();
            if let Some(title) = &a.title {
                t.title = title.clone();
            }
            t
        } else {
            return Err(usage("nothing to save", "give --from-plan FILE, --from-run RUN or --file TEMPLATE.toml"));
        };
        if let Some(u) = &a.unattended {
            t.unattended = u.iter().map(|x| x.trim().to_string()).filter(|x| !x.is_empty()).collect();
        }
        app.save_template(t, &whoami()).await.map_err(exit::app)
    }
    .await;
    let closed = app.close().await.map_err(exit::app);
    let t = result?;
    closed?;
    if a.json {
        outln!("{}", json!({"name": t.name, "version": t.version, "params": t.params}));
    } else {
        outln!("Saved template {} v{}.", t.name, t.version);
        outln!("  params: {}", t.param_summary());
        outln!("Run it: tabflow templates run {} [--param K=V]", t.name);
    }
    Ok(Code::Ok)
}

async fn run_template(a: RunArgs) -> anyhow::Result<Code> {
    let params: BTreeMap<String, String> =
        parse_params(&a.params)?.into_iter().map(|(k, v)| (k.trim().to_string(), v)).collect();
    let answers = parse_answers(&a.answers)?;
    let policy = a.store.policy()?;
    let app = open_app(Some(&a.connect), &a.store, policy, Default::default()).await?;
    let result = app.plan_template(&a.name, a.version, &params, answers, &whoami()).await.map_err(exit::app);
    let closed = app.close().await.map_err(exit::app);
    let planned = result?;
    closed?;
    print_planned(planned, a.json, a.output.as_deref(), None, None)
}

async fn delete(a: DeleteArgs) -> anyhow::Result<Code> {
    let app = open_app(None, &a.store, Default::default(), Default::default()).await?;
    let r = app.delete_template(&a.name, &whoami()).await.map_err(exit::app);
    app.close().await.map_err(exit::app)?;
    r?;
    outln!("Deleted template {} (its versions stay readable for the plans made from them).", a.name);
    Ok(Code::Ok)
}
