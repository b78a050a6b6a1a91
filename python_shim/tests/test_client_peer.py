"""The asyncio client refuses a daemon socket served by the wrong account.

An impostor listens at the socket path as ``nobody`` (a real process under
``setpriv``; this module needs root to start it). The client must refuse it
from the kernel's SO_PEERCRED before it writes a byte, and raise
``AuthError`` (state unknown), never an answer.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from slurm_ssh_bridge import errors
from slurm_ssh_bridge.client import BridgeClient, daemon_uid_from_config

NOBODY = 65534

# The impostor: accept connections for a few seconds, append the number of
# bytes each one sent to a file, and answer every line as if the job were gone.
IMPOSTOR = r"""
import socket, sys, time
path, counts = sys.argv[1], sys.argv[2]
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(path)
srv.listen(8)
srv.settimeout(0.2)
end = time.monotonic() + 20
while time.monotonic() < end:
    try:
        conn, _ = srv.accept()
    except socket.timeout:
        continue
    conn.settimeout(1.0)
    got = b""
    try:
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                break
            got += chunk
            if b"\n" in got:
                conn.sendall(b'{"ok":false,"error":{"code":"remote_failed","message":"Invalid job id"}}\n')
    except (socket.timeout, OSError):
        pass
    conn.close()
    with open(counts, "a") as fh:
        fh.write("%d\n" % len(got))
"""

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="starting a listener as nobody needs root")


@pytest.fixture
def impostor():
    work = Path(tempfile.mkdtemp(prefix="ssb-peer-"))
    work.chmod(0o777)  # nobody binds its socket here
    counts = work / "counts"
    counts.touch()
    counts.chmod(0o666)
    sock = work / "bridge.sock"
    proc = subprocess.Popen(
        ["setpriv", "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY, "--clear-groups",
         sys.executable, "-c", IMPOSTOR, str(sock), str(counts)])
    try:
        deadline = time.monotonic() + 10
        while not sock.exists():
            assert proc.poll() is None, "the impostor listener exited"
            assert time.monotonic() < deadline, "the impostor never listened"
            time.sleep(0.05)
        yield {"socket": str(sock), "counts": counts, "dir": work}
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(work, ignore_errors=True)


def byte_counts(path: Path, connections: int):
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        lines = path.read_text().split()
        if len(lines) >= connections:
            return [int(n) for n in lines]
        time.sleep(0.05)
    raise AssertionError("the impostor saw %s connection(s), expected %d" % (path.read_text().split(), connections))


def test_an_impostor_receives_nothing_and_its_answer_never_arrives(impostor):
    async def main():
        with pytest.raises(errors.AuthError) as caught:
            client = await BridgeClient.connect(impostor["socket"], timeout=5)
            await client.query("alice.proj1", "1")
        return str(caught.value)

    message = asyncio.run(main())
    assert "served by uid %d" % NOBODY in message
    assert impostor["socket"] in message and "daemon_uid" in message and "nothing was sent" in message
    assert byte_counts(impostor["counts"], 1) == [0]


def test_a_configured_daemon_uid_admits_that_account(impostor):
    """The control: the same listener, declared as the daemon's account, gets the request."""
    async def main():
        client = await BridgeClient.connect(impostor["socket"], timeout=5, daemon_uid="nobody")
        try:
            with pytest.raises(errors.BridgeError):
                await client.query("alice.proj1", "1")
        finally:
            await client.close()

    asyncio.run(main())
    assert byte_counts(impostor["counts"], 1)[0] > 0


def test_daemon_uid_is_read_from_the_config(impostor):
    config = impostor["dir"] / "bridge.toml"
    config.write_text('[daemon]\nsocket = "%s"\n[client]\ndaemon_uid = "%d"\n' % (impostor["socket"], NOBODY))
    assert daemon_uid_from_config(str(config)) == str(NOBODY)

    async def main():
        client = await BridgeClient.connect(config=str(config), timeout=5)
        await client.close()

    asyncio.run(main())


def test_an_unknown_daemon_uid_name_is_a_clear_error(impostor):
    async def main():
        await BridgeClient.connect(impostor["socket"], timeout=5, daemon_uid="no-such-account-xyz")

    with pytest.raises(ValueError, match="client.daemon_uid 'no-such-account-xyz' names no account"):
        asyncio.run(main())
    time.sleep(0.5)
    assert impostor["counts"].read_text() == "", "a connection was made before the name was resolved"


def test_the_default_accepts_root_or_our_own_uid():
    """A listener of our own uid (root here) is admitted by default."""
    work = Path(tempfile.mkdtemp(prefix="ssb-peer-own-"))
    try:
        path = str(work / "s.sock")
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(path)
        srv.listen(1)

        async def main():
            client = await BridgeClient.connect(path, timeout=5)
            await client.close()

        asyncio.run(main())
        srv.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
