"""`tabflow mcp` with the official MCP Python SDK (`mcp`) as the client, over stdio, against
the emulator (a real Tableau REST API) with a store shared with `tabflow serve`:

- the tools are listed with their schemas and annotations, and none approves;
- the Finance cleanup is planned and its question answered; `start_run` before approval is
  refused saying what is missing; `request_approval` answers the console URL and the site is
  unchanged; an approver (a token with the approver role) reads the request through the HTTP
  API, finds the requested selection and approves it; `start_run` then runs it, sending
  progress notifications; `run_status` and `list_runs` show it;
- `rollback_run` makes the run's rollback plan and requests its approval: `start_run` on it is
  refused until an approver approves it through the HTTP API, then it runs and the site is back;
- `query_site` answers "how many workbooks are in Finance?" with the emulator's count;
- bad input (unknown tool, wrong argument types, unknown arguments, unknown plan id, a plan of
  another site) is a clear MCP error and changes nothing;
- `TABFLOW_MCP_READ_ONLY=1` lists and allows only the tools that change nothing;
- a client with an elicitation callback is asked (URL mode) to open the console's approval
  page; declining or accepting approves nothing; after the API approval the server sends
  notifications/elicitation/complete (stdio, and over HTTP the page under the server's host);
- `list_templates` / `run_template`: typed parameters, planned never run, bad parameters named;
- four admin tasks measured for the README's comparison with tableau-mcp (MCP calls, Tableau
  requests per phase, no write before approval, each rollback restores the site)."""

import asyncio
import json
import os
from pathlib import Path
import subprocess
import time
import urllib.error
import urllib.request
from contextlib import asynccontextmanager

import pytest
import mcp_types as types
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.shared.exceptions import MCPError

from tabflow_bin import binary

REQUEST = "Clean up the Finance project - archive workbooks not accessed in 90 days"
TOOLS = {
    "plan_workflow", "answer_questions", "get_plan", "query_site", "request_approval",
    "start_run", "run_status", "rollback_run", "list_runs", "list_templates", "run_template",
}
READ_ONLY = {
    "plan_workflow", "answer_questions", "get_plan", "query_site", "run_status", "list_runs",
    "list_templates", "run_template",
}


def environment(emulator, home, **extra):
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "TABFLOW_HOME": str(home / "data"),
        "TABFLOW_ACTOR": "mcp-test",
        "TABLEAU_SERVER": emulator.url,
        "TABLEAU_SITE": "demo",
        "TABLEAU_PAT_NAME": "tabflow",
        "TABLEAU_PAT_SECRET": "tabflow",
    }
    env.update(extra)
    return env


