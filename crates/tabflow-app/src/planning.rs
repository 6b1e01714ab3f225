//! From a request to a validated plan: the parser (rules, an LLM, or a given intent), the
//! planner over a live site read, the five checks, the store, and what answers teach.

use std::collections::BTreeMap;

use serde_json::Value;
use tabflow_engine::plan::{Intent, Plan, SiteRef};
use tabflow_engine::{Facts, ValidatedPlan, validate};

use crate::error::{Error, Result};
use crate::{App, Session};

/// Where a request's intents come from.
pub enum Source {
    /// The rule-based parser reads the request.
    Rules,
    /// One intent given by name with its parameters as written (`K=V` values are typed
    /// here: `true`/`false`, integers, comma lists for `tags`).
    Intent { name: String, params: Vec<(String, String)> },
    /// The configured LLM reads the request (falling back to the rule-based parser).
    Llm(Box<tabflow_llm::Llm>),
    /// Intents already read (a re-plan with more answers), with the notes that came with them.
    /// With an answer to the question `reading` (a model's reading the rule-based parser did
    /// not confirm), they are cross-checked again, as for [`Source::Model`].
    Given { intents: Vec<Intent>, notes: Vec<String> },
    /// Intents a model read earlier (a re-plan of a plan whose `reading` question is still
    /// open): cross-checked against the rule-based parser again, so a destructive intent only
    /// the model found stays unplanned until that question is answered.
    Model { intents: Vec<Intent>, notes: Vec<String> },
}

/// A model's reading after the cross-check with the rule-based parser.
struct Checked {
    /// What the planner plans now.
    planned: Vec<Intent>,
    /// The question `reading` and the model's whole reading (recorded as the plan's intents
    /// so that answering it can plan either reading), while the dispute is open.
    open: Option<(tabflow_engine::plan::Question, Vec<Intent>)>,
    notes: Vec<String>,
    asks: Vec<String>,
}

/// A request to plan.
pub struct PlanRequest {
    /// The request as the person wrote it; credentials pasted into it are redacted.
    pub request: String,
    pub source: Source,
    /// Answers to the plan's questions (question id → choice).
    pub answers: BTreeMap<String, String>,
    /// Who asks (recorded with what the answers teach).
    pub actor: String,
    /// Record what the answers teach now. A front end that will ask the remaining questions
    /// itself passes false and calls [`App::remember_answers`] once they are answered.
    pub remember: bool,
}

/// A plan made (and stored): validated, or refused by the checks (`Err`, with its findings).
pub struct Planned {
    pub plan: std::result::Result<ValidatedPlan, Box<Plan>>,
    /// The intents the plan was made from (to re-plan with more answers).
    pub intents: Vec<Intent>,
    /// Notes from reading the request (which parser answered); also in the plan's notes.
    pub notes: Vec<String>,
    /// Problems that did not stop planning (e.g. learning could not be recorded).
    pub warnings: Vec<String>,
}

impl Planned {
    /// The plan, validated or not.
    pub fn plan(&self) -> &Plan {
        match &self.plan {
            Ok(v) => v.plan(),
            Err(p) => p,
        }
    }
}

/// What tabflow can do, in words, for the hint of a request it cannot do.
pub const CAN_DO: &str = "tabflow can archive stale content, delete content (staged), hand a leaver's content over and remove their access, audit or update permissions, notify owners, consolidate or migrate datasources, reclaim licenses of inactive users, clean up subscriptions, review extract refreshes, and answer questions about the site";

/// "I can't do that yet: delete data alerts" (exit 1), with what tabflow can do.
fn cannot_do_yet(what: &[String]) -> Error {
    Error::failed(
        format!("I can't do that yet: {}", what.join("; ")),
        format!("{CAN_DO}; ask for one of those, or leave that part out of the request"),
    )
}

/// The question an ambiguous clause asks ("archive or delete …").
fn ambiguity_question(a: &tabflow_nl::Ambiguous) -> String {
    format!(
        "\"{}\" can mean {}. Archiving moves the content to the archive project and is undone exactly; deleting quarantines it and deletes it for good after the grace period. Ask again saying which, e.g. \"archive …\" or \"delete …\".",
        a.text,
        a.choices.join(" or ")
    )
}

