"""Unit tests of the pure part: command composition and regular expressions."""

from __future__ import annotations

import asyncio
import re
import shlex
import string
import subprocess
from pathlib import Path

import pytest

from slurm_ssh_bridge import commands
from batchspawner.batchspawner import format_template as render  # batchspawner's own templating
from spawner_driver import JobStatus, SpawnerDriver

CONTRACTS = Path(__file__).resolve().parents[2] / "docs" / "CONTRACTS.md"

SUBVARS = {
    "username": "alice.proj1",
    "homedir": "/home/alice.proj1",
    "keepvars": "PATH,JUPYTERHUB_API_TOKEN",
    "partition": "",
    "job_id": "42",
}


def defaults(**kwargs):
    kwargs.setdefault("environ", {})
    return commands.spawner_trait_defaults(**kwargs)


# ------------------------------------------------------------ composition


def test_default_traits():
    d = defaults()
    assert d["exec_prefix"] == "slurm-ssh-bridge --user {username}"
    assert d["batch_submit_cmd"] == "submit"
    assert d["batch_query_cmd"] == "query {job_id}"
    assert d["batch_cancel_cmd"] == "cancel {job_id}"
    assert d["state_pending_re"] == r"^(?:PENDING|CONFIGURING)"
    assert d["state_running_re"] == r"^(?:RUNNING|COMPLETING)"
    assert d["state_exechost_re"] == r"\s+((?:[\w_-]+\.?)+)$"


def test_exec_prefix_with_config_and_mode():
    d = defaults(
        bridge_path="/usr/local/bin/slurm-ssh-bridge",
        bridge_config="/etc/slurm-ssh-bridge/config.toml",
        bridge_mode="daemon",
    )
    assert d["exec_prefix"] == (
        "/usr/local/bin/slurm-ssh-bridge --config /etc/slurm-ssh-bridge/config.toml "
        "--mode daemon --user {username}"
    )


@pytest.mark.parametrize("trait,extra,expected", [
    ("batch_submit_cmd", {}, "/opt/ssb/bin/slurm-ssh-bridge --config /etc/ssb.toml --user alice.proj1 submit"),
    ("batch_query_cmd", {"job_id": "42"}, "/opt/ssb/bin/slurm-ssh-bridge --config /etc/ssb.toml --user alice.proj1 query 42"),
    ("batch_cancel_cmd", {"job_id": "42;cluster1"}, None),
])
def test_commands_as_batchspawner_composes_them(trait, extra, expected, monkeypatch):
    # No bridge is installed at /opt/ssb (the shim's query checks that first);
    # nothing runs: batchspawner composes the command, the driver answers it.
    monkeypatch.setattr(commands, "bridge_missing_status", lambda *args, **kwargs: None)
    spawner = SpawnerDriver(bridge_path="/opt/ssb/bin/slurm-ssh-bridge", bridge_config="/etc/ssb.toml",
                            username="alice.proj1", homedir="/home/alice.proj1")
    spawner.job_id = extra.get("job_id", "")
    spawner.answer("RUNNING node1" if trait == "batch_query_cmd" else "42")
    operation = {"batch_submit_cmd": lambda: spawner.submit("true"),
                 "batch_query_cmd": spawner.query, "batch_cancel_cmd": spawner.cancel}[trait]
    asyncio.run(operation())
    cmd = spawner.ran[-1].cmd
    if expected is not None:
        assert cmd == expected
    # Whatever the job id, /bin/sh sees exactly the argv the bridge expects.
    argv = shlex.split(cmd)
    assert argv[:5] == ["/opt/ssb/bin/slurm-ssh-bridge", "--config", "/etc/ssb.toml", "--user", "alice.proj1"]


def test_cluster_job_id_must_be_quoted_by_nobody_but_reaches_bridge_as_one_word():
    # `sbatch --parsable` on a multi-cluster site prints "42;cluster1" and
    # batchspawner keeps only "42" (text before ';'), so a job id never holds
    # a ';' by the time it is substituted into the query command.
    assert SpawnerDriver(bridge_path="slurm-ssh-bridge").spawner.parse_job_id("42;cluster1") == "42"


@pytest.mark.parametrize("path", [
    "/opt/my bridge/slurm-ssh-bridge",
    "/opt/it's/slurm-ssh-bridge",
    "/opt/$HOME/`x`/slurm-ssh-bridge",
    "/opt/a;b&c|d/slurm-ssh-bridge",
])
def test_paths_are_shell_quoted(path, tmp_path):
    config = "/etc/odd dir/it's $x.toml"
    prefix = commands.bridge_exec_prefix(path, config)
    cmd = render(prefix, username="alice.proj1") + " query 42"
    # What /bin/sh actually passes as argv:
    out = subprocess.run(
        ["/bin/sh", "-c", "set -- " + cmd + '; for a in "$@"; do printf "%s\\0" "$a"; done'],
        check=True, stdout=subprocess.PIPE,
    ).stdout.decode().split("\0")[:-1]
    assert out == [path, "--config", config, "--user", "alice.proj1", "query", "42"]


