"""The one NDJSON client of the integration suites for the daemon's socket.

The helpers of daemon.sh, faults.sh and security.sh (sockclient.py,
faults_helper.py, security_helper.py, next to this file) talk to
`slurm-ssh-bridge serve` through these few functions. The protocol version
and the state regexes come from the python_shim itself, so a suite tests
what the shim ships rather than its own copy: the shim's source is found
next to this checkout (tests/integration/helpers/../../../python_shim/src),
or at $SSB_SHIM_SRC when set. Stdlib only: the suites run these helpers
with /usr/bin/python3, also as other accounts (security.sh), with an
empty environment.
"""
import errno
import json
import os
import socket
import sys

SHIM_SRC = os.path.normpath(os.environ.get("SSB_SHIM_SRC") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir, os.pardir, "python_shim", "src"))
sys.path.insert(0, SHIM_SRC)
# The shim's package imports neither batchspawner nor JupyterHub.
from slurm_ssh_bridge.client import PROTOCOL_VERSION  # noqa: E402
from slurm_ssh_bridge.commands import (  # noqa: E402
    SLURM_STATE_PENDING_RE,
    SLURM_STATE_RUNNING_RE,
    STATE_UNKNOWN_RE,
)

__all__ = ["PROTOCOL_VERSION", "SLURM_STATE_PENDING_RE", "SLURM_STATE_RUNNING_RE", "STATE_UNKNOWN_RE",
           "connect", "request_line", "code_of", "compact", "probe"]


def connect(path, timeout=30.0):
    """A connected socket to the daemon at PATH and a binary file reading it
    (responses are read a line at a time with readline())."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    return s, s.makefile("rb")


def request_line(**fields):
    """One request as the compact JSON bytes of a line (no newline): the
    protocol version first, then FIELDS in the order given."""
    d = {"v": PROTOCOL_VERSION}
    d.update(fields)
    return json.dumps(d, separators=(",", ":")).encode()


def code_of(resp):
    """A response line reduced to what the suites compare: "ok", the error
    code, "EOF" for no line, or "RAW:..." for a line that is not JSON."""
    if not resp:
        return "EOF"
    try:
        j = json.loads(resp)
    except ValueError:
        return "RAW:" + resp[:100].decode("utf-8", "replace")
    if j.get("ok") is True:
        return "ok"
    return (j.get("error") or {}).get("code", "?")


def compact(resp):
    """A response line as compact JSON text ("RAW:..." when it is not JSON)."""
    try:
        return json.dumps(json.loads(resp), separators=(",", ":"))
    except ValueError:
        return "RAW:" + resp.decode(errors="replace").rstrip("\n")


def probe(path, timeout=5.0):
    """Connect to the Unix socket PATH and close: "ok", or the errno name
    (ECONNREFUSED for a stale socket file, EACCES for one we may not use)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(path)
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))
    finally:
        s.close()
    return "ok"