/// Questions from reading the request (ambiguities), before the planner's own: a request
/// with nothing else in it asks the specific question, not the generic "what did you mean".
fn add_questions(draft: &mut Plan, asks: &[String]) {
    if asks.is_empty() {
        return;
    }
    if draft.intents.is_empty() {
        draft.questions.clear();
    }
    let mut questions: Vec<tabflow_engine::plan::Question> = asks
        .iter()
        .map(|text| tabflow_engine::plan::Question {
            id: String::new(),
            text: text.clone(),
            choices: vec![],
            default: None,
        })
        .collect();
    questions.append(&mut draft.questions);
    // Questions are numbered in order; answers to the planner's own keep their meaning only
    // when no ambiguity precedes them, and an ambiguity has no answer but a new request.
    for (n, q) in questions.iter_mut().enumerate() {
        q.id = format!("q{}", n + 1);
    }
    draft.questions = questions;
}

/// The rule-based parser's reading as planned: a part it cannot do yet is an error,
/// ambiguities become questions, what it did not understand a note.
fn rules_reading(request: &str, parsed: tabflow_nl::Parsed) -> Result<(Vec<Intent>, Vec<String>, Vec<String>)> {
    if !parsed.unsupported.is_empty() {
        return Err(cannot_do_yet(&parsed.unsupported));
    }
    let asks: Vec<String> = parsed.ambiguous.iter().map(ambiguity_question).collect();
    // Nothing understood, or only questions the query engine cannot read: never a guess at
    // the nearest workflow, but "I can't do that yet" (exit 1).
    let unreadable = |i: &Intent| match i {
        Intent::Query(q) => matches!(
            tabflow_workflows::query::understand(q.question.as_deref().unwrap_or(request)),
            Err(tabflow_workflows::query::Error::NotUnderstood { .. })
        ),
        _ => false,
    };
    if asks.is_empty() && parsed.intents.iter().all(unreadable) {
        return Err(cannot_do_yet(&[format!("\"{}\"", request.trim())]));
    }
    let notes = if parsed.intents.is_empty() {
        vec![]
    } else {
        parsed
            .not_understood
            .iter()
            .map(|t| format!("not understood, so not planned: \"{t}\" — ask for it separately"))
            .collect()
    };
    Ok((parsed.intents, notes, asks))
}

/// Cross-checks a model's reading of `request` with the rule-based parser's
/// ([`tabflow_llm::crosscheck`]): a destructive intent the parser did not also find is not
/// planned until the question `reading` (quoting both readings) is answered with `parser`,
/// `model` or `cancel`; meanwhile only the model's intents that change nothing are planned.
fn check_reading(
    request: &str,
    model: Vec<Intent>,
    today: chrono::NaiveDate,
    answers: &BTreeMap<String, String>,
    label: &str,
) -> Result<Checked> {
    use tabflow_llm::crosscheck as cc;
    let parsed = tabflow_nl::parse(request, today);
    let Some(dispute) = cc::cross_check(&model, &parsed.intents) else {
        return Ok(Checked { planned: model, open: None, notes: vec![], asks: vec![] });
    };
    let unconfirmed = cc::describe(&dispute.unconfirmed);
    match answers.get(cc::QUESTION_ID).map(|a| a.trim()) {
        Some(cc::PARSER) => {
            let (planned, mut notes, asks) = rules_reading(request, parsed)?;
            notes.insert(
                0,
                format!(
                    "the rule-based parser's reading is planned (answer to `{}`); the model's was: {}",
                    cc::QUESTION_ID,
                    cc::describe(&dispute.model)
                ),
            );
            Ok(Checked { planned, open: None, notes, asks })
        }
        Some(cc::MODEL) => Ok(Checked {
            planned: model,
            open: None,
            notes: vec![format!(
                "the model's reading is planned (answer to `{}`), including what the rule-based parser did not find: {unconfirmed}",
                cc::QUESTION_ID
            )],
            asks: vec![],
        }),
        Some(cc::CANCEL) => Err(Error::failed(
            "you chose to plan neither reading of the request; nothing was planned",
            "ask again in other words, or say exactly what to do with --intent NAME --param K=V",
        )),
        Some(other) => Err(Error::usage(
            format!("'{other}' is not a choice of question {}", cc::QUESTION_ID),
            format!("answer {0}={1}, {0}={2} or {0}={3}", cc::QUESTION_ID, cc::PARSER, cc::MODEL, cc::CANCEL),
        )),
        None => {
            let question = tabflow_engine::plan::Question {
                id: cc::QUESTION_ID.to_string(),
                text: dispute.question(label),
                choices: vec![cc::PARSER.to_string(), cc::MODEL.to_string(), cc::CANCEL.to_string()],
                default: Some(cc::CANCEL.to_string()),
            };
            let note = format!(
                "not planned until question `{}` is answered: {unconfirmed} (read by the model, not by the rule-based parser)",
                cc::QUESTION_ID
            );
            Ok(Checked { planned: dispute.safe(), open: Some((question, model)), notes: vec![note], asks: vec![] })
        }
    }
}

