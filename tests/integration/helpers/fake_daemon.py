"""A fake daemon for the client's peer check: listens on a Unix socket,
reads what each client sends (until a newline, EOF or 2 s), records the
byte count, then answers "job gone" the way an impostor would and hangs up.

    fake_daemon.py SOCKET LOG     (run as another uid; LOG gets one line a client)
"""

import json
import os
import socket
import sys


def serve(path: str, log_path: str) -> None:
    if os.path.exists(path):
        os.unlink(path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    os.chmod(path, 0o666)  # anyone may connect: that is the attack
    listener.listen(16)
    with open(log_path + ".ready", "w", encoding="ascii"):
        pass
    while True:
        conn, _ = listener.accept()
        received = b""
        conn.settimeout(2.0)
        try:
            while b"\n" not in received:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                received += chunk
        except OSError:
            pass
        if received:
            gone = {"v": 1, "id": "cli", "ok": False, "op": "query",
                    "error": {"code": "remote_failed", "message": "slurm_load_jobs error: Invalid job id specified"}}
            try:
                conn.sendall((json.dumps(gone) + "\n").encode())
            except OSError:
                pass
        conn.close()
        with open(log_path, "a", encoding="ascii") as log:
            log.write(f"bytes={len(received)}\n")


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2])
