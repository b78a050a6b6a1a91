"""Reads the daemon's Prometheus metrics and JSON logs for
tests/integration/metrics.sh, with the real parser (Debian's
python3-prometheus-client), and prints key=value lines (the suite reads them
with `kv`). Problems found go to stderr, which the suite shows on failure.

  freeport                      a free TCP port on 127.0.0.1
  http PORT PATH METHOD OUT     one HTTP request to 127.0.0.1:PORT; prints
                                code=, content_type=, bytes=; the body to OUT
  check FILE KIND:NAME...       parses the scrape; label names outside the
                                fixed set, a connection label that is not an
                                index below connections_configured, or a
                                label value equal to a user:NAME or job:ID,
                                are problems
  delta BEFORE AFTER            per-op request and histogram counts moved
                                between two scrapes; connected= of AFTER
  agree FIRST MIDDLE LAST       MIDDLE (the socket's text) has the same
                                series as FIRST and LAST (HTTP scrapes), and
                                every counter lies between theirs
  logs FILE SECRET...           the daemon's JSON log: every line parses, the
                                request lines carry the issue's fields, no
                                SECRET appears anywhere in it
"""
import json
import socket
import sys

from prometheus_client.parser import text_string_to_metric_families

PREFIX = "slurm_ssh_bridge_"
# Bounded label sets only: op and outcome are enums, state has four values,
# connection is an index below pool.connections, version is the build.
ALLOWED_LABELS = {"op", "outcome", "state", "connection", "le", "version"}
# Fields of one per-request log line (issue 15, item 5).
REQUEST_FIELDS = ("id", "op", "user", "job_id", "outcome", "elapsed_ms", "connection")


def out(**kv):
    for k, v in kv.items():
        print(f"{k}={v}")


def problem(text):
    print(text, file=sys.stderr)


def freeport():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        out(port=s.getsockname()[1])


def http(port, path, method, dest):
    with socket.create_connection(("127.0.0.1", int(port)), timeout=10) as s:
        s.sendall(f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])}
    with open(dest, "wb") as f:
        f.write(body)
    out(code=lines[0].split(" ")[1], content_type=headers.get("content-type", "").replace(" ", ""),
        length_ok=int(headers.get("content-length", -1)) == len(body), bytes=len(body))


def families(path):
    with open(path) as f:
        return list(text_string_to_metric_families(f.read()))


