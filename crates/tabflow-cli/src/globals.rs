//! Flags that may come before or after the subcommand: `tabflow --server URL site snapshot`
//! is `tabflow site snapshot --server URL`. The subcommands keep their own definitions (help,
//! environment variables, types); the same ids are declared once more on `tabflow` itself,
//! hidden and global, so that clap reads them anywhere and hands their values down. A flag
//! given before a subcommand that does not take it is refused, as it is after it.

use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command, Subcommand, value_parser};

/// Said at the end of `tabflow --help`.
pub const AFTER_HELP: &str = "Global flags (--server, --site, --profile, --config, --store, --policy, --json, …) \
may come before or after the subcommand: `tabflow --server URL site snapshot` = `tabflow site snapshot --server URL`.";

/// The ids and their value types, as the subcommands declare them.
enum Kind {
    Text,
    Path,
    Count,
    Rate,
    Switch,
}

const FLAGS: &[(&str, &str, Kind)] = &[
    ("server", "server", Kind::Text),
    ("site", "site", Kind::Text),
    ("profile", "profile", Kind::Text),
    ("config", "config", Kind::Path),
    ("concurrency", "concurrency", Kind::Count),
    ("rate_limit", "rate-limit", Kind::Rate),
    ("store", "store", Kind::Text),
    ("policy", "policy", Kind::Path),
    ("audit_anchor", "audit-anchor", Kind::Path),
    ("json", "json", Kind::Switch),
];

/// `tabflow` with the global flags.
pub fn augment(mut cmd: Command) -> Command {
    for (id, long, kind) in FLAGS {
        let arg = Arg::new(*id).long(*long).global(true).hide(true);
        let arg = match kind {
            Kind::Text => arg.value_parser(value_parser!(String)),
            Kind::Path => arg.value_parser(value_parser!(std::path::PathBuf)),
            Kind::Count => arg.value_parser(value_parser!(usize)),
            Kind::Rate => arg.value_parser(value_parser!(f64)),
            Kind::Switch => arg.action(ArgAction::SetTrue),
        };
        cmd = cmd.arg(arg);
    }
    cmd
}

/// Refuses a global flag given on the command line to a subcommand that does not declare it
/// (clap, which handed the flag down, would otherwise drop it silently).
pub fn check(matches: &ArgMatches) -> anyhow::Result<()> {
    // The subcommands as they declare themselves, without the flags handed down.
    let mut tree = crate::cmd::Command::augment_subcommands(Command::new("tabflow"));
    let mut path = vec![];
    let mut m = matches;
    while let Some((name, sub)) = m.subcommand() {
        path.push(name.to_string());
        tree = match tree.find_subcommand(name) {
            Some(c) => c.clone(),
            None => return Ok(()),
        };
        m = sub;
    }
    for (id, long, _) in FLAGS {
        let given = matches!(m.value_source(id), Some(ValueSource::CommandLine));
        if given && !tree.get_arguments().any(|a| a.get_id() == *id) {
            return Err(crate::exit::usage(
                format!("`tabflow {}` does not take --{long}", path.join(" ")),
                format!("leave --{long} out, or see `tabflow {} --help` for the flags it takes", path.join(" ")),
            ));
        }
    }
    Ok(())
}

/// The profile in effect (`--profile` / `TABFLOW_PROFILE`) and the config file, as the
/// subcommand read them: its `store` and `policy` keys are the defaults of `--store` and
/// `--policy` (see [`profile_store`]).
static PROFILE: std::sync::OnceLock<(Option<String>, Option<std::path::PathBuf>)> = std::sync::OnceLock::new();

pub fn remember_profile(matches: &ArgMatches) {
    let mut m = matches;
    while let Some((_, sub)) = m.subcommand() {
        m = sub;
    }
    let profile = m.try_get_one::<String>("profile").ok().flatten().cloned();
    let config = m.try_get_one::<std::path::PathBuf>("config").ok().flatten().cloned();
    let _ = PROFILE.set((profile, config));
}

/// The `store` and `policy` of the profile in effect (none without a profile, or when the
/// file cannot be read: the command that connects says why).
pub fn profile_store() -> (Option<String>, Option<std::path::PathBuf>) {
    let Some((Some(profile), config)) = PROFILE.get() else { return (None, None) };
    let path = config.clone().unwrap_or_else(|| crate::cmd::connect::data_dir().join("config.toml"));
    let Ok(text) = std::fs::read_to_string(path) else { return (None, None) };
    tabflow_client::Config::profile_store(&text, profile).unwrap_or((None, None))
}
