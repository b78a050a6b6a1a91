"""A small harness for tests that drive a real JupyterHub as a user would.

Two independent halves:

``HubClient`` (HTTP only; knows nothing about how the hub was started, so it
works the same against a hub started by ``LocalHub``, a hub in a pod behind a
published ``127.0.0.1`` port, or any other URL):

    client = HubClient("http://127.0.0.1:8000/")     # the proxy's public URL
    client.login("alice.proj1", password)             # the real login form
    client.start_server()                             # "Start My Server" (GET /hub/spawn/USER)
    elapsed = client.wait_ready(timeout=90)           # until the hub says ready
    client.server_get("api/status")                   # through the proxy, user's cookies
    kernel = client.start_kernel()
    reply = client.execute(kernel, "6*7")             # websocket, Jupyter messaging
    assert reply.result == "42"
    client.stop_server(timeout=60)                    # DELETE /hub/api/users/USER/server

Also: ``start_server_api(options)`` (POST /hub/api/users/USER/server, e.g.
an options form's fields), ``user_model()``, ``server_model()``,
``hub_api(method, path)`` (Hub REST API with the user's cookie, Referer and
``X-XSRFToken``), ``open_server()`` (the browser's first visit: the hub's
OAuth handshake and the server's ``_xsrf`` cookie; call it again after a
restart of the *server*), ``server_api(method, path)``, ``list_kernels()``,
``delete_kernel(id)``, ``cookie(name, path)``, ``url(path)``, ``session``
(the ``requests.Session`` holding the cookies). Works with JupyterHub 3
(Referer check) and 4+ (``_xsrf`` in the login form and API headers).

Every call is bounded by a timeout and raises ``HubError`` with a message
that says what was asked, of which URL, and what came back.

``LocalHub`` (process only): runs ``jupyterhub -f CONFIG`` with a given
interpreter, cwd and environment, finds its proxy and its managed services'
processes by PID, stops it by PID (SIGTERM, bounded wait), and gives the log
tail for failure messages.

Only the standard library, ``requests`` and ``websocket-client`` (Debian's
python3-requests, python3-websocket).
"""

from __future__ import annotations

import glob
import json
import os
import re
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional
from urllib.parse import urljoin, urlparse

import requests
import websocket  # websocket-client (python3-websocket)

__all__ = [
    "HubError",
    "HubClient",
    "ExecuteReply",
    "LocalHub",
    "free_port",
    "wait_until",
    "tail",
]


