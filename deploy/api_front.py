"""The API front's secrets reach the API front alone; `python -m deploy.api_front GUNICORN-ARGS`
is its command under supervisord.

supervisord gives every program its own environment, so a secret in it is in the router's, every
actor's and the extension's too (and the admin password's hash with the session secret is
enough to forge dashboard sessions). The launchers (deploy/launch.py for `make run`,
deploy/gateway.py for the operator) therefore take the front's secrets (the `SecretStr`
settings of ApiSettings: GATEWAY_API_PASSWORD_HASH, _SESSION_SECRET, _METRICS_TOKEN) out of
supervisord's environment with `hand_over`, which keeps them in `<run dir>/api-secrets.json`
(0600). This command adds them to its own environment and replaces itself with gunicorn, so
only the front's master and its workers hold them. gateway-cli's admin password
(GATEWAY_RPCPASSWORD), should the launcher's shell hold it, is given to no program.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from pydantic import SecretStr

from gwcore.constants import DEFAULT_RUN_DIR, ENV_CLI_PASSWORD, ENV_PREFIX_API
from gwcore.files import keep_private, write_private
from gwcore.lifetime import die_with_parent
from services.api.settings import ApiSettings

API_SECRETS_FILE = "api-secrets.json"


def secret_names() -> tuple[str, ...]:
    """The environment names of the API front's secrets."""
    return tuple(
        f"{ENV_PREFIX_API}{name.upper()}"
        for name, field in ApiSettings.model_fields.items()
        if field.annotation is SecretStr
    )


def kept_secrets(run_dir: Path) -> dict[str, str]:
    """The secrets handed over last (none when there is no file)."""
    try:
        kept = json.loads((Path(run_dir) / API_SECRETS_FILE).read_text())
    except FileNotFoundError:
        return {}
    return {k: str(v) for k, v in kept.items() if k in secret_names()}


def hand_over(env: dict[str, str], run_dir: Path) -> dict[str, str]:
    """`env` without the API front's secrets, which are kept for it in the run directory
    (replacing those kept before: a secret no longer set is no longer kept), nor gateway-cli's
    admin password (an operator's shell may hold it; no program needs it)."""
    names = secret_names()
    write_private(
        Path(run_dir) / API_SECRETS_FILE,
        json.dumps({k: env[k] for k in names if env.get(k)}),
    )
    return {k: v for k, v in env.items() if k not in names and k != ENV_CLI_PASSWORD}


def front_env(environ: dict[str, str], run_dir: Path) -> dict[str, str]:
    """The API front's environment: `environ` with the kept secrets (a value already set in
    `environ` wins: someone started supervisord by hand with their own)."""
    env = dict(environ)
    for k, v in kept_secrets(run_dir).items():
        if not env.get(k):
            env[k] = v
    return env


def main() -> None:
    keep_private()
    die_with_parent()  # kept across exec: gunicorn's master ends with supervisord
    run_dir = Path(os.environ.get(f"{ENV_PREFIX_API}RUN_DIR") or DEFAULT_RUN_DIR)
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    os.execve(gunicorn, [gunicorn, *sys.argv[1:]], front_env(dict(os.environ), run_dir))


if __name__ == "__main__":
    main()
