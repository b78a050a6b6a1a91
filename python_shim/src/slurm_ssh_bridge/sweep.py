"""The orphan sweep: Slurm jobs of this hub that the hub no longer tracks.

A spawn whose submit reply was lost (the bridge answered ``submit_unknown``,
the daemon was killed, the hub restarted mid-submit) leaves a job in Slurm
that no spawner's state names. Such a job runs, holding a node, until its
time limit. The sweep finds them::

    jobs of this hub in Slurm  (``slurm-ssh-bridge jobs --json``: the jobs
                                whose ``--comment`` carries the bridge's
                                ``submit.tag``)
  - job ids in the hub's spawner state (``GET /hub/api/users`` with
                                ``include_stopped_servers``: each server's
                                ``state.job_id``, named servers too)
  = untracked jobs: reported, and cancelled once untracked for longer than
    the grace period when the mode is ``cancel``.

Modes: ``off`` (the default: nothing is fetched, nothing cancelled),
``report`` (log and status file only), ``cancel``.

It never concludes anything, and so never cancels, when: the hub's API call
failed or answered something unexpected (a missing ``state`` means the token
lacks ``admin:server_state``); the bridge could not list the jobs, answered
for another tag, or says the service account cannot see other users' jobs
(``visible: false``); a job's user has a spawn in progress whose state holds
no job id yet (its submit may be in flight); a job was first seen untracked
less than the grace period ago. At most ``max_cancels`` jobs are cancelled
per sweep. A cancel is the bridge's own ``cancel`` for (user, job id),
through that user's sudo'd wrapper, like the hub's own stop.

This module is the sweep's pure decision (:class:`Sweeper`, fed the hub's
and the bridge's JSON, time passed in) and its runner (:func:`main`, the
managed service's process; see :func:`slurm_ssh_bridge.service.orphan_sweep_service`).
It imports neither JupyterHub nor batchspawner.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Set, Tuple

from .commands import parse_bridge_failure, scrub_hub_environment

__all__ = [
    "MODES",
    "SweepSettings",
    "SweepInputError",
    "HubView",
    "BridgeView",
    "hub_view_from_users",
    "bridge_view_from_jobs",
    "Sweeper",
    "main",
]

log = logging.getLogger("slurm_ssh_bridge.sweep")

MODES = ("off", "report", "cancel")

#: Slurm states of a job that ends by itself: reported, never cancelled.
ENDING_STATES = frozenset(
    {"COMPLETING", "COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", "NODE_FAIL", "PREEMPTED",
     "BOOT_FAIL", "DEADLINE", "OUT_OF_MEMORY"}
)

#: How many finished cancels the status file lists.
RECENT_CANCELS = 20

_JOB_ID_RE = re.compile(r"^[0-9]{1,20}$")
_USER_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$")


class SweepInputError(ValueError):
    """The hub's or the bridge's answer cannot be used: nothing is concluded."""


@dataclass
class SweepSettings:
    mode: str = "off"
    grace_s: float = 600.0
    interval_s: float = 60.0
    max_cancels: int = 5
    #: The tag the bridge must answer for (``None``: whatever it is configured with).
    tag: Optional[str] = None

    def check(self) -> None:
        if self.mode not in MODES:
            raise ValueError("orphan sweep mode %r is not one of %s" % (self.mode, ", ".join(MODES)))
        if not (self.grace_s >= 0):
            raise ValueError("orphan sweep grace period must be >= 0 seconds, not %r" % (self.grace_s,))
        if not (self.interval_s >= 1):
            raise ValueError("orphan sweep interval must be >= 1 second, not %r" % (self.interval_s,))
        if not isinstance(self.max_cancels, int) or self.max_cancels < 0:
            raise ValueError("orphan sweep max_cancels must be an integer >= 0, not %r" % (self.max_cancels,))


# ------------------------------------------------------------ the inputs


@dataclass
class HubView:
    """What the hub's spawner state says."""

    #: job id -> "user" or "user/server" (named server) that holds it.
    tracked: Dict[str, str] = field(default_factory=dict)
    #: hub users with a spawn in progress whose state has no job id yet.
    spawning: Set[str] = field(default_factory=set)
    users: int = 0


@dataclass
class SlurmJob:
    job_id: str
    user: str
    state: str
    token: str = ""


@dataclass
class BridgeView:
    tag: str
    visible: bool
    why: str = ""
    jobs: List[SlurmJob] = field(default_factory=list)


