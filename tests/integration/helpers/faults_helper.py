"""The helper of tests/integration/faults.sh (stdlib and the shim only).

  burst --out FILE [--count N] [--concurrency C] [--stop-file P] [--timeout S]
        [--pause S] [--stdin-template FILE] -- ARGV...
      Run ARGV (as batchspawner runs the bridge) C at a time until N runs were
      started or P exists. "{i}" in ARGV and in the stdin template is the
      run's index. One JSON line per run: i, t0, t1 (epoch seconds), rc (None
      when killed after S seconds), out, err, utf8.
  summary --out FILE [--fail-re RE] [--unknown batchspawner] [--from T] [--to T]
      batchspawner's reading of query results: key=value lines (total,
      running, pending, unknown, notfound, hung, ok, failed, fail_other,
      started_in_window, max_s); samples of anything bad on stderr.
      --fail-re: the first stderr line every failure must match.
      --unknown batchspawner: only batchspawner's own unknown regex.
  submits --out FILE --slurm FILE --prefix P
      Submit outcomes against Slurm's jobs ("NAME ID" lines, job name
      P-<i>): key=value lines and one stderr line per problem.
  forward LISTEN_HOST LISTEN_PORT TARGET_HOST TARGET_PORT [TAG]
      A TCP forwarder. TAG is not used: it puts the suite's work directory in
      the command line, which is how the suite's clean-up (stop_started)
      recognises its own processes.
  probe SOCKET
      Connect to a Unix socket: prints "ok" or the errno name.
  brief FILE
      One line per run: exit status, seconds, first stderr line.
  renumber FILE
      Number the runs of FILE 0, 1, ... in file order (runs collected from
      several one-run bursts all have i=0).
  compare A OP B
      Exit 0 when the numbers A and B compare as OP (-eq -le -ge -lt -gt).
"""
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time

from ndjson import SLURM_STATE_PENDING_RE, SLURM_STATE_RUNNING_RE, STATE_UNKNOWN_RE, probe as probe_socket

# batchspawner 1.3's pending and running regexes (the shim's presets use
# the same), and its own default state_unknown_re.
PENDING_RE = SLURM_STATE_PENDING_RE
RUNNING_RE = SLURM_STATE_RUNNING_RE
BS_UNKNOWN_RE = r"^slurm_load_jobs error: (?:Socket timed out on send/recv|Unable to contact slurm controller)"
# The shim's own rule (python_shim: one list of state-unknown codes, checked
# against `slurm-ssh-bridge config --error-codes` by its tests).
SHIM_UNKNOWN_RE = STATE_UNKNOWN_RE


def parse_opts(argv, flags):
    opts, rest = {}, []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            rest = argv[i + 1:]
            break
        if a in flags:
            opts[a[2:].replace("-", "_")] = argv[i + 1]
            i += 2
            continue
        rest.append(a)
        i += 1
    return opts, rest


