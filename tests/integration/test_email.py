"""Notification emails end to end: a real offboarding run through the `tabflow` binary against
the emulator, delivered over SMTP to a real server (aiosmtpd), then read back as the
recipients' mail clients would (Python's email parser). Also: AUTH without leaking the
password, a server that is down (the run succeeds, `tabflow outbox retry` delivers later),
a recipient without an address, a missing From address stopping the run before any
change, STARTTLS and implicit TLS with a private CA, and a 4xx refusal (temporary) told from
a 5xx one (needs a fix)."""

import email
import email.policy
import email.utils
import json
import sqlite3
import subprocess
import urllib.request

import pytest
import tableauserverclient as TSC
from tabflow_e2e import SmtpServer, free_port

FROM = "Tabflow Notifications <tabflow@example.com>"

# AUTH over plain text is what these tests mean to exercise (on 127.0.0.1 only).
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


def users(admin):
    with urllib.request.urlopen(admin.emulator.url + "/_emulator/snapshot") as r:
        snap = json.loads(r.read())
    return {u["name"]: u for u in snap["users"]}


def parse(raw):
    return email.message_from_bytes(raw, policy=email.policy.default)


def outbox(admin, run_id):
    return admin.json("outbox", "list", "--json", "--run", run_id)


def apply(admin, plan_path, env, check=True):
    p = admin.run("apply", str(plan_path), "--approve", "all", "--yes", "--json", env=env, check=check)
    return p, (json.loads(p.stdout) if p.stdout.strip() else None)


def smtp_env(port, **more):
    return {"TABFLOW_SMTP_URL": f"smtp://127.0.0.1:{port}", "TABFLOW_NOTIFY_FROM": FROM, **more}


def store_bytes(admin):
    data = b""
    for f in admin.home.rglob("*"):
        if f.is_file():
            data += f.read_bytes()
    return data


def test_an_offboarding_run_emails_the_new_and_previous_owner(admin):
    server = SmtpServer().start()
    try:
        people = users(admin)
        plan_path, plan = admin.offboarding_plan()
        step = next(s for s in plan["steps"] if s["kind"] == "transfer-ownership")
        items = [i["name"] for i in step["items"]]
        assert items, "the offboarding moves nothing"
        _, r = apply(admin, plan_path, smtp_env(server.port))
        assert r["status"] == "succeeded", r
        assert r["notifications"]["sent"] == 2 and r["notifications"]["failed"] == 0, r
        assert r["notifications"]["channels"] == ["email"], r

        got = server.received
        assert sorted(m["rcpt_tos"][0] for m in got) == sorted(
            [people["jsmith"]["email"], people["tbaker"]["email"]]
        )
        ids = set()
        rows = {row["recipient_email"]: row for row in outbox(admin, r["run_id"])}
        for m in got:
            assert m["mail_from"] == "tabflow@example.com"
            msg = parse(m["data"])
            to = m["rcpt_tos"][0]
            person = next(u for u in people.values() if u["email"] == to)
            assert email.utils.parseaddr(msg["From"]) == ("Tabflow Notifications", "tabflow@example.com")
            assert email.utils.parseaddr(msg["To"]) == (person["full_name"], to)
            assert msg["Subject"] == rows[to]["subject"]
            assert msg["Date"].datetime is not None
            assert msg["Message-ID"].startswith("<tabflow.") and msg["Message-ID"].endswith("@example.com>")
            ids.add(msg["Message-ID"])
            assert msg.get_content_type() == "text/plain" and msg.get_content_charset() == "utf-8"
            assert msg["X-Tabflow-Run"] == r["run_id"]
            body = msg.get_content()
            assert body.replace("\r\n", "\n") == rows[to]["body"]
            assert f"tabflow runs rollback {r['run_id']}" in body
            # Every item handed over is named in both messages.
            for name in items:
                assert name in body, f"{name} missing from the message to {to}"
            for line in m["data"].split(b"\r\n"):
                assert len(line) <= 78, line
        assert len(ids) == 2, "Message-IDs repeat"
        assert "→ Tom Baker" in next(parse(m["data"]).get_content() for m in got if m["rcpt_tos"] == ["jsmith@example.com"])

        for row in rows.values():
            assert row["status"] == "sent", row
            assert row["channels"]["email"]["status"] == "sent", row
            assert row["channels"]["email"]["attempts"] == 1, row
            assert "250" in row["detail"], row

        # Resuming the finished run, or retrying, never sends again.
        admin.run("runs", "resume", r["run_id"], "--json", env=smtp_env(server.port), check=False)
        retried = admin.json("outbox", "retry", "--json", env=smtp_env(server.port))
        assert retried["tried"] == 0, retried
        assert len(server.received) == 2
    finally:
        server.stop()