/// The intents of `--intent NAME --param K=V…`.
pub fn intent_from_parts(name: &str, params: &[(String, String)]) -> Result<Intent> {
    if !tabflow_workflows::INTENTS.contains(&name) {
        let near = tabflow_workflows::ground::closest(name, tabflow_workflows::INTENTS.iter().copied(), 1);
        let mean = near.first().map(|n| format!("did you mean {n}? ")).unwrap_or_default();
        return Err(Error::usage(
            format!("'{name}' is not an intent tabflow knows"),
            format!("{mean}use one of: {}", tabflow_workflows::INTENTS.join(", ")),
        ));
    }
    let mut map = serde_json::Map::new();
    for (k, v) in params {
        let value = match v.trim() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            x if x.parse::<i64>().is_ok() => Value::from(x.parse::<i64>().unwrap_or(0)),
            x if x.contains(',') && k == "tags" => {
                Value::from(x.split(',').map(|t| t.trim().to_string()).collect::<Vec<_>>())
            }
            x => Value::String(x.to_string()),
        };
        map.insert(k.trim().to_string(), value);
    }
    Intent::from_parts(name, map).map_err(|e| Error::usage(e.to_string(), e.fix()))
}

impl App {
    /// What earlier choices taught (learning system), for the planner.
    async fn learned(&self) -> Result<tabflow_workflows::learn::Learned> {
        let rows = self.store.learning().await.map_err(|e| Error::store(e, "check the state store"))?;
        Ok(tabflow_workflows::learn::Learned::new(rows))
    }

    /// The template a request names, with its parameters: `K=V` pairs, and "for X" given to
    /// the template's `project` (else `user`, else its first required text parameter not
    /// given). `None` when the request names no template.
    async fn named_template(
        &self,
        request: &str,
    ) -> Result<Option<(crate::templates::Template, BTreeMap<String, String>, String)>> {
        let known = self.templates().await?;
        let names: Vec<&str> = known.iter().map(|t| t.template.name.as_str()).collect();
        let Some(call) = tabflow_nl::template_call(request, &names) else { return Ok(None) };
        let t = self.template(&call.name, None).await?;
        let mut params: BTreeMap<String, String> = call.params.into_iter().collect();
        if let Some(target) = &call.target {
            let main = ["project", "user"]
                .into_iter()
                .find(|k| t.params.contains_key(*k) && !params.contains_key(*k))
                .map(str::to_string)
                .or_else(|| {
                    t.params
                        .iter()
                        .find(|(k, p)| {
                            p.required && !params.contains_key(*k) && p.kind == crate::templates::ParamType::Text
                        })
                        .map(|(k, _)| k.clone())
                });
            let Some(main) = main else {
                return Err(Error::usage(
                    format!("template {} has no parameter for \"{target}\"", t.name),
                    format!("give its parameters as K=V: {}", t.params.keys().cloned().collect::<Vec<_>>().join(", ")),
                ));
            };
            params.insert(main, target.clone());
        }
        let shown: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let note = format!(
            "Read as template {}{}",
            t.name,
            if shown.is_empty() { String::new() } else { format!(" with {}", shown.join(", ")) }
        );
        self.notify(&note);
        Ok(Some((t, params, note)))
    }

