"""The `floor` path's helper process: run as the service account (so sudo's
real user is that account, as over SSH) while the harness stays root.
Started by workload.FloorHelper as `python3 -m ssbbench.floor_helper`."""
import concurrent.futures
import json
import sys
import threading

from ssbbench.measure import children_cpu_ns, run_timed, self_cpu_ns


def floor_helper_main():
    """`--floor-helper`: runs as the service account (started so by the
    harness) and starts the `floor` commands for it, so that sudo's real
    user is the service account, as over SSH, while the harness itself
    stays root. One JSON request per line on stdin, answered (out of order,
    by id) on stdout; requests run concurrently."""
    out_lock = threading.Lock()

    def answer(msg):
        line = json.dumps(msg) + "\n"
        with out_lock:
            sys.stdout.write(line)
            sys.stdout.flush()

    def serve(req):
        if req.get("cpu"):
            answer({"id": req["id"], "cpu_ns": children_cpu_ns(), "self_ns": self_cpu_ns()})
            return
        rc, out, err, ms = run_timed(req["argv"], req["stdin"].encode(), req["env"], req["timeout"], req.get("cwd"))
        answer({"id": req["id"], "rc": rc, "out": out.decode("utf-8", "replace"),
                "err": err.decode("utf-8", "replace"), "ms": ms})

    with concurrent.futures.ThreadPoolExecutor(max_workers=600) as pool:
        for line in sys.stdin:
            if line.strip():
                pool.submit(serve, json.loads(line))
    return 0


if __name__ == "__main__":
    sys.exit(floor_helper_main())
