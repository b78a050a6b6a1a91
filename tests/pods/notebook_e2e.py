#!/usr/bin/python3
"""Drive a JupyterHub in a pod the way a user does, over its published port.

One step per call, so the shell test can put a hub restart between steps:

  login-spawn   log in through /hub/login, start the server (the spawn
                page's options form, with the project picked), wait (bounded)
                until the hub says the server is ready; prints the time to ready
  check         the server's /user/<name>/api/status answers through the
                hub's proxy, and a kernel evaluates 6*7 = 42 (REST + websocket);
                the job's USER, LOGNAME, HOME (as the kernel sees them) are
                the account's
  screenshot    headless Chromium loads /user/<name>/tree with the user's
                login cookie; asserts the page is the notebook tree and saves
                a PNG
  stop          stop the server through the hub; wait until the hub says it
                is gone

The hub client is tests/hub/harness.py's HubClient (shared with the
host-side hub test). The password comes from the environment variable SSB_HUB_PASSWORD, never from
argv. Only loopback hub URLs are accepted. Every wait is bounded. Exit status
0 when the step's assertions hold; one line per finding on stdout.
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import sys
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "hub"))

from harness import HubClient, HubError  # noqa: E402  (tests/hub/harness.py)

import chromium_shot  # noqa: E402  (tests/hub/chromium_shot.py)

# What the kernel (a child of the notebook server, in the Slurm job) sees.
ENV_EXPR = "import os; tuple(os.environ.get(k) for k in ('USER', 'LOGNAME', 'HOME'))"


def spawn_with_form(hub, user, project):
    """What the browser does for a user with several projects: GET the spawn
    page (the options form must offer PROJECT), POST the form with it."""
    page = hub.session.get(hub.url(f"hub/spawn/{user}"), timeout=60,
                           headers={"Referer": hub.url("hub/home")})
    if page.status_code != 200 or f'value="{project}"' not in page.text:
        raise HubError(f"GET /hub/spawn/{user}: HTTP {page.status_code}, the options form does not "
                       f"offer project {project!r}")
    form = {"project": project}
    m = re.search(r'name="_xsrf"\s+value="([^"]+)"', page.text)
    if m:
        form["_xsrf"] = m.group(1)
    hub.spawn_requested_at = time.monotonic()
    r = hub.session.post(hub.url(f"hub/spawn/{user}"), data=form, timeout=60, allow_redirects=False,
                         headers={"Referer": hub.url(f"hub/spawn/{user}")})
    if r.status_code not in (302, 303):
        raise HubError(f"POST /hub/spawn/{user} (project {project}): HTTP {r.status_code}, "
                       f"expected a redirect to the server or the pending page")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("step", choices=["login-spawn", "check", "screenshot", "stop"])
    p.add_argument("--hub", required=True, help="hub URL on loopback, e.g. http://127.0.0.1:8000")
    p.add_argument("--user", required=True, help="name typed into the login form, the hub user it yields")
    p.add_argument("--project", default="", help="project picked in the spawn form")
    p.add_argument("--timeout", type=float, default=300.0, help="bound of every wait (s)")
    p.add_argument("--out", help="screenshot: PNG path")
    p.add_argument("--expect-account", default="", help="check: the job's USER and LOGNAME")
    p.add_argument("--expect-home", default="", help="check: the job's HOME")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    host = urllib.parse.urlsplit(args.hub).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(f"not ok - refusing non-loopback hub URL {args.hub}")
        return 2
    password = os.environ.get("SSB_HUB_PASSWORD")
    if not password:
        print("not ok - SSB_HUB_PASSWORD is not set (the dummyAuthPassword)")
        return 2
    hub = HubClient(args.hub, timeout=60.0)
    try:
        hub.login(args.user, password)
        if args.step == "login-spawn":
            if args.project:
                spawn_with_form(hub, args.user, args.project)
            else:
                hub.start_server()
            elapsed = hub.wait_ready(timeout=args.timeout, interval=0.5)
            server = hub.server_model() or {}
            print(f"server of {args.user} ready in {elapsed:.1f} s (url {server.get('url')})")
        elif args.step == "check":
            hub.open_server()
            status = hub.server_get("api/status")
            print(f"/user/{args.user}/api/status answers through the hub "
                  f"(started {status.get('started', '?')})")
            kernel = hub.start_kernel()
            try:
                reply = hub.execute(kernel, "6*7")
                if reply.result != "42":
                    print(f"not ok - the kernel evaluated 6*7 to {reply.result!r}, not '42' "
                          f"(status {reply.status}, error {reply.error})")
                    return 1
                print("a kernel evaluated 6*7 = 42 over its websocket")
                reply = hub.execute(kernel, ENV_EXPR)
            finally:
                hub.delete_kernel(kernel)
            env = dict(zip(("USER", "LOGNAME", "HOME"), ast.literal_eval(reply.result or "(None,)*3")))
            print("the job's " + " ".join(f"{k}={v}" for k, v in env.items()))
            want = {"USER": args.expect_account, "LOGNAME": args.expect_account, "HOME": args.expect_home}
            wrong = {k: env[k] for k, v in want.items() if v and env[k] != v}
            if wrong:
                print(f"not ok - the job runs with the wrong identity: {wrong} (expected {want})")
                return 1
        elif args.step == "screenshot":
            if not args.out:
                print("not ok - screenshot needs --out PNG")
                return 2
            hub.open_server()
            host = urllib.parse.urlsplit(args.hub).hostname
            cookies = [{"name": c.name, "value": c.value, "path": c.path or "/", "domain": host}
                       for c in hub.session.cookies]
            info = chromium_shot.screenshot(
                url=hub.url(f"user/{args.user}/tree"),
                cookies=cookies,
                out=args.out,
                expect_path=f"/user/{args.user}/tree",
                timeout=min(args.timeout, 90.0),
            )
            print(f"{args.out}: title {info['title']!r}, {info['items']} entries "
                  f"in the notebook list, at {info['path']}")
        elif args.step == "stop":
            elapsed = hub.stop_server(timeout=args.timeout)
            print(f"server of {args.user} stopped through the hub in {elapsed:.1f} s")
    except HubError as exc:
        print(f"not ok - {exc}")
        return 1
    except chromium_shot.ShotError as exc:
        print(f"not ok - {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
