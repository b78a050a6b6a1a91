#!/usr/bin/python3
"""Bulk accounts of one sandbox (tests/sandbox/sandbox.sh up --bulk-users N):
N Unix accounts created in one edit of /etc/passwd and /etc/shadow, and
removed the same way by `sandbox.sh down`. useradd/userdel take ~0.1-0.2 s
each here (1,000 of them: minutes); newusers goes through PAM for every
password. This edits the two files once, under the locks shadow-utils
itself takes (glibc's lckpwdf() and the FILE.lock link files), so a
concurrent useradd waits for it and it waits for useradd.

    bulk_users.py create LIST PREFIX COUNT GID HOME MARKER
    bulk_users.py remove LIST MARKER

create: the accounts PREFIX0001..PREFIXCOUNT, primary group GID (sudoers'
`%group` matches a primary group), home HOME (an existing directory, shared
by all of them), shell /bin/bash, password locked ("!"), GECOS MARKER; their
names are written to LIST (one per line) *before* the files are edited, so
a failed `up` removes whatever was created. Refuses if any name exists.

remove: deletes the lines of the names in LIST whose GECOS is MARKER (never
an account this sandbox did not create), then LIST itself.
Standard library only (Debian's /usr/bin/python3). Must run as root.
"""
import ctypes
import os
import sys
import time

PASSWD, SHADOW = "/etc/passwd", "/etc/shadow"
LOCK_WAIT_S = 30


def die(msg):
    print(f"bulk_users.py: error: {msg}", file=sys.stderr)
    sys.exit(1)


class Locks:
    """lckpwdf() plus /etc/passwd.lock and /etc/shadow.lock, as shadow-utils
    takes them (a file holding our PID, hard-linked to FILE.lock)."""

    def __init__(self):
        self.libc = ctypes.CDLL("libc.so.6", use_errno=True)
        self.held = []

    def __enter__(self):
        if self.libc.lckpwdf() != 0:
            die(f"cannot take the password-file lock (lckpwdf: {os.strerror(ctypes.get_errno())}); "
                "is a useradd/passwd stuck? try again")
        self.held.append(None)
        for path in (PASSWD, SHADOW):
            self._link_lock(path)
        return self

    def _link_lock(self, path):
        tmp, lock = f"{path}.{os.getpid()}", f"{path}.lock"
        with open(tmp, "w", encoding="ascii") as handle:
            handle.write(str(os.getpid()))
        try:
            deadline = time.monotonic() + LOCK_WAIT_S
            while True:
                try:
                    os.link(tmp, lock)
                    self.held.append(lock)
                    return
                except FileExistsError:
                    if time.monotonic() > deadline:
                        die(f"{lock} has been held for {LOCK_WAIT_S} s by another program; "
                            "if none runs, remove the stale lock and retry")
                    time.sleep(0.1)
        finally:
            os.unlink(tmp)

    def __exit__(self, *exc):
        for lock in reversed(self.held):
            if lock is None:
                self.libc.ulckpwdf()
            else:
                os.unlink(lock)
        self.held.clear()


def read_lines(path):
    with open(path, encoding="utf-8") as handle:
        return handle.read().splitlines()


def replace(path, lines):
    """Write PATH anew (same owner and mode), atomically, with a PATH- backup."""
    st = os.stat(path)
    tmp = f"{path}+"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        os.fchown(handle.fileno(), st.st_uid, st.st_gid)
        os.fchmod(handle.fileno(), st.st_mode & 0o7777)
        handle.write("".join(line + "\n" for line in lines))
        handle.flush()
        os.fsync(handle.fileno())
    try:
        os.unlink(f"{path}-")
    except FileNotFoundError:
        pass
    os.link(path, f"{path}-")
    os.rename(tmp, path)


def uid_range():
    lo, hi = 1000, 60000
    try:
        for line in read_lines("/etc/login.defs"):
            words = line.split()
            if len(words) == 2 and words[0] == "UID_MIN":
                lo = int(words[1])
            elif len(words) == 2 and words[0] == "UID_MAX":
                hi = int(words[1])
    except (OSError, ValueError):
        pass
    return lo, hi


def create(list_file, prefix, count, gid, home, marker):
    if not os.path.isdir(home):
        die(f"home directory {home} does not exist")
    names = [f"{prefix}{i:04d}" for i in range(1, count + 1)]
    with Locks():
        passwd, shadow = read_lines(PASSWD), read_lines(SHADOW)
        existing = {line.split(":", 1)[0] for line in passwd}
        clash = [n for n in names if n in existing]
        if clash:
            die(f"account {clash[0]} already exists ({len(clash)} of the {count} names); "
                "it was not created by this sandbox and is left alone")
        used = {int(f[2]) for f in (line.split(":") for line in passwd) if len(f) > 2 and f[2].isdigit()}
        lo, hi = uid_range()
        free = (u for u in range(lo, hi + 1) if u not in used)
        uids = [u for _, u in zip(names, free)]
        if len(uids) < count:
            die(f"only {len(uids)} free uids in {lo}..{hi} (login.defs UID_MIN/UID_MAX), {count} needed")
        with open(list_file, "w", encoding="ascii") as handle:
            handle.write("".join(n + "\n" for n in names))
        day = int(time.time() // 86400)
        replace(PASSWD, passwd + [f"{n}:x:{u}:{gid}:{marker}:{home}:/bin/bash" for n, u in zip(names, uids)])
        replace(SHADOW, shadow + [f"{n}:!:{day}:0:99999:7:::" for n in names])


def remove(list_file, marker):
    if not os.path.exists(list_file):
        return
    names = set(read_lines(list_file))
    with Locks():
        passwd = read_lines(PASSWD)
        ours = {f[0] for f in (line.split(":") for line in passwd) if len(f) > 4 and f[0] in names and f[4] == marker}
        if ours:
            replace(PASSWD, [line for line in passwd if line.split(":", 1)[0] not in ours])
            replace(SHADOW, [line for line in read_lines(SHADOW) if line.split(":", 1)[0] not in ours])
    os.unlink(list_file)


def main(argv):
    if os.geteuid() != 0:
        die("must run as root (it edits /etc/passwd and /etc/shadow)")
    if len(argv) == 7 and argv[0] == "create":
        _, list_file, prefix, count, gid, home, marker = argv
        if not count.isdigit() or not 1 <= int(count) <= 9999 or not gid.isdigit():
            die(f"COUNT must be 1..9999 and GID a number (got {count!r}, {gid!r})")
        create(list_file, prefix, int(count), int(gid), home, marker)
    elif len(argv) == 3 and argv[0] == "remove":
        remove(argv[1], argv[2])
    else:
        die("usage: bulk_users.py create LIST PREFIX COUNT GID HOME MARKER | remove LIST MARKER")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
