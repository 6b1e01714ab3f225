"""Fixtures of the end-to-end tests (helpers in tabflow_e2e.py): an emulator per test and an
administrator running `tabflow` against it with a home of its own."""

import pytest
from tabflow_e2e import Admin, Emulator


@pytest.fixture
def emulator():
    e = Emulator()
    yield e
    e.stop()


@pytest.fixture
def admin(tmp_path, emulator):
    return Admin(tmp_path, emulator)
