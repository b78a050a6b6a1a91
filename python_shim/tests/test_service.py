"""bridge_service() and the README's jupyterhub_config.py, checked against JupyterHub 3."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from slurm_ssh_bridge.service import bridge_service

README = Path(__file__).resolve().parent.parent / "README.md"


def validate_with_jupyterhub(spec):
    """Apply a service spec the way JupyterHub's init_services does."""
    services = pytest.importorskip("jupyterhub.services.service", reason="JupyterHub is not importable")
    service = services.Service()
    inputs = service.traits(input=True)
    for key, value in spec.items():
        assert key in inputs, "JupyterHub has no service field %r" % key
        setattr(service, key, value)  # traitlets validates the type
    return service


def test_default_spec():
    spec = bridge_service()
    assert spec["name"] == "slurm-ssh-bridge"
    assert spec["command"] == ["slurm-ssh-bridge", "serve"]
    assert spec["environment"] == {}
    assert "url" not in spec and "api_token" not in spec and "admin" not in spec
    service = validate_with_jupyterhub(spec)
    assert service.managed and service.kind == "managed"
    assert service.command == ["slurm-ssh-bridge", "serve"]


def test_full_spec():
    spec = bridge_service(
        name="ssb",
        bridge_path="/usr/local/bin/slurm-ssh-bridge",
        config="/etc/slurm-ssh-bridge/config.toml",
        environment={"LANG": "C.UTF-8"},
        extra_args=["--mode", "direct"],
        user="jupyterhub",
        cwd="/srv/jupyterhub",
    )
    assert spec["command"] == [
        "/usr/local/bin/slurm-ssh-bridge", "--config", "/etc/slurm-ssh-bridge/config.toml",
        "--mode", "direct", "serve",
    ]
    assert spec["environment"] == {"LANG": "C.UTF-8"}
    assert spec["user"] == "jupyterhub" and spec["cwd"] == "/srv/jupyterhub"
    validate_with_jupyterhub(spec)


def test_config_path_is_one_argv_word():
    spec = bridge_service(config="/etc/odd dir/it's.toml")
    assert spec["command"][1:3] == ["--config", "/etc/odd dir/it's.toml"]


@pytest.mark.parametrize("kwargs", [
    {"name": ""}, {"bridge_path": ""}, {"config": ""}, {"extra_args": "--mode direct"},
])
def test_bad_arguments(kwargs):
    with pytest.raises((ValueError, TypeError)):
        bridge_service(**kwargs)


def test_environment_is_copied():
    env = {"A": "1"}
    spec = bridge_service(environment=env)
    env["B"] = "2"
    assert spec["environment"] == {"A": "1"}


# ---------------------------------------------------------------- README


def readme_config():
    text = README.read_text()
    blocks = re.findall(r"```python\n(# jupyterhub_config\.py.*?)```", text, re.S)
    assert blocks, "README.md has no ```python block starting with '# jupyterhub_config.py'"
    return blocks[0]


def test_readme_config_loads_and_is_valid():
    pytest.importorskip("jupyterhub", reason="JupyterHub is not importable")
    from traitlets.config import Config

    config = Config()
    namespace = {"get_config": lambda: config, "__file__": "jupyterhub_config.py"}
    exec(compile(readme_config(), "README.md:jupyterhub_config.py", "exec"), namespace)
    assert config.JupyterHub.spawner_class == "slurm-ssh-bridge"
    services = config.JupyterHub.services
    assert [s["name"] for s in services] == ["slurm-ssh-bridge"]
    for spec in services:
        validate_with_jupyterhub(spec)
    bridge = config.BridgeSlurmSpawner
    # No Jinja quoting anywhere, and nothing that replaces the bridge's commands.
    for key in ("exec_prefix", "batch_submit_cmd", "batch_query_cmd", "batch_cancel_cmd", "state_unknown_re"):
        assert key not in bridge and key not in config.SlurmSpawner
    snippet = readme_config()
    assert "{{" not in snippet and "{%" not in snippet
    # The daemon and the spawner read the same configuration file.
    assert services[0]["command"][services[0]["command"].index("--config") + 1] == bridge.bridge_config


def test_readme_documents_every_trait():
    text = README.read_text()
    for trait in ("bridge_path", "bridge_config", "bridge_mode", "remote_homedir", "state_unknown_re",
                  "exec_prefix", "batch_submit_cmd", "batch_query_cmd", "batch_cancel_cmd"):
        assert "`%s`" % trait in text, trait
