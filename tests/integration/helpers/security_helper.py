"""The helper of tests/integration/security.sh (stdlib and the shim only).

  probe SOCKET                 connect: prints "ok" or the errno name (exit 0/1)
  hostile SOCKET               the raw protocol cases with valid UTF-8, on one
                               connection: "LABEL<TAB>EXPECTED<TAB>GOT" lines
  oneshot SOCKET HEX|repeat:N  send one line (hex bytes, or N times "a") on a
                               new connection: prints the response's code,
                               "ok" or "EOF"
  line SOCKET JSON|-           send one line (from stdin with "-"), print the
                               raw response line
  submit SOCKET ID USER SCRIPTFILE NAME...
                               one submit request with an env object holding
                               these variables of the helper's environment
  request USER SCRIPTFILE NAME...
                               the same as one JSON request line on stdout
  sample CGROUP STOP ALL_OUT CG_OUT
                               until STOP exists: every process's argv
                               (ALL_OUT) and those of CGROUP's processes with
                               their uid (CG_OUT), one JSON list per line
  argv CG_OUT WRAPPERS_DIR SPOOL_DIR
                               checks CG_OUT against the allowed forms; prints
                               key=value counts and the unexpected lines
  setenv NAME PROGRAM ARG...   exec PROGRAM (an absolute path) with NAME set
                               to $SSB_WITH_VALUE (a value that never is in
                               any argv; NAME may be any string)
"""
import binascii
import json
import os
import pwd
import re
import sys
import time

from ndjson import PROTOCOL_VERSION, code_of, connect, probe as probe_socket, request_line as req

#: The login host's service account: explain's scontrol/sacct run as it, never via sudo.
SERVICE_ACCOUNT = os.environ.get("SANDBOX_SERVICE_USER", "jupyterspawner")


