"""tableauserverclient 0.42, unmodified, on schedules, extract refresh tasks and background
jobs against the emulator (extract refresh health, issue #18). Expectations come from the
emulator's own snapshot of the demo site."""

import datetime

import pytest
import tableauserverclient as TSC
from tableauserverclient.server.endpoint.exceptions import ServerResponseError


@pytest.fixture(scope="module")
def server(emulator):
    s = TSC.Server(emulator.url, use_server_version=True)
    s.auth.sign_in(TSC.PersonalAccessTokenAuth("tabflow", "tabflow", "demo"))
    yield s


def test_schedules_get_with_their_intervals(emulator, server):
    snap = emulator.snapshot()
    schedules, pagination = server.schedules.get()
    assert pagination.total_available == len(snap["schedules"]) == 9
    by_id = {s.id: s for s in schedules}
    for want in snap["schedules"]:
        got = by_id[want["id"]]
        assert got.name == want["name"]
        assert got.state == want["state"]
        assert got.priority == want["priority"]
        assert got.schedule_type == want["type"]
        assert got.execution_order == want["execution_order"]
        interval = got.interval_item
        assert interval._frequency == want["frequency"]
        assert interval.start_time == datetime.time.fromisoformat(want["start_time"])
    weekly = next(s for s in schedules if s.name == "Weekend (Sunday 1am)")
    assert weekly.interval_item.interval == ("Sunday",)
    assert [s.name for s in schedules if s.state == "Suspended"] == ["Legacy Saturday load"]
    one = server.schedules.get_by_id(weekly.id)
    assert one.name == weekly.name and one.state == "Active"


def test_schedule_suspend_and_resume(emulator, server):
    schedules, _ = server.schedules.get()
    nightly = next(s for s in schedules if s.name == "Nightly (2am)")
    nightly.state = TSC.ScheduleItem.State.Suspended
    updated = server.schedules.update(nightly)
    assert updated.state == "Suspended"
    assert next(s for s in emulator.snapshot()["schedules"] if s["id"] == nightly.id)["state"] == "Suspended"
    nightly.state = TSC.ScheduleItem.State.Active
    assert server.schedules.update(nightly).state == "Active"
    assert next(s for s in emulator.snapshot()["schedules"] if s["id"] == nightly.id)["state"] == "Active"
    # A state Tableau does not know is refused and changes nothing.
    nightly._state = "Paused"
    with pytest.raises(ServerResponseError) as e:
        server.schedules.update(nightly)
    assert e.value.code.startswith("400")
    assert next(s for s in emulator.snapshot()["schedules"] if s["id"] == nightly.id)["state"] == "Active"


def test_tasks_get_and_get_by_id(emulator, server):
    snap = emulator.snapshot()
    want = {t["id"]: t for t in snap["extract_refreshes"]}
    tasks, _ = server.tasks.get()
    assert len(tasks) == len(want) == 69
    for t in tasks:
        w = want[t.id]
        assert t.task_type == TSC.TaskItem.Type.ExtractRefresh
        assert t.consecutive_failed_count == w["consecutive_failures"]
        assert t.priority == w["priority"]
        assert (t.target.type, t.target.id) == (w["target"]["type"], w["target"]["id"])
        if w.get("schedule_id"):
            assert t.schedule_id == w["schedule_id"]
        else:
            # Cloud style: a schedule of its own, no schedule id.
            assert t.schedule_id is None
            assert t.schedule_item.interval_item._frequency == w["own_schedule"]["frequency"]
    assert sum(1 for t in tasks if t.consecutive_failed_count > 0) == 4
    failing = next(t for t in tasks if t.consecutive_failed_count > 0)
    one = server.tasks.get_by_id(failing.id)
    assert one.id == failing.id and one.consecutive_failed_count == failing.consecutive_failed_count
    with pytest.raises(ServerResponseError) as e:
        server.tasks.get_by_id("00000000-0000-0000-0000-000000000000")
    assert e.value.code.startswith("404")


