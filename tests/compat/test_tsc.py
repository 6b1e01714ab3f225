"""The official Python client, tableauserverclient 0.42, unmodified, against the emulator.
Every expectation is computed independently from the emulator's snapshot."""

import os
import xml.etree.ElementTree as ET

import pytest
import tableauserverclient as TSC
from tableauserverclient.server.endpoint.exceptions import FailedSignInError, ServerResponseError


def pat_server(url):
    server = TSC.Server(url, use_server_version=True)
    server.auth.sign_in(TSC.PersonalAccessTokenAuth("tabflow", "tabflow", "demo"))
    return server


@pytest.fixture(scope="module")
def server(emulator):
    s = pat_server(emulator.url)
    yield s


def test_sign_in_with_pat_and_server_version(emulator, server):
    assert server.version == "3.25"
    assert server.site_id == emulator.snapshot()["site"]["id"]
    info = server.server_info.get()
    assert info.rest_api_version == "3.25"


def test_sign_in_with_password_and_wrong_password(emulator):
    s = TSC.Server(emulator.url, use_server_version=True)
    s.auth.sign_in(TSC.TableauAuth("jsmith", "tabflow", "demo"))
    me = s.users.get_by_id(s.user_id)
    assert me.name == "jsmith"
    s.auth.sign_out()
    bad = TSC.Server(emulator.url, use_server_version=True)
    with pytest.raises(FailedSignInError) as e:
        bad.auth.sign_in(TSC.TableauAuth("admin", "wrong", "demo"))
    assert "401001" in str(e.value)


@pytest.mark.parametrize(
    "endpoint,key,count",
    [
        ("workbooks", "workbooks", None),
        ("datasources", "datasources", None),
        ("users", "users", None),
        ("groups", "groups", None),
        ("projects", "projects", None),
        ("subscriptions", "subscriptions", None),
        ("webhooks", "webhooks", None),
        ("flows", "flows", None),
    ],
)
def test_pager_over_every_list(emulator, server, endpoint, key, count):
    snap = emulator.snapshot()
    items = list(TSC.Pager(getattr(server, endpoint)))
    assert len(items) == len(snap[key])
    assert len({i.id for i in items}) == len(items)


def test_pager_over_views_with_usage(emulator, server):
    snap = emulator.snapshot()
    want = {v["id"]: v["total_views"] for w in snap["workbooks"] for v in w["views"]}
    views = list(TSC.Pager(server.views, usage=True))
    assert len(views) == len(want)
    for v in views:
        assert v.total_views == want[v.id]


def test_page_size_filters_and_sorts(emulator, server):
    snap = emulator.snapshot()
    projects = {p["id"]: p["name"] for p in snap["projects"]}
    opts = TSC.RequestOptions(pagesize=50)
    opts.filter.add(TSC.Filter(TSC.RequestOptions.Field.ProjectName, TSC.RequestOptions.Operator.Equals, "Finance"))
    got = list(TSC.Pager(server.workbooks, opts))
    assert len(got) == sum(1 for w in snap["workbooks"] if projects[w["project_id"]] == "Finance")
    assert all(w.project_name == "Finance" for w in got)

    opts = TSC.RequestOptions(pagesize=1000)
    opts.filter.add(TSC.Filter(TSC.RequestOptions.Field.Tags, TSC.RequestOptions.Operator.Equals, "sensitive"))
    got = list(TSC.Pager(server.workbooks, opts))
    assert len(got) == sum(1 for w in snap["workbooks"] if "sensitive" in w["tags"])

    names = [w["name"] for w in snap["workbooks"][:3]]
    opts = TSC.RequestOptions()
    opts.filter.add(TSC.Filter(TSC.RequestOptions.Field.Name, TSC.RequestOptions.Operator.In, names))
    got = {w.name for w in TSC.Pager(server.workbooks, opts)}
    assert set(names) <= got

    john = next(u for u in snap["users"] if u["name"] == "jsmith")
    opts = TSC.RequestOptions()
    opts.filter.add(TSC.Filter(TSC.RequestOptions.Field.OwnerName, TSC.RequestOptions.Operator.Equals, "jsmith"))
    got = list(TSC.Pager(server.workbooks, opts))
    assert len(got) == sum(1 for w in snap["workbooks"] if w["owner_id"] == john["id"])

    opts = TSC.RequestOptions(pagesize=25)
    opts.sort.add(TSC.Sort(TSC.RequestOptions.Field.Name, TSC.RequestOptions.Direction.Desc))
    page, pagination = server.workbooks.get(opts)
    assert pagination.total_available == len(snap["workbooks"])
    names = [w.name.lower() for w in page]
    assert names == sorted(names, reverse=True)

    cut = "2025-06-01T00:00:00Z"
    opts = TSC.RequestOptions(pagesize=1000)
    opts.filter.add(TSC.Filter(TSC.RequestOptions.Field.UpdatedAt, TSC.RequestOptions.Operator.GreaterThan, cut))
    got = list(TSC.Pager(server.workbooks, opts))
    assert all(w.updated_at.isoformat() > "2025-06-01" for w in got)


