"""Fixtures shared by the python_shim tests.

Environment (all optional; tests that need a missing one are skipped with
the reason, never failed):

- ``SSB_BRIDGE``: path of the built ``slurm-ssh-bridge`` binary.
- ``SSB_SANDBOX_DIR``: a directory brought up by
  ``tests/sandbox/sandbox.sh up DIR`` (holds ``bridge.toml`` and
  ``sandbox.env``).

A variable that is set but points at nothing usable is a failure: CI set it
on purpose.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping

import pytest

try:
    import tomllib
except ImportError:  # pragma: no cover
    tomllib = None

SHIM_DIR = Path(__file__).resolve().parent.parent
REPO_DIR = SHIM_DIR.parent


# ---------------------------------------------------------------- TOML


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a valid TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError("cannot write %r as TOML" % (value,))


def dump_toml(data: Mapping[str, Any]) -> str:
    """Write a bridge configuration (top-level tables of scalars/lists)."""
    lines: List[str] = []
    for key, value in data.items():
        if not isinstance(value, Mapping):
            lines.append("%s = %s" % (key, _toml_value(value)))
    for table, values in data.items():
        if isinstance(values, Mapping):
            lines.append("")
            lines.append("[%s]" % table)
            for key, value in values.items():
                lines.append("%s = %s" % (key, _toml_value(value)))
    return "\n".join(lines) + "\n"


def load_toml(path: os.PathLike) -> Dict[str, Any]:
    if tomllib is None:  # pragma: no cover
        pytest.skip("tomllib (Python >= 3.11) is needed to read the bridge config")
    with open(path, "rb") as fh:
        return tomllib.load(fh)


def write_derived_config(
    base: os.PathLike, target: os.PathLike, overrides: Mapping[str, Mapping[str, Any]]
) -> str:
    """Copy the bridge config ``base`` to ``target`` with table values replaced."""
    data = load_toml(base)
    for table, values in overrides.items():
        section = dict(data.get(table, {}))
        for key, value in values.items():
            if value is None:
                section.pop(key, None)
            else:
                section[key] = value
        data[table] = section
    Path(target).write_text(dump_toml(data))
    return str(target)


# ---------------------------------------------------------------- bridge


@pytest.fixture(scope="session")
def bridge_bin() -> str:
    path = os.environ.get("SSB_BRIDGE")
    if not path:
        pytest.skip(
            "SSB_BRIDGE is not set (path of the built slurm-ssh-bridge binary, "
            "e.g. build/slurm-ssh-bridge); CI sets it"
        )
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail("SSB_BRIDGE=%s is not an executable file" % path)
    return os.path.abspath(path)


def socket_answers(path: str) -> bool:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


@contextlib.contextmanager
def running_daemon(bridge_bin: str, config: str, log_path: os.PathLike, start_timeout: float = 20.0):
    """Run ``slurm-ssh-bridge --config CONFIG serve`` until the block ends.

    Yields ``(process, socket_path)`` once the socket answers. Skips when the
    bridge has no working ``serve`` yet (it exits with a usage error); fails
    when the daemon crashes or never opens its socket.
    """
    from slurm_ssh_bridge import commands
    from slurm_ssh_bridge.client import socket_path_from_config

    sock = socket_path_from_config(config)
    log_path = Path(log_path)
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([bridge_bin, "--config", config, "serve"], stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + start_timeout
        while not (os.path.exists(sock) and socket_answers(sock)):
            if proc.poll() is not None:
                text = log_path.read_text(errors="replace").strip()
                first = text.splitlines()[0] if text else ""
                failure = commands.parse_bridge_failure(text)
                if (proc.returncode == 2 and (failure is None or failure[0] == "usage")) or \
                        "not implemented" in text:
                    pytest.skip("the bridge has no working `serve` yet (exit %d: %s)" % (proc.returncode, first))
                pytest.fail("`slurm-ssh-bridge serve` exited with %d:\n%s" % (proc.returncode, text))
            if time.monotonic() > deadline:
                pytest.fail("`slurm-ssh-bridge serve` did not open %s within %ss:\n%s"
                            % (sock, start_timeout, log_path.read_text(errors="replace")))
            time.sleep(0.1)
        yield proc, sock
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


# ---------------------------------------------------------------- sandbox


@dataclass
class Sandbox:
    dir: Path
    env: Dict[str, str]
    config: str
    user: str
    user2: str
    outsider: str
    nodes: List[str] = field(default_factory=list)


def _read_sandbox_env(path: Path) -> Dict[str, str]:
    """Source ``sandbox.env`` in bash and return the variables it exports."""
    names = re.findall(r"^export ([A-Za-z_][A-Za-z0-9_]*)=", path.read_text(), re.M)
    out = subprocess.run(
        ["bash", "-c", 'set -a; . "$1"; exec env -0', "sandbox-env", str(path)],
        check=True,
        stdout=subprocess.PIPE,
        env={"PATH": "/usr/bin:/bin"},
    ).stdout
    env = {}
    for entry in out.split(b"\0"):
        name, sep, value = entry.partition(b"=")
        if sep and name.decode() in names:
            env[name.decode()] = value.decode()
    return env


def _expand_nodes(spec: str) -> List[str]:
    """``node1 node2`` / ``node1,node2`` / ``node[1-3,5]`` -> list of names."""
    nodes: List[str] = []
    for part in re.findall(r"[^,\s\[]+(?:\[[^\]]*\])?", spec or ""):
        m = re.fullmatch(r"(.*)\[([^\]]*)\]", part)
        if not m:
            nodes.append(part)
            continue
        for item in m.group(2).split(","):
            lo, _, hi = item.partition("-")
            if hi:
                nodes += ["%s%s" % (m.group(1), str(i).zfill(len(lo))) for i in range(int(lo), int(hi) + 1)]
            else:
                nodes.append(m.group(1) + lo)
    return nodes


@pytest.fixture(scope="session")
def sandbox() -> Sandbox:
    directory = os.environ.get("SSB_SANDBOX_DIR")
    if not directory:
        pytest.skip(
            "SSB_SANDBOX_DIR is not set (a directory brought up by "
            "`tests/sandbox/sandbox.sh up DIR`); CI sets it"
        )
    root = Path(directory)
    env_file, config = root / "sandbox.env", root / "bridge.toml"
    for needed in (env_file, config):
        if not needed.is_file():
            pytest.fail("SSB_SANDBOX_DIR=%s has no %s: is the sandbox up?" % (root, needed.name))
    env = _read_sandbox_env(env_file)
    return Sandbox(
        dir=root,
        env=env,
        config=str(config),
        user=env.get("SANDBOX_USER", "alice.proj1"),
        user2=env.get("SANDBOX_USER2", "bob.proj1"),
        outsider=env.get("SANDBOX_OUTSIDER", "mallory.other"),
        nodes=_expand_nodes(env.get("SLURM_NODES", "")),
    )


@pytest.fixture
def shared_tmp():
    """A temporary directory every local user can write to (job output).

    pytest's tmp_path lives under a root-only directory, which the sandbox's
    jobs (running as the test users) cannot reach.
    """
    path = tempfile.mkdtemp(prefix="ssb-shim-")
    os.chmod(path, 0o1777)
    try:
        yield Path(path)
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def refused_port():
    """A loopback TCP port that refuses connections (bound, never listening)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


@pytest.fixture
def silent_port():
    """A loopback TCP port that accepts connections and never says anything."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()
