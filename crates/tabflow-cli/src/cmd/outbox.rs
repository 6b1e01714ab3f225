//! `tabflow outbox list|retry`: the notifications runs wrote (sent, dry or failed), and
//! delivering again the ones that did not go out.

use clap::{Args, Subcommand};
use serde_json::json;

use super::workflow::{StoreArgs, notify_delivery, open_app};
use crate::exit::{self, Code, fail};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Messages, newest first.
    List(ListArgs),
    /// Deliver again the `failed` and `dry` messages with the current settings
    /// (TABFLOW_SMTP_URL, TABFLOW_NOTIFY_WEBHOOK, …); channels that already took a message
    /// are not used again for it.
    Retry(RetryArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only the messages of this run.
    #[arg(long)]
    run: Option<String>,
    #[arg(long)]
    json: bool,
    /// Print each message's body too.
    #[arg(long)]
    full: bool,
    /// Only the dead letters: messages whose delivery failed (retry them with `outbox retry`).
    #[arg(long)]
    failed: bool,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct RetryArgs {
    /// Only the messages of this run.
    #[arg(long)]
    run: Option<String>,
    /// Only this message (an id from `tabflow outbox list`).
    #[arg(long, conflicts_with = "run")]
    id: Option<i64>,
    /// Print the counts as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    store: StoreArgs,
}

pub async fn run(c: Command) -> anyhow::Result<Code> {
    match c {
        Command::List(a) => list(a).await,
        Command::Retry(a) => retry(a).await,
    }
}

async fn list(a: ListArgs) -> anyhow::Result<Code> {
    let app = open_app(None, &a.store, Default::default(), Default::default()).await?;
    let rows = app.outbox(a.run.as_deref()).await.map_err(exit::app);
    app.close().await.map_err(exit::app)?;
    let mut rows = rows?;
    if a.failed {
        rows.retain(|r| r.status == "failed");
    }
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(Code::Ok);
    }
    if rows.is_empty() {
        outln!("{}", if a.failed { "No failed messages." } else { "The outbox is empty." });
    }
    for r in &rows {
        let to = if r.recipient_email.is_empty() { "no email address".to_string() } else { r.recipient_email.clone() };
        outln!(
            "{:>5} {} {:<7} {} <{}> — {}   ({})",
            r.id,
            r.created_at.format("%Y-%m-%d %H:%M"),
            r.status,
            r.recipient_name,
            to,
            r.subject,
            r.run_id
        );
        if a.full {
            for line in r.body.lines() {
                outln!("        {line}");
            }
        }
        if r.status != "sent" && !r.detail.is_empty() {
            outln!("        {}", r.detail);
        }
    }
    let count = |status: &str| rows.iter().filter(|r| r.status == status).count();
    if count("failed") > 0 {
        errln!("{} messages failed: fix the reason shown, then `tabflow outbox retry`", count("failed"));
    }
    if count("dry") > 0 {
        errln!(
            "{} messages kept unsent: once email (TABFLOW_SMTP_URL, TABFLOW_NOTIFY_FROM) or a webhook \
             (TABFLOW_NOTIFY_WEBHOOK) is configured for them, `tabflow outbox retry` sends them",
            count("dry")
        );
    }
    Ok(Code::Ok)
}

async fn retry(a: RetryArgs) -> anyhow::Result<Code> {
    let app = open_app(None, &a.store, Default::default(), notify_delivery()?).await?;
    let delivery = app.delivery().clone();
    let tally = match a.id {
        Some(id) => app.retry_outbox_message(id).await.map_err(exit::app),
        None => app.retry_outbox(a.run.as_deref()).await.map_err(exit::app),
    };
    app.close().await.map_err(exit::app)?;
    let t = tally?;
    let tried = t.sent + t.dry + t.failed;
    if a.json {
        outln!(
            "{}",
            json!({"tried": tried, "sent": t.sent, "dry": t.dry, "failed": t.failed, "channels": delivery.channels()})
        );
    } else if tried == 0 {
        outln!(
            "Nothing to retry: no failed or unsent messages{}.",
            a.run.map(|r| format!(" in run {r}")).unwrap_or_default()
        );
    } else {
        let via = if delivery.channels().is_empty() {
            "no channel configured".into()
        } else {
            delivery.channels().join(" + ")
        };
        outln!(
            "Retried {tried} messages ({via}): {} sent, {} kept in the outbox unsent, {} failed — tabflow outbox list",
            t.sent,
            t.dry,
            t.failed
        );
    }
    if t.failed > 0 {
        return Err(fail(
            format!("{} of {tried} messages could not be delivered", t.failed),
            "`tabflow outbox list` shows each reason; fix it and run `tabflow outbox retry` again",
        ));
    }
    Ok(Code::Ok)
}
