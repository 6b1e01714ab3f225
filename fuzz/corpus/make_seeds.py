#!/usr/bin/env python3
"""Writes the hand-made seeds of fuzz/corpus: real fixtures copied in, and hostile inputs
built byte by byte. Run from the repository root; the files are committed, so this only
documents how they were made (and remakes them after a change here).

The plan and snapshot seeds `plan/draft-*.json` and `snapshot/generated-scale-*.json` were
written by `Plan::draft(..).seal()` and `tabflow_site::generate::generate(scale, seed)` (scale 1 seed 7, scale 12 seed 42)."""

import io
import json
import shutil
import struct
import sys
import zipfile
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "fuzz" / "corpus"
FIXTURES = Path("/work/shared/fixtures/tableau")

TWB = (b"<?xml version='1.0' encoding='utf-8' ?>\n<workbook><datasources>"
       b"<datasource name='sqlproxy.0' caption='Sales'><connection class='sqlproxy' dbname='SalesOld' "
       b"server-ds-friendly-name='Sales' /></datasource></datasources>"
       b"<worksheets><worksheet name='S'><table><view><datasources><datasource name='sqlproxy.0' />"
       b"</datasources></view></table></worksheet></worksheets></workbook>\n")


def write(target, name, data):
    (CORPUS / target).mkdir(parents=True, exist_ok=True)
    (CORPUS / target / name).write_bytes(data if isinstance(data, bytes) else data.encode())


def zipped(entries, method=zipfile.ZIP_DEFLATED, **kw):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method, **kw) as z:
        for name, data in entries:
            info = zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0))
            info.compress_type = method
            z.writestr(info, data)
    return buf.getvalue()


def local(name, data, crc=None, size=None):
    name = name.encode()
    crc = zlib.crc32(data) if crc is None else crc
    size = len(data) if size is None else size
    return (b"PK\x03\x04" + struct.pack("<HHHHHIIIHH", 10, 0, 0, 0, 0x21, crc, len(data), size, len(name), 0)
            + name + data)


def directory(body, records, count=None):
    """`records`: (name, offset, data) stored entries; `count` overrides the entry count."""
    cd = b""
    for name, offset, data in records:
        n = name.encode()
        cd += (b"PK\x01\x02" + struct.pack("<HHHHHHIIIHHHHHII", 10, 10, 0, 0, 0, 0x21, zlib.crc32(data),
                                            len(data), len(data), len(n), 0, 0, 0, 0, 0, offset) + n)
    count = len(records) if count is None else count
    end = b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, count, count, len(cd), len(body), 0)
    return body + cd + end


def zip_seeds():
    for name in ["python-descriptors.twbx", "python-zip64.twbx"]:
        shutil.copy(ROOT / "crates/tabflow-wire/testdata" / name, CORPUS / "zip" / name)
    write("zip", "package.twbx", zipped([("Book.twb", TWB), ("Data/Extracts/x.hyper", bytes(range(256)) * 4),
                                         ("Image/é.png", b"\x89PNG\r\n")]))
    write("zip", "stored.twbx", zipped([("Book.twb", TWB)], zipfile.ZIP_STORED))
    write("zip", "nested-folder.twbx", zipped([("Book/", b""), ("Book/Sales.twb", TWB), ("__MACOSX/._Sales.twb", b"x")]))
    write("zip", "empty.zip", b"PK\x05\x06" + bytes(18))
    body = local("a.twb", TWB)
    write("zip", "overlap-same-header.zip", directory(body, [("a.twb", 0, TWB), ("b.twb", 0, TWB)]))
    inner = local("inner.twb", TWB)
    outer = local("outer.bin", inner)
    write("zip", "overlap-nested.zip", directory(outer, [("outer.bin", 0, inner), ("inner.twb", len(outer) - len(inner), TWB)]))
    write("zip", "past-the-end.zip", directory(body, [("a.twb", 0, TWB), ("b.twb", 1 << 30, TWB)]))
    write("zip", "unsafe-names.twbx", zipped([("Book.twb", TWB), ("../evil.twb", b"x"), ("/etc/x", b"y"), ("C:/z", b"z")]))
    # A megabyte of zeros whose headers claim 100 bytes.
    bomb = bytearray(zipped([("bomb.twb", bytes(1 << 20))]))
    bomb[22:26] = struct.pack("<I", 100)
    cd = bomb.find(b"PK\x01\x02")
    bomb[cd + 24:cd + 28] = struct.pack("<I", 100)
    write("zip", "understated-size.twbx", bytes(bomb))
    write("zip", "claims-65535-entries.zip", b"PK\x05\x06\0\0\0\0\xff\xff\xff\xff\xff\xff\xff\xff\0\0\0\0\0\0")
    write("zip", "claims-zip64.zip", b"PK\x06\x06" + struct.pack("<QHHIIQQQQ", 44, 45, 45, 0, 0, 1 << 60, 1 << 60, 1 << 62, 0)
          + b"PK\x06\x07" + struct.pack("<IQI", 0, 0, 1) + b"PK\x05\x06" + b"\xff" * 16 + b"\0\0")
    locked = bytearray(zipped([("Book.twb", TWB)]))
    cd = locked.find(b"PK\x01\x02")
    locked[cd + 8] |= 1
    write("zip", "encrypted-flag.twbx", bytes(locked))
    bz = bytearray(zipped([("Book.twb", TWB)]))
    bz[bz.find(b"PK\x01\x02") + 10] = 12
    write("zip", "bzip2-method.twbx", bytes(bz))
    write("zip", "prepended.twbx", b"#!/bin/sh\nexit 0\n" + zipped([("Book.twb", TWB)]))
    write("zip", "not-a-zip.twb", TWB)


