"""The orphan sweep's rules, fed the hub's and the bridge's JSON (no hub, no Slurm).

Each rule of slurm_ssh_bridge.sweep has a case here, the never-cancel ones
included: hub API failed or unexpected, visible false, another tag, a spawn
in flight, inside the grace period, report mode, the per-sweep limit.
"""

from __future__ import annotations

import http.server
import json
import os
import stat
import sys
import threading

import pytest

from slurm_ssh_bridge.service import SWEEP_SCOPES, orphan_sweep_role, orphan_sweep_service
from slurm_ssh_bridge.sweep import (BridgeCli, HubApi, SweepInputError, Sweeper, SweepService, SweepSettings,
                                    bridge_view_from_jobs, hub_view_from_users, main)

GRACE = 600.0


def server(job_id=None, pending=None, state=True):
    model = {"pending": pending, "ready": pending is None, "stopped": False}
    if state:
        model["state"] = {"job_id": job_id, "job_status": "RUNNING node1"} if job_id else {}
    return model


def hub_users(**servers_by_user):
    """Pages of GET /hub/api/users as JupyterHub 3 (pagination Accept) answers."""
    items = [{"kind": "user", "name": name, "servers": servers} for name, servers in servers_by_user.items()]
    return [{"items": items, "_pagination": {"offset": 0, "limit": 200, "total": len(items), "next": None}}]


def jobs(*entries, tag="jupyterhub", visible=True, why=None):
    answer = {"ok": True, "tag": tag, "visible": visible,
              "jobs": [{"job_id": j, "user": u, "state": s, "token": "ab" * 16} for j, u, s in entries]}
    if why:
        answer["why"] = why
    return answer


def decide(sweeper, hub_pages, bridge_answer, now):
    return sweeper.decide(hub_view_from_users(hub_pages), bridge_view_from_jobs(bridge_answer), now)


def actions(decisions):
    return {d.job_id: d.action for d in decisions}


# ------------------------------------------------------------------ rules


def test_tracked_jobs_are_left_alone_and_untracked_wait_for_the_grace_period():
    sw = Sweeper(SweepSettings(mode="cancel", grace_s=GRACE))
    hub = hub_users(**{"alice.proj1": {"": server("101")}, "bob.proj1": {"gpu": server("102")}})
    bridge = jobs(("101", "alice.proj1", "RUNNING"), ("102", "bob.proj1", "RUNNING"), ("103", "bob.proj1", "RUNNING"))
    d, figures = decide(sw, hub, bridge, now=1000.0)
    assert actions(d) == {"103": "wait"}
    assert figures["tracked"] == 2 and figures["untracked"] == 1 and figures["slurm_jobs"] == 3
    d, _ = decide(sw, hub, bridge, now=1000.0 + GRACE - 1)
    assert actions(d) == {"103": "wait"}
    d, _ = decide(sw, hub, bridge, now=1000.0 + GRACE)
    assert actions(d) == {"103": "cancel"}
    assert d[0].user == "bob.proj1" and d[0].age_s == GRACE


def test_named_servers_and_stopped_servers_count_as_tracked():
    sw = Sweeper(SweepSettings(mode="cancel", grace_s=0))
    hub = hub_users(**{"alice.proj1": {"": server("7"), "second": server("8"), "old": server(None)}})
    d, _ = decide(sw, hub, jobs(("7", "alice.proj1", "RUNNING"), ("8", "alice.proj1", "PENDING")), 5.0)
    assert d == []


def test_report_mode_reports_and_never_cancels():
    sw = Sweeper(SweepSettings(mode="report", grace_s=10))
    bridge = jobs(("5", "alice.proj1", "RUNNING"))
    decide(sw, hub_users(), bridge, 0.0)
    d, _ = decide(sw, hub_users(), bridge, 1e6)
    assert actions(d) == {"5": "report"}
    assert "not cancelled" in d[0].reason


def test_a_job_that_becomes_tracked_loses_its_clock():
    sw = Sweeper(SweepSettings(mode="cancel", grace_s=100))
    bridge = jobs(("5", "alice.proj1", "RUNNING"))
    decide(sw, hub_users(), bridge, 0.0)
    # batchspawner saved the job id: tracked now.
    assert decide(sw, hub_users(**{"alice.proj1": {"": server("5")}}), bridge, 50.0)[0] == []
    # Untracked again later: the grace period starts again.
    d, _ = decide(sw, hub_users(), bridge, 120.0)
    assert actions(d) == {"5": "wait"}


