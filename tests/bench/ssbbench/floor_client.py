"""The harness's side of the `floor` path's helper (floor_helper.py, which
runs as the service account): starts it, sends it commands, reads its CPU."""
import json
import os
import shutil
import subprocess
import threading


class FloorHelper:
    """The harness's side of floor_helper.py."""

    def __init__(self, work, svc, env):
        # The service account may not be able to read the checkout: it runs
        # a copy of the modules the helper needs, in the work directory.
        top = os.path.join(work, "floor-helper")
        pkg = os.path.join(top, "ssbbench")
        here = os.path.dirname(os.path.abspath(__file__))
        os.makedirs(pkg, exist_ok=True)
        for d in (top, pkg):
            os.chmod(d, 0o755)
        for name in ("__init__.py", "measure.py", "floor_helper.py"):
            shutil.copyfile(os.path.join(here, name), os.path.join(pkg, name))
            os.chmod(os.path.join(pkg, name), 0o644)
        self.proc = subprocess.Popen(["/usr/bin/python3", "-m", "ssbbench.floor_helper"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, env=dict(env, PYTHONPATH=top), cwd=svc.pw_dir,
                                     user=svc.pw_uid, group=svc.pw_gid,
                                     extra_groups=os.getgrouplist(svc.pw_name, svc.pw_gid), text=True, bufsize=1)
        self.lock = threading.Lock()
        self.pending = {}
        self.next_id = 0
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            msg = json.loads(line)
            with self.lock:
                slot = self.pending.pop(msg["id"])
            slot[1] = msg
            slot[0].set()
        with self.lock:  # the helper died: release every waiter
            for slot in self.pending.values():
                slot[1] = {"rc": None, "out": "", "err": "floor helper exited", "ms": 0.0, "cpu_ns": 0}
                slot[0].set()
            self.pending.clear()

    def request(self, msg):
        slot = [threading.Event(), None]
        with self.lock:
            if self.proc.poll() is not None:
                raise RuntimeError("the floor helper exited")
            self.next_id += 1
            msg["id"] = self.next_id
            self.pending[msg["id"]] = slot
            self.proc.stdin.write(json.dumps(msg) + "\n")
            self.proc.stdin.flush()
        slot[0].wait()
        return slot[1]

    def run(self, argv, stdin, env, timeout, cwd):
        r = self.request({"argv": argv, "stdin": stdin.decode(), "env": env, "timeout": timeout, "cwd": cwd})
        return r["rc"], r["out"].encode(), r["err"].encode(), r["ms"]

    def cpu_ns(self):
        """(CPU of the commands it ran, its own CPU), ns."""
        r = self.request({"cpu": True})
        return r.get("cpu_ns", 0), r.get("self_ns", 0)

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
