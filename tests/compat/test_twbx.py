"""Packaged workbooks (.twbx) made by Python's zipfile, published with the official client
(tableauserverclient 0.42), migrated by the real `tabflow` binary and checked with zipfile.

The archives are written here, independently of tabflow's zip code: deflated entries, an
extract-like binary entry, and (second test) data descriptors from a streamed write."""

import io
import json
import os
import random
import struct
import subprocess
import xml.etree.ElementTree as ET
import zipfile

import tableauserverclient as TSC

from tabflow_bin import binary


def pat_server(url):
    server = TSC.Server(url, use_server_version=True)
    server.auth.sign_in(TSC.PersonalAccessTokenAuth("tabflow", "tabflow", "demo"))
    return server


def tabflow(emulator, home, *args):
    env = dict(
        os.environ,
        TABLEAU_SERVER=emulator.url,
        TABLEAU_SITE="demo",
        TABLEAU_PAT_NAME="tabflow",
        TABLEAU_PAT_SECRET="tabflow",
        TABFLOW_HOME=str(home),
        TABFLOW_ACTOR="compat-test",
    )
    p = subprocess.run([binary(), *args], env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, f"tabflow {' '.join(args)} failed ({p.returncode}):\n{p.stderr}\n{p.stdout}"
    return json.loads(p.stdout) if "--json" in args else p.stdout


def proxies(twb_bytes):
    root = ET.fromstring(twb_bytes)
    assert root.tag == "workbook"
    return {c.get("dbname") for c in root.iter("connection") if c.get("class") == "sqlproxy"}


def raw_entry(archive_bytes, info):
    """The compressed bytes of an entry as stored, read through its local header."""
    at = info.header_offset
    sig, = struct.unpack_from("<I", archive_bytes, at)
    assert sig == 0x04034B50, f"{info.filename}: no local header at {at}"
    name_len, extra_len = struct.unpack_from("<HH", archive_bytes, at + 26)
    start = at + 30 + name_len + extra_len
    return archive_bytes[start : start + info.compress_size]


def extract_bytes():
    """An extract stand-in: incompressible bytes followed by a compressible run."""
    return random.Random(7).randbytes(40_000) + b"hyper row " * 3000


def movable_workbook(snap):
    ds = snap["datasources"]
    legacy = next(d for d in ds if d["name"] == "Finance GL (legacy)")
    gl = next(d for d in ds if d["name"] == "Finance General Ledger")
    w = next(
        w
        for w in snap["workbooks"]
        if w["datasource_ids"] == [legacy["id"]] and set(w.get("fields_used", [])) <= set(gl["fields"])
    )
    return legacy, gl, w


def test_migration_repoints_a_python_made_twbx_and_rollback_restores_its_bytes(emulator, tmp_path):
    snap = emulator.snapshot()
    legacy, gl, w = movable_workbook(snap)
    server = pat_server(emulator.url)
    twb_path = server.workbooks.download(w["id"], filepath=str(tmp_path), include_extract=False)
    twb = open(twb_path, "rb").read()
    assert proxies(twb) == {legacy["content_url"]}

    # The package, written by zipfile: deflated .twb and extract, a stored image.
    path = tmp_path / "upload" / "Ledger.twbx"
    path.parent.mkdir()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("Ledger.twb", twb)
        z.writestr("Data/Extracts/x.hyper", extract_bytes())
        z.writestr("Image/logo.png", b"\x89PNG\r\n\x1a\n" + bytes(range(256)), compress_type=zipfile.ZIP_STORED)
    original = path.read_bytes()
    item = TSC.WorkbookItem(w["project_id"], name=w["name"])
    published = server.workbooks.publish(item, str(path), TSC.Server.PublishMode.Overwrite)
    assert published.id == w["id"]
    (tmp_path / "stored").mkdir()
    got = server.workbooks.download(w["id"], filepath=str(tmp_path / "stored"), include_extract=True)
    assert os.path.basename(got) == "Ledger.twbx", "Content-Disposition names the .twbx"
    assert got.endswith(".twbx") and open(got, "rb").read() == original, "the emulator serves the file it was given"

    home = tmp_path / "home"
    plan_path = str(tmp_path / "plan.json")
    plan = tabflow(
        emulator,
        home,
        "plan",
        "--intent",
        "migrate-datasource",
        "--param",
        f"from={legacy['name']}",
        "--param",
        f"to={gl['name']}",
        "--answer",
        "q1=migrate-all",
        "-o",
        plan_path,
        "--json",
    )
    assert not plan.get("questions"), plan.get("questions")
    assert plan["validation"]["ok"], plan["validation"]
    repoint = next(s for s in plan["steps"] if s["kind"] == "repoint-workbooks")
    assert w["id"] in {i["id"] for i in repoint["items"]}
    result = tabflow(emulator, home, "apply", plan_path, "--approve", "all", "--yes", "--json")
    assert result["status"] == "succeeded", result

    # tabflow signed in with the same PAT, which ended this client's session.
    server = pat_server(emulator.url)
    got = server.workbooks.download(w["id"], filepath=str(tmp_path / "after"), include_extract=True)
    assert got.endswith(".twbx"), got
    after = open(got, "rb").read()
    with zipfile.ZipFile(io.BytesIO(original)) as before_zip, zipfile.ZipFile(io.BytesIO(after)) as z:
        assert z.testzip() is None
        assert z.namelist() == before_zip.namelist()
        assert proxies(z.read("Ledger.twb")) == {gl["content_url"]}
        assert z.getinfo("Ledger.twb").compress_type == zipfile.ZIP_DEFLATED
        for name in ["Data/Extracts/x.hyper", "Image/logo.png"]:
            a, b = before_zip.getinfo(name), z.getinfo(name)
            assert (a.CRC, a.compress_type, a.compress_size, a.file_size) == (
                b.CRC,
                b.compress_type,
                b.compress_size,
                b.file_size,
            ), name
            assert raw_entry(original, a) == raw_entry(after, b), f"{name}: compressed bytes differ"
            assert z.read(name) == before_zip.read(name)
    moved = next(x for x in emulator.snapshot()["workbooks"] if x["id"] == w["id"])
    assert moved["datasource_ids"] == [gl["id"]], "the emulator read the .twb inside the republished .twbx"
    upstream = server.metadata.query("{ workbooks { luid upstreamDatasources { luid } } }")["data"]["workbooks"]
    assert [d["luid"] for d in next(x for x in upstream if x["luid"] == w["id"])["upstreamDatasources"]] == [gl["id"]]

    # Rollback republishes the file saved before the repoint: the downloaded original,
    # which the emulator served exactly as published — so the bytes are identical.
    rolled = tabflow(emulator, home, "runs", "rollback", result["run_id"], "--yes", "--json")
    assert rolled["status"] == "rolled-back", rolled
    server = pat_server(emulator.url)
    got = server.workbooks.download(w["id"], filepath=str(tmp_path / "rolled"), include_extract=True)
    assert got.endswith(".twbx") and open(got, "rb").read() == original
    back = next(x for x in emulator.snapshot()["workbooks"] if x["id"] == w["id"])
    assert back["datasource_ids"] == [legacy["id"]]


class Unseekable(io.RawIOBase):
    """A write-only stream: zipfile then defers sizes and CRCs to data descriptors."""

    def __init__(self):
        self.data = bytearray()

    def writable(self):
        return True

    def write(self, b):
        self.data += b
        return len(b)


def test_streamed_twbx_with_data_descriptors_is_read(emulator, tmp_path):
    snap = emulator.snapshot()
    # Not the workbook the other test turned into a .twbx: one still served as a .twb.
    _, _, taken = movable_workbook(snap)
    w = next(x for x in snap["workbooks"] if len(x["datasource_ids"]) == 1 and x["id"] != taken["id"])
    source = w["datasource_ids"][0]
    server = pat_server(emulator.url)
    twb = open(server.workbooks.download(w["id"], filepath=str(tmp_path), include_extract=False), "rb").read()
    stream = Unseekable()
    with zipfile.ZipFile(stream, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("Streamed/Streamed.twb", twb)
        z.writestr("Streamed/Data/Extracts/x.hyper", extract_bytes())
    data = bytes(stream.data)
    infos = zipfile.ZipFile(io.BytesIO(data)).infolist()
    assert all(i.flag_bits & 0x08 for i in infos), "data descriptors in use"
    path = tmp_path / "Streamed Ledger.twbx"
    path.write_bytes(data)
    item = TSC.WorkbookItem(w["project_id"], name="Streamed Ledger")
    published = server.workbooks.publish(item, str(path), TSC.Server.PublishMode.CreateNew)
    new = next(x for x in emulator.snapshot()["workbooks"] if x["id"] == published.id)
    assert new["datasource_ids"] == [source], "lineage read from the .twb inside"
    server.workbooks.populate_connections(published)
    assert {c.datasource_id for c in published.connections} == {source}
    (tmp_path / "dl").mkdir()
    got = server.workbooks.download(published.id, filepath=str(tmp_path / "dl"), include_extract=True)
    assert os.path.basename(got) == "Streamed Ledger.twbx" and open(got, "rb").read() == data