def hostile_cases():
    U = "alice.proj1"
    cases = [
        ("malformed", b"{", "bad_request"),
        ("truncated", b'{"v":1,"id":"t","op":"query","user":"alice.proj1"', "bad_request"),
        ("array", b"[1,2]", "bad_request"),
        ("string", b'"query"', "bad_request"),
        ("null", b"null", "bad_request"),
        ("deep", b'{"v":1,"id":"d","op":"query","user":"alice.proj1","job_id":"1","x":' + b"[" * 20 + b"]" * 20 + b"}",
         "bad_request"),
        ("deep-env", b'{"v":1,"id":"d2","op":"submit","user":"alice.proj1","script":"x","env":'
         + b'{"a":' * 12 + b'"x"' + b"}" * 12 + b"}", "bad_request"),
        ("unknown-op", req(id="o", op="shell", user=U, job_id="1"), "bad_request"),
        ("unknown-op-exec", req(id="o2", op="exec", user=U, job_id="1"), "bad_request"),
        ("unknown-field", req(id="f", op="query", user=U, job_id="1", command="id"), "bad_request"),
        ("unknown-field-wrapper", req(id="f2", op="query", user=U, job_id="1", wrapper="/bin/sh"), "bad_request"),
        ("user-type", req(id="t1", op="query", user=[U], job_id="1"), "bad_request"),
        ("job-type", req(id="t2", op="query", user=U, job_id=42), "bad_request"),
        ("script-type", req(id="t3", op="submit", user=U, script=["x"]), "bad_request"),
        ("env-type", req(id="t4", op="submit", user=U, script="x", env=["A"]), "bad_request"),
        ("env-value-type", req(id="t5", op="submit", user=U, script="x", env={"JUPYTERHUB_X": 1}), "bad_request"),
        ("version-2", json.dumps({"v": PROTOCOL_VERSION + 1, "id": "v", "op": "query", "user": U, "job_id": "1"}).encode(), "bad_request"),
        ("version-missing", json.dumps({"id": "v", "op": "query", "user": U, "job_id": "1"}).encode(), "bad_request"),
        ("id-missing", json.dumps({"v": 1, "op": "query", "user": U, "job_id": "1"}).encode(), "bad_request"),
        ("id-object", json.dumps({"v": 1, "id": {"a": 1}, "op": "query", "user": U, "job_id": "1"}).encode(),
         "bad_request"),
        ("status-with-user", req(id="s", op="status", user=U), "bad_request"),
        ("query-with-script", req(id="q", op="query", user=U, job_id="1", script="x"), "bad_request"),
        ("query-with-env", req(id="q2", op="query", user=U, job_id="1", env={}), "bad_request"),
        ("submit-with-job", req(id="q3", op="submit", user=U, job_id="1", script="x"), "bad_request"),
        ("submit-no-script", req(id="q4", op="submit", user=U), "bad_request"),
        ("submit-empty-script", req(id="q5", op="submit", user=U, script=""), "bad_request"),
        ("query-no-user", req(id="q6", op="query", job_id="1"), "bad_request"),
        ("script-too-large", req(id="big", op="submit", user=U, script="#!/bin/bash\n" + "#" * 5000),
         "script_too_large"),
    ]
    users = ["a;b", "$(id)", "`id`", "a'b", 'a"b', "a b", "a\nb", "a\tb", "-u", "-nroot", "", "\u00e4lice",
             "x" * 65, "root;id", "../etc/passwd", ".hidden", "alice proj1", "a|b", "a&b", "a>b", "a\\b", "a\u0000b"]
    for k, u in enumerate(users):
        cases.append(("user-%d %r" % (k, u), req(id="u%d" % k, op="query", user=u, job_id="1"), "invalid_user"))
        cases.append(("submit-user-%d %r" % (k, u), req(id="su%d" % k, op="submit", user=u, script="x"),
                      "invalid_user"))
    jobs = ["", "-1", "abc", "1 2", "1;$(id)", "1;`id`", "99999999999", "4294967295", "0", "01", "1;", ";c",
            "1;a b", "1\n2", "\uff11", "1.5", "0x10", "+1", "1;c;d", "1;" + "c" * 65]
    for k, j in enumerate(jobs):
        cases.append(("job-%d %r" % (k, j), req(id="j%d" % k, op="query", user=U, job_id=j), "invalid_job_id"))
        cases.append(("cancel-job-%d %r" % (k, j), req(id="cj%d" % k, op="cancel", user=U, job_id=j),
                      "invalid_job_id"))
    names = ["JUPYTERHUB_A;B", "JUPYTERHUB_$(id)", "JUPYTERHUB_A B", "JUPYTERHUB_\u00e9", "JUPYTERHUB_A-B",
             "JUPYTERHUB_A=B", "JUPYTERHUB_" + "X" * 200, "JUPYTERHUB_A\nB"]
    for k, n in enumerate(names):
        cases.append(("env-name-%d %r" % (k, n), req(id="e%d" % k, op="submit", user=U, script="x", env={n: "v"}),
                      "invalid_env"))
    cases.append(("env-value-nul", req(id="en", op="submit", user=U, script="x",
                                       env={"JPY_API_TOKEN": "ssbNULsecret\u0000tail"}), "invalid_env"))
    return cases


def hostile(path):
    s, f = connect(path)
    for label, line, want in hostile_cases():
        s.sendall(line + b"\n")
        got = code_of(f.readline())
        print("%s\t%s\t%s" % (label.replace("\t", "\\t").replace("\n", "\\n"), want, got), flush=True)
        if got == "EOF":
            return 1
    # the connection is still usable after all that
    s.sendall(req(id="after", op="status") + b"\n")
    print("status-after\tok\t%s" % code_of(f.readline()), flush=True)
    return 0


def oneshot(path, hexline):
    s, f = connect(path, timeout=10.0)
    if hexline.startswith("repeat:"):  # "repeat:N": N bytes of "a"
        data = b"a" * int(hexline[7:])
    else:
        data = binascii.unhexlify(hexline)
    s.sendall(data + b"\n")
    try:
        resp = f.readline()
    except OSError:
        resp = b""
    print(code_of(resp))
    return 0