def samples(path):
    """{(sample name, sorted labels): value} of a scrape."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for fam in families(path) for s in fam.samples}


def check(path, names):
    fams = families(path)
    users = {n.split(":", 1)[1] for n in names if n.startswith("user:")}
    jobs = {n.split(":", 1)[1] for n in names if n.startswith("job:")}
    configured = int(next(s.value for f in fams for s in f.samples if s.name == PREFIX + "connections_configured"))
    bad_names = [f.name for f in fams if not f.name.startswith(PREFIX)]
    bad_labels, leaked, bad_connection = set(), set(), set()
    n = 0
    for fam in fams:
        for s in fam.samples:
            n += 1
            bad_labels |= set(s.labels) - ALLOWED_LABELS
            for k, v in s.labels.items():
                # A small job id may equal a connection index or a bucket
                # bound; those two labels are checked for their own shape.
                if v in users or (v in jobs and k not in ("connection", "le")):
                    leaked.add(f"{s.name}{{{k}={v}}}")
            c = s.labels.get("connection")
            if c is not None and not (c.isdigit() and int(c) < configured):
                bad_connection.add(c)
    for what, found in (("names without the prefix", bad_names), ("label names", bad_labels),
                        ("user or job id as label value", leaked), ("connection not an index", bad_connection)):
        if found:
            problem(f"{what}: {sorted(found)}")
    out(families=len(fams), samples=n, unprefixed=len(bad_names), bad_labels=len(bad_labels), leaked=len(leaked),
        bad_connection=len(bad_connection),
        types=",".join(sorted({f.type for f in fams})))


def delta(before, after):
    a, b = samples(before), samples(after)

    def moved(name, **labels):
        key = (name, tuple(sorted(labels.items())))
        return int(b.get(key, 0) - a.get(key, 0))

    res = {}
    for op in ("submit", "query", "cancel"):
        res[f"requests_{op}_ok"] = moved(PREFIX + "requests_total", op=op, outcome="ok")
        res[f"duration_{op}"] = moved(PREFIX + "request_duration_seconds_count", op=op)
    res["requests_query_invalid_job_id"] = moved(PREFIX + "requests_total", op="query", outcome="invalid_job_id")
    res["queue_wait"] = moved(PREFIX + "queue_wait_seconds_count")
    res["connected"] = int(b.get((PREFIX + "connections", (("state", "connected"),)), -1))
    res["uptime_moved"] = int(b.get((PREFIX + "uptime_seconds", ()), 0) >= a.get((PREFIX + "uptime_seconds", ()), 0))
    # A histogram's +Inf bucket holds every observation.
    inf = b.get((PREFIX + "request_duration_seconds_bucket", (("le", "+Inf"), ("op", "submit"))))
    count = b.get((PREFIX + "request_duration_seconds_count", (("op", "submit"),)))
    res["submit_inf_is_count"] = int(inf is not None and inf == count)
    out(**res)


# Gauges that change by themselves between two scrapes.
MOVING = {PREFIX + n for n in ("uptime_seconds", "resident_memory_bytes", "peak_resident_memory_bytes", "clients")}


def agree(first, middle, last):
    f, m, z = samples(first), samples(middle), samples(last)
    kinds = {fam.name: fam.type for fam in families(middle)}
    problems = []
    if set(m) != set(f) or set(m) != set(z):
        problems.append(f"series differ: only in the socket's {sorted(set(m) - set(f))[:5]}, "
                        f"only in HTTP {sorted(set(f) - set(m))[:5]}")
    compared = 0
    for key, value in m.items():
        name = key[0]
        family = next((n for n in kinds if name == n or name.startswith(n + "_")), name)
        if name in MOVING or key not in f or key not in z:
            continue
        compared += 1
        if kinds.get(family) in ("counter", "histogram"):
            if not f[key] <= value <= z[key]:
                problems.append(f"{key}: socket {value} not within HTTP {f[key]}..{z[key]}")
        elif f[key] == z[key] and value != f[key]:
            problems.append(f"{key}: socket {value}, HTTP {f[key]} both times")
    for p in problems[:10]:
        problem(p)
    out(compared=compared, disagree=len(problems))


def logs(path, secrets):
    bad_json = 0
    request_lines = missing = with_job = with_conn = 0
    ops = set()
    with open(path, errors="replace") as f:
        text = f.read()
    for line in text.splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            bad_json += 1
            problem(f"not JSON: {line[:200]}")
            continue
        if rec.get("op") not in ("submit", "query", "cancel", "explain", "jobs"):
            continue
        request_lines += 1
        ops.add(rec["op"])
        absent = [k for k in REQUEST_FIELDS if k not in rec]
        if absent:
            missing += 1
            problem(f"request line without {absent}: {line[:200]}")
        with_job += str(rec.get("job_id", "-")).isdigit()
        with_conn += isinstance(rec.get("connection"), int)
        if not isinstance(rec.get("elapsed_ms"), int):
            missing += 1
            problem(f"elapsed_ms is not a number: {line[:200]}")
    leaked = [s for s in secrets if s and s in text]
    for s in leaked:
        problem(f"a secret ({len(s)} characters, starting {s[:4]!r}) is in the log")
    out(lines=len(text.splitlines()), bad_json=bad_json, request_lines=request_lines, missing=missing,
        with_job_id=with_job, with_connection=with_conn, ops=",".join(sorted(ops)), leaked=len(leaked))


def main(argv):
    cmd, args = argv[1], argv[2:]
    if cmd == "freeport":
        freeport()
    elif cmd == "http":
        http(*args)
    elif cmd == "check":
        check(args[0], set(args[1:]))
    elif cmd == "delta":
        delta(*args)
    elif cmd == "agree":
        agree(*args)
    elif cmd == "logs":
        logs(args[0], args[1:])
    else:
        sys.exit(f"metrics_check.py: unknown command {cmd!r}; see the docstring")


if __name__ == "__main__":
    main(sys.argv)