def _hub_users(pages: List[Any]) -> List[Mapping[str, Any]]:
    users: List[Mapping[str, Any]] = []
    for page in pages:
        items = page.get("items") if isinstance(page, dict) else page
        if not isinstance(items, list):
            raise SweepInputError("the hub's user list is neither a list nor a page with 'items'")
        users.extend(items)
    return users


def hub_view_from_users(pages: List[Any]) -> HubView:
    """Read the job ids out of ``GET /hub/api/users`` pages (paginated or not).

    Strict: a user without ``servers``, a server without ``state`` (the token
    lacks ``read:servers`` / ``admin:server_state``) or a ``job_id`` that is
    not a job id makes the whole answer unusable.
    """
    view = HubView()
    for user in _hub_users(pages):
        if not isinstance(user, dict) or not isinstance(user.get("name"), str):
            raise SweepInputError("the hub's user list holds an entry without a name")
        name = user["name"]
        servers = user.get("servers")
        if not isinstance(servers, dict):
            raise SweepInputError(
                "the hub's model of user %r has no 'servers' (the service's role needs "
                "the read:servers scope)" % name
            )
        view.users += 1
        for server_name, server in servers.items():
            where = name if not server_name else "%s/%s" % (name, server_name)
            if not isinstance(server, dict) or "state" not in server:
                raise SweepInputError(
                    "the hub's model of server %r has no 'state' (the service's role needs "
                    "the admin:server_state scope)" % where
                )
            state = server["state"] if server["state"] is not None else {}
            if not isinstance(state, dict):
                raise SweepInputError("the state of server %r is not an object" % where)
            job_id = state.get("job_id", "")
            if job_id in ("", None):
                if server.get("pending") == "spawn":
                    view.spawning.add(name)
                continue
            job_id = str(job_id)
            if not _JOB_ID_RE.match(job_id):
                raise SweepInputError("the state of server %r holds job_id %r, not a Slurm job id"
                                      % (where, job_id[:40]))
            view.tracked[job_id] = where
    return view


def bridge_view_from_jobs(answer: Any) -> BridgeView:
    """Read ``slurm-ssh-bridge jobs --json``'s object (strict, like the hub's)."""
    if not isinstance(answer, dict):
        raise SweepInputError("the bridge's jobs answer is not a JSON object")
    if answer.get("ok") is not True:
        error = answer.get("error") if isinstance(answer.get("error"), dict) else {}
        raise SweepInputError("the bridge could not list the jobs: %s: %s"
                              % (error.get("code", "?"), str(error.get("message", ""))[:300]))
    tag, visible = answer.get("tag"), answer.get("visible")
    if not isinstance(tag, str) or not isinstance(visible, bool):
        raise SweepInputError("the bridge's jobs answer lacks 'tag' or 'visible'")
    view = BridgeView(tag=tag, visible=visible, why=str(answer.get("why", ""))[:300])
    if not visible:
        return view
    jobs = answer.get("jobs")
    if not isinstance(jobs, list):
        raise SweepInputError("the bridge's jobs answer has no 'jobs' list")
    for job in jobs:
        if not isinstance(job, dict):
            raise SweepInputError("the bridge's jobs list holds a non-object")
        job_id, user = str(job.get("job_id", "")), job.get("user")
        if not _JOB_ID_RE.match(job_id) or not isinstance(user, str) or not _USER_RE.match(user):
            raise SweepInputError("the bridge's jobs list holds an entry without a valid job_id and user: %r"
                                  % (json.dumps(job)[:120],))
        view.jobs.append(SlurmJob(job_id, user, str(job.get("state", "")), str(job.get("token", ""))))
    return view


# ------------------------------------------------------------ the policy


def _user_is_spawning(job_user: str, spawning: Set[str]) -> bool:
    # BriCS-style spawners run the job as "<hub user>.<project>".
    return any(job_user == u or job_user.startswith(u + ".") for u in spawning)


@dataclass
class Decision:
    job_id: str
    user: str
    state: str
    age_s: float
    action: str  # wait | hold | report | cancel | ending | limit
    reason: str