    /// Records learning rows; a failure is answered as a warning, never an error.
    pub(crate) async fn record_learning(&self, rows: Vec<tabflow_engine::store::NewLearning>) -> Option<String> {
        match self.store.record_learning(&rows).await {
            Ok(()) => None,
            Err(e) => Some(format!("could not record what this run taught ({e}); `tabflow learn show` will miss it")),
        }
    }

    /// Records what a plan's answers teach; answers a warning when it could not.
    pub async fn remember_answers(&self, plan: &Plan) -> Option<String> {
        self.record_learning(tabflow_workflows::learn::from_answers(plan)).await
    }

    /// Plans a request: reads the site, builds the plan, runs the five checks, stores the
    /// plan (valid or not). Nothing on the site changes.
    pub async fn plan(&self, req: PlanRequest) -> Result<Planned> {
        check_request_length(&req.request)?;
        // "run the quarterly cleanup for Sales": a request that names a template plans it.
        if matches!(req.source, Source::Rules | Source::Llm(_))
            && let Some((t, params, note)) = self.named_template(&req.request).await?
        {
            let instance = t.instantiate(&params)?;
            return Box::pin(self.plan_instance(&t, instance, req.answers, &req.actor, req.remember, vec![note])).await;
        }
        let learned = self.learned().await?;
        let session = self.connect().await?;
        let request = self.redact(&req.request).await?;
        let today = self.clock.now().date_naive();
        let mut asks: Vec<String> = vec![];
        let mut open = None;
        let crosscheck = |model: Vec<Intent>, mut notes: Vec<String>, label: &str| -> Result<_> {
            let checked = check_reading(&request, model, today, &req.answers, label)?;
            for n in &checked.notes {
                self.notify(n);
            }
            notes.extend(checked.notes);
            Ok((checked.planned, notes, checked.asks, checked.open))
        };
        let (intents, notes) = match req.source {
            Source::Rules => {
                let (intents, notes, a) = rules_reading(&request, tabflow_nl::parse(&request, today))?;
                asks = a;
                for n in &notes {
                    self.notify(n);
                }
                (intents, notes)
            }
            Source::Intent { name, params } => (vec![intent_from_parts(&name, &params)?], vec![]),
            Source::Given { intents, notes } if !req.answers.contains_key(tabflow_llm::crosscheck::QUESTION_ID) => {
                (intents, notes)
            }
            Source::Given { intents, notes } | Source::Model { intents, notes } => {
                let (intents, notes, a, o) = crosscheck(intents, notes, "the model")?;
                (asks, open) = (a, o);
                (intents, notes)
            }
            Source::Llm(llm) => {
                // The request is already redacted; the library also redacts these (and its own
                // key) from everything it sends.
                let mut secrets = self.secrets(session);
                secrets.extend(tabflow_site::text::url_secrets(&llm.config().url));
                let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
                let outcome = llm.interpret(&request, today, &secrets).await;
                // Notes quote the model's server and its errors: redacted like the request.
                let notes: Vec<String> = outcome.notes.iter().map(|n| self.redact_text(n)).collect();
                for n in &notes {
                    self.notify(n);
                }
                if matches!(outcome.source, tabflow_llm::Source::Llm { .. }) {
                    let label = self.redact_text(&llm.label());
                    let (intents, notes, a, o) = crosscheck(outcome.intents, notes, &label)?;
                    (asks, open) = (a, o);
                    (intents, notes)
                } else {
                    (outcome.intents, notes)
                }
            }
        };
        let recorded = open.as_ref().map(|(_, model)| model.clone()).unwrap_or_else(|| intents.clone());
        let made = self.make_plan(session, &request, intents, req.answers, &notes, &asks, open, learned).await?;
        let plan = match &made {
            Ok(v) => v.plan(),
            Err(p) => p,
        };
        self.store.save_plan(plan).await.map_err(|e| Error::store(e, "check the state store"))?;
        self.store
            .set_plan_requester(&plan.id, &req.actor)
            .await
            .map_err(|e| Error::store(e, "check the state store"))?;
        let mut warnings = vec![];
        if req.remember {
            warnings.extend(self.remember_answers(plan).await);
        }
        if let Ok(v) = &made {
            self.remember_validated(v);
        }
        Ok(Planned { plan: made, intents: recorded, notes, warnings })
    }

