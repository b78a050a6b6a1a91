"""The five environments' JupyterHub configuration files, loaded as the hub
loads them (get_config / load_subconfig), with the real batchspawner,
bricsauthenticator and python_shim: which spawner each one uses, and what
that spawner submits for a user with two projects.

    SSB_SUPPORT_VENV=V /usr/bin/python3 -m pytest tests/hub/test_environment_configs.py
(V: a venv with batchspawner and bricsauthenticator, made by
scripts/install-support-packages.sh; tests/hub/run_brics.sh does this.)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

REPO = Path(__file__).resolve().parents[2]
ETC = "/etc/jupyterhub/"
COMMON = REPO / "environments/common/volumes/jupyterhub_root/etc/jupyterhub"
sys.path.insert(0, str(REPO / "python_shim/src"))
sys.path.insert(0, str(COMMON))

pytest.importorskip("batchspawner", reason="batchspawner is not importable: run through tests/hub/run_brics.sh")
pytest.importorskip("bricsauthenticator", reason="bricsauthenticator is not importable: run through tests/hub/run_brics.sh")

from jupyterhub.objects import Hub  # noqa: E402
from traitlets.config import Config  # noqa: E402

AUTH_STATE = {
    "proj1.brics": {"name": "Project 1", "username": "alice.proj1"},
    "proj2.brics": {"name": "Project 2", "username": "alice.proj2"},
}
DEPLOY = {
    "DEPLOY_CONFIG_OIDC_SERVER": "http://127.0.0.1:9/realms/test",
    "DEPLOY_CONFIG_BRICS_PLATFORM": "brics.test.notebooks",
    "DEPLOY_CONFIG_JWT_AUDIENCE": "zenith-jupyter",
    "DEPLOY_CONFIG_DUMMYAUTH_PASSWORD": "not-a-secret",
    "DEPLOY_CONFIG_DEV_USERS": "alice.proj1 alice.proj2",
}


def load_environment(env, monkeypatch):
    """Run environments/<env>/.../jupyterhub_config.py like JupyterHub does,
    with /etc/jupyterhub/ meaning the repository's files."""
    for key, value in DEPLOY.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("SSB_BRIDGE_DAEMON", raising=False)
    c = Config()
    own = REPO / "environments" / env / "volumes/jupyterhub_root/etc/jupyterhub/jupyterhub_config.py"

    def run(path):
        path = str(path)
        if path.startswith(ETC):
            path = str(COMMON / path[len(ETC):])
        namespace = {"get_config": lambda: c, "load_subconfig": run, "__file__": path}
        exec(compile(Path(path).read_text(), path, "exec"), namespace)  # noqa: S102

    run(own)
    return c


def spawner_for(c, form):
    cls = c.JupyterHub.spawner_class
    user = SimpleNamespace(name="alice", escaped_name="alice", url="/user/alice/", server=None)
    spawner = cls(config=c, user=user, hub=Hub(), api_token="tok", oauth_client_id="client")
    spawner.auth_state_hook(spawner, AUTH_STATE)
    spawner.user_options = spawner.run_options_from_form(form)  # what the hub's spawn handler calls
    return spawner


BRICS_FORM = {"brics_project": ["proj2.brics"], "runtime": ["01:00:00"], "ngpus": ["1"],
              "partition": [""], "reservation": [""]}


@pytest.mark.parametrize("env,homedir", [
    ("dev_realauth", "/home/alice.proj2"),
    ("dev_realauth_zenithclient", "/home/alice.proj2"),
    ("prod", "/home/proj2/alice.proj2"),
])
def test_realauth_environments_use_brics_through_the_bridge(env, homedir, monkeypatch):
    c = load_environment(env, monkeypatch)
    cls = c.JupyterHub.spawner_class
    assert getattr(cls, "__name__", cls) == "BridgeBricsSlurmSpawner", (
        "%s: spawner_class is %r, expected slurm_ssh_bridge.brics.BridgeBricsSlurmSpawner "
        "(see ssb_realauth_config.py)" % (env, cls))
    auth = c.JupyterHub.authenticator_class
    assert getattr(auth, "__name__", auth) == "CompatBricsAuthenticator", "%s: authenticator %r" % (env, auth)
    spawner = spawner_for(c, BRICS_FORM)
    assert 'value="proj1.brics"' in spawner.options_form(spawner), "%s: project form lacks proj1" % env
    subvars = spawner.get_req_subvars()
    assert subvars["username"] == "alice.proj2", "%s: job account %r" % (env, subvars["username"])
    assert subvars["homedir"] == homedir, "%s: job home %r, expected %r" % (env, subvars["homedir"], homedir)
    assert spawner.exec_prefix.startswith("/usr/local/bin/slurm-ssh-bridge --config "), spawner.exec_prefix
    assert spawner.req_srun == "srun --export=ALL" and spawner.req_options == "--nodes=1", env


@pytest.mark.parametrize("env", ["dev_dummyauth", "dev_dummyauth_extslurm"])
def test_dummyauth_environments_keep_project_bridge_spawner(env, monkeypatch):
    c = load_environment(env, monkeypatch)
    cls = c.JupyterHub.spawner_class
    assert cls.__name__ == "ProjectBridgeSpawner", "%s: spawner_class is %r" % (env, cls)
    spawner = spawner_for(c, {"project": ["proj2.brics"]})
    assert spawner._projects() == AUTH_STATE, "%s: auth_state hook did not store the projects" % env
    assert spawner.exec_prefix.startswith("/usr/local/bin/slurm-ssh-bridge --config "), spawner.exec_prefix
    assert spawner.get_req_subvars()["homedir"] == "/home/alice", env  # before start() picks the project