def test_a_spawn_in_flight_holds_its_users_jobs():
    sw = Sweeper(SweepSettings(mode="cancel", grace_s=0))
    spawning = hub_users(**{"alice": {"": server(None, pending="spawn")}, "bob.proj1": {}})
    bridge = jobs(("5", "alice.proj1", "RUNNING"), ("6", "alice", "PENDING"), ("7", "bob.proj1", "RUNNING"))
    d, figures = decide(sw, spawning, bridge, 10.0)
    # alice's job (also the BriCS form alice.<project>) is held; bob's is not.
    assert actions(d) == {"5": "hold", "6": "hold", "7": "cancel"}
    assert figures["spawning_users"] == 1
    # a pending spawn that has its job id no longer holds the others.
    done = hub_users(**{"alice": {"": server("6", pending="spawn")}})
    d, _ = decide(sw, done, bridge, 20.0)
    assert actions(d) == {"5": "cancel", "7": "cancel"}


def test_at_most_max_cancels_per_sweep():
    sw = Sweeper(SweepSettings(mode="cancel", grace_s=0, max_cancels=2))
    bridge = jobs(*[(str(i), "bob.proj1", "RUNNING") for i in range(10, 15)])
    d, _ = decide(sw, hub_users(), bridge, 1.0)
    assert [a for a in actions(d).values()].count("cancel") == 2
    assert [a for a in actions(d).values()].count("limit") == 3


def test_ending_jobs_are_reported_not_cancelled():
    sw = Sweeper(SweepSettings(mode="cancel", grace_s=0))
    d, _ = decide(sw, hub_users(), jobs(("9", "bob.proj1", "COMPLETING")), 1.0)
    assert actions(d) == {"9": "ending"}


def test_not_visible_concludes_nothing():
    sw = Sweeper(SweepSettings(mode="cancel", grace_s=0))
    answer = jobs(visible=False, why="squeue shows only the service account's own jobs")
    answer.pop("jobs")
    with pytest.raises(SweepInputError, match="cannot see other users' jobs .squeue shows only"):
        decide(sw, hub_users(), answer, 1.0)


def test_another_tag_concludes_nothing():
    sw = Sweeper(SweepSettings(mode="cancel", grace_s=0, tag="hub-a"))
    with pytest.raises(SweepInputError, match="tag 'hub-b', this sweep is for tag 'hub-a'"):
        decide(sw, hub_users(), jobs(("1", "bob.proj1", "RUNNING"), tag="hub-b"), 1.0)


@pytest.mark.parametrize("pages, message", [
    ([{"items": [{"name": "alice", "servers": {"": {"pending": None}}}]}], "admin:server_state"),
    ([{"items": [{"name": "alice"}]}], "read:servers"),
    ([{"items": [{"name": "alice", "servers": {"": {"state": {"job_id": "12; rm"}}}}]}], "not a Slurm job id"),
    ([{"items": [{"name": "alice", "servers": {"": {"state": "x"}}}]}], "not an object"),
    ([{"items": [{"servers": {}}]}], "without a name"),
    ([{"error": "nope"}], "neither a list"),
    ([["not a user"]], "without a name"),
    (["a page that is a string"], "neither a list"),
])
def test_an_unexpected_hub_answer_concludes_nothing(pages, message):
    with pytest.raises(SweepInputError, match=message):
        hub_view_from_users(pages)


@pytest.mark.parametrize("answer, message", [
    ({"ok": False, "error": {"code": "transport", "message": "connect failed"}}, "transport: connect failed"),
    ({"ok": True, "visible": True, "jobs": []}, "lacks 'tag'"),
    ({"ok": True, "tag": "t", "visible": True}, "no 'jobs' list"),
    ({"ok": True, "tag": "t", "visible": True, "jobs": [{"job_id": "1x", "user": "a"}]}, "valid job_id"),
    ({"ok": True, "tag": "t", "visible": True, "jobs": [{"job_id": "1", "user": "-rf"}]}, "valid job_id"),
    ([], "not a JSON object"),
])
def test_an_unexpected_bridge_answer_concludes_nothing(answer, message):
    with pytest.raises(SweepInputError, match=message):
        bridge_view_from_jobs(answer)


@pytest.mark.parametrize("settings, message", [
    (dict(mode="on"), "mode 'on' is not one of off, report, cancel"),
    (dict(grace_s=-1), "grace period"),
    (dict(interval_s=0), "interval"),
    (dict(max_cancels=-1), "max_cancels"),
])
def test_bad_settings_are_refused(settings, message):
    with pytest.raises(ValueError, match=message):
        Sweeper(SweepSettings(**settings))
    with pytest.raises(ValueError, match=message):
        orphan_sweep_service(**{{"grace_s": "grace_s", "interval_s": "interval_s"}.get(k, k): v
                                for k, v in settings.items()})


# ------------------------------------------------------------ the runner