def test_workbook_views_connections_and_update(emulator, server):
    snap = emulator.snapshot()
    model = next(w for w in snap["workbooks"] if w["datasource_ids"])
    wb = server.workbooks.get_by_id(model["id"])
    server.workbooks.populate_views(wb, usage=True)
    assert {v.id: v.total_views for v in wb.views} == {v["id"]: v["total_views"] for v in model["views"]}
    server.workbooks.populate_connections(wb)
    assert {c.datasource_id for c in wb.connections} == set(model["datasource_ids"])

    archive = next(p for p in snap["projects"] if p["name"] == "Archive")
    sarah = next(u for u in snap["users"] if u["name"] == "slee")
    wb.project_id = archive["id"]
    wb.owner_id = sarah["id"]
    server.workbooks.update(wb)
    again = server.workbooks.get_by_id(model["id"])
    assert (again.project_id, again.owner_id) == (archive["id"], sarah["id"])
    after = next(w for w in emulator.snapshot()["workbooks"] if w["id"] == model["id"])
    assert (after["project_id"], after["owner_id"]) == (archive["id"], sarah["id"])


def test_flows_get_filter_and_update_owner(emulator, server):
    snap = emulator.snapshot()
    users = {u["name"]: u for u in snap["users"]}
    john, tom, doe = users["jsmith"], users["tbaker"], users["jdoe"]
    flows, pagination = server.flows.get()
    assert pagination.total_available == len(snap["flows"])
    assert {f.id for f in flows} == {f["id"] for f in snap["flows"]}
    projects = {p["id"]: p["name"] for p in snap["projects"]}
    assert all(f.project_name == projects[f.project_id] for f in flows)

    opts = TSC.RequestOptions()
    opts.filter.add(TSC.Filter(TSC.RequestOptions.Field.OwnerName, TSC.RequestOptions.Operator.Equals, "jsmith"))
    johns = list(TSC.Pager(server.flows, opts))
    assert {f.id for f in johns} == {f["id"] for f in snap["flows"] if f["owner_id"] == john["id"]}

    # TSC's update sends the (unchanged) project with the new owner.
    model = next(f for f in snap["flows"] if f["owner_id"] == john["id"])
    flow = server.flows.get_by_id(model["id"])
    assert (flow.name, flow.project_id, flow.owner_id) == (model["name"], model["project_id"], john["id"])
    flow.owner_id = tom["id"]
    updated = server.flows.update(flow)
    assert updated.owner_id == tom["id"]
    after = next(f for f in emulator.snapshot()["flows"] if f["id"] == model["id"])
    assert (after["owner_id"], after["project_id"]) == (tom["id"], model["project_id"])

    # A flow's owner needs a Creator license: an Explorer is refused and nothing changes.
    flow = server.flows.get_by_id(model["id"])
    flow.owner_id = doe["id"]
    with pytest.raises(ServerResponseError) as e:
        server.flows.update(flow)
    assert e.value.code == "403141"
    after = next(f for f in emulator.snapshot()["flows"] if f["id"] == model["id"])
    assert after["owner_id"] == tom["id"]

    # Tags go through the flow's tags routes.
    flow = server.flows.get_by_id(model["id"])
    flow.tags.add("etl-reviewed")
    server.flows.update(flow)
    after = next(f for f in emulator.snapshot()["flows"] if f["id"] == model["id"])
    assert "etl-reviewed" in after["tags"]