def test_auth_credentials_are_used_and_the_password_is_never_stored_or_printed(admin):
    password = "s3cret-Pa55-for-smtp"
    server = SmtpServer(user="mailer", password=password).start()
    try:
        plan_path, _ = admin.offboarding_plan()
        env = smtp_env(server.port, TABFLOW_SMTP_PASSWORD="wrong-pa55word-xyz", TABFLOW_LOG="debug")
        env["TABFLOW_SMTP_URL"] = f"smtp://mailer@127.0.0.1:{server.port}"
        # A wrong password: the run still succeeds, the messages are failed with the reason.
        _, r = apply(admin, plan_path, env)
        assert r["status"] == "succeeded", r
        assert r["notifications"]["failed"] == 2, r
        rows = outbox(admin, r["run_id"])
        assert all(row["status"] == "failed" for row in rows), rows
        assert all("535" in row["detail"] and "mailer" in row["detail"] for row in rows), rows
        assert server.received == []

        # The right password, given in the URL this time (percent-encoded where needed).
        env = smtp_env(server.port, TABFLOW_LOG="debug")
        env["TABFLOW_SMTP_URL"] = f"smtp://mailer:{password}@127.0.0.1:{server.port}"
        p = admin.run("outbox", "retry", "--run", r["run_id"], env=env)
        assert "2 sent" in p.stdout, p.stdout
        assert len(server.received) == 2
        assert ("PLAIN", "mailer", password) in server.logins, server.logins
        rows = outbox(admin, r["run_id"])
        assert all(row["status"] == "sent" for row in rows), rows
        assert all(row["channels"]["email"]["attempts"] == 2 for row in rows), rows

        # Neither password is in any row, any output (with debug logs on), the audit log or
        # the store's files.
        admin.run("audit", "export", "--format", "csv")
        everything = json.dumps(rows) + "".join(admin.outputs)
        for secret in (password, "wrong-pa55word-xyz"):
            assert secret not in everything
            assert secret.encode() not in store_bytes(admin)
        assert "smtp > AUTH" in "".join(admin.outputs), "the debug log shows no SMTP exchange"
    finally:
        server.stop()


def test_with_the_server_down_the_run_succeeds_and_retry_delivers_later(admin):
    port = free_port()
    plan_path, _ = admin.offboarding_plan()
    _, r = apply(admin, plan_path, smtp_env(port))
    assert r["status"] == "succeeded", r
    assert r["notifications"] == {"messages": 2, "sent": 0, "dry": 0, "failed": 2, "channels": ["email"]}, r
    rows = outbox(admin, r["run_id"])
    for row in rows:
        assert row["status"] == "failed", row
        assert f"cannot connect to the SMTP server 127.0.0.1:{port}" in row["detail"], row
        assert "tabflow outbox retry" in row["detail"], row
    # Retrying while the server is still down: failed again, exit 1, the reason on stderr.
    p = admin.run("outbox", "retry", env=smtp_env(port), check=False)
    assert p.returncode == 1, p
    assert "2 failed" in p.stdout and "could not be delivered" in p.stderr, p

    server = SmtpServer(port=port).start()
    try:
        p = admin.run("outbox", "retry", "--run", r["run_id"], env=smtp_env(port))
        assert "Retried 2 messages (email): 2 sent" in p.stdout, p.stdout
        assert sorted(m["rcpt_tos"][0] for m in server.received) == ["jsmith@example.com", "tbaker@example.com"]
        rows = outbox(admin, r["run_id"])
        assert all(row["status"] == "sent" and row["channels"]["email"]["attempts"] == 3 for row in rows), rows
        assert "Nothing to retry" in admin.run("outbox", "retry", env=smtp_env(port)).stdout
        assert len(server.received) == 2
    finally:
        server.stop()