def twb_seeds():
    shutil.copy(FIXTURES / "RESTAPISample.twb", CORPUS / "twb" / "RESTAPISample.twb")
    write("twb", "sqlproxy.twb", TWB)
    write("twb", "sqlproxy.twbx", zipped([("Book.twb", TWB), ("Data/x.hyper", b"hyper")]))
    write("twb", "two-proxies.twb", TWB.replace(b"</datasources></workbook>", b"<datasource name='sqlproxy.1'><connection "
          b"class='sqlproxy' dbname='Other' server-ds-friendly-name='Other &amp; More' /></datasource></datasources></workbook>"))
    write("twb", "not-a-workbook.xml", b"<datasource><connection class='sqlproxy' dbname='SalesOld'/></datasource>")
    write("twb", "deep.twb", b"<workbook>" + b"<a>" * 5000 + b"</a>" * 5000 + b"</workbook>")
    write("twb", "entities.twb", b"<?xml version='1.0'?><!DOCTYPE workbook [<!ENTITY a 'aaaaaaaaaa'><!ENTITY b '&a;&a;&a;&a;&a;"
          b"&a;&a;&a;&a;&a;'><!ENTITY c '&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;'>]><workbook><connection class='sqlproxy' dbname='&c;'/></workbook>")
    write("twb", "bom-and-latin1.twb", b"\xef\xbb\xbf<workbook name='\xe9'/>")
    write("twb", "unclosed.twb", TWB[:len(TWB) // 2])
    write("twb", "prefixed-attributes.twb", b"<workbook xmlns:user='u'><connection user:class='sqlproxy' class='sqlproxy' "
          b"dbname='SalesOld' dbname='dup'/></workbook>")
    write("twb", "multibyte.twb", "<workbook><connection class='sqlproxy' dbname='丸İ' server-ds-friendly-name='ﬁ‮'/></workbook>")


def xml_seeds():
    for f in sorted(FIXTURES.glob("*.xml")) + sorted(FIXTURES.glob("metadata_*.json")):
        shutil.copy(f, CORPUS / "xml" / f.name)
    write("xml", "entity-expansion.xml", b"<?xml version='1.0'?><!DOCTYPE t [<!ENTITY a 'aaaaaaaa'><!ENTITY b '&a;&a;&a;&a;"
          b"&a;&a;&a;&a;'>]><tsResponse xmlns='http://tableau.com/api'><error code='&b;'><summary>&b;</summary></error></tsResponse>")
    write("xml", "deep.xml", b"<tsResponse>" + b"<workbooks><workbook>" * 2000 + b"</workbook></workbooks>" * 2000 + b"</tsResponse>")
    write("xml", "huge-numbers.xml", b"<tsResponse><pagination pageNumber='99999999999999999999' pageSize='-1' "
          b"totalAvailable='1e400'/></tsResponse>")
    write("xml", "request-credentials.xml", b"<tsRequest><credentials name='a' password='\xe4\xb8\xb8'><site contentUrl=''/>"
          b"</credentials></tsRequest>")
    write("xml", "filter.txt", b"name:eq:Sales,tags:in:[a,b,c],updatedAt:gte:2026-01-01T00:00:00Z,name:eq:\xe4\xb8\xb8")
    write("xml", "not-xml.txt", b"\x00\x01\x02<<>>&&;;")


def nl_seeds():
    lines = []
    for f in ["fresh.jsonl", "extended.jsonl", "names.jsonl"]:
        rows = (ROOT / "crates/tabflow-nl/tests/data" / f).read_text().splitlines()
        lines += [json.loads(r)["request"] for r in rows[:6] if r.strip()]
    for k, line in enumerate(lines):
        write("nl", f"request-{k:02}.txt", line)
    hostile = ["archive a丸ed workbooks in Finance", "İİ use ‘X’", "ßTRASSE İstanbul's workbooks every Monday",
               "\u202earchive\u202c old 😀👨\u200d👩\u200d👧 workbooks", "丸丸ing 丸ed ññing", "\0\x07\x1b[31m archive",
               "e\u0301d ı ǅ ﬁ Ⅻ ² ٣ مرحبا עברית", "archive " * 2000, "\"unterminated 'quote `x"]
    for k, line in enumerate(hostile):
        write("nl", f"hostile-{k:02}.txt", line)


def plan_seeds():
    src = (CORPUS / "plan" / "draft-0.json").read_text()
    plan = json.loads(src)
    write("plan", "wrong-format.json", json.dumps({**plan, "format": "tabflow-plan/999"}))
    write("plan", "fingerprint-mismatch.json", json.dumps({**plan, "request": plan["request"] + "!"}))
    write("plan", "no-format.json", "{}")
    write("plan", "deep.json", "[" * 10000 + "]" * 10000)
    write("plan", "huge-numbers.json", json.dumps({**plan, "version": 10 ** 30}).replace("1000000000000000000000000000000", "1e999"))
    write("plan", "dangling-step.json", json.dumps({**plan, "steps": [{"id": "s1", "kind": "archive", "title": "x",
                                                                       "depends_on": ["nope"], "rollback": "none", "effect": "write"}]}))


def snapshot_seeds():
    site = json.loads((CORPUS / "snapshot" / "generated-scale-1.json").read_text())
    empty = {k: ([] if isinstance(v, list) else v) for k, v in site.items()}
    write("snapshot", "empty-lists.json", json.dumps(empty))
    write("snapshot", "wrong-format.json", json.dumps({**empty, "format": "tabflow-site/0"}))
    dup = dict(empty)
    dup["users"] = site["users"][:1] * 2
    write("snapshot", "duplicate-user.json", json.dumps(dup))
    write("snapshot", "deep.json", "{\"format\":" + "[" * 10000)
    write("snapshot", "bad-date.json", json.dumps({**empty, "now": "2026-13-45T99:00:00Z"}))


def graphql_seeds():
    """The emulator's Metadata API: queries as the client sends them (the lineage queries of
    tabflow-client), the JSON envelope with variables, and hostile shapes: over the depth,
    node and size limits, fragment cycles, unbalanced brackets, bad escapes, mutations."""
    lineage = ("query ds($l: String!) { publishedDatasources(filter: {luid: $l}) { luid name projectName "
               "fields { name } upstreamTables { name schema database { name connectionType } } "
               "downstreamWorkbooks { luid name } owner { username } } }")
    write("graphql", "lineage.json", json.dumps({"query": lineage, "variables": {"l": "x"}}))
    write("graphql", "lineage.graphql", lineage)
    paging = ("query wbs($first: Int, $after: String) { workbooksConnection(first: $first, after: $after) { "
              "nodes { luid upstreamDatasources { luid } } pageInfo { hasNextPage endCursor } totalCount } }")
    write("graphql", "paging.json", json.dumps({"query": paging, "variables": {"first": 3, "after": "bm9wZQ=="}}))
    write("graphql", "fragments.graphql", "query { workbooks { ...W ... on Workbook { __typename } } } "
          "fragment W on Workbook { luid name sheets @include(if: true) { name } }")
    write("graphql", "filter-within.graphql", 'query { databaseTables(filter: {nameWithin: ["a", "b"]}, '
          'orderBy: {field: NAME, direction: DESC}) { name } }')
    write("graphql", "fragment-cycle.graphql", "query { workbooks { ...A } } fragment A on Workbook { ...B } "
          "fragment B on Workbook { ...A }")
    write("graphql", "two-anonymous.graphql", "{ workbooks { luid } } { workbooks { name } }")
    write("graphql", "mutation.graphql", "mutation { deleteWorkbook(id: 1) { ok } }")
    write("graphql", "deep-selection.graphql", "query { workbooks " + "{ owner " * 40 + "{ name }" + " }" * 41)
    write("graphql", "deep-value.graphql", "query { workbooks(filter: " + "[" * 5000 + "]" * 5000 + ") { luid } }")
    write("graphql", "unbalanced.graphql", "query { workbooks { luid " + "{" * 100)
    write("graphql", "many-nodes.graphql", "query { workbooks { " + "luid " * 3000 + "} }")
    write("graphql", "bad-escape.graphql", 'query { workbooks(filter: {name: "\\u12\\uD800\\x"}) { luid } }')
    write("graphql", "unicode.graphql", "query { workbooks(filter: {name: \"丸İİ\u202e\"}) { luid name } }")
    write("graphql", "variables-wrong-type.json", json.dumps({"query": paging, "variables": {"first": "many"},
                                                             "operationName": "wbs"}))
    write("graphql", "unknown-operation.json", json.dumps({"query": lineage, "operationName": "nope"}))
    write("graphql", "not-graphql.bin", bytes(range(256)))


if __name__ == "__main__":
    for make in [zip_seeds, twb_seeds, xml_seeds, nl_seeds, plan_seeds, snapshot_seeds, graphql_seeds]:
        make()
    sys.exit(0)
