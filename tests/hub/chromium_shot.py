"""Screenshot a page in headless Chromium (Debian's /usr/bin/chromium), with
cookies set first, through the DevTools protocol on a loopback port.

Chromium runs in its own process group with a fresh temporary profile; both
are removed afterwards (the group is ended by the id of the process this
module started). Every wait is bounded.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request

import websocket

CHROMIUM = os.environ.get("SSB_CHROMIUM", "/usr/bin/chromium")
# Running as root needs --no-sandbox; the rest keeps Chromium off the network
# (no update, sync or field-trial traffic) and off the GPU.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1280,800", "--remote-debugging-address=127.0.0.1"]


class ShotError(Exception):
    pass


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Cdp:
    def __init__(self, ws_url):
        self.ws = websocket.create_connection(ws_url, timeout=10, suppress_origin=True)
        self.next_id = 0
        self.events = []

    def call(self, method, timeout=30, **params):
        self.next_id += 1
        mid = self.next_id
        self.ws.send(json.dumps({"id": mid, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                msg = json.loads(self.ws.recv())
            except websocket.WebSocketTimeoutException:
                continue
            if msg.get("id") == mid:
                if "error" in msg:
                    raise ShotError(f"DevTools {method}: {msg['error'].get('message')}")
                return msg.get("result", {})
            self.events.append(msg)
        raise ShotError(f"DevTools {method}: no answer within {timeout} s")

    def evaluate(self, expr):
        res = self.call("Runtime.evaluate", expression=expr, returnByValue=True)
        return res.get("result", {}).get("value")

    def close(self):
        self.ws.close()


def _wait_devtools(port, proc, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ShotError(f"chromium exited with status {proc.returncode} before DevTools answered")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/version", timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise ShotError(f"chromium's DevTools did not answer on 127.0.0.1:{port} within {timeout} s")


def _page_target(port):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/json/new?about:blank", method="PUT")
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)["webSocketDebuggerUrl"]


def screenshot(url, cookies, out, expect_path, timeout=90.0):
    """Load URL with COOKIES, wait until the page at EXPECT_PATH shows the
    notebook list, save a PNG at OUT; return title, path and entry count."""
    state = _shoot(url, cookies, out, timeout,
                   "JSON.stringify({path: location.pathname, title: document.title,"
                   " ready: document.readyState,"
                   " list: !!document.querySelector('#notebook_list'),"
                   " items: document.querySelectorAll('#notebook_list .list_item').length,"
                   " login: !!document.querySelector('input[name=password]')})",
                   lambda st: (st.get("path") == expect_path and st.get("ready") == "complete"
                               and st.get("list") and st.get("items", 0) > 0),
                   f"the notebook tree at {expect_path}")
    return {"title": state.get("title"), "path": state.get("path"), "items": state.get("items")}


def screenshot_page(url, cookies, out, expect_path, expect_selector, expect_text, timeout=60.0):
    """Load URL with COOKIES, wait until the page at EXPECT_PATH shows
    EXPECT_TEXT in the element EXPECT_SELECTOR (e.g. the spawn-pending
    page's progress message), save a PNG at OUT; return title, path, text."""
    state = _shoot(url, cookies, out, timeout,
                   "JSON.stringify({path: location.pathname, title: document.title, ready: document.readyState,"
                   " text: (document.querySelector(%s) || {}).textContent || ''})" % json.dumps(expect_selector),
                   lambda st: (st.get("path") == expect_path and st.get("ready") == "complete"
                               and expect_text in st.get("text", "")),
                   f"{expect_path} showing {expect_text!r} in {expect_selector}")
    return {"title": state.get("title"), "path": state.get("path"), "text": state.get("text")}


def _shoot(url, cookies, out, timeout, probe_js, done, what):
    """Headless Chromium at URL with COOKIES; polls PROBE_JS (a JSON string)
    until DONE(state), then saves a PNG at OUT and returns the last state."""
    if urllib.parse.urlsplit(url).hostname not in ("127.0.0.1", "localhost"):
        raise ShotError(f"refusing non-loopback URL {url}")
    profile = tempfile.mkdtemp(prefix="ssb-chromium-")
    port = _free_port()
    log = open(os.path.join(profile, "chromium.log"), "w")
    proc = subprocess.Popen([CHROMIUM, *FLAGS, f"--remote-debugging-port={port}",
                             f"--user-data-dir={profile}", "about:blank"],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_devtools(port, proc, 30)
        cdp = _Cdp(_page_target(port))
        try:
            cdp.call("Network.enable")
            cdp.call("Page.enable")
            for c in cookies:
                ok = cdp.call("Network.setCookie", name=c["name"], value=c["value"],
                              domain=c["domain"], path=c["path"], httpOnly=True)
                if not ok.get("success", True):
                    raise ShotError(f"Network.setCookie refused cookie {c['name']}")
            cdp.call("Page.navigate", url=url)
            deadline = time.monotonic() + timeout
            state = {}
            while time.monotonic() < deadline:
                state = json.loads(cdp.evaluate(probe_js) or "{}")
                if done(state):
                    break
                time.sleep(0.5)
            else:
                raise ShotError(f"the page never became {what} within {timeout:.0f} s (last: {json.dumps(state)})")
            time.sleep(1.0)  # let the page finish painting
            shot = cdp.call("Page.captureScreenshot", format="png")
        finally:
            cdp.close()
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        with open(out, "wb") as f:
            f.write(base64.b64decode(shot["data"]))
        return state
    finally:
        _stop(proc)
        log.close()
        shutil.rmtree(profile, ignore_errors=True)


def _stop(proc):
    """End the Chromium this module started: its process group, by its id."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    # Children (renderer, zygote) of the same group that outlived the parent.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
