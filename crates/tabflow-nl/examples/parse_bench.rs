//! Times `tabflow_nl::parse` over the dev requests: `cargo run --release -p tabflow-nl --example parse_bench`.
//! Prints the mean latency per parse (the planner's budget is 20 ms per plan).

use std::hint::black_box;
use std::time::Instant;

const REQUESTS: &[&str] = &[
    "Clean up the Finance project - archive old workbooks and consolidate datasources",
    "Migrate John's content when he leaves the Marketing team",
    "Audit permissions for sensitive workbooks and create access report",
    "Archive all unused workbooks from Q2, update permissions for remaining content, and notify project owners",
    "Find all workbooks using deprecated datasources and migrate them to the new consolidated datasource",
    "How many workbooks are in the Finance project?",
    "Move stale dashboards (no views for 120 days) out of Marketing into the Archive project",
    "Audit who can access anything tagged confidential or sensitive in Finance, and schedule a weekly review",
    "Sarah Lee is leaving; give her workbooks to Tom Baker and remove her access",
    "Point every workbook on Sales Pipeline (Legacy) at Sales Pipeline Consolidated",
];

fn main() {
    let today = chrono::NaiveDate::from_ymd_opt(2026, 8, 14).unwrap_or_default();
    let runs = 10_000;
    // Warm up.
    for r in REQUESTS {
        black_box(tabflow_nl::parse(r, today));
    }
    let start = Instant::now();
    let mut intents = 0;
    for n in 0..runs {
        let parsed = tabflow_nl::parse(black_box(REQUESTS[n % REQUESTS.len()]), today);
        intents += parsed.intents.len();
    }
    let elapsed = start.elapsed();
    let mean = elapsed / runs as u32;
    println!("{runs} parses in {elapsed:.2?}: mean {mean:.2?} per parse ({intents} intents)");
}