class Sweeper:
    """The sweep's memory (when each untracked job was first seen) and its rules."""

    def __init__(self, settings: SweepSettings):
        settings.check()
        self.settings = settings
        self.first_seen: Dict[str, float] = {}
        self.cancelled: Dict[str, float] = {}  # job id -> when its cancel was accepted
        self.totals = {"sweeps": 0, "sweeps_inconclusive": 0, "cancelled": 0, "cancel_failed": 0}

    def decide(self, hub: HubView, bridge: BridgeView, now: float) -> Tuple[List[Decision], Dict[str, Any]]:
        """One sweep's decisions; raises SweepInputError when nothing may be concluded."""
        s = self.settings
        if s.tag is not None and bridge.tag != s.tag:
            raise SweepInputError("the bridge lists jobs of tag %r, this sweep is for tag %r (do the sweep "
                                  "and the spawner use the same bridge config?)" % (bridge.tag, s.tag))
        if not bridge.visible:
            raise SweepInputError("the service account cannot see other users' jobs (%s): nothing is "
                                  "concluded or cancelled" % (bridge.why or "no reason given"))
        in_slurm = {job.job_id for job in bridge.jobs}
        for job_id in list(self.first_seen):
            if job_id not in in_slurm or job_id in hub.tracked:
                del self.first_seen[job_id]
        for job_id in list(self.cancelled):
            if job_id not in in_slurm:
                del self.cancelled[job_id]
        decisions: List[Decision] = []
        budget = s.max_cancels
        for job in sorted(bridge.jobs, key=lambda j: int(j.job_id)):
            if job.job_id in hub.tracked:
                continue
            first = self.first_seen.setdefault(job.job_id, now)
            age = max(0.0, now - first)
            cancelled_at = self.cancelled.get(job.job_id)
            if job.state.split()[0:1] and job.state.split()[0] in ENDING_STATES:
                action, reason = "ending", "the job is already ending (%s)" % job.state
            elif cancelled_at is not None and now - cancelled_at < max(30.0, 2 * s.interval_s):
                action, reason = "cancelling", "cancelled %.0f s ago, still listed" % (now - cancelled_at)
            elif age < s.grace_s:
                action, reason = "wait", "untracked for %.0f s of the %.0f s grace period" % (age, s.grace_s)
            elif _user_is_spawning(job.user, hub.spawning):
                action, reason = "hold", "a spawn of its user is in progress and may not have saved its job id yet"
            elif s.mode != "cancel":
                action, reason = "report", "untracked past the grace period (mode %s: not cancelled)" % s.mode
            elif budget <= 0:
                action, reason = "limit", "max_cancels (%d) reached in this sweep" % s.max_cancels
            else:
                budget -= 1
                action, reason = "cancel", "untracked for %.0f s, past the %.0f s grace period" % (age, s.grace_s)
            decisions.append(Decision(job.job_id, job.user, job.state, age, action, reason))
        figures = {
            "tag": bridge.tag,
            "slurm_jobs": len(bridge.jobs),
            "tracked": sum(1 for j in bridge.jobs if j.job_id in hub.tracked),
            "untracked": len(decisions),
            "tracked_not_in_slurm": sum(1 for j in hub.tracked if j not in in_slurm),
            "hub_users": hub.users,
            "spawning_users": len(hub.spawning),
        }
        return decisions, figures


# ------------------------------------------------------------ the runner


class HubApi:
    """``GET /hub/api/users`` with the service's token (never logged)."""

    PAGE_ACCEPT = "application/jupyterhub-pagination+json"

    def __init__(self, api_url: str, token: str, timeout: float = 30.0, page_limit: int = 200):
        self.api_url = api_url.rstrip("/")
        self._token = token
        self.timeout = timeout
        self.page_limit = page_limit

    def _get(self, path: str) -> Any:
        req = urllib.request.Request(self.api_url + path, headers={
            "Authorization": "token " + self._token, "Accept": self.PAGE_ACCEPT})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                body = r.read(64 * 1024 * 1024)
        except urllib.error.HTTPError as exc:
            hint = (" (the service's role lacks a scope: see the sweep's load_roles entry)"
                    if exc.code == 403 else "")
            raise SweepInputError("the hub's API answered GET %s with HTTP %d%s" % (path.split("?")[0], exc.code, hint)
                                  ) from None
        except (urllib.error.URLError, OSError) as exc:
            raise SweepInputError("the hub's API at %s did not answer: %s"
                                  % (self.api_url, getattr(exc, "reason", exc))) from None
        try:
            return json.loads(body)
        except ValueError:
            raise SweepInputError("the hub's API answered GET %s with something that is not JSON"
                                  % path.split("?")[0]) from None

    def users(self, max_pages: int = 1000) -> List[Any]:
        pages, offset = [], 0
        for _ in range(max_pages):
            query = urllib.parse.urlencode({"include_stopped_servers": "1", "offset": offset,
                                            "limit": self.page_limit})
            page = self._get("/users?" + query)
            pages.append(page)
            if not isinstance(page, dict):
                return pages  # an unpaginated list (hub without pagination): all of it
            nxt = (page.get("_pagination") or {}).get("next")
            if not nxt:
                return pages
            offset = int(nxt.get("offset", offset + self.page_limit))
        raise SweepInputError("the hub's user list did not end after %d pages" % max_pages)