    /// Answers questions of a stored plan: plans its request and intents again with the
    /// earlier answers and these, and stores the new plan.
    pub async fn answer(&self, plan_id: &str, answers: BTreeMap<String, String>, actor: &str) -> Result<Planned> {
        let old = self.get_plan(plan_id).await?;
        let mut all = old.answers.clone();
        all.extend(answers);
        // A model's reading the parser did not confirm stays cross-checked until answered.
        let open = old.questions.iter().any(|q| q.id == tabflow_llm::crosscheck::QUESTION_ID);
        let source = if open {
            Source::Model { intents: old.intents.clone(), notes: vec![] }
        } else {
            Source::Given { intents: old.intents.clone(), notes: vec![] }
        };
        self.plan(PlanRequest {
            request: old.request.clone(),
            source,
            answers: all,
            actor: actor.to_string(),
            remember: true,
        })
        .await
    }

    /// A plan file's text as a plan: its format, shape, site, derived classes and fingerprint
    /// checked — sealed by this store's key, so a hand-edited plan, an older tabflow's plan or
    /// another store's plan is refused, each with its own fix (the site it is connected to and
    /// the five checks come with [`App::check`]).
    pub fn read_plan(&self, text: &str) -> Result<Plan> {
        Plan::from_json(text, self.store.plan_key()).map_err(|e| Error::failed(e.to_string(), e.fix()))
    }

    /// Refuses a plan made for another site (server URL and site id) than the one this
    /// service is connected to, or for no site: a plan made on a rehearsal copy is re-planned
    /// against production.
    pub(crate) async fn check_site(&self, plan: &Plan) -> Result<()> {
        let session = self.connect().await?;
        let site_id = session.client.session().await.site_id;
        plan.check_site(&session.server_label(), &site_id).map_err(|e| Error::failed(e.to_string(), e.fix()))
    }

    /// A stored plan.
    pub async fn get_plan(&self, plan_id: &str) -> Result<Plan> {
        self.store.plan(plan_id).await.map_err(|e| Error::lookup(e, "give a plan file or an id from `tabflow plan`"))
    }

