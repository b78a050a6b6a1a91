"""NDJSON client for the daemon socket: the helper of tests/integration/daemon.sh.

  load SOCKET JOB_ID COUNT CONNECTIONS WINDOW USER
      COUNT query requests spread over CONNECTIONS connections, each keeping
      WINDOW requests outstanding; every response must be ok, RUNNING node1,
      with an id we sent. Prints a JSON summary; exit 1 on any bad response.
  session SOCKET LABEL=LINE...
      on ONE connection, send each LINE and wait for its response; prints
      "LABEL<TAB>response" (compact JSON, or EOF / TIMEOUT / RAW:...).
  stale PATH
      leave a Unix socket file at PATH with nobody listening.
  jget JSON PYEXPR
      print PYEXPR evaluated with d = the parsed JSON ("ERR" if that fails).
"""
import json
import socket
import sys
import threading
import time

from ndjson import compact, connect, request_line


def load(path, job, count, conns, window, user):
    lock = threading.Lock()
    res = {"requests": count, "ok": 0, "bad": 0, "samples": []}

    def bad(what):
        with lock:
            res["bad"] += 1
            if len(res["samples"]) < 5:
                res["samples"].append(what)

    def worker(k, n):
        try:
            s, f = connect(path, timeout=60.0)
        except OSError as e:
            bad("connect: %s" % e)
            return
        sent = done = 0
        try:
            while done < n:
                # Pipelining: a window of requests in one write, then their
                # responses in whatever order the daemon completes them.
                batch = min(window, n - done)
                ids = set()
                buf = b""
                for _ in range(batch):
                    rid = "c%d-%d" % (k, sent)
                    sent += 1
                    ids.add(rid)
                    buf += request_line(id=rid, op="query", user=user, job_id=job) + b"\n"
                s.sendall(buf)
                for _ in range(batch):
                    line = f.readline()
                    if not line:
                        bad("EOF after %d responses" % done)
                        return
                    done += 1
                    try:
                        r = json.loads(line)
                    except ValueError:
                        bad("not JSON: %r" % line[:200])
                        continue
                    rid = r.get("id")
                    if rid not in ids:
                        bad("unexpected id: %r" % line[:200])
                        continue
                    ids.discard(rid)
                    if r.get("ok") is True and r.get("state") == "RUNNING" and r.get("host") == "node1":
                        with lock:
                            res["ok"] += 1
                    else:
                        bad(line[:300].decode(errors="replace"))
        except (OSError, socket.timeout) as e:
            bad("socket: %s after %d responses" % (e, done))
        finally:
            s.close()

    per = [count // conns + (1 if i < count % conns else 0) for i in range(conns)]
    t0 = time.monotonic()
    threads = [threading.Thread(target=worker, args=(i, n)) for i, n in enumerate(per)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    res["secs"] = round(time.monotonic() - t0, 2)
    res["per_s"] = round(count / max(res["secs"], 0.001), 1)
    print(json.dumps(res))
    return 0 if res["ok"] == count and res["bad"] == 0 else 1


def session(path, items):
    s, f = connect(path, timeout=30.0)
    for item in items:
        label, _, line = item.partition("=")
        try:
            s.sendall(line.encode() + b"\n")
            resp = f.readline()
        except socket.timeout:
            print("%s\tTIMEOUT" % label, flush=True)
            continue
        except OSError as e:
            print("%s\tERROR:%s" % (label, e), flush=True)
            continue
        if not resp:
            print("%s\tEOF" % label, flush=True)
            continue
        print("%s\t%s" % (label, compact(resp)), flush=True)
    s.close()
    return 0


def stale(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.close()  # the file stays, nobody listens
    return 0


def jget(text, expr):
    try:
        # d in the globals: generator expressions in EXPR see it too
        print(eval(expr, {"d": json.loads(text)}))
    except Exception:
        print("ERR")
    return 0


def main(argv):
    if len(argv) > 1:
        if argv[1] == "load":
            return load(argv[2], argv[3], int(argv[4]), int(argv[5]), int(argv[6]), argv[7])
        if argv[1] == "session":
            return session(argv[2], argv[3:])
        if argv[1] == "stale":
            return stale(argv[2])
        if argv[1] == "jget":
            return jget(argv[2], argv[3])
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