class BridgeCli:
    """``slurm-ssh-bridge jobs --json`` and ``cancel`` as subprocesses."""

    def __init__(self, bridge: str, config: Optional[str], timeout: float = 120.0,
                 environ: Optional[Mapping[str, str]] = None):
        self.base = [bridge] + (["--config", config] if config else [])
        self.timeout = timeout
        # The service's JUPYTERHUB_API_TOKEN must not reach the bridge.
        self.env = scrub_hub_environment(os.environ if environ is None else environ)

    def _run(self, args: List[str]) -> subprocess.CompletedProcess:
        return subprocess.run(self.base + args, capture_output=True, text=True, timeout=self.timeout,
                              env=self.env, stdin=subprocess.DEVNULL)

    def jobs(self) -> Any:
        try:
            r = self._run(["jobs", "--json"])
        except (OSError, subprocess.SubprocessError) as exc:
            raise SweepInputError("running %s jobs --json failed: %s" % (self.base[0], exc)) from None
        try:
            return json.loads(r.stdout)
        except ValueError:
            failure = parse_bridge_failure(r.stderr)
            raise SweepInputError(
                "%s jobs --json exited %d without a JSON answer: %s"
                % (self.base[0], r.returncode, "%s: %s" % failure if failure else r.stderr.strip()[:300])
            ) from None

    def cancel(self, user: str, job_id: str) -> Optional[str]:
        """None when the cancel was accepted, else the failure."""
        try:
            r = self._run(["--user", user, "cancel", job_id])
        except (OSError, subprocess.SubprocessError) as exc:
            return "running the bridge failed: %s" % exc
        if r.returncode == 0:
            return None
        failure = parse_bridge_failure(r.stderr)
        return "exit %d: %s" % (r.returncode, "%s: %s" % failure if failure else r.stderr.strip()[:300])