    /// Reads what the request needs and builds + validates the plan, sealed with the store's
    /// key. `notes` (e.g. which parser read the request) go into the plan's notes; `learned`
    /// ranks suggestions and defaults.
    ///
    /// The read follows the request (issue #15, module `reads`): the lists the intents need,
    /// then the per-item reads they declare; the planner drafts over that, the permissions of
    /// the items the draft changes are read (with the members of the groups they grant to) and
    /// it plans again, until the plan changes and evaluates only read items.
    #[allow(clippy::too_many_arguments)]
    async fn make_plan(
        &self,
        session: &Session,
        request: &str,
        intents: Vec<Intent>,
        answers: BTreeMap<String, String>,
        notes: &[String],
        asks: &[String],
        open: Option<(tabflow_engine::plan::Question, Vec<Intent>)>,
        learned: tabflow_workflows::learn::Learned,
    ) -> Result<std::result::Result<ValidatedPlan, Box<Plan>>> {
        let server = session.client.config().server.clone();
        let client = &session.client;
        let fail = |e| Error::client(e, &server);
        let mut scope = if self.full_site_reads { None } else { crate::reads::scope_of(&intents) };
        if let Some(scope) = &mut scope {
            scope.within = self.list_within(client, &intents).await.map_err(fail)?;
        }
        let mut cache_note = None;
        let mut read = match &scope {
            Some(scope) => {
                let mut s = match self.site_cache {
                    crate::SiteCache::Off => tabflow_client::scoped::take_scoped(client, scope).await.map_err(fail)?,
                    mode => {
                        let (s, note) = self.read_with_cache(session, scope, mode).await?;
                        cache_note = Some(note);
                        s
                    }
                };
                let declared = crate::reads::declared(&intents, &s.site);
                tabflow_client::scoped::read_more(client, &mut s, declared).await.map_err(fail)?;
                s
            }
            None => tabflow_client::scoped::take_full(client, true).await.map_err(fail)?,
        };
        let me = session.client.session().await.user_id;
        // License notices earlier runs sent on this site (reclaim-licenses with a grace period).
        let notices = if intents.iter().any(|i| matches!(i, Intent::ReclaimLicenses(_))) {
            self.store
                .license_notices(&read.site.site.id)
                .await
                .map_err(|e| Error::store(e, "check the state store"))?
                .into_iter()
                .map(|n| tabflow_workflows::LicenseNotice {
                    user_id: n.user_id,
                    user_name: n.user_name,
                    notified_at: n.notified_at,
                    act_after: n.act_after,
                    run_id: n.run_id,
                })
                .collect()
        } else {
            vec![]
        };
        let mut passes = 0;
        let draft = loop {
            passes += 1;
            let draft = self.draft(
                session,
                &read.site,
                &me,
                request,
                intents.clone(),
                answers.clone(),
                learned.clone(),
                notices.clone(),
            );
            let more = crate::reads::of_plan(&draft, &read.site).missing(&read.read);
            if more.is_empty() {
                break draft;
            }
            if passes >= MAX_PASSES {
                // Still changing what it needs: read the whole site rather than plan on a guess.
                read = tabflow_client::scoped::take_full(client, true).await.map_err(fail)?;
                break self.draft(
                    session,
                    &read.site,
                    &me,
                    request,
                    intents.clone(),
                    answers.clone(),
                    learned.clone(),
                    notices.clone(),
                );
            }
            tabflow_client::scoped::read_more(client, &mut read, more).await.map_err(fail)?;
        };
        let mut draft = draft;
        draft.notes.extend(notes.iter().cloned());
        add_questions(&mut draft, asks);
        if let Some((question, model)) = open {
            // Nothing else planned: the question says what is unclear, not "what did you mean".
            if intents.is_empty() && asks.is_empty() {
                draft.questions.clear();
            }
            draft.questions.insert(0, question);
            // The model's whole reading, so that answering `model` can plan it.
            draft.intents = model;
        }
        draft.notes.push(crate::reads::describe(&read.read));
        draft.notes.extend(cache_note);
        let signed_in = read.site.users.iter().find(|u| u.id == me).map(|u| u.name.clone()).unwrap_or_default();
        let facts = Facts::from_site(&read.site, &signed_in);
        Ok(validate(draft, &facts, &self.policy, self.store.plan_key()))
    }

    /// The first pass of a scoped read through the site cache: the cached read of this site and
    /// scope (none with [`crate::SiteCache::Refresh`]) serves what it can, and the read made
    /// now is kept for the next plan. Answers the read and the plan note saying how old the
    /// cache was and what was read again. A cache that cannot be read or kept is a note, not
    /// an error: the plan is then made from what was read fresh.
    async fn read_with_cache(
        &self,
        session: &Session,
        scope: &tabflow_client::scoped::Scope,
        mode: crate::SiteCache,
    ) -> Result<(tabflow_client::scoped::Scoped, String)> {
        use tabflow_client::cache::{Cached, Use, take_scoped_cached};
        let client = &session.client;
        let server = client.config().server.clone();
        let site_id = client.session().await.site_id;
        let within = serde_json::to_string(&scope.within).unwrap_or_default();
        let key = format!("{server}|{site_id}|lineage={}|{within}", scope.lineage);
        let mut problems = vec![];
        let cached = match mode {
            crate::SiteCache::Refresh => None,
            _ => match self.store.site_cache(&key).await {
                Ok(row) => row.and_then(|(_, body)| Cached::from_bytes(&body)),
                Err(e) => {
                    problems.push(format!("the site cache could not be read ({e})"));
                    None
                }
            },
        };
        let (read, next, used) =
            take_scoped_cached(client, scope, cached).await.map_err(|e| Error::client(e, &server))?;
        if let Err(e) = self.store.put_site_cache(&key, next.fetched_at, &next.to_bytes()).await {
            problems.push(format!("the site cache could not be kept ({e})"));
        }
        let used = match (mode, used) {
            (crate::SiteCache::Refresh, Use::Filled { .. }) => Use::Filled { reason: "--fresh".to_string() },
            (_, u) => u,
        };
        let mut note = used.describe(self.clock.now());
        for p in problems {
            note.push_str(&format!("; {p}"));
        }
        Ok((read, note))
    }