def line(path, text):
    s, f = connect(path)
    data = sys.stdin.buffer.read().rstrip(b"\n") if text == "-" else text.encode()
    s.sendall(data + b"\n")
    sys.stdout.write(f.readline().decode("utf-8", "replace"))
    return 0


def submit(path, rid, user, script_file, names):
    env = {n: os.environ[n] for n in names}
    with open(script_file, encoding="utf-8") as fh:
        script = fh.read()
    s, f = connect(path, timeout=120.0)
    s.sendall(req(id=rid, op="submit", user=user, script=script, env=env) + b"\n")
    sys.stdout.write(f.readline().decode("utf-8", "replace"))
    return 0


def request_line(user, script_file, names):
    env = {n: os.environ[n] for n in names}
    with open(script_file, encoding="utf-8") as fh:
        script = fh.read()
    sys.stdout.buffer.write(req(id="r", op="submit", user=user, script=script, env=env) + b"\n")
    return 0


def probe(path):
    got = probe_socket(path)
    print(got)
    return 0 if got == "ok" else 1


def setenv(name, argv):
    os.environ[name] = os.environ.pop("SSB_WITH_VALUE")
    os.execv(argv[0], argv)


def read_argv(pid):
    try:
        with open("/proc/%s/cmdline" % pid, "rb") as fh:
            raw = fh.read()
    except OSError:
        return None
    if not raw:
        return None
    return [a.decode("utf-8", "backslashreplace") for a in raw.rstrip(b"\0").split(b"\0")]


def read_uid(pid):
    try:
        with open("/proc/%s/status" % pid) as fh:
            for ln in fh:
                if ln.startswith("Uid:"):
                    return int(ln.split()[1])
    except OSError:
        pass
    return -1


def sample(cgroup, stop, all_out, cg_out):
    seen_all, seen_cg = set(), set()
    rounds = 0
    while not os.path.exists(stop):
        rounds += 1
        cg = set()
        try:
            with open(os.path.join(cgroup, "cgroup.procs")) as fh:
                cg = {ln.strip() for ln in fh}
        except OSError:
            pass
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            argv = read_argv(pid)
            if argv is None:
                continue
            key = json.dumps(argv)
            seen_all.add(key)
            if pid in cg:
                seen_cg.add(json.dumps([read_uid(pid), argv]))
        time.sleep(0.002)
    with open(all_out, "w") as fh:
        fh.write("# rounds=%d\n" % rounds)
        for k in sorted(seen_all):
            fh.write(k + "\n")
    with open(cg_out, "w") as fh:
        for k in sorted(seen_cg):
            fh.write(k + "\n")
    return 0


