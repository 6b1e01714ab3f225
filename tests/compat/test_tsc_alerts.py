"""tableauserverclient, unmodified, on data-driven alerts against the emulator: the list and
one alert with its recipients, adding and removing a recipient (what an offboarding's rollback
does for a re-created account). Expectations come from the emulator's own snapshot."""

import pytest
import tableauserverclient as TSC
from tableauserverclient.server.endpoint.exceptions import ServerResponseError


@pytest.fixture(scope="module")
def server(emulator):
    s = TSC.Server(emulator.url, use_server_version=True)
    s.auth.sign_in(TSC.PersonalAccessTokenAuth("tabflow", "tabflow", "demo"))
    yield s


def test_alerts_list_with_their_view_workbook_and_project(emulator, server):
    snap = emulator.snapshot()
    alerts, pagination = server.data_alerts.get()
    assert pagination.total_available == len(snap["data_alerts"]) > 0
    views = {v["id"]: (w, v) for w in snap["workbooks"] for v in w["views"]}
    projects = {p["id"]: p["name"] for p in snap["projects"]}
    for want in snap["data_alerts"]:
        got = next(a for a in alerts if a.id == want["id"])
        assert got.subject == want["subject"]
        assert got.owner_id == want["owner_id"]
        w, v = views[want["view_id"]]
        assert (got.view_id, got.view_name) == (v["id"], v["name"])
        assert (got.workbook_id, got.workbook_name) == (w["id"], w["name"])
        assert (got.project_id, got.project_name) == (w["project_id"], projects[w["project_id"]])


def test_recipients_are_added_and_removed(emulator, server):
    snap = emulator.snapshot()
    want = next(a for a in snap["data_alerts"] if a["recipients"])
    alert = server.data_alerts.get_by_id(want["id"])
    assert sorted(alert.recipients) == sorted(want["recipients"])
    newcomer = next(u for u in snap["users"] if u["id"] not in want["recipients"] and u["site_role"] != "Unlicensed")

    added = server.data_alerts.add_user_to_alert(alert, newcomer["id"])
    assert added.id == newcomer["id"] and added.name == newcomer["name"]
    assert newcomer["id"] in server.data_alerts.get_by_id(alert.id).recipients
    # Twice is a conflict, and changes nothing.
    with pytest.raises(ServerResponseError) as e:
        server.data_alerts.add_user_to_alert(alert, newcomer["id"])
    assert e.value.code.startswith("409")

    server.data_alerts.delete_user_from_alert(alert, newcomer["id"])
    assert sorted(server.data_alerts.get_by_id(alert.id).recipients) == sorted(want["recipients"])
    with pytest.raises(ServerResponseError) as e:
        server.data_alerts.delete_user_from_alert(alert, newcomer["id"])
    assert e.value.code.startswith("404")
    # An unknown user or alert is a 404 that changes nothing.
    with pytest.raises(ServerResponseError) as e:
        server.data_alerts.add_user_to_alert(alert, "00000000-0000-0000-0000-000000000000")
    assert e.value.code.startswith("404")
    assert next(a for a in emulator.snapshot()["data_alerts"] if a["id"] == alert.id)["recipients"] == want["recipients"]