    /// The projects whose workbooks a request's read lists (`reads::within`), reading the
    /// projects first (one page per 1000); `None` = every workbook.
    async fn list_within(
        &self,
        client: &tabflow_client::Client,
        intents: &[Intent],
    ) -> tabflow_client::Result<Option<Vec<String>>> {
        if !crate::reads::may_list_within(intents) {
            return Ok(None);
        }
        let projects: Vec<crate::reads::ProjectRow> = client
            .projects()
            .collect()
            .await?
            .into_iter()
            .map(|p| {
                (p.id.unwrap_or_default(), p.name.unwrap_or_default(), p.parent_project_id.filter(|x| !x.is_empty()))
            })
            .collect();
        Ok(crate::reads::within(intents, &projects, &self.policy.quarantine_project))
    }

    /// One draft plan over a site read.
    #[allow(clippy::too_many_arguments)]
    fn draft(
        &self,
        session: &Session,
        site: &tabflow_site::Site,
        me: &str,
        request: &str,
        intents: Vec<Intent>,
        answers: BTreeMap<String, String>,
        learned: tabflow_workflows::learn::Learned,
        license_notices: Vec<tabflow_workflows::LicenseNotice>,
    ) -> Plan {
        let signed_in = site.users.iter().find(|u| u.id == me).map(|u| u.name.clone()).unwrap_or_default();
        let has_last = site.workbooks.iter().any(|w| w.views.iter().any(|v| v.last_viewed_at.is_some()));
        let usage_source = if has_last {
            "Admin Insights (VizQL Data Service: last view per view)".to_string()
        } else {
            "REST view counts only (no last-viewed dates: only never-viewed content can be judged)".to_string()
        };
        let site_ref = SiteRef {
            server: session.server_label(),
            content_url: site.site.content_url.clone(),
            id: site.site.id.clone(),
        };
        let planner = tabflow_workflows::Planner {
            site,
            site_ref,
            policy: &self.policy,
            signed_in,
            now: site.now,
            answers,
            usage_source,
            learned,
            license_notices,
        };
        tabflow_workflows::plan(request, intents, &planner)
    }

    /// Checks a plan (e.g. read from a file) again against the live site: the site must be
    /// the plan's (server URL and site id), and the five checks run on today's state; the plan
    /// is sealed again with the store's key. A valid plan is stored.
    ///
    /// Reads what the checks evaluate (issue #15): the lists (names, projects, owners,
    /// subscriptions, alerts), lineage (dependents), and the permissions of the items the plan
    /// changes with the members of the groups they grant to — not every item's permissions.
    pub async fn check(&self, plan: Plan) -> Result<std::result::Result<ValidatedPlan, Box<Plan>>> {
        self.check_site(&plan).await?;
        let (site, user_id) = self.read_for_checks(&plan).await?;
        self.validate_and_keep(plan, &site, &user_id).await
    }

