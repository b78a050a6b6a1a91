#!/usr/bin/python3
"""The thousand-user benchmark (issue 13): per-user against coalesced status
mode at 100, 300 and 1,000 simulated users, and a spawn storm, against a
running sandbox with bulk users. Started by `tests/bench/run.sh
--thousand-users`; the code is ssbbench.thousand (and polling, storm,
slurmctl, thousand_report, plot). Options: --help.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ssbbench.thousand import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
