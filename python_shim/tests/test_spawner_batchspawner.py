"""BridgeSlurmSpawner itself, through batchspawner's own code.

Runs whenever batchspawner is importable (it is not packaged by Debian, so
on a plain Debian machine the whole module is skipped with that reason; see
README "Running the batchspawner tests"). The end-to-end test at the bottom
also needs ``SSB_BRIDGE`` and ``SSB_SANDBOX_DIR``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from types import SimpleNamespace

import pytest

batchspawner = pytest.importorskip(
    "batchspawner",
    reason="batchspawner is not importable (not packaged by Debian); "
    "see python_shim/README.md 'Running the batchspawner tests'",
)

from jupyterhub.objects import Hub  # noqa: E402
from traitlets import TraitError  # noqa: E402
from traitlets.config import Config  # noqa: E402

from slurm_ssh_bridge import commands  # noqa: E402
from slurm_ssh_bridge.spawner import BridgeSlurmSpawner, JobStatus  # noqa: E402
from conftest import write_derived_config  # noqa: E402

pytestmark = pytest.mark.batchspawner

BRIDGE = "/usr/local/bin/slurm-ssh-bridge"
CONFIG = "/etc/slurm-ssh-bridge/config.toml"


def make(config=None, name="alice.proj1", **kwargs):
    user = SimpleNamespace(name=name, escaped_name=name, url="/user/%s/" % name, server=None)
    kwargs.setdefault("api_token", "tok-" + secrets.token_hex(8))
    kwargs.setdefault("oauth_client_id", "jupyterhub-user-%s" % name)
    return BridgeSlurmSpawner(config=config or Config(), user=user, hub=Hub(), **kwargs)


def site_config(**traits):
    c = Config()
    c.BridgeSlurmSpawner.bridge_path = BRIDGE
    c.BridgeSlurmSpawner.bridge_config = CONFIG
    for name, value in traits.items():
        setattr(c.BridgeSlurmSpawner, name, value)
    return c


def test_is_a_slurmspawner():
    assert issubclass(BridgeSlurmSpawner, batchspawner.SlurmSpawner)


def test_trait_defaults_match_commands_module(monkeypatch):
    monkeypatch.delenv(commands.CONFIG_ENV_VAR, raising=False)
    spawner = make(site_config(bridge_mode="daemon"))
    expected = commands.spawner_trait_defaults(BRIDGE, CONFIG, "daemon", environ={})
    for name, value in expected.items():
        assert getattr(spawner, name) == value, name
    assert spawner.exec_prefix == BRIDGE + " --config " + CONFIG + " --mode daemon --user {username}"


def test_defaults_without_configuration(monkeypatch):
    monkeypatch.delenv(commands.CONFIG_ENV_VAR, raising=False)
    spawner = make()
    assert spawner.exec_prefix == "slurm-ssh-bridge --user {username}"
    assert spawner.batch_submit_cmd == "submit"
    assert spawner.batch_query_cmd == "query {job_id}"
    assert spawner.batch_cancel_cmd == "cancel {job_id}"
    assert spawner.state_unknown_re == commands.STATE_UNKNOWN_RE
    # SlurmSpawner's own settings are untouched.
    assert spawner.state_pending_re == commands.SLURM_STATE_PENDING_RE
    assert "--export={{keepvars}}" in spawner.batch_script


def test_subvars_format_the_commands_like_batchspawner():
    spawner = make(site_config())
    subvars = spawner.get_req_subvars()
    subvars["job_id"] = "42"
    cmd = " ".join((batchspawner.batchspawner.format_template(spawner.exec_prefix, **subvars),
                    batchspawner.batchspawner.format_template(spawner.batch_query_cmd, **subvars)))
    assert cmd == BRIDGE + " --config " + CONFIG + " --user alice.proj1 query 42"


def test_explicit_settings_win_and_are_reported(caplog, monkeypatch):
    import slurm_ssh_bridge.spawner as spawner_module

    monkeypatch.setattr(spawner_module, "_WARNED", set())
    c = site_config()
    c.SlurmSpawner.exec_prefix = "ssh -i key jupyterspawner@login sudo -u {username}"
    c.SlurmSpawner.state_unknown_re = commands.SLURM_STATE_UNKNOWN_RE
    with caplog.at_level(logging.WARNING):
        spawner = make(c)
    assert spawner.exec_prefix.startswith("ssh ")
    text = caplog.text
    assert "exec_prefix" in text and "state_unknown_re" in text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        make(c)  # the next user's spawner: said once per process
    assert "exec_prefix" not in caplog.text


@pytest.mark.parametrize("trait,value", [
    ("bridge_path", "/opt/{x}/slurm-ssh-bridge"),
    ("bridge_config", "/etc/{x}.toml"),
    ("bridge_mode", "fast"),
])
def test_bad_bridge_traits(trait, value):
    with pytest.raises(TraitError):
        make(site_config(**{trait: value}))


def test_unsafe_user_name_is_refused_before_running_anything():
    spawner = make(site_config(), name="alice;touch /tmp/pwned")
    with pytest.raises(ValueError, match="slurm-ssh-bridge"):
        spawner.get_req_subvars()


def test_user_unknown_to_the_hub_host():
    spawner = make(site_config(remote_homedir="/gpfs/home/{username}"), name="nobody-here.proj9")
    env = spawner.get_env()
    assert env["USER"] == "nobody-here.proj9"
    assert env["HOME"] == "/gpfs/home/nobody-here.proj9"
    assert spawner.req_homedir == "/gpfs/home/nobody-here.proj9"
    assert "HOME" in spawner.get_req_subvars()["keepvars"].split(",")


def test_the_job_is_given_logname_like_user():
    # batchspawner exports exactly the names of get_env() to the job; without
    # LOGNAME there the job would have none (the bridge sets its value from
    # the login host's passwd entry, as for USER, HOME and SHELL).
    spawner = make(site_config(remote_homedir="/gpfs/home/{username}"), name="nobody-here.proj9")
    env = spawner.get_env()
    assert env["LOGNAME"] == env["USER"] == "nobody-here.proj9"
    keepvars = spawner.get_req_subvars()["keepvars"].split(",")
    assert {"USER", "LOGNAME", "HOME"} <= set(keepvars)
    spawner.req_username = "nobody-here.proj8"
    assert spawner.get_env()["LOGNAME"] == "nobody-here.proj8"


def test_job_account_other_than_hub_user():
    # A subclass may run the job as another account (e.g. <USER>.<PROJECT>)
    # by setting req_username, also after the first submit.
    spawner = make(site_config(remote_homedir="/home/{username}"), name="carol")
    assert spawner.get_req_subvars()["homedir"] == "/home/carol"
    spawner.req_username = "carol.proj2"
    subvars = spawner.get_req_subvars()
    assert subvars["username"] == "carol.proj2"
    assert subvars["homedir"] == "/home/carol.proj2"
    assert spawner.get_env()["HOME"] == "/home/carol.proj2"
    prefix = batchspawner.batchspawner.format_template(spawner.exec_prefix, **subvars)
    assert prefix.endswith("--user carol.proj2")
    spawner.req_username = "carol;id"
    with pytest.raises(ValueError):
        spawner.get_req_subvars()


def test_user_unknown_without_remote_homedir_is_explained():
    spawner = make(site_config(), name="nobody-here.proj9")
    with pytest.raises(RuntimeError, match="remote_homedir"):
        spawner.get_req_subvars()


def test_query_and_cancel_do_not_see_hub_secrets(monkeypatch):
    monkeypatch.setenv("JUPYTERHUB_CRYPT_KEY", "hub-secret")
    monkeypatch.setenv("JPY_COOKIE_SECRET", "hub-secret")
    spawner = make(site_config())
    out = asyncio.run(spawner.run_command("env"))
    assert "hub-secret" not in out
    assert "PATH=" in out
    # An explicit environment (submit's get_env()) is passed as given.
    out = asyncio.run(spawner.run_command("env", env={"JUPYTERHUB_API_TOKEN": "tok", "PATH": "/bin:/usr/bin"}))
    assert "JUPYTERHUB_API_TOKEN=tok" in out


def test_missing_bridge_keeps_polling(tmp_path):
    spawner = make(site_config(bridge_path=str(tmp_path / "not-installed")))
    spawner.job_id = "42"
    status = asyncio.run(spawner.query_job_status())
    assert status is JobStatus.UNKNOWN
    assert spawner.job_status.startswith("slurm-ssh-bridge: internal: ")
    assert asyncio.run(spawner.poll()) is None
    assert spawner.job_id == "42"


# ---------------------------------------------------------------- end to end


def test_end_to_end_with_real_bridge(bridge_bin, sandbox, shared_tmp, tmp_path, refused_port):
    c = Config()
    c.BridgeSlurmSpawner.bridge_path = bridge_bin
    c.BridgeSlurmSpawner.bridge_config = sandbox.config
    c.BridgeSlurmSpawner.remote_homedir = str(shared_tmp)
    c.BridgeSlurmSpawner.req_options = "--hold"
    c.BridgeSlurmSpawner.req_partition = sandbox.env.get("SLURM_PARTITION", "")
    spawner = make(c, name=sandbox.user)

    async def main():
        job_id = await spawner.submit_batch_script()
        assert job_id and job_id.isdigit()
        try:
            assert await spawner.query_job_status() is JobStatus.PENDING
            assert await spawner.poll() is None

            # The login host becomes unreachable: the job is unknown, not gone.
            broken = write_derived_config(sandbox.config, tmp_path / "broken.toml",
                                          {"ssh": {"port": refused_port, "connect_timeout_s": 3}})
            spawner.bridge_config = broken
            spawner.exec_prefix = commands.bridge_exec_prefix(bridge_bin, broken, "direct")
            assert await spawner.query_job_status() is JobStatus.UNKNOWN
            assert await spawner.poll() is None
            assert spawner.job_id == job_id
            spawner.exec_prefix = commands.bridge_exec_prefix(bridge_bin, sandbox.config)
        finally:
            await spawner.cancel_batch_job()
        for _ in range(120):
            if await spawner.query_job_status() is JobStatus.NOTFOUND:
                break
            await asyncio.sleep(0.5)
        assert await spawner.poll() == 1
        assert spawner.job_id == ""

    asyncio.run(asyncio.wait_for(main(), 240))


def test_readme_config_names_only_real_traits():
    from test_service import readme_config

    config = Config()
    exec(compile(readme_config(), "README.md:jupyterhub_config.py", "exec"),
         {"get_config": lambda: config, "__file__": "jupyterhub_config.py"})
    traits = set(BridgeSlurmSpawner.class_trait_names(config=True))
    assert set(config.BridgeSlurmSpawner) <= traits, set(config.BridgeSlurmSpawner) - traits
    spawner = make(config, name="alice.proj1")
    assert spawner.exec_prefix.startswith("/usr/local/bin/slurm-ssh-bridge --config ")