class HubError(AssertionError):
    """A step of a hub test failed; the message says what and where."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_until(what: str, check: Callable[[], object], timeout: float, interval: float = 0.2):
    """Call ``check`` until it returns a true value (returned) or ``timeout`` s pass (HubError)."""
    deadline = time.monotonic() + timeout
    last_exc: Optional[BaseException] = None
    while True:
        try:
            value = check()
            if value:
                return value
        except (requests.RequestException, OSError) as exc:
            last_exc = exc
        if time.monotonic() >= deadline:
            extra = f" (last error: {last_exc})" if last_exc else ""
            raise HubError(f"timed out after {timeout:.0f} s waiting for {what}{extra}")
        time.sleep(interval)


def tail(path: str, lines: int = 40) -> str:
    """The last ``lines`` lines of a text file, or a note that it is missing."""
    try:
        with open(path, "r", errors="replace") as f:
            text = f.read().splitlines()
    except OSError as exc:
        return f"(no {path}: {exc.strerror})"
    return "\n".join(text[-lines:])


def _short(text: str, limit: int = 600) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


@dataclass
class ExecuteReply:
    """What one ``execute_request`` produced."""

    status: str = ""  # the shell reply's status: ok / error / aborted
    result: Optional[str] = None  # execute_result's text/plain
    stdout: str = ""
    stderr: str = ""
    error: Optional[str] = None  # "ename: evalue" of an error reply
    messages: List[str] = field(default_factory=list)  # msg_types seen, in order


class HubClient:
    """A user's browser, reduced to the requests it makes.

    ``base_url`` is the hub's public URL (the proxy), with the hub's
    ``base_url`` prefix if any, e.g. ``http://127.0.0.1:8000/``.
    """

    def __init__(self, base_url: str, timeout: float = 30.0):
        if not base_url.endswith("/"):
            base_url += "/"
        self.base_url = base_url
        self.timeout = timeout
        self.session = requests.Session()
        self.user: Optional[str] = None
        self.spawn_requested_at: Optional[float] = None

    # -------------------------------------------------------------- plumbing

    def url(self, path: str) -> str:
        return urljoin(self.base_url, path.lstrip("/"))

    def cookie(self, name: str, path: str) -> Optional[str]:
        """The value of cookie ``name`` a browser would send to URL path ``path``
        (the one with the longest matching cookie path)."""
        path = path if path.endswith("/") else path + "/"
        best = None
        for c in self.session.cookies:
            cpath = c.path if c.path.endswith("/") else c.path + "/"
            if c.name == name and path.startswith(cpath) and (best is None or len(cpath) > len(best[0])):
                best = (cpath, c.value)
        return best[1] if best else None

    def _hub_headers(self) -> Dict[str, str]:
        # JupyterHub 3 refuses cookie-authenticated API calls without a
        # same-origin Referer; 4+ also wants the _xsrf token.
        headers = {"Referer": self.url("hub/home")}
        xsrf = self.cookie("_xsrf", urlparse(self.url("hub/api/")).path)
        if xsrf:
            headers["X-XSRFToken"] = xsrf
        return headers

    def _need_user(self) -> str:
        if not self.user:
            raise HubError("HubClient: log in first (login(user, password))")
        return self.user

    def _request(self, method: str, path: str, expect=(200,), **kwargs) -> requests.Response:
        url = self.url(path)
        kwargs.setdefault("timeout", self.timeout)
        try:
            r = self.session.request(method, url, **kwargs)
        except requests.RequestException as exc:
            raise HubError(f"{method} {url} failed: {exc}") from None
        if expect and r.status_code not in expect:
            raise HubError(
                f"{method} {url} answered {r.status_code} (expected {', '.join(map(str, expect))}): "
                f"{_short(r.text)}"
            )
        return r

    def hub_api(self, method: str, path: str, expect=(200,), **kwargs) -> requests.Response:
        """A Hub REST API call (``hub/api/PATH``) with the user's cookie."""
        headers = self._hub_headers()
        headers.update(kwargs.pop("headers", {}))
        return self._request(method, "hub/api/" + path.lstrip("/"), expect, headers=headers, **kwargs)

    # ----------------------------------------------------------------- login

    def login(self, user: str, password: str) -> None:
        """Log in through the hub's login form, as a browser does.

        GET /hub/login (cookies, and the form's ``_xsrf`` field where the
        hub version has one), POST the form; success is the hub's redirect
        away from the login page plus its login cookie.
        """
        page = self._request("GET", "hub/login")
        form = {"username": user, "password": password}
        m = re.search(r'name="_xsrf"\s+value="([^"]+)"', page.text)
        if m:
            form["_xsrf"] = m.group(1)
        r = self._request(
            "POST",
            "hub/login",
            expect=(302, 303),
            data=form,
            allow_redirects=False,
            headers={"Referer": self.url("hub/login")},
        )
        location = r.headers.get("Location", "")
        if "login" in urlparse(location).path.rsplit("/", 1)[-1]:
            raise HubError(f"login of {user} at {self.url('hub/login')} refused (redirected to {location})")
        if not any(c.name.startswith("jupyterhub-session") or c.name == "jupyterhub-hub-login"
                   for c in self.session.cookies):
            raise HubError(f"login of {user}: the hub set no login cookie (cookies: "
                           f"{sorted(c.name for c in self.session.cookies)})")
        self.user = user
        # Who am I, according to the hub (proves the cookie works).
        me = self.hub_api("GET", "user").json()
        if me.get("name") != user:
            raise HubError(f"logged in as {user} but /hub/api/user says {me.get('name')!r}")

    # ---------------------------------------------------------------- server

    def user_model(self) -> dict:
        return self.hub_api("GET", f"users/{self._need_user()}").json()

    def server_model(self) -> Optional[dict]:
        """The user's default server in the hub's user model (None: no server)."""
        return (self.user_model().get("servers") or {}).get("")

    def start_server(self) -> None:
        """Press "Start My Server": GET /hub/spawn/USER, as the home page's button does.

        JupyterHub answers with a redirect (to the server when it became
        ready quickly, else to the spawn-pending page). Records the time of
        the request for ``wait_ready``.
        """
        user = self._need_user()
        self.spawn_requested_at = time.monotonic()
        r = self._request(
            "GET",
            f"hub/spawn/{user}",
            expect=(200, 302, 303),
            allow_redirects=False,
            headers={"Referer": self.url("hub/home")},
            timeout=max(self.timeout, 60),
        )
        if r.status_code == 200 and "<form" in r.text and "spawn" in r.text:
            raise HubError(f"GET {self.url('hub/spawn/' + user)} showed an options form; "
                           "this harness starts servers without options (use start_server_api)")

    def start_server_api(self, options: Optional[dict] = None) -> None:
        """Start the server through the REST API (POST /hub/api/users/USER/server)."""
        user = self._need_user()
        self.spawn_requested_at = time.monotonic()
        self.hub_api("POST", f"users/{user}/server", expect=(201, 202), json=options or {})

    def wait_ready(self, timeout: float = 90.0, interval: float = 0.1) -> float:
        """Wait until the hub's user model says the server is ready.

        Returns seconds since ``start_server`` was called. Raises HubError
        as soon as the hub gives up on the spawn (no server, nothing pending).
        """
        user = self._need_user()
        t0 = self.spawn_requested_at or time.monotonic()
        deadline = t0 + timeout
        seen_pending = False
        while True:
            model = self.user_model()
            server = (model.get("servers") or {}).get("")
            if server and server.get("ready"):
                return time.monotonic() - t0
            pending = (server or {}).get("pending") or model.get("pending")
            if pending:
                seen_pending = True
            elif seen_pending or time.monotonic() - t0 > 15:
                raise HubError(
                    f"the hub gave up on {user}'s server (nothing pending, not ready, "
                    f"{time.monotonic() - t0:.1f} s after start); see the hub log and the job's output")
            if time.monotonic() >= deadline:
                raise HubError(f"{user}'s server not ready after {timeout:.0f} s "
                               f"(hub says pending={pending!r})")
            time.sleep(interval)

    def stop_server(self, timeout: float = 60.0) -> float:
        """Stop the server (DELETE /hub/api/users/USER/server); wait until the hub has no server."""
        user = self._need_user()
        t0 = time.monotonic()
        self.hub_api("DELETE", f"users/{user}/server", expect=(202, 204))
        wait_until(f"the hub to report {user}'s server stopped",
                   lambda: self.server_model() is None and not self.user_model().get("pending"),
                   timeout)
        return time.monotonic() - t0

    # ------------------------------------------------ the server, via proxy

    def server_path(self, path: str = "") -> str:
        return f"user/{self._need_user()}/{path.lstrip('/')}"

    def open_server(self) -> None:
        """Open the server's page in the "browser": completes the OAuth
        handshake with the hub (sets the server's own cookie) and gets the
        server's ``_xsrf`` cookie."""
        r = self._request("GET", self.server_path("tree"), expect=(200,), allow_redirects=True)
        if not urlparse(r.url).path.startswith("/" + urlparse(self.url(self.server_path())).path.lstrip("/")):
            raise HubError(f"opening {self.url(self.server_path('tree'))} ended at {r.url}, not the server")

    def _server_headers(self) -> Dict[str, str]:
        headers = {"Referer": self.url(self.server_path("tree"))}
        xsrf = self.cookie("_xsrf", urlparse(self.url(self.server_path("api/"))).path)
        if xsrf:
            headers["X-XSRFToken"] = xsrf
        return headers

    def server_api(self, method: str, path: str, expect=(200,), **kwargs) -> requests.Response:
        """A call to the notebook server's API through the hub's proxy (``user/USER/PATH``)."""
        headers = self._server_headers()
        headers.update(kwargs.pop("headers", {}))
        return self._request(method, self.server_path(path), expect, headers=headers,
                             allow_redirects=False, **kwargs)

    def server_get(self, path: str) -> dict:
        return self.server_api("GET", path).json()

    def start_kernel(self, name: Optional[str] = None) -> str:
        """POST api/kernels; returns the kernel id."""
        body = {"name": name} if name else {}
        kernel = self.server_api("POST", "api/kernels", expect=(201,), json=body).json()
        return kernel["id"]

    def list_kernels(self) -> List[str]:
        return [k["id"] for k in self.server_get("api/kernels")]

    def delete_kernel(self, kernel_id: str) -> None:
        self.server_api("DELETE", f"api/kernels/{kernel_id}", expect=(204,))

    def execute(self, kernel_id: str, code: str, timeout: float = 60.0) -> ExecuteReply:
        """Run ``code`` in the kernel over its websocket (Jupyter messaging v5).

        Sends an ``execute_request`` on the shell channel and collects the
        iopub ``execute_result`` / ``stream`` / ``error`` messages for it
        until the shell ``execute_reply`` and the kernel's ``idle`` status
        have both arrived.
        """
        parsed = urlparse(self.url(self.server_path(f"api/kernels/{kernel_id}/channels")))
        scheme = "wss" if parsed.scheme == "https" else "ws"
        session_id = uuid.uuid4().hex
        ws_url = f"{scheme}://{parsed.netloc}{parsed.path}?session_id={session_id}"
        names = sorted({c.name for c in self.session.cookies})
        cookie = "; ".join(f"{n}={v}" for n in names
                           for v in [self.cookie(n, parsed.path)] if v is not None)
        origin = f"{urlparse(self.base_url).scheme}://{parsed.netloc}"
        try:
            ws = websocket.create_connection(ws_url, cookie=cookie, origin=origin, timeout=timeout)
        except Exception as exc:  # websocket-client raises several unrelated types
            raise HubError(f"websocket {ws_url} did not open: {exc}") from None
        msg_id = uuid.uuid4().hex
        request = {
            "header": {"msg_id": msg_id, "username": self.user or "", "session": session_id,
                       "msg_type": "execute_request", "version": "5.3",
                       "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
            "parent_header": {}, "metadata": {}, "buffers": [], "channel": "shell",
            "content": {"code": code, "silent": False, "store_history": False,
                        "user_expressions": {}, "allow_stdin": False, "stop_on_error": True},
        }
        reply = ExecuteReply()
        deadline = time.monotonic() + timeout
        got_reply = got_idle = False
        try:
            ws.send(json.dumps(request))
            while not (got_reply and got_idle):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise HubError(f"kernel {kernel_id}: no complete answer to {code!r} within "
                                   f"{timeout:.0f} s (seen: {reply.messages})")
                ws.settimeout(left)
                try:
                    raw = ws.recv()
                except websocket.WebSocketTimeoutException:
                    continue
                if isinstance(raw, bytes):
                    continue  # binary frames carry buffers; not used here
                msg = json.loads(raw)
                if (msg.get("parent_header") or {}).get("msg_id") != msg_id:
                    continue
                mtype = msg.get("msg_type") or msg.get("header", {}).get("msg_type")
                content = msg.get("content") or {}
                reply.messages.append(mtype)
                if mtype == "execute_result":
                    reply.result = (content.get("data") or {}).get("text/plain")
                elif mtype == "stream":
                    if content.get("name") == "stderr":
                        reply.stderr += content.get("text", "")
                    else:
                        reply.stdout += content.get("text", "")
                elif mtype == "error":
                    reply.error = f"{content.get('ename')}: {content.get('evalue')}"
                elif mtype == "execute_reply":
                    reply.status = content.get("status", "")
                    got_reply = True
                elif mtype == "status" and content.get("execution_state") == "idle":
                    got_idle = True
        except websocket.WebSocketException as exc:
            raise HubError(f"websocket {ws_url}: {exc} (seen: {reply.messages})") from None
        finally:
            ws.close()
        return reply


class LocalHub:
    """``jupyterhub -f CONFIG`` as a child process, stopped by its PID.

    ``python``: the interpreter (a venv that sees Debian's jupyterhub and
    has batchspawner installed); ``workdir``: the hub's cwd (its db, cookie
    secret and proxy pid file live there when the config says so); ``env``:
    the whole environment of the hub process.
    """

    def __init__(self, python: str, config: str, workdir: str, env: Dict[str, str],
                 log_path: str, jupyterhub: str = "/usr/bin/jupyterhub"):
        self.python = python
        self.config = config
        self.workdir = workdir
        self.env = env
        self.log_path = log_path
        self.jupyterhub = jupyterhub
        self.proc: Optional[subprocess.Popen] = None

    @classmethod
    def for_test(cls, venv: str, config: str, workdir: str, settings: Dict, extra_env: Optional[Dict[str, str]] = None):
        """A hub for a test config that reads its settings from
        ``$SSB_HUB_SETTINGS``: writes ``settings`` to WORKDIR/settings.json
        (mode 0600: it may name a password) and gives the hub a minimal
        environment (Debian's configurable-http-proxy needs NODE_PATH).
        ``extra_env``: secrets and the like, passed by environment only."""
        settings_file = os.path.join(workdir, "settings.json")
        fd = os.open(settings_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(settings, f)
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
            "LANG": "C.UTF-8",
            "HOME": os.environ.get("HOME", "/root"),
            "NODE_PATH": "/usr/share/nodejs",
            "SSB_HUB_SETTINGS": settings_file,
            "PYTHONDONTWRITEBYTECODE": "1",
            **(extra_env or {}),
        }
        return cls(os.path.join(venv, "bin", "python"), config, workdir, env, os.path.join(workdir, "jupyterhub.log"))

    @property
    def pid(self) -> Optional[int]:
        return self.proc.pid if self.proc else None

    def start(self, public_url: str, timeout: float = 60.0) -> None:
        """Start the hub; return once its API answers through the proxy."""
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [self.python, self.jupyterhub, "-f", self.config],
            cwd=self.workdir, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
        log.close()
        api = urljoin(public_url, "hub/api/")

        def up():
            if self.proc.poll() is not None:
                raise HubError(f"jupyterhub (pid {self.proc.pid}) exited with status "
                               f"{self.proc.returncode} while starting; log {self.log_path}:\n"
                               f"{tail(self.log_path, 30)}")
            return requests.get(api, timeout=2).status_code == 200

        wait_until(f"the hub's API at {api} (pid {self.proc.pid}, log {self.log_path})", up, timeout)

    def children(self) -> Dict[int, List[str]]:
        """Direct child processes of the hub: {pid: argv}."""
        if not self.proc:
            return {}
        found = {}
        try:
            with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as f:
                pids = [int(p) for p in f.read().split()]
        except OSError:
            return {}
        for pid in pids:
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    found[pid] = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
            except OSError:
                pass
        return found

    def child_pid(self, predicate: Callable[[List[str]], bool]) -> Optional[int]:
        for pid, argv in self.children().items():
            if predicate(argv):
                return pid
        return None

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM the hub by its PID and wait (bounded); SIGKILL if it hangs. Returns its status."""
        if not self.proc or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise HubError(f"jupyterhub (pid {self.proc.pid}) ignored SIGTERM for {timeout:.0f} s; killed")

    def log_tail(self, lines: int = 40) -> str:
        return tail(self.log_path, lines)


def pid_alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def stop_pid(pid: int, timeout: float = 10.0) -> None:
    """SIGTERM one process we started, by PID; SIGKILL after ``timeout`` s."""
    if not pid_alive(pid):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if pid_alive(pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def hub_and_job_logs(hub: "LocalHub", job_log_dir: str) -> List[str]:
    """What a failed hub test prints: the hub log's tail and each job's
    output (``job-*.log`` in JOB_LOG_DIR), or that there was none."""
    parts = [f"--- hub log ({hub.log_path}), last lines:\n{hub.log_tail(60)}"]
    logs = sorted(glob.glob(os.path.join(job_log_dir, "job-*.log")))
    if not logs:
        parts.append(f"--- no job output in {job_log_dir} (the job never started?)")
    for path in logs:
        parts.append(f"--- job output {path}:\n{tail(path, 40)}")
    return parts