def test_permissions_populate_add_delete(emulator, server):
    snap = emulator.snapshot()
    model = snap["workbooks"][7]
    group = next(g for g in snap["groups"] if g["name"] == "Contractors")
    wb = server.workbooks.get_by_id(model["id"])
    server.workbooks.populate_permissions(wb)
    before = len(wb.permissions)
    grantee = TSC.GroupItem.as_reference(group["id"])
    rule = TSC.PermissionsRule(grantee, {TSC.Permission.Capability.Read: TSC.Permission.Mode.Deny})
    server.workbooks.update_permissions(wb, [rule])
    server.workbooks.populate_permissions(wb)
    mine = [r for r in wb.permissions if r.grantee.id == group["id"]]
    assert mine and mine[0].capabilities.get("Read") == "Deny"
    assert len(wb.permissions) == before + 1
    server.workbooks.delete_permission(wb, rule)
    server.workbooks.populate_permissions(wb)
    assert not [r for r in wb.permissions if r.grantee.id == group["id"]]


def test_tags_add_and_delete(emulator, server):
    model = emulator.snapshot()["workbooks"][9]
    server.workbooks.add_tags(model["id"], ["archived-by-tabflow", "old tag"])
    tags = set(next(w for w in emulator.snapshot()["workbooks"] if w["id"] == model["id"])["tags"])
    assert {"archived-by-tabflow", "old tag"} <= tags
    server.workbooks.delete_tags(model["id"], ["old tag"])
    tags = set(next(w for w in emulator.snapshot()["workbooks"] if w["id"] == model["id"])["tags"])
    assert "old tag" not in tags and "archived-by-tabflow" in tags


def test_groups_and_members(emulator, server):
    snap = emulator.snapshot()
    group = server.groups.create(TSC.GroupItem("Compliance Reviewers"))
    user = next(u for u in snap["users"] if u["name"] == "echen")
    server.groups.add_user(group, user["id"])
    server.groups.populate_users(group)
    assert [u.id for u in group.users] == [user["id"]]
    server.groups.remove_user(group, user["id"])
    server.groups.populate_users(group)
    assert list(group.users) == []
    group.name = "Compliance"
    server.groups.update(group)
    assert any(g["name"] == "Compliance" for g in emulator.snapshot()["groups"])
    server.groups.delete(group.id)
    assert not any(g["id"] == group.id for g in emulator.snapshot()["groups"])


def test_projects_create_update_delete(emulator, server):
    snap = emulator.snapshot()
    finance = next(p for p in snap["projects"] if p["name"] == "Finance" and p["parent_id"] is None)
    p = server.projects.create(TSC.ProjectItem("Audit 2026", parent_id=finance["id"]))
    assert p.parent_id == finance["id"]
    p.description = "Year-end audit"
    server.projects.update(p)
    got = next(x for x in emulator.snapshot()["projects"] if x["id"] == p.id)
    assert got["description"] == "Year-end audit" and got["parent_id"] == finance["id"]
    server.projects.delete(p.id)
    assert not any(x["id"] == p.id for x in emulator.snapshot()["projects"])


def test_download_and_republish_workbook(emulator, server, tmp_path):
    snap = emulator.snapshot()
    model = next(w for w in snap["workbooks"] if w["datasource_ids"])
    path = server.workbooks.download(model["id"], filepath=str(tmp_path), include_extract=False)
    root = ET.parse(path).getroot()
    assert root.tag == "workbook"
    proxies = {c.get("dbname") for c in root.iter("connection") if c.get("class") == "sqlproxy"}
    urls = {d["content_url"] for d in snap["datasources"] if d["id"] in model["datasource_ids"]}
    assert proxies == urls
    item = TSC.WorkbookItem(model["project_id"], name=model["name"])
    published = server.workbooks.publish(item, path, TSC.Server.PublishMode.Overwrite)
    assert published.id == model["id"]
    revisions = server.workbooks.revisions(published) if hasattr(server.workbooks, "revisions") else None
    wb = server.workbooks.get_by_id(model["id"])
    server.workbooks.populate_revisions(wb)
    assert len(wb.revisions) == model["revision"] + 1


def test_datasource_download_and_publish(emulator, server, tmp_path):
    snap = emulator.snapshot()
    model = next(d for d in snap["datasources"] if d["fields"])
    path = server.datasources.download(model["id"], filepath=str(tmp_path), include_extract=False)
    root = ET.parse(path).getroot()
    assert root.tag == "datasource"
    assert {c.get("name") for c in root.iter("column")} == {f"[{f}]" for f in model["fields"]}
    item = TSC.DatasourceItem(model["project_id"], name=model["name"])
    published = server.datasources.publish(item, path, TSC.Server.PublishMode.Overwrite)
    assert published.id == model["id"]