def tabflow(env, *args):
    p = subprocess.run([binary(), *args], env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, f"tabflow {' '.join(args)} exited {p.returncode}:\n{p.stderr}\n{p.stdout}"
    return p.stdout


class Serve:
    """`tabflow serve` on a free port, on the same store and site."""

    def __init__(self, env):
        self.proc = subprocess.Popen(
            [binary(), "serve", "--listen", "127.0.0.1:0"],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        line = self.proc.stdout.readline()
        assert "listening on http://127.0.0.1:" in line, f"serve did not start: {line!r}"
        self.url = line.split("listening on ", 1)[1].split()[0]

    def api(self, method, path, token, body=None):
        data = json.dumps(body).encode() if body is not None else None
        url = path if path.startswith("http") else self.url + path
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("authorization", f"Bearer {token}")
        if data is not None:
            req.add_header("content-type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


@asynccontextmanager
async def mcp_session(env, *args, **session_kw):
    params = StdioServerParameters(command=binary(), args=["mcp", *args], env=env)
    with open(os.devnull, "w") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write):
            async with ClientSession(read, write, **session_kw) as session:
                await session.initialize()
                yield session


def workbooks(emulator):
    return {w["id"]: (w["project_id"], w.get("name")) for w in emulator.snapshot()["workbooks"]}


async def call(session, name, args, **kw):
    """A tool call that succeeded: its structured content."""
    r = await session.call_tool(name, args, **kw)
    assert not r.is_error, f"{name} {args}: {r.content}"
    assert r.structured_content is not None, f"{name}: no structured content"
    return r.structured_content


async def refused(session, name, args):
    """A tool call answered as a tool error: its {code, message, hint}."""
    r = await session.call_tool(name, args)
    assert r.is_error, f"{name} {args} was not refused: {r.structured_content}"
    err = r.structured_content["error"]
    assert err["message"] and err["hint"], err
    assert err["message"] in r.content[0].text
    return err


async def protocol_error(session, name, args):
    """A call refused as a JSON-RPC error (invalid params): its message."""
    with pytest.raises(MCPError) as e:
        await session.call_tool(name, args)
    assert e.value.code == -32602, e.value
    return e.value.message


@pytest.fixture(scope="module")
def setup(emulator, tmp_path_factory):
    home = tmp_path_factory.mktemp("mcp")
    env = environment(emulator, home)
    serve = Serve(env)
    token = tabflow(env, "tokens", "create", "approver1", "--role", "approver").strip().splitlines()[-1]
    yield env, serve, token, home
    serve.stop()


def test_tools_are_listed_with_schemas_and_annotations_and_none_approves(setup):
    env, serve, _, _ = setup

    async def go():
        async with mcp_session(env, "--console-url", serve.url) as s:
            tools = {t.name: t for t in (await s.list_tools()).tools}
            assert set(tools) == TOOLS, sorted(tools)
            assert not any("approve" in n and n != "request_approval" for n in tools)
            for name, t in tools.items():
                assert t.input_schema["type"] == "object", name
                assert t.output_schema and t.output_schema["type"] == "object", name
                assert t.description, name
                a = t.annotations
                assert a is not None, name
                assert a.read_only_hint is (name in READ_ONLY), (name, a)
            assert tools["start_run"].annotations.destructive_hint is True
            assert tools["request_approval"].annotations.destructive_hint is False
            assert "plan_id" in tools["start_run"].input_schema["required"]
            assert "next_cursor" in tools["get_plan"].output_schema["properties"]

    asyncio.run(go())


def test_a_plan_with_more_items_than_a_page_is_paged_with_a_cursor(emulator, tmp_path):
    # A store of its own: what the answers teach stays there.
    env = environment(emulator, tmp_path, TABFLOW_MCP_PAGE_SIZE="2", TABFLOW_MCP_MAX_PLAN_ITEMS="1")

    async def go():
        async with mcp_session(env) as s:
            plan = await call(s, "plan_workflow", {"request": REQUEST, "answers": {"q1": "archive-all"}})
            assert plan["status"] == "needs-approval", plan
            total = plan["items_total"]
            assert total > 2 and len(plan["items"]) == 2 and plan["next_cursor"] == "2", plan
            seen = [i["pair"] for i in plan["items"]]
            cursor = plan["next_cursor"]
            while cursor:
                page = await call(s, "get_plan", {"plan_id": plan["plan_id"], "cursor": cursor})
                seen += [i["pair"] for i in page["items"]]
                cursor = page.get("next_cursor")
            assert len(seen) == total == len(set(seen)), seen
            err = await refused(s, "request_approval", {"plan_id": plan["plan_id"]})
            assert "TABFLOW_MCP_MAX_PLAN_ITEMS" in err["message"], err

    asyncio.run(go())


def test_plan_answer_request_approval_run_with_progress_and_rollback_by_a_person(setup, emulator):
    env, serve, token, _ = setup
    before = workbooks(emulator)

    async def go():
        async with mcp_session(env, "--console-url", serve.url) as s:
            first = await call(s, "plan_workflow", {"request": REQUEST})
            assert first["status"] == "needs-answers", first
            q = first["questions"][0]
            assert "archive-all" in q["choices"], q
            assert {c["check"] for c in first["checks"]} <= {
                "destructive-operations", "permissions", "dependencies", "impact", "rollback"}

            # Not a choice: refused naming the choices.
            err = await refused(s, "answer_questions", {"plan_id": first["plan_id"], "answers": {q["id"]: "burn-it"}})
            assert "archive-all" in err["hint"], err

            plan = await call(s, "answer_questions", {"plan_id": first["plan_id"], "answers": {q["id"]: "archive-all"}})
            assert plan["plan_id"] != first["plan_id"]
            assert plan["status"] == "needs-approval", plan
            assert plan["valid"] and plan["impact"]["items"] >= 3, plan
            pid = plan["plan_id"]
            moved = [i for i in plan["items"] if i["type"] == "workbook"]
            assert moved and all(i["pair"] == f"{i['step']}/{i['id']}" for i in moved)

            # Before approval: refused, saying what is missing; nothing changed.
            err = await refused(s, "start_run", {"plan_id": pid})
            assert err["code"] == "needs-approval", err
            assert "no approval" in err["message"] and "approve" in err["hint"], err
            assert workbooks(emulator) == before

            # The request: a URL of the console for the approver; grants nothing.
            req = await call(s, "request_approval", {"plan_id": pid, "selection": "all"})
            assert req["url"] == f"{serve.url}/console/plans/{pid}?request={req['id']}", req
            assert req["approved"] is False and req["requested_by"] == "mcp-test via mcp", req
            assert workbooks(emulator) == before
            err = await refused(s, "start_run", {"plan_id": pid})
            assert err["code"] == "needs-approval", err

            # The approver opens the request, finds the selection, approves it (HTTP API).
            status, got = serve.api("GET", req["api_url"], token)
            assert status == 200 and got["plan_id"] == pid and got["items"] is None, got
            status, console = 0, None
            with urllib.request.urlopen(urllib.request.Request(req["url"]), timeout=30) as r:
                status = r.status  # the console answers (its login page for a browser without a session)
            assert status == 200
            status, ok = serve.api("POST", f"/api/v1/plans/{pid}/approvals", token, {"decision": "approve", "items": "all"})
            assert status == 201 and ok["ready"] is True, ok
            assert workbooks(emulator) == before

            # Now it runs, with progress notifications.
            notes = []

            async def progress(p, total, message):
                notes.append((p, total, message))

            run = await call(s, "start_run", {"plan_id": pid}, progress_callback=progress)
            assert run["status"] == "succeeded", run
            assert any(m and m.startswith("Step 1/") and "/" in m.split("·")[-1] for _, _, m in notes), notes
            assert any(m and m.startswith("Run finished: succeeded") for _, _, m in notes), notes
            progress_values = [p for p, _, _ in notes]
            assert progress_values == sorted(progress_values), notes
            after = workbooks(emulator)
            assert after != before
            for i in moved:
                assert after[i["id"]][0] != before[i["id"]][0], i

            rid = run["run_id"]
            st = await call(s, "run_status", {"run_id": rid})
            assert st["status"] == "succeeded" and st["plan_id"] == pid, st
            runs = await call(s, "list_runs", {})
            assert runs["runs"][0]["run_id"] == rid

            # A plan already run is refused (approvals are single use).
            err = await refused(s, "start_run", {"plan_id": pid})
            assert workbooks(emulator) == after

            # rollback_run makes the run's rollback plan and requests its approval: it undoes
            # nothing itself, start_run on the rollback plan is refused until an approver
            # approves it through the HTTP API, then it runs and the site is back.
            rb = await call(s, "rollback_run", {"run_id": rid})
            rpid = rb["plan_id"]
            assert rb["run_id"] == rid and rpid != pid, rb
            assert rb["url"] == f"{serve.url}/console/plans/{rpid}?request={rb['request_id']}", rb
            assert all(st["kind"] == "compensate" for st in rb["steps"]), rb
            assert workbooks(emulator) == after
            err = await refused(s, "start_run", {"plan_id": rpid})
            assert err["code"] == "needs-approval", err
            assert workbooks(emulator) == after
            status, got = serve.api("GET", rb["api_url"], token)
            assert status == 200 and got["plan_id"] == rpid, got
            status, ok = serve.api("POST", f"/api/v1/plans/{rpid}/approvals", token, {"decision": "approve", "items": "all"})
            assert status == 201 and ok["ready"] is True, ok
            undone = await call(s, "start_run", {"plan_id": rpid})
            assert undone["run_id"] == rid and undone["status"] == "rolled-back", undone
            assert workbooks(emulator) == before
            st = await call(s, "run_status", {"run_id": rid})
            assert st["status"] == "rolled-back", st

    asyncio.run(go())


def test_query_site_answers_how_many_workbooks_are_in_finance(setup, emulator):
    env, serve, _, _ = setup
    snap = emulator.snapshot()
    finance = {p["id"] for p in snap["projects"] if p["name"] == "Finance"}
    grew = True
    while grew:
        sub = {p["id"] for p in snap["projects"] if p.get("parent_id") in finance}
        grew = not sub <= finance
        finance |= sub
    expected = sum(1 for w in snap["workbooks"] if w["project_id"] in finance)

    async def go():
        async with mcp_session(env, "--console-url", serve.url) as s:
            a = await call(s, "query_site", {"question": "how many workbooks are in Finance?"})
            assert a["kind"] == "count" and a["total"] == expected, (a, expected)
            assert str(expected) in a["summary"], a
            err = await refused(s, "query_site", {"question": "what is the weather tomorrow"})
            assert err["code"] == "invalid" and "how many workbooks" in err["hint"], err

    asyncio.run(go())


def test_bad_input_is_a_clear_error_and_changes_nothing(setup, emulator):
    env, serve, _, home = setup
    before = emulator.snapshot()
    # A plan of another site: the built-in demo site (no server configured), same store.
    demo_env = {k: v for k, v in env.items() if not k.startswith("TABLEAU_")}
    other = json.loads(tabflow(demo_env, "plan", REQUEST, "--json"))

    async def go():
        async with mcp_session(env, "--console-url", serve.url) as s:
            msg = await protocol_error(s, "approve_plan", {"plan_id": "p-1"})
            assert "no tool 'approve_plan'" in msg and "request_approval" in msg, msg
            msg = await protocol_error(s, "get_plan", {"plan_id": 42})
            assert "'plan_id'" in msg and "must be a string" in msg and "integer" in msg, msg
            msg = await protocol_error(s, "list_runs", {"limit": "ten"})
            assert "'limit'" in msg and "integer" in msg, msg
            msg = await protocol_error(s, "start_run", {"plan_id": "p-1", "approved": True})
            assert "no argument 'approved'" in msg, msg
            msg = await protocol_error(s, "start_run", {})
            assert "needs the argument 'plan_id'" in msg, msg
            for tool in ("get_plan", "start_run", "request_approval"):
                err = await refused(s, tool, {"plan_id": "p-does-not-exist"})
                assert err["code"] == "not-found" and "p-does-not-exist" in err["message"], err
            err = await refused(s, "run_status", {"run_id": "r-nope"})
            assert err["code"] == "not-found", err
            for tool in ("get_plan", "start_run", "request_approval"):
                err = await refused(s, tool, {"plan_id": other["id"]})
                assert "site" in err["message"] and "nothing was changed" in err["hint"], err
            err = await refused(s, "plan_workflow", {})
            assert "needs a request" in err["message"], err
            err = await refused(s, "get_plan", {"plan_id": other["id"], "cursor": "x"})

    asyncio.run(go())
    after = emulator.snapshot()
    assert after["workbooks"] == before["workbooks"] and after["projects"] == before["projects"]


def test_read_only_kill_switch_lists_and_allows_only_tools_that_change_nothing(setup):
    env, serve, _, _ = setup

    async def go():
        async with mcp_session(dict(env, TABFLOW_MCP_READ_ONLY="1"), "--console-url", serve.url) as s:
            tools = {t.name for t in (await s.list_tools()).tools}
            assert tools == READ_ONLY, sorted(tools)
            msg = await protocol_error(s, "start_run", {"plan_id": "p-1"})
            assert "read-only" in msg and "TABFLOW_MCP_READ_ONLY" in msg, msg
            a = await call(s, "query_site", {"question": "how many workbooks are in Finance?"})
            assert a["kind"] == "count"

    asyncio.run(go())


def test_stdout_carries_only_json_rpc(setup):
    """Raw stdio: every line the server writes to stdout is a JSON-RPC message (the demo-site
    note and logs go to stderr)."""
    env, _, _, _ = setup
    demo_env = {k: v for k, v in env.items() if not k.startswith("TABLEAU_")}
    msgs = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
        {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
            "name": "query_site", "arguments": {"question": "how many workbooks are in Finance?"}}},
    ]
    p = subprocess.Popen([binary(), "mcp"], env=demo_env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    lines = []
    for m in msgs:
        p.stdin.write(json.dumps(m) + "\n")
        p.stdin.flush()
        if "id" in m:
            lines.append(p.stdout.readline())
    rest, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    lines += [line for line in rest.splitlines() if line.strip()]
    answers = [json.loads(line) for line in lines]
    assert all(a["jsonrpc"] == "2.0" for a in answers), answers
    assert [a.get("id") for a in answers] == [1, 2, 3], answers
    assert answers[0]["result"]["serverInfo"]["name"] == "tabflow"
    assert answers[2]["result"]["structuredContent"]["kind"] == "count", answers[2]
    assert "demo site" in err, err


@asynccontextmanager
async def http_session(url, token, **session_kw):
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    headers = {"authorization": f"Bearer {token}"} if token else {}
    async with httpx2.AsyncClient(headers=headers, timeout=120) as http:
        async with streamable_http_client(f"{url}/mcp", http_client=http) as (read, write):
            async with ClientSession(read, write, **session_kw) as session:
                await session.initialize()
                yield session


@pytest.fixture()
def own_site(tmp_path):
    """An emulator, a data directory and `tabflow serve` of its own (a run and its rollback
    elsewhere in this module leave the Finance cleanup with nothing to do)."""
    # The compat conftest by path: under one pytest run with tests/integration, the module
    # name `conftest` may be the other suite's.
    import importlib.util

    spec = importlib.util.spec_from_file_location("compat_conftest", Path(__file__).with_name("conftest.py"))
    compat = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(compat)
    Emulator = compat.Emulator

    emulator = Emulator()
    env = environment(emulator, tmp_path)
    serve = Serve(env)
    approver = tabflow(env, "tokens", "create", "approver1", "--role", "approver").strip().splitlines()[-1]
    yield env, serve, approver, emulator
    serve.stop()
    emulator.stop()


def test_mcp_over_http_at_serve_needs_a_token_and_its_role(own_site):
    """The same server over streamable HTTP at /mcp of `tabflow serve`: a requester token plans,
    asks approval (a console path), is refused before approval, runs once an approver approved
    through the API (with progress); a viewer token only reads; no token gets 401."""
    env, serve, approver, emulator = own_site
    requester = tabflow(env, "tokens", "create", "assistant1", "--role", "requester").strip().splitlines()[-1]
    viewer = tabflow(env, "tokens", "create", "viewer1", "--role", "viewer").strip().splitlines()[-1]
    before = workbooks(emulator)

    req = urllib.request.Request(f"{serve.url}/mcp", data=b"{}", method="POST")
    req.add_header("content-type", "application/json")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=30)
    assert e.value.code == 401

    async def go():
        async with http_session(serve.url, viewer) as s:
            tools = {t.name for t in (await s.list_tools()).tools}
            assert tools == TOOLS
            msg = await protocol_error(s, "plan_workflow", {"request": REQUEST})
            assert "viewer role" in msg and "requester" in msg, msg
            a = await call(s, "query_site", {"question": "how many workbooks are in Finance?"})
            assert a["kind"] == "count"
        asked = []

        async def elicit(context, params):
            asked.append(params)
            return types.ElicitResult(action="accept")

        async with http_session(serve.url, requester, elicitation_callback=elicit) as s:
            plan = await call(s, "plan_workflow", {"request": REQUEST, "answers": {"q1": "archive-all"}})
            assert plan["status"] == "needs-approval", plan
            pid = plan["plan_id"]
            err = await refused(s, "start_run", {"plan_id": pid})
            assert err["code"] == "needs-approval", err
            r = await call(s, "request_approval", {"plan_id": pid})
            assert r["url"] == f"/console/plans/{pid}?request={r['id']}", r
            assert r["requested_by"] == "assistant1 via mcp", r
            # URL-mode elicitation over HTTP: the page under the host the client reached.
            assert [(p.mode, p.url, p.elicitation_id) for p in asked] == [("url", serve.url + r["url"], r["id"])], asked
            assert r["approved"] is False and r["elicitation"]["action"] == "accept", r
            assert workbooks(emulator) == before
            status, ok = serve.api("POST", f"/api/v1/plans/{pid}/approvals", approver, {"decision": "approve", "items": "all"})
            assert status == 201 and ok["ready"], ok
            notes = []

            async def progress(p, total, message):
                notes.append(message)

            run = await call(s, "start_run", {"plan_id": pid}, progress_callback=progress)
            assert run["status"] == "succeeded", run
            assert any(m and m.startswith("Step 1/") for m in notes), notes
            assert workbooks(emulator) != before
            rb = await call(s, "rollback_run", {"run_id": run["run_id"]})
            assert rb["url"] == f"/console/plans/{rb['plan_id']}?request={rb['request_id']}", rb
            err = await refused(s, "start_run", {"plan_id": rb["plan_id"]})
            assert err["code"] == "needs-approval", err
            status, ok = serve.api(
                "POST", f"/api/v1/plans/{rb['plan_id']}/approvals", approver, {"decision": "approve", "items": "all"})
            assert status == 201 and ok["ready"], ok
            undone = await call(s, "start_run", {"plan_id": rb["plan_id"]})
            assert undone["status"] == "rolled-back", undone
            assert workbooks(emulator) == before

    asyncio.run(go())