def test_messages_kept_dry_are_sent_once_smtp_is_configured(admin):
    plan_path, _ = admin.offboarding_plan()
    _, r = apply(admin, plan_path, {})
    assert r["notifications"]["dry"] == 2, r
    rows = outbox(admin, r["run_id"])
    assert all(row["status"] == "dry" and "no channel configured" in row["detail"] for row in rows), rows
    listed = admin.run("outbox", "list")
    assert "this build" not in listed.stdout + listed.stderr
    assert "tabflow outbox retry" in listed.stderr
    server = SmtpServer().start()
    try:
        admin.run("outbox", "retry", env=smtp_env(server.port))
        assert len(server.received) == 2
        assert all(row["status"] == "sent" for row in outbox(admin, r["run_id"]))
    finally:
        server.stop()


def test_a_recipient_without_an_email_address_stays_dry(admin):
    people = users(admin)
    # Remove Tom Baker's address on the (emulated) Tableau site with a plain REST update.
    tsc = TSC.Server(admin.emulator.url, use_server_version=True)
    tsc.auth.sign_in(TSC.PersonalAccessTokenAuth("tabflow", "tabflow", "demo"))
    url = f"{tsc.baseurl}/sites/{tsc.site_id}/users/{people['tbaker']['id']}"
    req = urllib.request.Request(
        url,
        data=b'<tsRequest><user email="" /></tsRequest>',
        method="PUT",
        headers={"X-Tableau-Auth": tsc.auth_token, "Content-Type": "application/xml"},
    )
    urllib.request.urlopen(req).read()
    assert users(admin)["tbaker"]["email"] == ""

    server = SmtpServer().start()
    try:
        plan_path, _ = admin.offboarding_plan()
        _, r = apply(admin, plan_path, smtp_env(server.port))
        assert r["notifications"]["sent"] == 1 and r["notifications"]["dry"] == 1, r
        assert [m["rcpt_tos"] for m in server.received] == [["jsmith@example.com"]]
        rows = {row["recipient_name"]: row for row in outbox(admin, r["run_id"])}
        assert rows["Tom Baker"]["status"] == "dry"
        assert "no email address on the Tableau account" in rows["Tom Baker"]["detail"]
        assert rows["John Smith"]["status"] == "sent"
    finally:
        server.stop()


def test_smtp_without_a_from_address_stops_before_any_change(admin):
    plan_path, _ = admin.offboarding_plan()
    before = users(admin)
    p, _ = apply(admin, plan_path, {"TABFLOW_SMTP_URL": "smtp://u:hunter2hunter2@127.0.0.1:2525"}, check=False)
    assert p.returncode == 2, p
    assert "TABFLOW_NOTIFY_FROM" in p.stderr, p.stderr
    assert "hunter2hunter2" not in p.stderr + p.stdout
    assert admin.json("runs", "list", "--json") == []
    assert users(admin) == before
    p, _ = apply(admin, plan_path, smtp_env(2525, TABFLOW_SMTP_URL="smtps://h?tls=none"), check=False)
    assert p.returncode == 2 and "TABFLOW_SMTP_URL" in p.stderr, p.stderr