def _iso(t: float) -> str:
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class SweepService:
    """One sweep every ``interval_s``: fetch, decide, cancel, log, write the status file."""

    def __init__(self, sweeper: Sweeper, hub: Optional[HubApi], bridge: Optional[BridgeCli],
                 status_file: Optional[str], clock: Callable[[], float] = time.time):
        self.sweeper, self.hub, self.bridge = sweeper, hub, bridge
        self.status_file, self.clock = status_file, clock
        self.recent: List[Dict[str, Any]] = []
        self.last: Dict[str, Any] = {}
        self._load_first_seen()

    def _load_first_seen(self) -> None:
        """Keep the grace clocks across a restart of the service (the same tag only)."""
        if not self.status_file:
            return
        try:
            with open(self.status_file) as f:
                old = json.load(f)
            if old.get("tag") == self.sweeper.settings.tag:
                for entry in old.get("untracked", []):
                    self.sweeper.first_seen[str(entry["job_id"])] = float(entry["first_seen_epoch"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass  # no or unreadable file: the clocks start now (later, never earlier)

    def sweep_once(self) -> Dict[str, Any]:
        s, t0 = self.sweeper.settings, self.clock()
        self.sweeper.totals["sweeps"] += 1
        result: Dict[str, Any] = {"at": _iso(t0), "conclusive": False, "error": None}
        decisions: List[Decision] = []
        try:
            hub_view = hub_view_from_users(self.hub.users())
            bridge_view = bridge_view_from_jobs(self.bridge.jobs())
            decisions, figures = self.sweeper.decide(hub_view, bridge_view, t0)
            result.update(conclusive=True, figures=figures)
        except SweepInputError as exc:
            self.sweeper.totals["sweeps_inconclusive"] += 1
            result["error"] = str(exc)
            log.warning("orphan sweep: nothing concluded, nothing cancelled: %s", exc)
        for d in decisions:
            outcome = d.action
            if d.action == "cancel":
                failure = self.bridge.cancel(d.user, d.job_id)
                if failure is None:
                    outcome = "cancelled"
                    self.sweeper.totals["cancelled"] += 1
                    self.sweeper.cancelled[d.job_id] = self.clock()
                    self.recent.append({"job_id": d.job_id, "user": d.user, "age_s": round(d.age_s),
                                        "at": _iso(self.clock())})
                    self.recent = self.recent[-RECENT_CANCELS:]
                else:
                    outcome = "cancel_failed"
                    self.sweeper.totals["cancel_failed"] += 1
                    d.reason += "; the cancel failed: " + failure
            level = logging.WARNING if outcome in ("cancelled", "cancel_failed", "report", "limit") else logging.INFO
            log.log(level, "orphan sweep: job %s of %s (%s) untracked by the hub for %.0f s: %s (%s)",
                    d.job_id, d.user, d.state or "?", d.age_s, outcome, d.reason)
            d.action = outcome
        result["duration_ms"] = int((self.clock() - t0) * 1000)
        self.last = result
        self.write_status(decisions)
        return result

    def status(self, decisions: List[Decision]) -> Dict[str, Any]:
        s = self.sweeper.settings
        return {
            "mode": s.mode, "grace_s": s.grace_s, "interval_s": s.interval_s, "max_cancels": s.max_cancels,
            "tag": s.tag, "updated": _iso(self.clock()), "last_sweep": self.last,
            "totals": dict(self.sweeper.totals),
            "untracked": [{"job_id": d.job_id, "user": d.user, "state": d.state, "age_s": round(d.age_s),
                           "first_seen": _iso(self.sweeper.first_seen.get(d.job_id, self.clock())),
                           "first_seen_epoch": self.sweeper.first_seen.get(d.job_id, self.clock()),
                           "action": d.action, "reason": d.reason} for d in decisions],
            "recent_cancels": list(self.recent),
        }

    def write_status(self, decisions: List[Decision]) -> None:
        if not self.status_file:
            return
        directory = os.path.dirname(os.path.abspath(self.status_file))
        try:
            fd, tmp = tempfile.mkstemp(prefix=".sweep-status.", dir=directory)
            with os.fdopen(fd, "w") as f:
                json.dump(self.status(decisions), f, indent=1)
                f.write("\n")
            os.chmod(tmp, 0o644)
            os.replace(tmp, self.status_file)
        except OSError as exc:
            log.error("orphan sweep: cannot write the status file %s: %s", self.status_file, exc)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m slurm_ssh_bridge.sweep",
                                 description="The orphan sweep (a JupyterHub managed service).")
    ap.add_argument("--bridge", default="slurm-ssh-bridge", help="the bridge executable")
    ap.add_argument("--config", default=None, help="the bridge's config (the spawner's bridge_config)")
    ap.add_argument("--mode", default="off", help="off | report | cancel (default off)")
    ap.add_argument("--grace", type=float, default=600.0, help="seconds untracked before a cancel (default 600)")
    ap.add_argument("--interval", type=float, default=60.0, help="seconds between sweeps (default 60)")
    ap.add_argument("--max-cancels", type=int, default=5, help="cancels per sweep at most (default 5)")
    ap.add_argument("--tag", default=None, help="the submit.tag the bridge must answer for")
    ap.add_argument("--status-file", default=None, help="where to write the JSON status (atomically)")
    ap.add_argument("--once", action="store_true", help="one sweep, then exit (0: conclusive)")
    return ap.parse_args(argv)


def main(argv: Optional[List[str]] = None, environ: Optional[Mapping[str, str]] = None) -> int:
    environ = os.environ if environ is None else environ
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="[%(levelname).1s %(asctime)s %(name)s] %(message)s")
    args = parse_args(argv)
    settings = SweepSettings(mode=args.mode, grace_s=args.grace, interval_s=args.interval,
                             max_cancels=args.max_cancels, tag=args.tag)
    try:
        sweeper = Sweeper(settings)
    except ValueError as exc:
        log.error("orphan sweep: %s", exc)
        return 2
    if settings.mode == "off":
        log.info("orphan sweep: mode off: nothing is fetched or cancelled (set mode to report or cancel)")
        SweepService(sweeper, None, None, args.status_file).write_status([])
        if args.once:
            return 0
        signal.pause()  # the hub's SIGTERM ends it
        return 0
    api_url, token = environ.get("JUPYTERHUB_API_URL"), environ.get("JUPYTERHUB_API_TOKEN")
    if not api_url or not token:
        log.error("orphan sweep: JUPYTERHUB_API_URL and JUPYTERHUB_API_TOKEN are not set: run it as a "
                  "JupyterHub managed service (slurm_ssh_bridge.service.orphan_sweep_service)")
        return 2
    service = SweepService(sweeper, HubApi(api_url, token), BridgeCli(args.bridge, args.config, environ=environ),
                           args.status_file)
    log.info("orphan sweep: mode %s, grace %.0f s, every %.0f s, at most %d cancels per sweep, tag %s",
             settings.mode, settings.grace_s, settings.interval_s, settings.max_cancels,
             settings.tag or "(the bridge's)")
    while True:
        result = service.sweep_once()
        if args.once:
            return 0 if result["conclusive"] else 1
        time.sleep(settings.interval_s)


if __name__ == "__main__":
    sys.exit(main())