def test_schedule_extracts_list(emulator, server):
    snap = emulator.snapshot()
    sched = next(s for s in snap["schedules"] if s["name"] == "Legacy Saturday load")
    extracts, _ = server.schedules.get_extract_refresh_tasks(sched["id"])
    want = {t["id"] for t in snap["extract_refreshes"] if t.get("schedule_id") == sched["id"]}
    assert {x.id for x in extracts} == want and len(want) == 3


def test_run_now_records_a_job(emulator, server):
    tasks, _ = server.tasks.get()
    ok = next(t for t in tasks if t.consecutive_failed_count == 0)
    failing = next(t for t in tasks if t.consecutive_failed_count > 0)
    before = len(emulator.snapshot()["refresh_jobs"])
    assert b"<job" in server.tasks.run(ok)
    server.tasks.run(failing)
    snap = emulator.snapshot()
    jobs = snap["refresh_jobs"][before:]
    assert [(j["task_id"], j["finish_code"]) for j in jobs] == [(ok.id, 0), (failing.id, 1)]
    assert server.tasks.get_by_id(failing.id).consecutive_failed_count == failing.consecutive_failed_count + 1


def test_jobs_get_background_jobs(emulator, server):
    snap = emulator.snapshot()
    jobs = list(TSC.Pager(server.jobs))
    refresh = [j for j in jobs if j.type == "refresh_extracts"]
    assert len(refresh) == len(snap["refresh_jobs"])
    failed = {j["id"] for j in snap["refresh_jobs"] if j["finish_code"] == 1}
    assert {j.id for j in refresh if j.status == "Failed"} == failed
    assert all(j.started_at <= j.ended_at for j in refresh)
    opts = TSC.RequestOptions()
    opts.filter.add(TSC.Filter(TSC.RequestOptions.Field.Status, TSC.RequestOptions.Operator.Equals, "Failed"))
    only_failed, _ = server.jobs.get(req_options=opts)
    assert {j.id for j in only_failed} == failed
    # A failed refresh's job says why, and for which content.
    one = server.jobs.get_by_id(sorted(failed)[0])
    assert one.finish_code == 1


def test_delete_and_recreate_on_the_schedule(emulator, server):
    snap = emulator.snapshot()
    task = next(t for t in snap["extract_refreshes"] if t.get("schedule_id") and t["target"]["type"] == "workbook")
    server.tasks.delete(task["id"])
    assert task["id"] not in {t["id"] for t in emulator.snapshot()["extract_refreshes"]}
    with pytest.raises(ServerResponseError):
        server.tasks.get_by_id(task["id"])
    # Tableau Server re-creates it by adding the workbook to the schedule (a new task).
    wb = server.workbooks.get_by_id(task["target"]["id"])
    assert server.schedules.add_to_schedule(task["schedule_id"], workbook=wb) == []
    again = [
        t
        for t in emulator.snapshot()["extract_refreshes"]
        if t["target"]["id"] == wb.id and t.get("schedule_id") == task["schedule_id"]
    ]
    assert len(again) == 1 and again[0]["id"] != task["id"]


def test_cloud_create_task_with_its_own_schedule(emulator, server):
    snap = emulator.snapshot()
    ds = next(d for d in snap["datasources"] if not any(t["target"]["id"] == d["id"] for t in snap["extract_refreshes"]))
    interval = TSC.DailyInterval(datetime.time(3, 30), 24)
    schedule = TSC.ScheduleItem(None, None, None, None, interval)
    item = TSC.TaskItem(None, "FullRefresh", None, schedule_item=schedule, target=TSC.Target(ds["id"], "datasource"))
    body = server.tasks.create(item)
    assert b"<extractRefresh" in body
    created = [t for t in emulator.snapshot()["extract_refreshes"] if t["target"]["id"] == ds["id"]]
    assert len(created) == 1
    assert created[0]["own_schedule"]["frequency"] == "Daily"
    assert created[0]["own_schedule"]["start_time"] == "03:30:00"