@pytest.mark.parametrize("bad", ["/opt/{x}/bridge", "/opt/bridge}", "/opt/{{x}}", "", "/opt/a\nb"])
def test_paths_that_templates_would_mangle_are_refused(bad):
    with pytest.raises(ValueError):
        commands.bridge_exec_prefix(bad)
    with pytest.raises(ValueError):
        commands.bridge_exec_prefix("slurm-ssh-bridge", bad)


def test_bad_mode_is_refused():
    with pytest.raises(ValueError, match="bridge_mode"):
        commands.bridge_exec_prefix(bridge_mode="fast")


def test_templates_stay_in_str_format_mode():
    # No '{{' / '{%' anywhere: batchspawner must use str.format, where
    # {username} and {job_id} are filled; unknown fields are not referenced.
    for value in defaults(bridge_config="/etc/x.toml", bridge_mode="auto").values():
        assert "{{" not in value and "{%" not in value
    d = defaults()
    fields = {
        name
        for text in (d["exec_prefix"], d["batch_query_cmd"])
        for _, name, _, _ in string.Formatter().parse(text)
        if name
    }
    assert fields == {"username", "job_id"}
    assert render(d["exec_prefix"], **SUBVARS) == "slurm-ssh-bridge --user alice.proj1"


def test_config_from_hub_environment_is_resolved_once():
    env = {"SLURM_SSH_BRIDGE_CONFIG": "/srv/ssb.toml"}
    assert defaults(environ=env)["exec_prefix"] == "slurm-ssh-bridge --config /srv/ssb.toml --user {username}"
    # An explicit bridge_config wins.
    assert "--config /etc/a.toml" in defaults(bridge_config="/etc/a.toml", environ=env)["exec_prefix"]
    assert "--config" not in defaults(environ={})["exec_prefix"]


def test_no_environment_values_on_the_command_line():
    d = defaults(bridge_config="/etc/x.toml")
    for name in ("exec_prefix", "batch_submit_cmd", "batch_query_cmd", "batch_cancel_cmd"):
        assert "JUPYTERHUB" not in d[name] and "TOKEN" not in d[name] and "keepvars" not in d[name]


# ------------------------------------------------------------ regexes

UNKNOWN_LINES = ["slurm-ssh-bridge: %s: something went wrong" % code for code in commands.STATE_UNKNOWN_CODES]
NOT_UNKNOWN_CODES = sorted(set(commands.ERROR_CODES) - set(commands.STATE_UNKNOWN_CODES))


@pytest.mark.parametrize("line", UNKNOWN_LINES + [
    "slurm_load_jobs error: Socket timed out on send/recv operation",
    "slurm_load_jobs error: Unable to contact slurm controller (connect failure)",
    "slurm_load_jobs error: Protocol authentication error",
    "slurm-ssh-bridge: transport: connect to 127.0.0.1:2222 failed: Connection refused\nmore detail",
])
def test_state_unknown_matches(line):
    assert commands.is_state_unknown(line)
    assert re.search(commands.STATE_UNKNOWN_RE, line)


@pytest.mark.parametrize("line", [
    "",
    "slurm_load_jobs error: Invalid job id specified",
    "CANCELLED node1",
    "COMPLETED node1",
    "some warning\nslurm-ssh-bridge: transport: refused",  # must be the first line
    "xslurm-ssh-bridge: transport: x",
    "slurm-ssh-bridge: transportation: x",
] + ["slurm-ssh-bridge: %s: x" % code for code in NOT_UNKNOWN_CODES])
def test_state_unknown_does_not_match(line):
    assert not commands.is_state_unknown(line)


