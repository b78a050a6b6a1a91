"""The bridge daemon a benchmark runs: one `slurm-ssh-bridge serve` started
by the harness (its PID in WORK/daemon.pid, which run.sh's clean-up checks
against the command line before stopping it), its `status`, CPU and memory,
and its orderly stop (SIGTERM, then SIGKILL after 40 s)."""
import json
import os
import signal
import subprocess
import time

from ssbbench.measure import log, task_cpu_ns


class Daemon:
    def __init__(self, bridge, conf, work, env, extra_env=None, log_name="daemon.log"):
        """EXTRA_ENV: SLURM_SSH_BRIDGE_* settings for this daemon only (the
        command line stays `BRIDGE --config CONF serve`)."""
        self.bridge, self.conf, self.work = bridge, conf, work
        self.env = dict(env, **(extra_env or {}))
        self.client_env = env
        self.log_path = os.path.join(work, log_name)
        self.proc = None
        self._log = None

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def poll(self):
        return self.proc.poll() if self.proc else 0

    def start(self, timeout_s=15):
        self._log = open(self.log_path, "ab")  # pylint: disable=consider-using-with
        self.proc = subprocess.Popen([self.bridge, "--config", self.conf, "serve"], stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True)
        with open(os.path.join(self.work, "daemon.pid"), "w", encoding="ascii") as handle:
            handle.write(f"{self.proc.pid}\n")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the daemon exited with status {self.proc.returncode}; see {self.log_path}")
            status = self.status()
            if status is not None:
                if status.get("pid") != self.proc.pid:
                    raise RuntimeError(f"another daemon (pid {status.get('pid')}) answers on the sandbox's socket")
                log(f"daemon up (pid {self.proc.pid})")
                return status
            time.sleep(0.1)
        raise RuntimeError(f"the daemon did not answer `status` within {timeout_s} s; see {self.log_path}")

    def status(self):
        """The daemon's `status` JSON, or None when it does not answer."""
        proc = subprocess.run([self.bridge, "--config", self.conf, "status"], capture_output=True,
                              env=self.client_env, timeout=20, check=False)
        if proc.returncode != 0:
            return None
        try:
            return json.loads(proc.stdout)
        except ValueError:
            return None

    def memory(self):
        """VmHWM, VmRSS (KiB) and Threads from /proc/PID/status."""
        mem = {}
        try:
            with open(f"/proc/{self.proc.pid}/status", encoding="ascii") as handle:
                for line in handle:
                    key, _, value = line.partition(":")
                    if key in ("VmHWM", "VmRSS", "Threads"):
                        mem[key] = int(value.split()[0])
        except OSError:
            pass
        return mem

    def cpu_ns(self):
        """On-CPU time of all its threads so far (ns)."""
        return task_cpu_ns(self.proc.pid) if self.proc else 0

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        log(f"daemon stopped (exit {self.proc.returncode})")
        if self._log:
            self._log.close()
            self._log = None
