//! The plans of typical requests stay what they were before the planner and the validator
//! used lookups instead of scans (issue #15): the same items, changes, findings, questions
//! and text. Each plan is compared by a digest of its JSON (plan id and fingerprint blanked)
//! with the digest of the plan the earlier code made, on the demo site and on a generated
//! site of 1 000 workbooks (the requests of `tabflow bench plan`, which writes these plans
//! with `--dump DIR`: compare a failing request's plan there with the earlier build's).
//! A change to a plan that is meant must update its digest here, saying why in the commit.
//!
//! Also: each lookup of `builder::Lookups` answers what the scan it replaced answers.

use std::collections::BTreeSet;

use tabflow_plan::plan::{PlanKey, SiteRef};
use tabflow_plan::policy::Policy;
use tabflow_plan::validate::{Facts, validate};
use tabflow_site::Site;
use tabflow_site::generate::{self, Options};

use crate::builder::{Builder, Lookups};
use crate::{Planner, plan};

/// (request, digest of its plan made by the code before issue #15) on the demo site. The
/// audits' digests were re-pinned once since, on purpose: their access reports count (not
/// list) an item's users who see it only through groups past 50 of them (issue #15, linear
/// memory).
const DEMO: &[(&str, u64)] = &[
    ("Clean up the Finance project - archive old workbooks and consolidate datasources", 0x1ba12d94792383a2),
    ("Archive Finance workbooks not accessed in 90+ days, then tell the project owners", 0x4aa1c04f6279aed6),
    ("Sarah Lee is leaving; give her workbooks to Tom Baker and remove her access", 0x25936960c27b5ed4),
    ("Migrate John's content when he leaves the Marketing team", 0x292edd5b2c12e20d),
    (
        "Audit who can access anything tagged confidential or sensitive in Finance, and schedule a weekly review",
        0xa435a55eb281c1bb,
    ),
    ("Delete workbooks in the Sandbox project that haven't been viewed in a year", 0xc8dea452e606976a),
    (
        "Archive all unused workbooks from Q2, update permissions for remaining content, and notify project owners",
        0x337874f4d45bc2ce,
    ),
    ("How many workbooks are in the Finance project?", 0x0e6430e4b5e55037),
    ("Which workbooks haven't been viewed in the last 30 days?", 0xd12427f01c430231),
    ("top 10 most viewed workbooks in Marketing", 0x2a47941d6e05b720),
    ("which workbooks use Finance GL?", 0x6a187cdfb5ad9455),
    ("workbooks per project", 0x347e9d66da0f70f5),
];

/// The same on `generate(scale 1000, seed 1)`, with the requests `bench plan --scale` adds.
const GENERATED_1000: &[(&str, u64)] = &[
    ("Clean up the Finance project - archive old workbooks and consolidate datasources", 0xc29301d313a95b94),
    ("Archive Finance workbooks not accessed in 90+ days, then tell the project owners", 0x536c20996f330caa),
    ("Sarah Lee is leaving; give her workbooks to Tom Baker and remove her access", 0x524b97bb6177dda5),
    ("Migrate John's content when he leaves the Marketing team", 0x63c2b91feaadf922),
    (
        "Audit who can access anything tagged confidential or sensitive in Finance, and schedule a weekly review",
        0xc77943a5855b9010,
    ),
    ("Delete workbooks in the Sandbox project that haven't been viewed in a year", 0xccc1210175160acb),
    (
        "Archive all unused workbooks from Q2, update permissions for remaining content, and notify project owners",
        0x1888c28cc7422766,
    ),
    ("How many workbooks are in the Finance project?", 0x5319944c1641053b),
    ("Which workbooks haven't been viewed in the last 30 days?", 0xb05b7c1729987c1a),
    ("top 10 most viewed workbooks in Marketing", 0x85c66a7b43906e01),
    ("which workbooks use Finance GL?", 0x2aef68de2547f467),
    ("workbooks per project", 0x347e9d66da0f70f5),
    ("Clean up the Finance project - archive workbooks not accessed in 90 days", 0x97ff56bdd645d197),
    ("Offboard jsmith and give their content to admin, and remove their access", 0x640a3a7cc6d5dc76),
    ("Audit permissions for sensitive workbooks and create access report", 0xaa58938df3142fc9),
];

