"""BridgeSpawnerMixin on bricsauthenticator's real BricsSlurmSpawner.

Runs whenever batchspawner and bricsauthenticator are importable (install
them with scripts/install-support-packages.sh); the hub-level proof (a real
JupyterHub, BricsAuthenticator with a signed JWT, the sandbox) is
tests/hub/test_brics.py.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
from types import SimpleNamespace

import pytest

batchspawner = pytest.importorskip(
    "batchspawner", reason="batchspawner is not importable; see python_shim/README.md"
)
bricsauthenticator = pytest.importorskip(
    "bricsauthenticator",
    reason="bricsauthenticator is not importable; install it with "
    "scripts/install-support-packages.sh --venv VENV --system-site-packages batchspawner bricsauthenticator",
)

from bricsauthenticator.spawner import BricsSlurmSpawner  # noqa: E402
from jupyterhub.objects import Hub  # noqa: E402
from traitlets.config import Config  # noqa: E402

from slurm_ssh_bridge import commands  # noqa: E402
from slurm_ssh_bridge.brics import BridgeBricsSlurmSpawner  # noqa: E402
from slurm_ssh_bridge.spawner import BridgeSpawnerMixin, JobStatus  # noqa: E402

pytestmark = pytest.mark.batchspawner

BRIDGE = "/usr/local/bin/slurm-ssh-bridge"
CONFIG = "/etc/slurm-ssh-bridge/config.toml"
# auth_state as BricsAuthenticator stores it: the projects whose resources
# include the hub's platform, each with the account that runs its jobs.
AUTH_STATE = {
    "proj1.brics": {"name": "Project 1", "username": "alice.proj1"},
    "proj2.brics": {"name": "Project 2", "username": "alice.proj2"},
}
FORM = {"brics_project": ["proj2.brics"], "runtime": ["01:00:00"], "ngpus": ["1"],
        "partition": [""], "reservation": [""]}


def make(config=None, name="alice", **kwargs):
    user = SimpleNamespace(name=name, escaped_name=name, url="/user/%s/" % name, server=None)
    kwargs.setdefault("api_token", "tok-" + secrets.token_hex(8))
    kwargs.setdefault("oauth_client_id", "jupyterhub-user-%s" % name)
    if config is None:
        config = Config()
        config.BridgeSpawnerMixin.bridge_path = BRIDGE
        config.BridgeSpawnerMixin.bridge_config = CONFIG
    return BridgeBricsSlurmSpawner(config=config, user=user, hub=Hub(), **kwargs)


def choose(spawner, form=FORM):
    """What the hub does: auth_state hook, then the options form's data."""
    spawner.auth_state_hook(spawner, AUTH_STATE)
    spawner.user_options = spawner.run_options_from_form(form)  # as the hub calls it
    return spawner


def test_composition_and_order():
    assert issubclass(BridgeBricsSlurmSpawner, BricsSlurmSpawner)
    mro = BridgeBricsSlurmSpawner.mro()
    assert mro.index(BridgeSpawnerMixin) < mro.index(BricsSlurmSpawner), mro


def test_bridge_commands_win_over_slurmspawner():
    spawner = make()
    assert spawner.exec_prefix == BRIDGE + " --config " + CONFIG + " --user {username}"
    assert (spawner.batch_submit_cmd, spawner.batch_query_cmd, spawner.batch_cancel_cmd) == (
        commands.SUBMIT_CMD, commands.QUERY_CMD, commands.CANCEL_CMD)
    assert spawner.state_unknown_re == commands.STATE_UNKNOWN_RE


def test_config_under_the_composed_class_name_wins():
    c = Config()
    c.BridgeSpawnerMixin.bridge_path = BRIDGE
    c.BridgeBricsSlurmSpawner.bridge_mode = "daemon"
    assert make(c).exec_prefix == BRIDGE + " --mode daemon --user {username}"


def test_brics_keeps_its_account_home_and_env():
    spawner = choose(make())
    assert spawner.req_username == "alice.proj2"
    # BricsSlurmSpawner's own rule, not the bridge's passwd lookup.
    assert spawner.req_homedir == "/home/proj2/alice.proj2"
    env = spawner.get_env()
    assert (env["USER"], env["HOME"], env["SHELL"]) == ("alice.proj2", "/home/proj2/alice.proj2", "/bin/bash")
    subvars = spawner.get_req_subvars()
    assert subvars["username"] == "alice.proj2"
    assert subvars["homedir"] == "/home/proj2/alice.proj2"
    script = asyncio.run(spawner._get_batch_script(**dict(subvars, cmd="true", **spawner.user_options)))
    assert "#SBATCH --chdir=/home/proj2/alice.proj2" in script and "#SBATCH --time=01:00:00" in script, script
    prefix = batchspawner.batchspawner.format_template(spawner.exec_prefix, **subvars)
    assert prefix.endswith("--user alice.proj2"), prefix


