//! `tabflow tokens create|list|revoke` and `tabflow serve --listen`: the real binary.

use crate::support::bin;

fn tabflow(home: &std::path::Path, args: &[&str]) -> std::process::Output {
    bin().args(args).env("TABFLOW_HOME", home).env_remove("TABFLOW_STORE").env("TABFLOW_ACTOR", "ops").output().unwrap()
}

#[test]
fn a_token_is_printed_once_on_the_last_line_and_only_its_hash_is_stored() {
    let home = tempfile::tempdir().unwrap();
    let out = tabflow(home.path(), &["tokens", "create", "alice", "--role", "approver"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let token = stdout.lines().last().unwrap().trim().to_string();
    assert!(token.starts_with("tfk_") && token.len() > 40 && !token.contains(' '), "{stdout}");
    for file in ["tabflow.db", "tabflow.db-wal"] {
        let bytes = std::fs::read(home.path().join(file)).unwrap_or_default();
        assert!(!bytes.windows(token.len()).any(|w| w == token.as_bytes()), "{file} never holds the token");
    }

    let out = tabflow(home.path(), &["tokens", "create", "alice", "--role", "viewer"]);
    assert_eq!(out.status.code(), Some(2), "a name is used once");
    assert!(String::from_utf8_lossy(&out.stderr).contains("'alice' exists"));
    let out = tabflow(home.path(), &["tokens", "create", "bob", "--role", "root"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("viewer, requester, approver or admin"));

    let out = tabflow(home.path(), &["tokens", "list", "--json"]);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list[0]["name"], "alice");
    assert_eq!(list[0]["role"], "approver");
    assert_eq!(list[0]["created_by"], "ops");
    assert!(!String::from_utf8_lossy(&out.stdout).contains(&token));
    assert!(tabflow(home.path(), &["tokens", "revoke", "alice"]).status.success());
    let out = tabflow(home.path(), &["tokens", "revoke", "alice"]);
    assert_eq!(out.status.code(), Some(1), "revoked once");
    let out = tabflow(home.path(), &["tokens", "list"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("revoked"));
}

#[test]
fn serve_refuses_a_non_loopback_address_without_insecure_listen() {
    let home = tempfile::tempdir().unwrap();
    let out = tabflow(home.path(), &["serve", "--listen", "0.0.0.0:0"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a loopback address") && err.contains("--insecure-listen"), "{err}");
    let out = tabflow(home.path(), &["serve", "--listen", "localhost"]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
}
