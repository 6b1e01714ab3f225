//! Prints the intents of each argument as JSON: `cargo run -p tabflow-nl --example parse -- "request" ...`.
//! An optional `--today YYYY-MM-DD` fixes the date calendar references are resolved against.

fn main() {
    let mut today = chrono::Local::now().date_naive();
    let mut args = std::env::args().skip(1).peekable();
    while let Some(arg) = args.next() {
        if arg == "--today" {
            match args.next().map(|d| chrono::NaiveDate::parse_from_str(&d, "%Y-%m-%d")) {
                Some(Ok(d)) => today = d,
                _ => {
                    eprintln!("--today needs a date like 2026-08-14");
                    std::process::exit(2);
                }
            }
            continue;
        }
        let parsed = tabflow_nl::parse(&arg, today);
        match serde_json::to_string(&parsed) {
            Ok(json) => println!("{json}"),
            Err(e) => eprintln!("cannot serialize: {e}"),
        }
    }
}