def test_metadata_api(emulator, server):
    snap = emulator.snapshot()
    result = server.metadata.query("{ publishedDatasources { luid name downstreamWorkbooks { luid name } } }")
    nodes = result["data"]["publishedDatasources"]
    assert len(nodes) == len(snap["datasources"])
    for n in nodes[:20]:
        want = {w["id"] for w in snap["workbooks"] if n["luid"] in w["datasource_ids"]}
        assert {w["luid"] for w in n["downstreamWorkbooks"]} == want
    query = """query pds($first: Int, $afterToken: String) {
        publishedDatasourcesConnection(first: $first, after: $afterToken) {
          nodes { luid } pageInfo { hasNextPage endCursor } totalCount } }"""
    pages = server.metadata.paginated_query(query, variables={"first": 7, "afterToken": None})
    luids = [n["luid"] for p in pages["pages"] for n in p["data"]["publishedDatasourcesConnection"]["nodes"]]
    assert sorted(luids) == sorted(d["id"] for d in snap["datasources"])
    bad = server.metadata.query("{ publishedDatasources { nosuchfield } }")
    assert bad["errors"]


def test_delete_user_with_map_assets_to(emulator, server):
    snap = emulator.snapshot()
    john = next(u for u in snap["users"] if u["name"] == "jsmith")
    sarah = next(u for u in snap["users"] if u["name"] == "slee")
    owned = {w["id"] for w in snap["workbooks"] if w["owner_id"] == john["id"]}
    assert owned
    server.users.remove(john["id"], map_assets_to=sarah["id"])
    after = emulator.snapshot()
    assert not any(u["id"] == john["id"] for u in after["users"])
    assert all(w["owner_id"] == sarah["id"] for w in after["workbooks"] if w["id"] in owned)


def test_users_add_update(emulator, server):
    u = server.users.add(TSC.UserItem("auditor1", TSC.UserItem.Roles.Viewer))
    u.site_role = TSC.UserItem.Roles.Explorer
    u.fullname = "First Auditor"
    server.users.update(u)
    got = next(x for x in emulator.snapshot()["users"] if x["id"] == u.id)
    assert (got["site_role"], got["full_name"]) == ("Explorer", "First Auditor")


def test_unknown_ids_raise_404(server):
    with pytest.raises(ServerResponseError) as e:
        server.workbooks.get_by_id("00000000-0000-0000-0000-000000000000")
    assert e.value.code.startswith("404")


def test_second_pat_sign_in_displaces_the_first(emulator):
    first = pat_server(emulator.url)
    first.projects.get()
    pat_server(emulator.url)
    with pytest.raises(Exception) as e:
        first.projects.get()
    assert "401002" in str(e.value) or "Unauthorized" in str(e.value)


def test_sign_out(emulator):
    s = pat_server(emulator.url)
    token = s.auth_token
    s.auth.sign_out()
    assert not s.is_signed_in()
    # The server ended the session: the old token is refused.
    import urllib.request, urllib.error
    req = urllib.request.Request(f"{emulator.url}/api/3.25/sites/{emulator.snapshot()['site']['id']}/projects", headers={"X-Tableau-Auth": token})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req)
    assert e.value.code == 401


def test_subscriptions_suspended_read_and_resumed(emulator):
    # A session of its own: earlier tests sign the module's session out.
    server = pat_server(emulator.url)
    # Tableau suspends a subscription after repeated failures (REST `suspended`); the
    # subscription cleanup reads it, and a resume is an update with suspended="false".
    snap = emulator.snapshot()
    want = {s["id"] for s in snap["subscriptions"] if s.get("suspended")}
    assert len(want) == 3, want
    subs = list(TSC.Pager(server.subscriptions))
    assert {s.id for s in subs if s.suspended} == want
    one = next(s for s in subs if s.id in want)
    one.suspended = False
    server.subscriptions.update(one)
    assert not server.subscriptions.get_by_id(one.id).suspended
    assert not next(s for s in emulator.snapshot()["subscriptions"] if s["id"] == one.id).get("suspended")
    one.suspended = True
    server.subscriptions.update(one)
    assert server.subscriptions.get_by_id(one.id).suspended
