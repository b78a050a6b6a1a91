"""What Slurm knows about a job, turned into what the user reads.

Pure functions (no batchspawner, no I/O), used by
:class:`slurm_ssh_bridge.spawner.BridgeSpawnerMixin`:

- :func:`query_text` rebuilds, from the bridge's ``--json`` query answer,
  exactly the text batchspawner would have had from the text command (its
  ``job_status``), so batchspawner's regexes see what they always saw;
- :func:`pending_message` is the spawn page's progress line for a pending
  job ("Pending in queue (Resources), expected start 10:32");
- :func:`ended_message` is the error the hub shows when the job ended before
  its server answered ("... FAILED exit 1 (NonZeroExitCode). Its log: ...");
- :func:`output_path` expands a batch script's ``--output`` the way Slurm
  does for the common patterns, for when Slurm itself no longer says
  (``sacct`` has no StdOut field in Slurm 22.05).

The two kinds of detail: a query answer of the daemon's coalesced status
mode may carry ``"slurm": {"state", "node", "reason", "expected_start"}``;
``explain`` answers ``"job": {"state", "exit_code", "signal", "reason",
"stdout", "expected_start", "source"}``. Both use ``null`` for unknown.
"""

from __future__ import annotations

import datetime
import re
from typing import Any, Mapping, Optional, Tuple

__all__ = [
    "BATCHSPAWNER_GONE_MESSAGES",
    "ended_message",
    "is_batchspawner_gone_message",
    "output_path",
    "pending_message",
    "query_text",
    "still_alive",
]

#: The RuntimeErrors batchspawner's ``start()`` raises when the job is
#: neither pending nor running (batchspawner 1.3, ``BatchSpawnerBase.start``).
BATCHSPAWNER_GONE_MESSAGES = (
    "The Jupyter batch job has disappeared while pending in the queue or died immediately after starting.",
    "The Jupyter batch job started but died before launching the single-user server.",
)

_ALIVE = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED", "RESIZING"}


def is_batchspawner_gone_message(text: str) -> bool:
    return text in BATCHSPAWNER_GONE_MESSAGES


def still_alive(state: Optional[str]) -> bool:
    return (state or "") in _ALIVE


def _failure_line(error: Mapping[str, Any]) -> str:
    # The CLI's text-mode failure line (src/app/output.cpp failure_line).
    message = str(error.get("message", "")).replace("\n", " ").replace("\r", " ")
    return "slurm-ssh-bridge: %s: %s\n" % (error.get("code", "internal"), message)


def query_text(response: Optional[Mapping[str, Any]], returncode: int, stdout: str,
               stderr: str) -> Tuple[str, bool]:
    """``(text, failed)``: what batchspawner's ``run_command`` would have
    returned (``failed`` False: stdout, stripped) or raised (``failed``
    True: stderr, stripped) for the text-mode query.

    ``response`` is the parsed ``--json`` answer (``None`` when stdout was
    not JSON: then stdout/stderr are taken as they are). ``stderr`` is the
    CLI's own stderr in JSON mode, which text mode prints first too.
    """
    if not isinstance(response, Mapping):
        return (stdout.strip(), False) if returncode == 0 else (stderr.strip(), True)
    if returncode == 0:
        return str(response.get("stdout", "")).strip(), False
    if "exit_status" in response:  # the wrapper ran: text mode passes its stderr on
        return (stderr + str(response.get("stderr", ""))).strip(), True
    error = response.get("error")
    if isinstance(error, Mapping):
        return (stderr + _failure_line(error)).strip(), True
    return stderr.strip(), True


def _parse_slurm_time(text: Optional[str]) -> Optional[datetime.datetime]:
    if not text:
        return None
    try:
        return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        return None


def _start_text(expected: Optional[str], now: Optional[datetime.datetime] = None) -> Optional[str]:
    # Slurm prints the controller's local time without a zone; the hub and
    # the login host are taken to share one (the usual single-site case).
    when = _parse_slurm_time(expected)
    if when is None:
        return None
    now = now or datetime.datetime.now()
    if when.date() == now.date():
        return when.strftime("%H:%M")
    return when.strftime("%Y-%m-%d %H:%M")


def pending_message(details: Optional[Mapping[str, Any]],
                    now: Optional[datetime.datetime] = None) -> Optional[str]:
    """"Pending in queue (Resources), expected start 10:32" from a ``slurm``
    or ``job`` object; ``None`` when it says nothing beyond "pending"."""
    if not isinstance(details, Mapping):
        return None
    reason = details.get("reason")
    start = _start_text(details.get("expected_start"), now)
    if not reason and not start:
        return None
    text = "Pending in queue"
    if reason:
        text += " (%s)" % reason
    if start:
        text += ", expected start %s" % start
    return text


def ended_message(job_id: str, job: Mapping[str, Any], log_path: Optional[str] = None) -> Optional[str]:
    """The hub's error for a job that ended before its server answered, or
    ``None`` when ``job`` does not say how it ended."""
    state = job.get("state")
    if not state or still_alive(state):
        return None
    how = str(state)
    if job.get("exit_code") is not None:
        how += " exit %s" % job["exit_code"]
    if job.get("signal") is not None:
        how += " signal %s" % job["signal"]
    if job.get("reason"):
        how += " (%s)" % job["reason"]
    text = "Your server's Slurm job %s ended before the server started: %s." % (job_id, how)
    log = job.get("stdout") or log_path
    if log:
        text += " Its log: %s" % log
    return text


_OUTPUT_RE = re.compile(r"^#SBATCH\s+(?:--output[= ]|-o\s*)(\S+)\s*$", re.M)
_NAME_RE = re.compile(r"^#SBATCH\s+(?:--job-name[= ]|-J\s*)(\S+)\s*$", re.M)


def output_path(script: str, job_id: str, user: str) -> Optional[str]:
    """The batch script's ``#SBATCH --output`` with Slurm's common
    filename patterns expanded (``%%``, ``%j``/``%J``, ``%A`` (= the job id
    for a non-array job), ``%u``, ``%x``); ``None`` when the script sets none
    or uses a pattern this does not know (a wrong path is worse than none).
    Without ``--output`` Slurm writes ``slurm-%j.out`` in the working
    directory, which the hub cannot name reliably."""
    found = _OUTPUT_RE.findall(script or "")
    if not found:
        return None
    pattern = found[-1].strip("'\"")
    names = _NAME_RE.findall(script or "")
    job_name = names[-1].strip("'\"") if names else None
    number = job_id.split(";")[0]
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c != "%":
            out.append(c)
            i += 1
            continue
        i += 1
        width = ""
        while i < len(pattern) and pattern[i].isdigit():  # %10j: zero-padded to 10 digits
            width += pattern[i]
            i += 1
        if i >= len(pattern):
            return None
        spec = pattern[i]
        i += 1
        if spec == "%" and not width:
            out.append("%")
        elif spec in "jJA":
            out.append(number.zfill(int(width)) if width else number)
        elif spec == "u" and not width:
            out.append(user)
        elif spec == "x" and not width and job_name is not None:
            out.append(job_name)
        else:
            return None
    return "".join(out)