def test_request_approval_elicits_the_console_page_and_no_answer_approves(own_site):
    """A client that declares elicitation (a callback) is asked, in URL mode, to open the
    console's approval page. Declining or accepting approves nothing; the store's decision is
    what counts: once the approver approves through the API, the server sends
    notifications/elicitation/complete for the request, and start_run runs."""
    env, serve, approver, emulator = own_site
    before = workbooks(emulator)
    mode = {"answer": "decline"}
    asked, completed = [], []

    async def elicit(context, params):
        asked.append(params)
        if mode["answer"] == "approve-then-accept":
            pid = params.url.split("/console/plans/")[1].split("?")[0]
            status, ok = serve.api("POST", f"/api/v1/plans/{pid}/approvals", approver, {"decision": "approve", "items": "all"})
            assert status == 201, ok
            return types.ElicitResult(action="accept")
        return types.ElicitResult(action=mode["answer"])

    async def on_message(message):
        if isinstance(message, types.ElicitCompleteNotification):
            completed.append(message.params.elicitation_id)

    async def go():
        async with mcp_session(env, "--console-url", serve.url, elicitation_callback=elicit, message_handler=on_message) as s:
            async def plan():
                p = await call(s, "plan_workflow", {"request": REQUEST, "answers": {"q1": "archive-all"}})
                assert p["status"] == "needs-approval", p
                return p["plan_id"]

            # Declined: not approved, nothing changed.
            b = await plan()
            r = await call(s, "request_approval", {"plan_id": b})
            assert r["elicitation"] == {"mode": "url", "url": r["url"], "elicitation_id": r["id"], "action": "decline"}, r
            assert r["approved"] is False and r["decision"] == "pending", r
            assert (await refused(s, "start_run", {"plan_id": b}))["code"] == "needs-approval"

            # Accepted (the person agreed to open the page): still not approved.
            mode["answer"] = "accept"
            a = await plan()
            r = await call(s, "request_approval", {"plan_id": a, "selection": "all"})
            assert asked[-1].mode == "url" and asked[-1].url == f"{serve.url}/console/plans/{a}?request={r['id']}", asked[-1]
            assert asked[-1].elicitation_id == r["id"] and "approves nothing" in asked[-1].message, asked[-1]
            assert r["approved"] is False and r["decision"] == "pending" and r["elicitation"]["action"] == "accept", r
            assert "not an approval" in r["note"], r
            assert (await refused(s, "start_run", {"plan_id": a}))["code"] == "needs-approval"
            assert workbooks(emulator) == before and completed == []

            # The approver approves in the console's API: the client hears the elicitation is complete.
            status, ok = serve.api("POST", f"/api/v1/plans/{a}/approvals", approver, {"decision": "approve", "items": "all"})
            assert status == 201 and ok["ready"], ok
            for _ in range(100):
                if r["id"] in completed:
                    break
                await asyncio.sleep(0.1)
            assert completed == [r["id"]], completed

            # Approved while the page was open: the answer says so, read from the store.
            mode["answer"] = "approve-then-accept"
            c = await plan()
            r = await call(s, "request_approval", {"plan_id": c})
            assert r["approved"] is True and r["decision"] == "approved", r
            assert len(asked) == 3
            assert workbooks(emulator) == before

            run = await call(s, "start_run", {"plan_id": a})
            assert run["status"] == "succeeded", run
            assert workbooks(emulator) != before

    asyncio.run(go())
    # Each elicitation and what the client answered is in the audit log.
    status, records = serve.api("GET", "/api/v1/audit", approver)
    assert status == 200, records
    rows = records if isinstance(records, list) else records["records"]
    got = [x["after"]["action"] for x in rows if x["action"] == "approval.elicited"]
    assert sorted(got) == ["accept", "accept", "decline"], got