def make_ca_and_certificate(d):
    """A private CA and a certificate for localhost signed by it (openssl)."""

    def openssl(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=d)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=tabflow test CA",
            "-keyout", "ca.key", "-out", "ca.pem")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", "server.key",
            "-out", "server.csr")
    (d / "ext.cnf").write_text("subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "2", "-extfile", "ext.cnf", "-out", "server.pem")
    return d / "ca.pem", d / "server.pem", d / "server.key"


def test_starttls_with_a_private_ca(admin, tmp_path):
    import ssl

    certs = tmp_path / "certs"
    certs.mkdir()
    ca, cert, key = make_ca_and_certificate(certs)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    password = "tls-only-pa55word"
    server = SmtpServer(user="mailer", password=password, tls_context=context, require_starttls=True).start()
    try:
        plan_path, _ = admin.offboarding_plan()
        env = {
            "TABFLOW_SMTP_URL": f"smtp://localhost:{server.port}?tls=required",
            "TABFLOW_SMTP_USERNAME": "mailer",
            "TABFLOW_SMTP_PASSWORD": password,
            "TABFLOW_NOTIFY_FROM": FROM,
        }
        # Without the CA the certificate is not trusted: failed, with the reason.
        _, r = apply(admin, plan_path, env)
        rows = outbox(admin, r["run_id"])
        assert all(row["status"] == "failed" and "TLS" in row["detail"] for row in rows), rows
        assert server.received == []
        # With it, STARTTLS then AUTH: delivered.
        admin.run("outbox", "retry", env={**env, "TABFLOW_SMTP_CA_FILE": str(ca)})
        assert len(server.received) == 2
        assert ("PLAIN", "mailer", password) in server.logins
        assert all(row["status"] == "sent" for row in outbox(admin, r["run_id"]))
    finally:
        server.stop()


def test_smtps_implicit_tls_with_a_private_ca(admin, tmp_path):
    import ssl

    certs = tmp_path / "certs"
    certs.mkdir()
    ca, cert, key = make_ca_and_certificate(certs)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    password = "implicit-tls-pa55word"
    server = SmtpServer(user="mailer", password=password, ssl_context=context).start()
    try:
        plan_path, _ = admin.offboarding_plan()
        env = {
            # No port in the URL would mean 465; this server listens elsewhere.
            "TABFLOW_SMTP_URL": f"smtps://mailer:{password}@localhost:{server.port}",
            "TABFLOW_NOTIFY_FROM": FROM,
        }
        # Without the CA: a TLS failure that says how to fix it, not a temporary one.
        _, r = apply(admin, plan_path, env)
        rows = outbox(admin, r["run_id"])
        assert len(rows) == 2, rows
        for row in rows:
            assert row["status"] == "failed", row
            assert "TLS" in row["detail"] and "TABFLOW_SMTP_CA_FILE" in row["detail"], row
            assert "fix the cause" in row["detail"], row
        assert server.received == [] and server.logins == []
        # With it: TLS from the first byte, then AUTH; delivered.
        p = admin.run("outbox", "retry", env={**env, "TABFLOW_SMTP_CA_FILE": str(ca)})
        assert "2 sent" in p.stdout, p.stdout
        assert len(server.received) == 2
        assert ("PLAIN", "mailer", password) in server.logins
    finally:
        server.stop()


def test_a_4xx_refusal_is_temporary_and_a_5xx_one_needs_a_fix(admin):
    server = SmtpServer()
    refusals = {
        "tbaker@example.com": "451 4.3.0 mailbox busy, try later",
        "jsmith@example.com": "550 5.1.1 no such mailbox",
    }

    async def handle_RCPT(smtp, session, envelope, address, rcpt_options):
        if address in refusals:
            return refusals[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    server.mailbox.handle_RCPT = handle_RCPT
    server.start()
    try:
        plan_path, _ = admin.offboarding_plan()
        _, r = apply(admin, plan_path, smtp_env(server.port))
        assert r["status"] == "succeeded", r
        assert r["notifications"]["failed"] == 2, r
        rows = {row["recipient_email"]: row for row in outbox(admin, r["run_id"])}
        busy, unknown = rows["tbaker@example.com"]["detail"], rows["jsmith@example.com"]["detail"]
        assert "refused RCPT TO:<tbaker@example.com>: 451 4.3.0 mailbox busy, try later" in busy, busy
        assert "temporary; `tabflow outbox retry` sends it again" in busy, busy
        assert "refused RCPT TO:<jsmith@example.com>: 550 5.1.1 no such mailbox" in unknown, unknown
        assert "fix the cause, then `tabflow outbox retry`" in unknown, unknown
        # The busy mailbox takes it later; the refusal of one recipient did not end the session.
        del refusals["tbaker@example.com"]
        p = admin.run("outbox", "retry", "--run", r["run_id"], env=smtp_env(server.port), check=False)
        assert "1 sent" in p.stdout and "1 failed" in p.stdout, p.stdout
        assert [m["rcpt_tos"] for m in server.received] == [["tbaker@example.com"]]
    finally:
        server.stop()