class FakeSources:
    """The hub's and the bridge's answers, as JSON values, and the cancels asked for."""

    def __init__(self, pages, answer, cancel_failure=None):
        self.pages, self.answer, self.cancel_failure, self.cancels = pages, answer, cancel_failure, []

    def users(self):
        if isinstance(self.pages, Exception):
            raise self.pages
        return self.pages

    def jobs(self):
        return self.answer

    def cancel(self, user, job_id):
        self.cancels.append((user, job_id))
        return self.cancel_failure


def test_service_cancels_logs_and_writes_the_status_file(tmp_path, caplog):
    clock = [1000.0]
    src = FakeSources(hub_users(**{"alice.proj1": {"": server("1")}}),
                      jobs(("1", "alice.proj1", "RUNNING"), ("2", "bob.proj1", "RUNNING")))
    status = tmp_path / "sweep.json"
    svc = SweepService(Sweeper(SweepSettings(mode="cancel", grace_s=20, interval_s=5)), src, src, str(status),
                       clock=lambda: clock[0])
    assert svc.sweep_once()["conclusive"]
    st = json.loads(status.read_text())
    assert [(u["job_id"], u["action"]) for u in st["untracked"]] == [("2", "wait")]
    assert st["last_sweep"]["figures"]["tracked"] == 1 and src.cancels == []
    assert stat.S_IMODE(os.stat(status).st_mode) == 0o644
    clock[0] += 21
    with caplog.at_level("INFO", logger="slurm_ssh_bridge.sweep"):
        svc.sweep_once()
    assert src.cancels == [("bob.proj1", "2")]
    st = json.loads(status.read_text())
    assert st["totals"]["cancelled"] == 1 and st["recent_cancels"][0]["job_id"] == "2"
    assert "orphan sweep: job 2 of bob.proj1 (RUNNING) untracked by the hub for 21 s: cancelled" in caplog.text
    # Still listed right after the cancel: not cancelled again at once.
    clock[0] += 5
    svc.sweep_once()
    assert src.cancels == [("bob.proj1", "2")]
    assert json.loads(status.read_text())["untracked"][0]["action"] == "cancelling"


def test_service_restart_keeps_the_grace_clock(tmp_path):
    status = tmp_path / "sweep.json"
    src = FakeSources(hub_users(), jobs(("2", "bob.proj1", "RUNNING")))
    settings = dict(mode="cancel", grace_s=20, interval_s=5)
    SweepService(Sweeper(SweepSettings(**settings)), src, src, str(status), clock=lambda: 100.0).sweep_once()
    again = SweepService(Sweeper(SweepSettings(**settings)), src, src, str(status), clock=lambda: 121.0)
    again.sweep_once()
    assert src.cancels == [("bob.proj1", "2")]


def test_failed_cancel_is_reported(tmp_path, caplog):
    src = FakeSources(hub_users(), jobs(("2", "bob.proj1", "RUNNING")),
                      cancel_failure="exit 1: remote_failed: scancel: error")
    svc = SweepService(Sweeper(SweepSettings(mode="cancel", grace_s=0)), src, src, str(tmp_path / "s.json"))
    with caplog.at_level("INFO", logger="slurm_ssh_bridge.sweep"):
        svc.sweep_once()
    st = json.loads((tmp_path / "s.json").read_text())
    assert st["totals"]["cancel_failed"] == 1 and st["untracked"][0]["action"] == "cancel_failed"
    assert "the cancel failed: exit 1: remote_failed: scancel: error" in caplog.text


def test_hub_failure_cancels_nothing_and_says_why(tmp_path):
    src = FakeSources(SweepInputError("the hub's API answered GET /users with HTTP 403"),
                      jobs(("2", "bob.proj1", "RUNNING")))
    svc = SweepService(Sweeper(SweepSettings(mode="cancel", grace_s=0)), src, src, str(tmp_path / "s.json"))
    result = svc.sweep_once()
    assert not result["conclusive"] and "HTTP 403" in result["error"] and src.cancels == []
    assert json.loads((tmp_path / "s.json").read_text())["totals"]["sweeps_inconclusive"] == 1


# --------------------------------------------- the real HTTP and subprocess


