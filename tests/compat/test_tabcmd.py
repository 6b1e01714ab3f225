"""tabcmd (the official command-line client, from PyPI) against the emulator."""

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TABCMD = os.environ.get("TABCMD", str(ROOT / ".venv-tabcmd" / "bin" / "tabcmd"))


def tabcmd(home, *args):
    env = dict(os.environ, HOME=str(home))
    # tabcmd writes tabcmd.log into its working directory: keep it in the test's temp dir.
    return subprocess.run([TABCMD, *args], env=env, cwd=str(home), capture_output=True, text=True, timeout=120)


def auth(emulator):
    # tabcmd 2.0.21 keeps the session file but asks for the password again in scripts, so
    # scripted use passes the credentials to every command.
    return ["-s", emulator.url, "-t", "demo", "-u", "admin", "-p", "tabflow", "--no-prompt"]


@pytest.fixture()
def logged_in(emulator, tmp_path):
    r = tabcmd(tmp_path, "login", *auth(emulator))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Succeeded" in r.stdout + r.stderr
    return tmp_path


def test_login_with_wrong_password_fails(emulator, tmp_path):
    r = tabcmd(tmp_path, "login", "-s", emulator.url, "-t", "demo", "-u", "admin", "-p", "nope", "--no-prompt")
    assert r.returncode != 0


def test_listsites(emulator, logged_in):
    r = tabcmd(logged_in, "listsites", *auth(emulator))
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout + r.stderr  # tabcmd logs its output to stderr
    site = emulator.snapshot()["site"]
    assert f"NAME: {site['name']}" in out and site["id"] in out, out


def test_createproject_and_delete_workbook(emulator, logged_in):
    r = tabcmd(logged_in, "createproject", "-n", "Created By Tabcmd", *auth(emulator))
    assert r.returncode == 0, r.stdout + r.stderr
    assert any(p["name"] == "Created By Tabcmd" for p in emulator.snapshot()["projects"])

    snap = emulator.snapshot()
    projects = {p["id"]: p for p in snap["projects"]}
    wb = next(w for w in snap["workbooks"] if projects[w["project_id"]]["parent_id"] is None and projects[w["project_id"]]["name"] == "Sales")
    r = tabcmd(logged_in, "delete", wb["name"], "-r", "Sales", *auth(emulator))
    assert r.returncode == 0, r.stdout + r.stderr
    assert not any(w["id"] == wb["id"] for w in emulator.snapshot()["workbooks"])

    r = tabcmd(logged_in, "deleteproject", "Created By Tabcmd", *auth(emulator))
    assert r.returncode == 0, r.stdout + r.stderr
    assert not any(p["name"] == "Created By Tabcmd" for p in emulator.snapshot()["projects"])