def test_templates_are_listed_with_parameters_and_planned_never_run(setup, emulator):
    env, serve, _, _ = setup
    before = emulator.snapshot()

    async def go():
        async with mcp_session(env, "--console-url", serve.url) as s:
            listed = await call(s, "list_templates", {})
            by_name = {t["name"]: t for t in listed["templates"]}
            assert listed["total"] == len(by_name) and listed["next_cursor"] is None, listed
            assert {"archive-stale-content", "reclaim-licenses", "delete-content", "offboard-user"} <= set(by_name)
            params = {p["name"]: p for p in by_name["reclaim-licenses"]["params"]}
            assert params["inactive_days"]["type"] == "integer" and params["inactive_days"]["default"] == 90
            assert params["action"]["allowed"] == ["unlicense", "downgrade"], params
            assert params["exclude"]["type"] == "list" and params["exclude"]["required"] is False, params

            plan = await call(s, "run_template", {"name": "reclaim-licenses", "params": {"inactive_days": 90}})
            assert "reclaim-licenses@v1" in plan["request"], plan
            assert plan["status"] in ("needs-approval", "needs-answers", "nothing-to-do"), plan
            err = await refused(s, "run_template", {"name": "reclaim-licenses", "params": {"action": "delete", "inactive_days": -1}})
            assert err["code"] == "invalid" and "action may be one of unlicense, downgrade" in err["message"], err
            assert "out of range" in err["message"] and "inactive_days (a whole number" in err["hint"], err
            err = await refused(s, "run_template", {"name": "no-such-template"})
            assert err["code"] == "not-found" and "list_templates" in err["hint"], err
            msg = await protocol_error(s, "run_template", {"name": "reclaim-licenses", "params": ["inactive_days=90"]})
            assert "'params'" in msg and "object" in msg, msg

    asyncio.run(go())
    after = emulator.snapshot()
    assert after["workbooks"] == before["workbooks"]
    # (Signing in moves the service account's last_login; roles are what a template changes.)
    assert {u["id"]: u["site_role"] for u in after["users"]} == {u["id"]: u["site_role"] for u in before["users"]}