def test_remote_homedir_replaces_brics_home():
    c = Config()
    c.BridgeBricsSlurmSpawner.remote_homedir = "/home/{username}"
    spawner = choose(make(c))
    assert spawner.get_req_subvars()["homedir"] == "/home/alice.proj2"
    assert spawner.get_env()["HOME"] == "/home/alice.proj2"


def test_options_form_lists_every_project_and_refuses_others():
    spawner = make()
    spawner.auth_state_hook(spawner, AUTH_STATE)
    form = spawner.options_form(spawner)
    assert 'value="proj1.brics"' in form and 'value="proj2.brics"' in form
    with pytest.raises(Exception, match="unknown brics_project"):
        spawner.run_options_from_form(dict(FORM, brics_project=["proj3.brics"]))


def test_state_round_trip_keeps_projects():
    spawner = choose(make())
    spawner.job_id = "7"
    state = spawner.get_state()
    other = make()
    other.load_state(state)
    assert other.brics_projects == AUTH_STATE and other.job_id == "7"


def test_query_does_not_see_hub_secrets_and_missing_bridge_keeps_polling(monkeypatch, tmp_path):
    monkeypatch.setenv("JUPYTERHUB_CRYPT_KEY", "hub-secret")
    out = asyncio.run(make().run_command("env"))
    assert "hub-secret" not in out and "PATH=" in out
    c = Config()
    c.BridgeSpawnerMixin.bridge_path = str(tmp_path / "not-installed")
    spawner = choose(make(c))
    spawner.job_id = "42"
    assert asyncio.run(spawner.query_job_status()) is JobStatus.UNKNOWN
    assert spawner.job_status.startswith("slurm-ssh-bridge: internal: ")


def test_unsafe_account_from_auth_state_is_refused():
    spawner = make()
    spawner.auth_state_hook(spawner, {"proj2.brics": {"name": "x", "username": "alice;id"}})
    spawner.user_options = spawner.run_options_from_form(FORM)
    with pytest.raises(ValueError, match="slurm-ssh-bridge"):
        spawner.get_req_subvars()


def test_mixin_behind_batchspawner_is_refused():
    with pytest.raises(TypeError, match="BridgeSpawnerMixin must come before"):
        type("Wrong", (BricsSlurmSpawner, BridgeSpawnerMixin), {})


def test_import_without_bricsauthenticator_says_what_to_install():
    # A fresh interpreter where bricsauthenticator cannot be imported.
    code = ("import sys; sys.modules['bricsauthenticator'] = None\n"
            "try:\n import slurm_ssh_bridge.brics\n"
            "except ImportError as e:\n print(e)\nelse:\n print('imported')\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=60).stdout
    assert "needs the bricsauthenticator package" in out and "install-support-packages.sh" in out, out


def test_jwks_client_works_with_this_pyjwt_where_upstreams_may_not():
    import jwt
    from bricsauthenticator.auth import BricsLoginHandler

    from slurm_ssh_bridge.brics import CompatBricsAuthenticator, jwks_client_factory

    uri = "http://127.0.0.1:9/certs"  # never fetched here
    client = jwks_client_factory(uri)
    assert isinstance(client, jwt.PyJWKClient)
    import inspect

    if "headers" not in inspect.signature(jwt.PyJWKClient.__init__).parameters:
        # What bricsauthenticator's own login handler does on Debian 12 (PyJWT 2.6).
        with pytest.raises(TypeError, match="headers"):
            BricsLoginHandler._default_jwks_client_factory(None, uri)
        assert client.uri.full_url == uri and client.uri.get_header("User-agent").startswith("PyJWT/")
    (_, handler, kwargs), = CompatBricsAuthenticator().get_handlers(None)
    assert handler is BricsLoginHandler and kwargs["jwks_client_factory"] is jwks_client_factory


def test_readme_brics_config_names_only_real_traits(caplog):
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    blocks = [b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "BridgeBricsSlurmSpawner" in b]
    assert blocks, "python_shim/README.md has no ```python block configuring BridgeBricsSlurmSpawner"
    config = Config()
    exec(compile(blocks[0], "README.md:brics", "exec"),  # noqa: S102
         {"c": config, "BRIDGE": BRIDGE, "BRIDGE_CONFIG": CONFIG})
    assert config.JupyterHub.spawner_class == "slurm_ssh_bridge.brics.BridgeBricsSlurmSpawner"
    with caplog.at_level("WARNING"):
        spawner = make(config)
    assert "not recognized" not in caplog.text, caplog.text
    assert spawner.exec_prefix == BRIDGE + " --config " + CONFIG + " --user {username}"