/// FNV-1a, 64 bits: a digest that is the same on every platform and Rust version.
fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// The plan as `tabflow bench plan` makes it: parsed by rules, planned, validated, sealed.
fn plan_json(site: &Site, request: &str) -> String {
    let policy = Policy::default();
    let planner = Planner {
        site,
        site_ref: SiteRef {
            server: "bench".into(),
            content_url: site.site.content_url.clone(),
            id: site.site.id.clone(),
        },
        policy: &policy,
        signed_in: "admin".into(),
        now: site.now,
        answers: Default::default(),
        usage_source: "in-memory site".into(),
        learned: Default::default(),
        license_notices: vec![],
    };
    let parsed = tabflow_nl::parse(request, site.now.date_naive());
    let draft = plan(request, parsed.intents, &planner);
    let facts = Facts::from_site(site, "admin");
    let mut p = match validate(draft, &facts, &policy, &PlanKey::new([0; 32])) {
        Ok(v) => v.into_plan(),
        Err(p) => *p,
    };
    p.id = String::new();
    p.fingerprint = String::new();
    p.to_json()
}

fn differing(site: &Site, expected: &[(&str, u64)]) -> Vec<String> {
    expected
        .iter()
        .filter_map(|(request, digest)| {
            let now = fnv(&plan_json(site, request));
            // The new digest is named, for a change that is meant.
            (now != *digest).then(|| format!("{request}: now {now:#018x}"))
        })
        .collect()
}

#[test]
fn plans_of_typical_requests_are_what_they_were_before_the_lookups() {
    let demo = generate::demo();
    assert_eq!(differing(&demo, DEMO), Vec::<String>::new(), "these plans changed on the demo site");
    let site = generate::generate(&Options { scale: 1000, seed: 1 });
    assert_eq!(differing(&site, GENERATED_1000), Vec::<String>::new(), "these plans changed on a generated site");
}

#[test]
fn a_plan_digest_sees_a_change_of_text() {
    let demo = generate::demo();
    let (request, digest) = DEMO[0];
    let json = plan_json(&demo, request);
    assert_eq!(fnv(&json), digest);
    assert_ne!(fnv(&json.replacen("Finance", "Finanse", 1)), digest);
}

fn builder<'p, 'a>(p: &'p Planner<'a>) -> Builder<'p, 'a> {
    Builder {
        p,
        plan: tabflow_plan::plan::Plan::draft("lookups", p.site_ref.clone(), vec![], p.now),
        next_step: 0,
        next_q: 0,
        index: tabflow_site::Index::new(p.site),
        earlier_scope: None,
        moved_away: BTreeSet::new(),
        moving_step: None,
        lookups: Lookups::default(),
    }
}

#[test]
fn lookups_answer_what_the_scans_they_replace_answer() {
    let policy = Policy::default();
    for site in [generate::demo(), generate::generate(&Options { scale: 700, seed: 3 })] {
        let p = Planner {
            site: &site,
            site_ref: SiteRef::default(),
            policy: &policy,
            signed_in: "admin".into(),
            now: site.now,
            answers: Default::default(),
            usage_source: "test".into(),
            learned: Default::default(),
            license_notices: vec![],
        };
        let b = builder(&p);
        let resources: BTreeSet<&str> = site.permissions.iter().map(|r| r.resource.id.as_str()).collect();
        for id in resources.iter().copied().chain(["no-such-item"]) {
            let scanned: Vec<_> = site.permissions.iter().filter(|r| r.resource.id == id).collect();
            assert_eq!(b.rules_on(id), scanned.as_slice(), "rules on {id}");
        }
        let mut used = 0;
        for d in &site.datasources {
            let scanned: Vec<_> = site.workbooks.iter().filter(|w| w.datasource_ids.contains(&d.id)).collect();
            used += scanned.len();
            assert_eq!(b.workbooks_using(&d.id), scanned.as_slice(), "workbooks using {}", d.name);
        }
        assert!(used > 0);
        for w in &site.workbooks {
            let views: BTreeSet<&str> = w.views.iter().map(|v| v.id.as_str()).collect();
            let scanned: Vec<_> = site
                .subscriptions
                .iter()
                .filter(|s| s.content.id == w.id || views.contains(s.content.id.as_str()))
                .collect();
            let on = b.subscriptions_on(std::iter::once(w.id.as_str()).chain(views.iter().copied()));
            assert_eq!(on, scanned, "subscriptions on {}", w.name);
            let alerts = site.data_alerts.iter().filter(|a| views.contains(a.view_id.as_str())).count();
            assert_eq!(views.iter().map(|v| b.alerts_on(v)).sum::<usize>(), alerts);
        }
        for u in &site.users {
            for name in [&u.name, &u.full_name] {
                let by_name = site.users.iter().find(|x| &x.name == name);
                let either = site.users.iter().find(|x| &x.name == name || &x.full_name == name);
                assert_eq!(b.user_named(name, false).map(|x| &x.id), by_name.map(|x| &x.id));
                assert_eq!(b.user_named(name, true).map(|x| &x.id), either.map(|x| &x.id));
            }
        }
        for f in &site.flows {
            assert_eq!(b.flow(&f.id).map(|x| &x.name), Some(&f.name));
        }
        assert!(b.flow("no-such-flow").is_none() && b.user_named("no such user", true).is_none());
    }
}