class _Pages(http.server.BaseHTTPRequestHandler):
    users = ["u%d" % i for i in range(5)]
    seen = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        _Pages.seen.append((self.path, self.headers.get("Authorization"), self.headers.get("Accept")))
        if self.headers.get("Authorization") != "token s3cret":
            self.send_response(403)
            self.end_headers()
            return
        from urllib.parse import parse_qs, urlparse
        q = parse_qs(urlparse(self.path).query)
        off, lim = int(q["offset"][0]), int(q["limit"][0])
        items = [{"name": n, "servers": {"": server(str(100 + self.users.index(n)))}}
                 for n in self.users[off:off + lim]]
        nxt = {"offset": off + lim, "limit": lim} if off + lim < len(self.users) else None
        body = json.dumps({"items": items, "_pagination": {"offset": off, "limit": lim,
                                                           "total": len(self.users), "next": nxt}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def pages_server():
    httpd = http.server.HTTPServer(("127.0.0.1", 0), _Pages)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    _Pages.seen = []
    yield "http://127.0.0.1:%d/hub/api" % httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


def test_hub_api_follows_pages(pages_server):
    view = hub_view_from_users(HubApi(pages_server, "s3cret", page_limit=2).users())
    assert sorted(view.tracked) == ["100", "101", "102", "103", "104"]
    assert len(_Pages.seen) == 3
    assert all("include_stopped_servers=1" in p and a == "token s3cret" and "pagination" in acc
               for p, a, acc in _Pages.seen)


def test_hub_api_refusal_names_the_scopes_and_not_the_token(pages_server):
    with pytest.raises(SweepInputError) as err:
        HubApi(pages_server, "wrong-token").users()
    assert "HTTP 403" in str(err.value) and "scope" in str(err.value) and "wrong-token" not in str(err.value)


def test_hub_api_down(pages_server):
    with pytest.raises(SweepInputError, match="did not answer"):
        HubApi("http://127.0.0.1:9/hub/api", "t", timeout=2).users()


FAKE_BRIDGE = """#!{python}
import json, os, sys
with open({log!r}, "a") as f:
    f.write(json.dumps({{"argv": sys.argv[1:], "env": sorted(os.environ)}}) + "\\n")
if "cancel" in sys.argv:
    sys.stderr.write("slurm-ssh-bridge: remote_failed: scancel said no\\n")
    sys.exit(1)
print(json.dumps({{"ok": True, "tag": "t", "visible": True, "jobs": []}}))
"""


def test_bridge_cli_scrubs_the_hub_token_and_reports_failures(tmp_path):
    log = tmp_path / "calls.jsonl"
    fake = tmp_path / "bridge"
    fake.write_text(FAKE_BRIDGE.format(python=sys.executable, log=str(log)))
    fake.chmod(0o755)
    cli = BridgeCli(str(fake), "/etc/b.toml", environ={"PATH": os.environ["PATH"], "JUPYTERHUB_API_TOKEN": "x",
                                                      "JPY_API_TOKEN": "y"})
    assert cli.jobs()["tag"] == "t"
    assert cli.cancel("bob.proj1", "12") == "exit 1: remote_failed: scancel said no"
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert calls[0]["argv"] == ["--config", "/etc/b.toml", "jobs", "--json"]
    assert calls[1]["argv"] == ["--config", "/etc/b.toml", "--user", "bob.proj1", "cancel", "12"]
    assert all("JUPYTERHUB_API_TOKEN" not in c["env"] and "JPY_API_TOKEN" not in c["env"] for c in calls)


def test_main_without_the_hubs_environment_is_a_clear_error(caplog):
    assert main(["--mode", "report", "--once"], environ={}) == 2
    assert "JUPYTERHUB_API_URL and JUPYTERHUB_API_TOKEN are not set" in caplog.text


def test_main_off_does_nothing(tmp_path):
    status = tmp_path / "s.json"
    assert main(["--once", "--status-file", str(status)], environ={}) == 0
    assert json.loads(status.read_text())["mode"] == "off"


# ------------------------------------------------------- JupyterHub 3 itself


def test_service_spec_and_role_are_valid_for_jupyterhub():
    from test_service import validate_with_jupyterhub

    spec = orphan_sweep_service(bridge_path="/usr/bin/slurm-ssh-bridge", config="/etc/b.toml", mode="cancel",
                                grace_s=900, interval_s=30, max_cancels=3, tag="hub-a",
                                status_file="/var/lib/jupyterhub/sweep.json")
    assert spec["command"][:3] == [sys.executable, "-m", "slurm_ssh_bridge.sweep"]
    assert spec["command"][3:] == ["--bridge", "/usr/bin/slurm-ssh-bridge", "--config", "/etc/b.toml",
                                   "--mode", "cancel", "--grace", "900", "--interval", "30", "--max-cancels", "3",
                                   "--tag", "hub-a", "--status-file", "/var/lib/jupyterhub/sweep.json"]
    assert "--mode" in orphan_sweep_service()["command"] and "off" in orphan_sweep_service()["command"]
    validate_with_jupyterhub(spec)
    scopes = pytest.importorskip("jupyterhub.scopes")
    role = orphan_sweep_role()
    assert role["services"] == ["slurm-ssh-bridge-sweep"] and tuple(role["scopes"]) == SWEEP_SCOPES
    scopes._check_scopes_exist(role["scopes"])  # raises on a scope JupyterHub 3 does not know
    expanded = scopes.expand_scopes(role["scopes"]) if hasattr(scopes, "expand_scopes") else None
    if expanded is not None:
        assert "read:users:name" in expanded
