"""Where the tabflow binary under test is: target/debug/tabflow, or TABFLOW_BIN. A module of
its own (not conftest) so that test modules can import it while tests/integration, run in
the same pytest session, has a conftest of its own."""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def binary():
    return os.environ.get("TABFLOW_BIN", str(ROOT / "target" / "debug" / "tabflow"))
