//! Exit codes (DESIGN.md §6) and the one place errors are printed.

/// 0 ok, 1 error, 2 usage, 3 needs input or approval, 4 partially applied and rolled back,
/// 130 interrupted (Ctrl-C; the run can be resumed or rolled back).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    Ok = 0,
    Error = 1,
    Usage = 2,
    NeedsInput = 3,
    RolledBack = 4,
    Interrupted = 130,
}

impl From<Code> for std::process::ExitCode {
    fn from(c: Code) -> Self {
        std::process::ExitCode::from(c as u8)
    }
}

/// An error that carries its own hint and exit code.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub hint: Option<String>,
    pub code: Code,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// A usage error (exit 2) with a hint.
pub fn usage(message: impl Into<String>, hint: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Failure { message: message.into(), hint: Some(hint.into()), code: Code::Usage })
}

/// An ordinary error (exit 1) with a hint.
pub fn fail(message: impl Into<String>, hint: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Failure { message: message.into(), hint: Some(hint.into()), code: Code::Error })
}

/// An error of the application service as a CLI failure: its kind decides the exit code.
pub fn app(e: tabflow_app::Error) -> anyhow::Error {
    let code = match e.kind {
        tabflow_app::Kind::Usage => Code::Usage,
        tabflow_app::Kind::Failed | tabflow_app::Kind::Forbidden | tabflow_app::Kind::NotFound => Code::Error,
        tabflow_app::Kind::NeedsInput | tabflow_app::Kind::NeedsApproval(_) => Code::NeedsInput,
    };
    anyhow::Error::new(Failure { message: e.message, hint: Some(e.hint), code })
}

/// Prints `error: ...` (with its causes) and `hint: ...` on stderr; returns the exit code.
pub fn report(e: &anyhow::Error) -> std::process::ExitCode {
    // A reader that went away (`tabflow runs list | head`) is not an error worth a word.
    if e.chain()
        .any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe))
    {
        return Code::Ok.into();
    }
    let mut msg = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !msg.contains(&c) {
            msg.push_str(": ");
            msg.push_str(&c);
        }
    }
    errln!("error: {msg}");
    let failure = e.chain().find_map(|c| c.downcast_ref::<Failure>());
    if let Some(h) = failure.and_then(|f| f.hint.as_ref()) {
        errln!("hint: {h}");
    }
    failure.map(|f| f.code).unwrap_or(Code::Error).into()
}

/// A command line clap could not read: its message (secrets redacted, controls made
/// visible), a hint, exit 2. `--help` and `--version` print as usual, exit 0.
pub fn clap(e: clap::Error) -> std::process::ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let text = e.render().to_string();
            if e.use_stderr() {
                err!("{text}");
            } else {
                out!("{text}");
            }
            if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                return Code::Usage.into();
            }
            Code::Ok.into()
        }
        _ => {
            let text = e.render().to_string();
            let text = text.trim_end();
            // clap's own advice ("For more information, try '--help'.") becomes the hint.
            let body: Vec<&str> = text.lines().filter(|l| !l.starts_with("For more information")).collect();
            errln!("{}", body.join("\n").trim_end());
            errln!("hint: run the command with --help for the flags and values it takes");
            Code::Usage.into()
        }
    }
}
