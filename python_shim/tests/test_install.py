"""The package installs offline into a fresh venv with the system's setuptools.

Exactly the documented route: ``python3 -m venv --system-site-packages`` and
``pip install --no-build-isolation --no-index``, from a copy of the source
(so the build leaves nothing behind in the checkout).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SHIM_DIR = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.install


def _run(argv, **kwargs):
    env = dict(os.environ)
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1", PIP_NO_CACHE_DIR="1",
               PYTHONDONTWRITEBYTECODE="1")
    env.pop("PYTHONPATH", None)
    env.pop("PIP_INDEX_URL", None)
    env.pop("PIP_EXTRA_INDEX_URL", None)
    proc = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          timeout=300, **kwargs)
    assert proc.returncode == 0, "%s failed (%d):\n%s" % (argv, proc.returncode, proc.stdout.decode())
    return proc.stdout.decode()


CHECK = textwrap.dedent(
    """
    import importlib.metadata as md, importlib.util, json, sys
    import slurm_ssh_bridge
    from slurm_ssh_bridge import commands, client, service, errors
    eps = [ep for ep in md.entry_points(group="jupyterhub.spawners") if ep.name == "slurm-ssh-bridge"]
    out = {
        "file": slurm_ssh_bridge.__file__,
        "prefix": sys.prefix,
        "version": slurm_ssh_bridge.__version__,
        "dist_version": md.version("slurm-ssh-bridge"),
        "entry_points": [ep.value for ep in eps],
        "py_typed": any(str(f).endswith("py.typed") for f in md.files("slurm-ssh-bridge")),
        "service": service.bridge_service(config="/etc/x.toml")["command"],
        "has_batchspawner": importlib.util.find_spec("batchspawner") is not None,
    }
    try:
        cls = eps[0].load()
        out["loaded"] = cls.__module__ + "." + cls.__name__
    except ModuleNotFoundError as exc:
        out["load_error"] = exc.name
    print(json.dumps(out))
    """
)


def test_offline_install_into_fresh_venv(tmp_path):
    if importlib.util.find_spec("ensurepip") is None:
        pytest.skip("this interpreter has no ensurepip (Debian: install python3-venv)")
    source = tmp_path / "python_shim"
    shutil.copytree(
        SHIM_DIR, source,
        ignore=shutil.ignore_patterns("build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", "tests"),
    )
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)])
    python = venv / "bin" / "python"
    _run([str(python), "-m", "pip", "install", "--no-build-isolation", "--no-index", str(source)])

    result = json.loads(_run([str(python), "-c", CHECK], cwd=str(tmp_path)).strip().splitlines()[-1])
    assert result["file"].startswith(str(venv)), result  # the installed copy, not the checkout
    assert result["version"] == result["dist_version"]
    assert result["entry_points"] == ["slurm_ssh_bridge.spawner:BridgeSlurmSpawner"]
    assert result["py_typed"]
    assert result["service"] == ["slurm-ssh-bridge", "--config", "/etc/x.toml", "serve"]
    if not result["has_batchspawner"]:
        # Without batchspawner only the spawner is unavailable, with a clear reason.
        assert result.get("load_error") == "batchspawner", result
    else:
        assert result.get("loaded") == "slurm_ssh_bridge.spawner.BridgeSlurmSpawner", result