def is_utf8(b):
    try:
        b.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def burst(argv):
    o, cmd = parse_opts(argv, {"--out", "--count", "--concurrency", "--stop-file", "--timeout", "--pause",
                               "--stdin-template"})
    count = int(o.get("count", 0)) or None
    conc = int(o.get("concurrency", 1))
    stop = o.get("stop_file")
    timeout = float(o.get("timeout", 60))
    pause = float(o.get("pause", 0))
    template = None
    if "stdin_template" in o:
        with open(o["stdin_template"], "rb") as f:
            template = f.read()
    lock = threading.Lock()
    state = {"next": 0}
    out = open(o["out"], "a", encoding="utf-8")

    def take():
        with lock:
            if count is not None and state["next"] >= count:
                return None
            if stop and os.path.exists(stop):
                return None
            i = state["next"]
            state["next"] += 1
            return i

    def worker():
        while True:
            i = take()
            if i is None:
                return
            args = [a.replace("{i}", str(i)) for a in cmd]
            data = template.replace(b"{i}", str(i).encode()) if template is not None else None
            t0 = time.time()
            rc = None
            try:
                p = subprocess.run(args, input=data, stdin=None if data is not None else subprocess.DEVNULL,
                                   capture_output=True, timeout=timeout)
                rc, so, se = p.returncode, p.stdout, p.stderr
            except subprocess.TimeoutExpired as e:
                so, se = e.stdout or b"", e.stderr or b""
            t1 = time.time()
            rec = {"i": i, "t0": t0, "t1": t1, "rc": rc, "utf8": is_utf8(so) and is_utf8(se),
                   "out": so.decode("utf-8", "backslashreplace"), "err": se.decode("utf-8", "backslashreplace")}
            with lock:
                out.write(json.dumps(rec) + "\n")
                out.flush()
            if pause:
                time.sleep(pause)

    threads = [threading.Thread(target=worker) for _ in range(conc)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.close()


def records(path):
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def batchspawner_status(rec):
    """What batchspawner 1.3 keeps as job_status after a query run."""
    if not rec["utf8"]:
        return ""  # .decode() raises: batchspawner logs it and keeps ""
    if rec["rc"] != 0:
        return rec["err"].strip()  # RuntimeError(stderr.strip()).args[0]
    return rec["out"].strip()


def classify(text, unknown_re):
    if text and re.search(RUNNING_RE, text):
        return "running"
    if text and re.search(PENDING_RE, text):
        return "pending"
    if text and re.search(unknown_re, text):
        return "unknown"
    return "notfound"


def summary(argv):
    o, _ = parse_opts(argv, {"--out", "--fail-re", "--from", "--to", "--unknown"})
    recs = records(o["out"])
    unknown_re = BS_UNKNOWN_RE if o.get("unknown") == "batchspawner" else SHIM_UNKNOWN_RE
    fail_re = o.get("fail_re")
    c = dict.fromkeys(("total", "running", "pending", "unknown", "notfound", "hung", "ok", "failed", "fail_other",
                       "started_in_window"), 0)
    max_s = 0.0
    samples = []
    lo = float(o.get("from", 0))
    hi = float(o.get("to", 1e18))
    for r in recs:
        c["total"] += 1
        max_s = max(max_s, r["t1"] - r["t0"])
        if lo <= r["t0"] <= hi:
            c["started_in_window"] += 1
        if r["rc"] is None:
            c["hung"] += 1
            samples.append("hung: %r" % r)
            continue
        cls = classify(batchspawner_status(r), unknown_re)
        c[cls] += 1
        if cls == "notfound":
            samples.append("reads as gone: rc=%s out=%r err=%r" % (r["rc"], r["out"][:200], r["err"][:300]))
        if r["rc"] == 0:
            c["ok"] += 1
        else:
            c["failed"] += 1
            first = r["err"].splitlines()[0] if r["err"] else ""
            if fail_re and not re.search(fail_re, first):
                c["fail_other"] += 1
                samples.append("failure not matching %s: rc=%s err=%r" % (fail_re, r["rc"], r["err"][:300]))
    for k, v in c.items():
        print("%s=%d" % (k, v))
    print("max_s=%.1f" % max_s)
    for s in samples[:8]:
        print("  " + s, file=sys.stderr)


def submits(argv):
    o, _ = parse_opts(argv, {"--out", "--slurm", "--prefix"})
    recs = records(o["out"])
    prefix = o["prefix"] + "-"
    jobs = {}
    slurm_ids = []
    with open(o["slurm"], encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if len(parts) != 2 or not parts[0].startswith(prefix):
                continue
            i = int(parts[0][len(prefix):])
            jobs.setdefault(i, []).append(parts[1])
            slurm_ids.append(parts[1])
    problems = []
    reported = []
    unknown_ids = []
    c = {"submits": len(recs), "ok": 0, "unknown": 0, "unknown_with_job": 0, "failed": 0, "hung": 0,
         "slurm_jobs": len(slurm_ids)}
    codes = {}
    seen = set()
    for r in sorted(recs, key=lambda r: r["i"]):
        i = r["i"]
        if i in seen:
            problems.append("submit %d recorded twice" % i)
        seen.add(i)
        mine = jobs.get(i, [])
        if len(mine) > 1:
            problems.append("submit %d: Slurm has %d jobs for it (a duplicate): %s" % (i, len(mine), mine))
        if r["rc"] is None:
            c["hung"] += 1
            problems.append("submit %d hung: %r" % (i, r))
            continue
        if r["rc"] == 0:
            # batchspawner: last line of stdout, text before ';', an integer
            lines = r["out"].strip().splitlines()
            jid = lines[-1].split(";")[0] if lines else ""
            if not jid.isdigit():
                problems.append("submit %d: exit 0 without a job id: %r" % (i, r["out"]))
                continue
            c["ok"] += 1
            reported.append(jid)
            if mine != [jid]:
                problems.append("submit %d: reported job %s, Slurm has %s" % (i, jid, mine))
            continue
        first = r["err"].splitlines()[0] if r["err"] else ""
        m = re.match(r"^slurm-ssh-bridge: ([a-z_]+): ", first)
        code = m.group(1) if m else "?"
        codes[code] = codes.get(code, 0) + 1
        if not m:
            problems.append("submit %d failed without a slurm-ssh-bridge line: rc=%s err=%r" % (i, r["rc"], r["err"]))
        if code == "submit_unknown":
            c["unknown"] += 1
            if mine:
                c["unknown_with_job"] += 1
                unknown_ids.extend(mine)
        else:
            c["failed"] += 1
            if mine:
                problems.append("submit %d failed with %s (%r) but Slurm has its job %s: an unknown outcome not "
                                "reported as submit_unknown" % (i, code, first[:200], mine))
    for i in jobs:
        if i not in seen:
            problems.append("Slurm has jobs %s for submit %d, which never ran" % (jobs[i], i))
    if len(set(reported)) != len(reported):
        problems.append("a job id was reported twice: %s" % sorted(reported))
    if set(reported) | set(unknown_ids) != set(slurm_ids):
        problems.append("Slurm's jobs %s != reported %s + jobs of submit_unknown submits %s" %
                        (sorted(slurm_ids), sorted(reported), sorted(unknown_ids)))
    for k, v in c.items():
        print("%s=%d" % (k, v))
    print("codes=%s" % ",".join("%s:%d" % kv for kv in sorted(codes.items())))
    print("problems=%d" % len(problems))
    for p in problems:
        print("  " + p, file=sys.stderr)


def brief(argv):
    for r in records(argv[0]):
        first = (r["err"].splitlines() or [""])[0]
        print("rc=%s %.1fs %s" % (r["rc"], r["t1"] - r["t0"], first[:160]))


def forward(argv):
    lhost, lport, thost, tport = argv[0], int(argv[1]), argv[2], int(argv[3])
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((lhost, lport))
    srv.listen(128)
    print("forwarding %s:%d -> %s:%d" % (lhost, lport, thost, tport), flush=True)

    def pipe(a, b, done):
        try:
            while True:
                d = a.recv(65536)
                if not d:
                    break
                b.sendall(d)
        except OSError:
            pass
        try:
            b.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        with done[0]:
            done[1] += 1
            if done[1] == 2:
                a.close()
                b.close()

    while True:
        c, _ = srv.accept()
        try:
            u = socket.create_connection((thost, tport), timeout=5)
            u.settimeout(None)
        except OSError:
            c.close()
            continue
        done = [threading.Lock(), 0]
        threading.Thread(target=pipe, args=(c, u, done), daemon=True).start()
        threading.Thread(target=pipe, args=(u, c, done), daemon=True).start()


def probe(argv):
    got = probe_socket(argv[0])
    print(got)
    return 0 if got == "ok" else 1


def renumber(argv):
    recs = records(argv[0])
    with open(argv[0], "w", encoding="utf-8") as f:
        for k, r in enumerate(recs):
            r["i"] = k
            f.write(json.dumps(r) + "\n")


def compare(argv):
    a, op, b = float(argv[0]), argv[1], float(argv[2])
    ok = {"-eq": a == b, "-le": a <= b, "-ge": a >= b, "-lt": a < b, "-gt": a > b}[op]
    sys.exit(0 if ok else 1)


def main():
    cmd, argv = sys.argv[1], sys.argv[2:]
    if cmd == "burst":
        burst(argv)
    elif cmd == "summary":
        summary(argv)
    elif cmd == "submits":
        submits(argv)
    elif cmd == "brief":
        brief(argv)
    elif cmd == "forward":
        forward(argv)
    elif cmd == "probe":
        sys.exit(probe(argv))
    elif cmd == "renumber":
        renumber(argv)
    elif cmd == "compare":
        compare(argv)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