    /// What the five checks of `plan` evaluate, read from the live site, and the signed-in
    /// user's id.
    ///
    /// The plan names the items whose permissions the checks evaluate, so those (and the
    /// members of the groups they grant to) are read along with the lists rather than after
    /// them (issue #15: apply's re-validation was the lists' round trips followed by those of
    /// the permissions); the lists then decide which of those answers count, as before.
    pub(crate) async fn read_for_checks(&self, plan: &Plan) -> Result<(tabflow_site::Site, String)> {
        let session = self.connect().await?;
        let server = session.client.config().server.clone();
        let fail = |e| Error::client(e, &server);
        let s = session.client.session().await;
        let read = if self.full_site_reads {
            tabflow_client::scoped::take_full(&session.client, false).await.map_err(fail)?
        } else {
            let client = &session.client;
            // The workbooks of the projects the plan's request looks at, when that is all it
            // looks at; if a workbook the plan changes is no longer among them (moved since),
            // every workbook is listed.
            let lists = async {
                let within = self.list_within(client, &plan.intents).await?;
                let scope = tabflow_client::scoped::Scope { lineage: true, within, ..Default::default() };
                let mut read = tabflow_client::scoped::take_scoped(client, &scope).await?;
                if scope.within.is_some() && !crate::reads::holds_changed_workbooks(plan, &read.site) {
                    let scope = tabflow_client::scoped::Scope { within: None, ..scope };
                    read = tabflow_client::scoped::take_scoped(client, &scope).await?;
                }
                Ok::<_, tabflow_client::Error>(read)
            };
            let early = tabflow_client::scoped::read_early(client, crate::reads::items_of_plan(plan));
            let (mut read, early) = tokio::try_join!(lists, early).map_err(fail)?;
            let needs = crate::reads::of_plan(plan, &read.site);
            tabflow_client::scoped::read_more_with(client, &mut read, needs, early).await.map_err(fail)?;
            read
        };
        Ok((read.site, s.user_id))
    }

    /// Runs the five checks of `plan` over a site read; a valid plan is stored and kept.
    pub(crate) async fn validate_and_keep(
        &self,
        plan: Plan,
        site: &tabflow_site::Site,
        user_id: &str,
    ) -> Result<std::result::Result<ValidatedPlan, Box<Plan>>> {
        let signed_in = site.users.iter().find(|u| u.id == user_id).map(|u| u.name.clone()).unwrap_or_default();
        let facts = Facts::from_site(site, &signed_in);
        let checked = validate(plan, &facts, &self.policy, self.store.plan_key());
        if let Ok(v) = &checked {
            self.store.save_plan(v.plan()).await.map_err(|e| Error::store(e, "check the state store"))?;
            self.remember_validated(v);
        }
        Ok(checked)
    }

    /// The validated plan of a plan id: validated by this service already, or the stored
    /// plan checked again against the live site now.
    pub(crate) async fn validated_plan(&self, plan_id: &str) -> Result<ValidatedPlan> {
        if let Some(v) = self.cached(plan_id) {
            return Ok(v);
        }
        let plan = self.get_plan(plan_id).await?;
        match self.check(plan).await? {
            Ok(v) => Ok(v),
            Err(p) => Err(Error::failed(
                format!("plan {} failed validation: {}", p.id, error_findings(&p).join("; ")),
                "fix the cause or make a new plan; nothing was changed",
            )),
        }
    }
}

/// Plans over a growing read at most this many times before reading the whole site.
const MAX_PASSES: usize = 4;

/// A refused plan's error findings, `check: message` each.
pub fn error_findings(p: &Plan) -> Vec<String> {
    p.validation
        .findings
        .iter()
        .filter(|f| f.level == tabflow_engine::plan::Level::Error)
        .map(|f| format!("{}: {}", f.check.as_str(), f.message))
        .collect()
}

/// The longest request read, in characters. A person's request is a sentence or a short
/// paragraph; a longer text is refused before it is parsed, stored or sent to a model (the
/// rule-based parser's name detection looks at a whole clause per word, so its time grows
/// with the square of a clause's length).
pub const MAX_REQUEST_CHARS: usize = 2000;

fn check_request_length(request: &str) -> Result<()> {
    let n = request.chars().count();
    if n > MAX_REQUEST_CHARS {
        return Err(Error::usage(
            format!("the request is {n} characters long; tabflow reads requests of at most {MAX_REQUEST_CHARS}"),
            "say what to do in a sentence or two (name the project, users or tags); long lists of items belong in a plan review, not in the request",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod request_length_tests {
    use super::*;

    #[test]
    fn a_request_longer_than_the_limit_is_a_usage_error_naming_both_lengths() {
        assert!(check_request_length(&"a".repeat(MAX_REQUEST_CHARS)).is_ok());
        let e = check_request_length(&"丸".repeat(MAX_REQUEST_CHARS + 1)).expect_err("too long");
        assert!(matches!(e.kind, crate::Kind::Usage), "{e:?}");
        assert!(e.message.contains("2001 characters") && e.message.contains("at most 2000"), "{}", e.message);
    }
}
