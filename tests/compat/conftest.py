"""Starts `tabflow emulator serve` for the compatibility tests.

The binary is target/debug/tabflow (override with TABFLOW_BIN). Each test module gets its
own emulator, so modules that change the site do not disturb each other."""

import json
import os
import subprocess
import urllib.request
from pathlib import Path

import pytest

from tabflow_bin import ROOT, binary  # noqa: F401 (ROOT is used by test modules)


class Emulator:
    def __init__(self):
        self.proc = subprocess.Popen(
            [binary(), "emulator", "serve", "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.url = self.proc.stdout.readline().strip()
        assert self.url.startswith("http://127.0.0.1:"), f"emulator did not start: {self.url!r}"

    def get_json(self, path):
        with urllib.request.urlopen(self.url + path) as r:
            return json.loads(r.read())

    def snapshot(self):
        return self.get_json("/_emulator/snapshot")

    def stats(self):
        return self.get_json("/_emulator/stats")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def emulator():
    e = Emulator()
    yield e
    e.stop()