def check_argv(cg_out, wdir, spool):
    W = re.escape(wdir.rstrip("/"))
    user = r"[A-Za-z0-9_][A-Za-z0-9._-]*"
    wrapper = W + r"/slurmspawner_(?:sbatch|squeue|scancel)"
    q = lambda x: "'" + x + "'"  # noqa: E731 - the builder's quoting of a plain value
    # The builder's identity prefix (USER/LOGNAME/HOME/SHELL from getent
    # passwd; a notice when the hub's HOME differs), before any form.
    ident = (re.escape("ssb_pw=$(getent passwd ") + q(user)
             + re.escape(') || { echo "slurm-ssh-bridge: remote: user "') + q(user)
             + re.escape('" has no passwd entry on the login host (getent passwd failed); the job cannot run as '
                         'them" >&2; exit 1; }; ssb_rest=${ssb_pw#*:*:*:*:*:}; HOME=${ssb_rest%%:*}; '
                         'SHELL=${ssb_rest#*:}; [ -n "$SHELL" ] || SHELL=/bin/sh; USER=') + q(user)
             + re.escape("; LOGNAME=") + q(user) + re.escape("; export HOME SHELL USER LOGNAME; ")
             + r"(?:\[ '[^']*' = \"\$HOME\" \] \|\| echo \".*?\" >&2; )?")
    login_forms = [
        r"SLURMSPAWNER_JOB_ID='[0-9]+(?:;[A-Za-z0-9_-]+)?'; export SLURMSPAWNER_JOB_ID; exec '/usr/bin/sudo' -n -u "
        + q(user) + " -- " + q(W + r"/slurmspawner_(?:squeue|scancel)"),
        r"if \[ -n \"\$\{BASH_VERSION-\}\" \]; then while IFS= read -r -d '' kv && \[ -n \"\$kv\" \]; do "
        r"export \"\$kv\" \|\| exit 125; done; exec '/usr/bin/sudo' -n -u " + q(user) + " -- "
        + q(W + "/slurmspawner_sbatch") + r"; else exec '/bin/bash' --noprofile --norc -c '.*' slurm-ssh-bridge "
        r"'/usr/bin/sudo' -n -u " + q(user) + " -- " + q(W + "/slurmspawner_sbatch") + "; fi",
        r"exec '/usr/bin/sudo' -n -u " + q(user) + " -- " + q(W + "/slurmspawner_sbatch"),
    ]
    login_forms = ["(?:" + ident + ")?" + f for f in login_forms]
    # status.mode = "coalesced": the service account's own squeue for a
    # batch of validated job numbers (remote::build_status_batch), no sudo,
    # no identity prefix, nothing user-controlled.
    batch_ids = r"[1-9][0-9]*(?:,[1-9][0-9]*)*"
    login_forms.append(r"exec 'squeue' -h -j '" + batch_ids + r"' -o '%i\|%u\|%T\|%B\|%r\|%S'")
    # explain: the service account's own scontrol, then sacct (no sudo, no
    # user name; remote::build_explain).
    explain_form = (r"echo 'slurm-ssh-bridge-explain: scontrol'; '/usr/bin/scontrol' -o show job '[0-9]+' 2>&1 && "
                    r"exit 0; echo 'slurm-ssh-bridge-explain: sacct'; exec '/usr/bin/sacct' -n -P -X -j '[0-9]+' "
                    r"-o JobID,User,State,ExitCode,Reason,Start 2>&1")
    login_forms.append(explain_form)
    service_uid = pwd.getpwnam(SERVICE_ACCOUNT).pw_uid
    c = {"processes": 0, "sudo": 0, "wrapper": 0, "slurm_cmd": 0, "explain_cmd": 0, "login_shell": 0, "snippet": 0,
         "infra": 0, "unexpected": 0}
    bad = []
    with open(cg_out) as fh:
        for ln in fh:
            uid, argv = json.loads(ln)
            c["processes"] += 1
            a0 = argv[0]
            if (a0.startswith("sshd:") or a0.startswith("slurmstepd") or a0.startswith("slurmctld:")
                    # slurmstepd sampled between its exec and renaming itself
                    # "slurmstepd: [N.batch]" (a job's step starting)
                    or a0 in ("/usr/sbin/sshd", "/usr/sbin/slurmctld", "/usr/sbin/slurmd", "/usr/sbin/munged",
                              "/usr/sbin/slurmstepd", "sleep", "[sshd]")
                    or (a0 in ("/bin/bash", "bash") and len(argv) == 2 and argv[1].startswith(spool))
                    or (a0 == "env" and len(argv) > 1 and argv[-1].startswith("/tmp/"))
                    # the suite's own job script (security.sh job_script):
                    # `env -0 > FILE`, then sleep, run by slurmstepd
                    or argv == ["env", "-0"]):
                c["infra"] += 1
                continue
            if a0 == "/usr/bin/sudo":
                if len(argv) == 6 and argv[1:3] == ["-n", "-u"] and re.fullmatch(user, argv[3]) and argv[4] == "--" \
                        and re.fullmatch(wrapper, argv[5]):
                    c["sudo"] += 1
                    continue
            elif a0 == wdir.rstrip("/") + "/python":
                # The upstream wrappers: console-script entry points run by
                # the venv's interpreter, which start Slurm's commands by
                # absolute path.
                if len(argv) == 2 and re.fullmatch(wrapper, argv[1]):
                    c["wrapper"] += 1
                    continue
            elif a0 in ("/usr/bin/sbatch", "/usr/bin/squeue", "/usr/bin/scancel"):
                if argv == ["/usr/bin/sbatch", "--parsable"] or \
                        (a0 == "/usr/bin/squeue" and len(argv) == 6 and argv[1:3] == ["-h", "-j"]
                         and argv[3].isdigit() and argv[4:] == ["-o", "%T %B"]) or \
                        (a0 == "/usr/bin/scancel" and len(argv) == 2 and argv[1].isdigit()):
                    c["slurm_cmd"] += 1
                    continue
            elif a0 == "squeue":
                if len(argv) == 6 and argv[1:3] == ["-h", "-j"] and re.fullmatch(batch_ids, argv[3]) \
                        and argv[4:] == ["-o", "%i|%u|%T|%B|%r|%S"]:
                    c["slurm_cmd"] += 1
                    continue
            elif a0 in ("/usr/bin/scontrol", "/usr/bin/sacct"):
                if int(uid) == service_uid and (
                        (len(argv) == 5 and argv[1:4] == ["-o", "show", "job"] and argv[4].isdigit())
                        or (len(argv) == 8 and argv[1:5] == ["-n", "-P", "-X", "-j"] and argv[5].isdigit()
                            and argv[6:] == ["-o", "JobID,User,State,ExitCode,Reason,Start"])):
                    c["explain_cmd"] += 1
                    continue
            elif a0 == "getent":
                # The identity prefix's $(getent passwd USER), a child of the
                # login shell's fixed form (sampled only when it is caught
                # alive; -1: it ended while being read).
                if len(argv) == 3 and argv[1] == "passwd" and re.fullmatch(user, argv[2]) \
                        and int(uid) in (service_uid, -1):
                    c["login_shell"] += 1
                    continue
            elif a0 in ("bash", "-bash", "/bin/bash"):
                if len(argv) == 3 and argv[1] == "-c" and any(re.fullmatch(f, argv[2], re.S) for f in login_forms):
                    c["login_shell"] += 1
                    continue
                if len(argv) == 12 and argv[1:4] == ["--noprofile", "--norc", "-c"] and argv[5] == "slurm-ssh-bridge" \
                        and argv[6:9] == ["/usr/bin/sudo", "-n", "-u"] and re.fullmatch(user, argv[9]) \
                        and argv[10] == "--" and argv[11] == wdir.rstrip("/") + "/slurmspawner_sbatch":
                    c["snippet"] += 1
                    continue
            c["unexpected"] += 1
            bad.append("uid %s: %r" % (uid, argv))
    for k, v in c.items():
        print("%s=%d" % (k, v))
    for b_ in bad[:20]:
        print("  unexpected: " + b_, file=sys.stderr)
    return 0


def main():
    cmd, a = sys.argv[1], sys.argv[2:]
    if cmd == "probe":
        return probe(a[0])
    if cmd == "hostile":
        return hostile(a[0])
    if cmd == "oneshot":
        return oneshot(a[0], a[1])
    if cmd == "line":
        return line(a[0], a[1])
    if cmd == "submit":
        return submit(a[0], a[1], a[2], a[3], a[4:])
    if cmd == "request":
        return request_line(a[0], a[1], a[2:])
    if cmd == "sample":
        return sample(*a)
    if cmd == "argv":
        return check_argv(*a)
    if cmd == "setenv":
        return setenv(a[0], a[1:])
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