@pytest.mark.parametrize("status,expected,host", [
    ("PENDING n/a", JobStatus.PENDING, None),
    ("CONFIGURING node1", JobStatus.PENDING, None),
    ("RUNNING node1", JobStatus.RUNNING, "node1"),
    ("RUNNING gpu-07.cluster.example", JobStatus.RUNNING, "gpu-07.cluster.example"),
    ("COMPLETING node2", JobStatus.RUNNING, "node2"),
    ("", JobStatus.NOTFOUND, None),
    ("slurm_load_jobs error: Invalid job id specified", JobStatus.NOTFOUND, None),
    ("slurm-ssh-bridge: timeout: no answer within 30s", JobStatus.UNKNOWN, None),
    ("slurm-ssh-bridge: invalid_job_id: invalid job id \"x\"", JobStatus.NOTFOUND, None),
    ("slurm_load_jobs error: Unable to contact slurm controller (connect failure)", JobStatus.UNKNOWN, None),
])
def test_status_classification_like_slurmspawner(status, expected, host, monkeypatch):
    # batchspawner's query_job_status classifies the text; a failing command's
    # stderr (what batchspawner's run_command raises) counts the same.
    monkeypatch.setattr(commands, "bridge_missing_status", lambda *args, **kwargs: None)
    for returncode in (0, 1):
        spawner = SpawnerDriver(bridge_path="slurm-ssh-bridge", homedir="/tmp")
        spawner.job_id = "42"
        spawner.answer(status, returncode)
        assert asyncio.run(spawner.query()) is expected, (status, returncode)
        assert spawner.job_status == status
        if host is not None:
            assert spawner.host() == host


def test_parse_bridge_failure():
    assert commands.parse_bridge_failure("slurm-ssh-bridge: auth: key refused\nsecond") == ("auth", "key refused")
    assert commands.parse_bridge_failure("  slurm-ssh-bridge: timeout: 30s  ") == ("timeout", "30s")
    assert commands.parse_bridge_failure("squeue: error") is None
    assert commands.parse_bridge_failure("") is None


def test_uncovered_codes():
    assert commands.uncovered_unknown_codes(commands.STATE_UNKNOWN_RE) == []
    assert commands.uncovered_unknown_codes(commands.SLURM_STATE_UNKNOWN_RE) == list(commands.STATE_UNKNOWN_CODES)
    assert commands.uncovered_unknown_codes("") == list(commands.STATE_UNKNOWN_CODES)


# ------------------------------------------------------------ the contract document


def _contract_text():
    if not CONTRACTS.is_file():
        pytest.skip("docs/CONTRACTS.md not found next to python_shim (not a repository checkout)")
    return CONTRACTS.read_text()


def test_error_codes_match_contract():
    text = _contract_text()
    block = re.search(r"Stable error codes:(.*?)\.\n", text, re.S).group(1)
    assert tuple(re.findall(r"`([a-z_]+)`", block)) == commands.ERROR_CODES


def test_unknown_regex_matches_contract():
    text = _contract_text()
    documented = re.search(r"`(\^slurm-ssh-bridge: \(\?:[^`]*)`", text).group(1)
    assert documented == commands.BRIDGE_STATE_UNKNOWN_RE
    slurm = re.search(r"`(\^slurm_load_jobs error: [^`]*)`", text).group(1)
    assert slurm == commands.SLURM_STATE_UNKNOWN_RE


# ------------------------------------------------------------ helpers


@pytest.mark.parametrize("name", ["alice.proj1", "bob_2", "x", "a-b.c_d", "A" * 64])
def test_username_accepted(name):
    commands.check_username(name)


@pytest.mark.parametrize("name", [
    "", "-alice", ".alice", "a b", "a;rm -rf /", "a'b", "a$(id)", "al\u00efce", "a" * 65, "a\nb", "a/b", None,
])
def test_username_refused(name):
    with pytest.raises(ValueError, match="slurm-ssh-bridge"):
        commands.check_username(name)


def test_scrub_hub_environment():
    env = {
        "PATH": "/usr/bin",
        "JUPYTERHUB_CRYPT_KEY": "k",
        "JUPYTERHUB_API_TOKEN": "t",
        "JPY_COOKIE_SECRET": "s",
        "JPY_API_TOKEN": "t",
        "SLURM_SSH_BRIDGE_CONFIG": "/etc/x.toml",
        "LANG": "C.UTF-8",
    }
    assert commands.scrub_hub_environment(env) == {
        "PATH": "/usr/bin",
        "SLURM_SSH_BRIDGE_CONFIG": "/etc/x.toml",
        "LANG": "C.UTF-8",
    }


def test_bridge_missing_status(tmp_path):
    assert commands.bridge_missing_status("sh", "/bin:/usr/bin") is None
    assert commands.bridge_missing_status("/bin/sh") is None
    status = commands.bridge_missing_status("slurm-ssh-bridge", str(tmp_path))
    assert status.startswith("slurm-ssh-bridge: internal: ")
    assert commands.is_state_unknown(status)
    not_exec = tmp_path / "slurm-ssh-bridge"
    not_exec.write_text("#!/bin/sh\n")
    assert commands.bridge_missing_status(str(not_exec)) is not None


def test_remote_homedir():
    assert commands.remote_homedir("/home/{username}", "alice.proj1") == "/home/alice.proj1"
    assert commands.remote_homedir("/gpfs/{username}/home", "bob_2") == "/gpfs/bob_2/home"