class Counted:
    """An MCP session whose tool calls are counted (for the README's comparison)."""

    def __init__(self, session):
        self.session, self.calls = session, []

    async def call(self, name, args, **kw):
        self.calls.append(name)
        return await call(self.session, name, args, **kw)


def site_state(emulator):
    snap = emulator.snapshot()
    return (
        {w["id"]: (w["project_id"], w["name"]) for w in snap["workbooks"]},
        {d["id"]: (d["project_id"], d["name"]) for d in snap["datasources"]},
        {u["id"]: u["site_role"] for u in snap["users"]},
    )


def test_three_admin_tasks_measured_for_the_readme_comparison(own_site):
    """The README's comparison with tableau-mcp, measured on the demo site: the stale-content
    cleanup of a project, licence reclamation, offboarding, and deleting stale content, each planned,
    requested, approved by a person (the approver's API token), run, and undone. Counts the
    MCP calls this test makes and the Tableau REST calls the emulator served per phase; no
    write reaches the site before the person's approval, and each rollback restores it.
    Writes target/test-artifacts/mcp-comparison.json."""
    env, serve, approver, emulator = own_site
    tasks = [
        ("stale-content cleanup (Finance)", "plan_workflow",
         {"request": REQUEST, "answers": {"q1": "archive-all"}}),
        ("licence reclamation (90 days)", "run_template",
         {"name": "reclaim-licenses", "params": {"inactive_days": 90}}),
        ("offboarding (John Smith leaves, Tom Baker takes over)", "plan_workflow",
         {"request": "John Smith is leaving; give their content to Tom Baker and remove their access"}),
        ("delete stale content (Sales, 180 days, staged)", "run_template",
         {"name": "delete-content", "params": {"project": "Sales", "stale_days": 180}}),
    ]
    measured = []

    def requests():
        return emulator.stats()["requests"], emulator.stats()["writes"]

    async def go():
        async with mcp_session(env, "--console-url", serve.url) as s:
            for title, tool, args in tasks:
                c = Counted(s)
                start = site_state(emulator)
                r0, w0 = requests()
                plan = await c.call(tool, args)
                if plan["status"] == "needs-answers":
                    # The person's answers, as the assistant passes them on: each question's default.
                    answers = {q["id"]: q["default"] or q["choices"][0] for q in plan["questions"]}
                    print(title, [(q["text"], q["choices"], q["default"]) for q in plan["questions"]])
                    plan = await c.call("answer_questions", {"plan_id": plan["plan_id"], "answers": answers})
                assert plan["status"] == "needs-approval", (title, plan)
                req = await c.call("request_approval", {"plan_id": plan["plan_id"]})
                assert req["approved"] is False
                r1, w1 = requests()
                assert w1 == w0 and site_state(emulator) == start, f"{title}: a write before approval"
                status, ok = serve.api("POST", f"/api/v1/plans/{plan['plan_id']}/approvals", approver,
                                       {"decision": "approve", "items": "all"})
                assert status == 201 and ok["ready"], ok
                r2, w2 = requests()
                assert w2 == w1
                run = await c.call("start_run", {"plan_id": plan["plan_id"]})
                assert run["status"] == "succeeded", (title, run)
                r3, w3 = requests()
                assert w3 > w2 and site_state(emulator) != start, f"{title}: the run changed nothing"
                # The undo is a plan of its own: requested, approved by the person, then run.
                rb = await call(s, "rollback_run", {"run_id": run["run_id"]})
                status, ok = serve.api("POST", f"/api/v1/plans/{rb['plan_id']}/approvals", approver,
                                       {"decision": "approve", "items": "all"})
                assert status == 201 and ok["ready"], ok
                st = await call(s, "start_run", {"plan_id": rb["plan_id"]})
                assert st["status"] == "rolled-back", st
                assert site_state(emulator) == start, f"{title}: the rollback did not restore the site"
                r4, w4 = requests()
                measured.append({
                    "task": title,
                    "mcp_calls": c.calls,
                    "items": plan["impact"]["items"],
                    "steps": [(x["title"], x["effect"], x["rollback"]) for x in plan["steps"]],
                    "person_approves": "one decision on the plan in the console/API (approver role)",
                    "tableau_requests": {"plan_and_request": r1 - r0, "approval": r2 - r1, "run": r3 - r2, "rollback": r4 - r3},
                    "tableau_writes": {"run": w3 - w2, "rollback": w4 - w3},
                })

    asyncio.run(go())
    out = Path(__file__).resolve().parents[2] / "target" / "test-artifacts"
    out.mkdir(parents=True, exist_ok=True)
    (out / "mcp-comparison.json").write_text(json.dumps(measured, indent=2))
    print(json.dumps(measured, indent=2))
    for m, t in zip(measured, tasks):
        assert m["mcp_calls"][0] == t[1] and m["mcp_calls"][-2:] == ["request_approval", "start_run"], m
        assert set(m["mcp_calls"][1:-2]) <= {"answer_questions"}, m
