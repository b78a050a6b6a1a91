"""Hostile clients of the daemon's socket, for tests/integration/hostile.sh.

Each subcommand plays one attack from issue 14's review against a running
`slurm-ssh-bridge serve` and prints `key=value` lines (the suite reads them
with `kv`). The daemon's own figures come from its `status` answer and
/proc/PID, never from the attacker's side alone.

  idle-flood SOCK PID N       N clients connect and stay silent; measures the
                              daemon's CPU while they hold on, then whether a
                              new client is still answered
  unread SOCK PID N           one client sends N status requests and never
                              reads; measures what the daemon queues
  partial SOCK PID N BYTES W  N clients each send BYTES without a newline and
                              go quiet; measures the daemon's memory, waits W s
                              for the line timeout, measures again
  idle SOCK SECONDS           one silent client: how long until the daemon
                              closes it
  scrape-flood PORT PID N     N silent TCP clients of the metrics listener
                              (run with the daemon's open-file limit just
                              above its use, so accept fails); measures the
                              daemon's CPU while they hold on, then whether a
                              scrape is answered once they have gone
"""
import json
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ndjson import connect, request_line  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def status(sock_path, timeout=10.0):
    """The daemon's status object, or None when it does not answer."""
    try:
        s, r = connect(sock_path, timeout)
        with s:
            s.sendall(request_line(op="status", id="probe") + b"\n")
            line = r.readline()
        return json.loads(line)["status"] if line else None
    except (OSError, ValueError, KeyError):
        return None


def out(**kv):
    for k, v in kv.items():
        print(f"{k}={v}")


def idle_flood(sock_path, pid, n):
    held = []
    refused = 0
    for _ in range(n):
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(5)
            s.connect(sock_path)
            held.append(s)
        except OSError:
            refused += 1
    time.sleep(0.5)
    c0, t0 = cpu_s(pid), time.monotonic()
    time.sleep(3)
    cpu = (cpu_s(pid) - c0) / (time.monotonic() - t0)
    st = status(sock_path)
    # How many of the flood's sockets the daemon has closed (evicted).
    closed = 0
    for s in held:
        s.setblocking(False)
        try:
            if s.recv(1) == b"":
                closed += 1
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
    for s in held:
        s.close()
    out(connected=len(held), refused_at_connect=refused, cpu_share=f"{cpu:.3f}",
        new_client_answered=1 if st else 0, max_clients=(st or {}).get("max_clients", "?"),
        fd_limit=(st or {}).get("fd_limit", "?"), clients_seen=(st or {}).get("clients", "?"), evicted=closed)


def unread(sock_path, pid, n):
    rss0 = rss_kib(pid)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sock_path)
    s.setblocking(False)
    one = request_line(op="status", id=1) + b"\n"
    batch = one * 1000
    sent = 0
    stalled_since = None
    while sent < n:
        try:
            k = s.send(batch)
            sent += k // len(one)
            stalled_since = None
        except BlockingIOError:
            # The daemon stopped reading us: back-pressure. Give it 2 s to
            # prove it stays stopped.
            stalled_since = stalled_since or time.monotonic()
            if time.monotonic() - stalled_since > 2:
                break
            time.sleep(0.05)
    st = status(sock_path) or {}
    rss_held = rss_kib(pid)
    s.close()
    time.sleep(1)
    rss_after = rss_kib(pid)
    out(requests_sent=sent, stopped_reading=1 if sent < n else 0, queued=st.get("queued_responses", "?"),
        rss_before_kib=rss0, rss_held_kib=rss_held, rss_after_kib=rss_after)


def partial(sock_path, pid, n, nbytes, wait_s):
    rss0 = rss_kib(pid)
    chunk = b'{"op":"status","id":"' + b"x" * (nbytes - 21)
    held = []
    for _ in range(n):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(sock_path)
        s.sendall(chunk)
        held.append(s)
    # sendall returns once the tail fits in the socket buffer; give the
    # daemon (slower under ASan) up to 1 s, inside daemon.line_timeout_s, to
    # read all of it, and report the most it held.
    st, most, deadline = {}, 0, time.monotonic() + 1
    while most < n * nbytes and time.monotonic() < deadline:
        time.sleep(0.1)
        st = status(sock_path) or {}
        most = max(most, int(st.get("buffered_request_bytes", 0)))
    rss_held = rss_kib(pid)
    time.sleep(wait_s)
    answered = 0
    for s in held:
        s.settimeout(2)
        try:
            line = s.makefile("rb").readline()
            if b'"bad_request"' in line and b"line_timeout_s" in line:
                answered += 1
        except OSError:
            pass
        s.close()
    time.sleep(0.5)
    st2 = status(sock_path) or {}
    out(buffered_held=most, rss_before_kib=rss0, rss_held_kib=rss_held,
        rss_after_kib=rss_kib(pid), told_line_timeout=answered, buffered_after=st2.get("buffered_request_bytes", "?"),
        clients_after=st2.get("clients", "?"))


def idle(sock_path, limit_s):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sock_path)
    s.settimeout(limit_s)
    t0 = time.monotonic()
    try:
        data = s.recv(1)
    except socket.timeout:
        data = None
    out(closed_after_s=f"{time.monotonic() - t0:.1f}" if data == b"" else "never")


def scrape_ok(port):
    """True when GET /metrics on 127.0.0.1:PORT answers 200."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            return s.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def scrape_flood(port, pid, n):
    # The kernel completes each handshake into the listen backlog whether or
    # not the daemon can accept; past its descriptors, accept fails (EMFILE)
    # with the connection still pending: an immediate retry would spin.
    held = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(n)]
    time.sleep(0.5)
    c0, t0 = cpu_s(pid), time.monotonic()
    time.sleep(3)  # below the listener's 5 s read timeout: the accepted ones stay
    cpu = (cpu_s(pid) - c0) / (time.monotonic() - t0)
    for s in held:
        s.close()
    deadline = time.monotonic() + 15
    answered = scrape_ok(port)
    while not answered and time.monotonic() < deadline:
        time.sleep(0.25)
        answered = scrape_ok(port)
    out(held=len(held), cpu_share=f"{cpu:.3f}", answered_after=1 if answered else 0)


def main(argv):
    cmd, args = argv[1], argv[2:]
    if cmd == "idle-flood":
        idle_flood(args[0], int(args[1]), int(args[2]))
    elif cmd == "unread":
        unread(args[0], int(args[1]), int(args[2]))
    elif cmd == "partial":
        partial(args[0], int(args[1]), int(args[2]), int(args[3]), float(args[4]))
    elif cmd == "idle":
        idle(args[0], float(args[1]))
    elif cmd == "scrape-flood":
        scrape_flood(int(args[0]), int(args[1]), int(args[2]))
    else:
        sys.exit(f"hostile_helper.py: unknown command {cmd!r}")


if __name__ == "__main__":
    main(sys.argv)
