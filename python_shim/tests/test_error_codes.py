"""The bridge's error codes have one source: the binary's own table.

``slurm-ssh-bridge config --error-codes`` prints it; the shim's copies
(``commands.ERROR_CODES``, ``commands.STATE_UNKNOWN_CODES``, the exception
classes of ``errors``) must agree with it, so a code added or reclassified
in C++ fails here until the shim follows.
"""

import json
import re
import subprocess

import pytest

from slurm_ssh_bridge import commands, errors


@pytest.fixture(scope="module")
def table(bridge_bin):
    out = subprocess.run([bridge_bin, "config", "--error-codes"], capture_output=True, text=True, timeout=30,
                         check=True).stdout
    rows = json.loads(out)["codes"]
    assert rows, "the bridge printed no error codes"
    return rows


def test_every_code_in_the_same_order(table):
    assert tuple(r["code"] for r in table) == commands.ERROR_CODES


def test_state_unknown_codes_agree(table):
    from_binary = {r["code"] for r in table if r["state_unknown"]}
    assert from_binary == set(commands.STATE_UNKNOWN_CODES)


def test_every_code_has_its_exception_class(table):
    for row in table:
        cls = errors.error_class_for_code(row["code"])
        assert cls is not errors.BridgeError, "no exception class for %r" % row["code"]
        assert cls.code == row["code"]
        exc = cls("x")
        assert exc.state_unknown == row["state_unknown"], row["code"]


def test_state_unknown_re_matches_exactly_the_state_unknown_failure_lines(table):
    for row in table:
        line = "slurm-ssh-bridge: %s: something failed" % row["code"]
        assert bool(re.search(commands.STATE_UNKNOWN_RE, line)) == row["state_unknown"], row["code"]


def test_exit_statuses_and_meanings(table):
    for row in table:
        assert row["exit_status"] in (1, 2, 255), row
        assert row["meaning"].strip(), row
