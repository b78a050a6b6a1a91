"""Helper of tests/integration/coalesced.sh (status.mode = "coalesced").

  burst SOCKET USER:JOB...
      one protocol query per USER:JOB, each on its own connection, all sent
      at the same moment (a barrier); prints one line per query,
      "USER:JOB<TAB>EXIT<TAB>STDOUT<TAB>STDERR<TAB>SLURM" (JSON-quoted
      strings; SLURM is the response's "slurm" object or null), in the order
      given. Exit 1 when a query got no response.
  query SOCKET USER JOB
      one protocol query; prints the response line as compact JSON.
  fields PAIR
      reads one response object (e.g. the CLI's --json output) on stdin and
      prints it in burst's line format, labelled PAIR.
"""
import json
import sys
import threading

from ndjson import compact, connect, request_line


def one(path, user, job, rid, barrier=None):
    s, f = connect(path, timeout=120.0)
    try:
        if barrier is not None:
            barrier.wait()
        s.sendall(request_line(id=rid, op="query", user=user, job_id=job) + b"\n")
        return f.readline()
    finally:
        s.close()


def fields(resp):
    """EXIT, STDOUT, STDERR, SLURM of a response, as the CLI would report
    them: the wrapper's exit status and output, or the bridge's failure."""
    j = json.loads(resp)
    if "exit_status" in j:
        return j["exit_status"], j.get("stdout", ""), j.get("stderr", ""), j.get("slurm")
    err = j.get("error") or {}
    return "error:" + err.get("code", "?"), "", err.get("message", ""), j.get("slurm")


def burst(path, pairs):
    barrier = threading.Barrier(len(pairs))
    out = [None] * len(pairs)

    def run(i, user, job):
        try:
            out[i] = one(path, user, job, "b%d" % i, barrier)
        except OSError as e:
            out[i] = ("ERROR:%s" % e).encode()

    threads = []
    for i, pair in enumerate(pairs):
        user, _, job = pair.partition(":")
        t = threading.Thread(target=run, args=(i, user, job))
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
    rc = 0
    for pair, resp in zip(pairs, out):
        if not resp or resp.startswith(b"ERROR:"):
            print("%s\tNO-RESPONSE\t%s" % (pair, (resp or b"EOF").decode()), flush=True)
            rc = 1
            continue
        code, stdout, stderr, slurm = fields(resp)
        print("\t".join([pair, str(code), json.dumps(stdout), json.dumps(stderr), json.dumps(slurm)]), flush=True)
    return rc


def main(argv):
    if len(argv) >= 3 and argv[0] == "burst":
        return burst(argv[1], argv[2:])
    if len(argv) == 4 and argv[0] == "query":
        print(compact(one(argv[1], argv[2], argv[3], "q1")), flush=True)
        return 0
    if len(argv) == 2 and argv[0] == "fields":
        code, stdout, stderr, slurm = fields(sys.stdin.buffer.read())
        print("\t".join([argv[1], str(code), json.dumps(stdout), json.dumps(stderr), json.dumps(slurm)]))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
