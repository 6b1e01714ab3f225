"""Helpers of the end-to-end tests that need servers besides the emulator: a real SMTP
server (aiosmtpd) that records what it receives, and the `tabflow` binary driven like an
administrator would (target/debug/tabflow; override with TABFLOW_BIN)."""

import json
import os
import socket
import subprocess
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

ROOT = Path(__file__).resolve().parents[2]


def binary():
    return os.environ.get("TABFLOW_BIN", str(ROOT / "target" / "debug" / "tabflow"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Emulator:
    """`tabflow emulator serve` on a free port (its own demo site)."""

    def __init__(self):
        self.proc = subprocess.Popen(
            [binary(), "emulator", "serve", "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.url = self.proc.stdout.readline().strip()
        assert self.url.startswith("http://127.0.0.1:"), f"emulator did not start: {self.url!r}"

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


class Mailbox:
    """An aiosmtpd handler that keeps every message it is given."""

    def __init__(self):
        self.received = []

    async def handle_DATA(self, server, session, envelope):
        self.received.append(
            {
                "mail_from": envelope.mail_from,
                "rcpt_tos": list(envelope.rcpt_tos),
                "data": envelope.original_content,
                "login": getattr(session, "auth_data", None),
            }
        )
        return "250 2.0.0 Ok: queued"


class SmtpServer:
    """A real SMTP server on 127.0.0.1:`port`, optionally requiring AUTH with one user."""

    def __init__(self, port=None, user=None, password=None, **kwargs):
        self.port = port or free_port()
        self.mailbox = Mailbox()
        self.logins = []
        extra = dict(kwargs)
        if user is not None:

            def authenticator(server, session, envelope, mechanism, auth_data):
                self.logins.append((mechanism, auth_data.login.decode(), auth_data.password.decode()))
                ok = auth_data.login.decode() == user and auth_data.password.decode() == password
                return AuthResult(success=ok, handled=False)

            extra.update(authenticator=authenticator, auth_required=True, auth_require_tls=False)
        self.controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port, **extra)

    @property
    def received(self):
        return self.mailbox.received

    def start(self):
        self.controller.start()
        return self

    def stop(self):
        self.controller.stop()


class Admin:
    """Runs `tabflow` against the emulator with its own home (store, reports)."""

    def __init__(self, home, emulator):
        self.home = home
        self.emulator = emulator
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "TABLEAU_SERVER": emulator.url,
            "TABLEAU_SITE": "demo",
            "TABLEAU_PAT_NAME": "tabflow",
            "TABLEAU_PAT_SECRET": "tabflow",
            "TABFLOW_HOME": str(home),
            "TABFLOW_ACTOR": "test-operator",
        }
        self.outputs = []

    def run(self, *args, env=None, check=True):
        p = subprocess.run(
            [binary(), *args],
            env={**self.env, **(env or {})},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
        )
        self.outputs.append(p.stdout + p.stderr)
        if check:
            assert p.returncode == 0, f"tabflow {' '.join(args)} exited {p.returncode}:\n{p.stderr}\n{p.stdout}"
        return p

    def json(self, *args, env=None):
        return json.loads(self.run(*args, env=env).stdout)

    def offboarding_plan(self, user="jsmith", new_owner="Tom Baker"):
        path = self.home / f"offboard-{user}.json"
        plan = self.json(
            "plan",
            "--intent",
            "offboard-user",
            "--param",
            f"user={user}",
            "--param",
            f"new_owner={new_owner}",
            "--json",
            "-o",
            str(path),
        )
        return path, plan
