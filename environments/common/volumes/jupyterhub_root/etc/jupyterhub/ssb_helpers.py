"""Helpers shared by the environments' JupyterHub configuration files
(imported by ssb_common_config.py and jupyterhub_config.py)."""
import os


def deploy_value(name, default=None):
    """The value of DEPLOY_CONFIG_<name>; ``default`` when unset or empty,
    an error naming the ConfigMap key when there is no default."""
    value = os.environ.get(f"DEPLOY_CONFIG_{name}", "")
    if value:
        return value
    if default is not None:
        return default
    raise RuntimeError(
        f"environment variable DEPLOY_CONFIG_{name} is not set: "
        "add the corresponding key to the deploy-config ConfigMap (see docs/ENVIRONMENTS.md)"
    )


def dev_unix_users():
    """<USER>.<PROJECT> accounts from devUsers, in order."""
    return os.environ.get("DEPLOY_CONFIG_DEV_USERS", "").split()


def projects_of(short_name, unix_users, portal="brics"):
    """auth_state in the shape BricsAuthenticator produces: one entry per
    project of ``short_name``, keyed <PROJECT>.<PORTAL>, with the Unix
    account <USER>.<PROJECT> that runs that project's jobs."""
    state = {}
    for account in unix_users:
        user, _, project = account.partition(".")
        if user == short_name and project:
            state[f"{project}.{portal}"] = {"name": f"Project {project}", "username": account}
    return state
