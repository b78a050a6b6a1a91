#!/usr/bin/python3
"""Benchmark: slurm-ssh-bridge against a fresh ssh per call and OpenSSH
ControlMaster, against a running sandbox. The entry point that
tests/bench/run.sh runs (same options as before: --help); the code is the
ssbbench package next to this file (measure, floor_helper, workload,
report, cli). Standard library only (Debian's /usr/bin/python3).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ssbbench.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
