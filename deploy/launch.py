"""`make run`: prepare the run directory and run supervisord in the foreground.

Sets GATEWAY_RUN_DIR (default: <repo>/.run), GATEWAY_DATA_DIR (default: <repo>/.data: the
regtest world's and, later, the gateway's databases) and GATEWAY_BIN_DIR (this virtualenv's bin)
for supervisord.conf, creates the private run directory (mode 0700) with its logs/ and conf.d/, then
replaces itself with `supervisord -n -c supervisord.conf` under umask 077 (gwcore.files). The API
front's secrets (a local admin password's hash, the session secret) are handed to the front
alone (deploy/api_front.py), never put in supervisord's environment, which every program gets.
Ctrl-C stops the whole tree. The Lightning extension listens on
`unix:<run dir>/lnrpc/extension.sock` (GATEWAY_LNRPC_LISTEN) unless told otherwise; a TCP address
needs GATEWAY_LNRPC_TLS_DIR (mutual TLS, gwcore/extension.py).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import bcrypt

from bus.endpoints import ensure_run_dir
from deploy.api_front import hand_over, kept_secrets
from gwcore.constants import (
    ENV_API_PASSWORD_HASH,
    ENV_API_SESSION_SECRET,
    ENV_DATA_DIR,
    ENV_LNRPC_LISTEN,
    ENV_LNRPC_TLS_DIR,
    ENV_RUN_DIR,
)
from gwcore.extension import ExtensionConfigError, ExtensionEndpoint
from gwcore.files import keep_private, private_dir
from gwcore.secretfile import secret_file

REPO = Path(__file__).resolve().parent.parent


def prepare_env(run_dir: Path, data_dir: Path, environ: dict[str, str]) -> dict[str, str]:
    """Create the run and data directories and return the environment supervisord needs (the
    API front's secrets are kept for it in the run directory, not in the environment)."""
    run_dir = ensure_run_dir(run_dir)
    data_dir = ensure_run_dir(data_dir)
    private_dir(run_dir / "logs", tighten=True)
    private_dir(run_dir / "conf.d", tighten=True)
    env = dict(environ)
    env[ENV_RUN_DIR] = str(run_dir)
    env[ENV_DATA_DIR] = str(data_dir)
    env["GATEWAY_BIN_DIR"] = str(Path(sys.executable).parent)
    # the extension's gRPC address: its unix socket in the run dir unless told (TCP: mutual TLS)
    extension = ExtensionEndpoint.parse(
        env.get(ENV_LNRPC_LISTEN, ""), env.get(ENV_LNRPC_TLS_DIR), run_dir=run_dir
    )
    env[ENV_LNRPC_LISTEN] = extension.address
    env[ENV_LNRPC_TLS_DIR] = str(extension.tls_dir or "")
    env.setdefault("GATEWAY_API_BIND", "127.0.0.1:8175")
    env.setdefault("GATEWAY_ROUTER_PUBLIC_API_URL", f"http://{env['GATEWAY_API_BIND']}")
    if not env.get(ENV_API_PASSWORD_HASH):  # a local admin password, kept in the run dir
        env[ENV_API_PASSWORD_HASH] = _admin_password_hash(run_dir)
    if not env.get(ENV_API_SESSION_SECRET):  # signs dashboard sessions (all workers)
        env[ENV_API_SESSION_SECRET] = secret_file(run_dir / "session-secret", 32)
    env["SUPERVISOR_SERVER_URL"] = f"unix://{run_dir}/supervisor.sock"
    return hand_over(env, run_dir)


def _admin_password_hash(run_dir: Path) -> str:
    """The bcrypt hash of the local admin password (made once, in the run directory): the one
    handed over before while it matches, so a restarted API front keeps the dashboard's sessions
    (their key is made from it)."""
    password = secret_file(run_dir / "admin-password", 18).encode()
    kept = kept_secrets(run_dir).get(ENV_API_PASSWORD_HASH, "")
    try:
        if kept and bcrypt.checkpw(password, kept.encode()):
            return kept
    except ValueError:  # not a bcrypt hash
        pass
    return bcrypt.hashpw(password, bcrypt.gensalt()).decode()


def main() -> None:
    keep_private()  # supervisord's own files (its log, pid file) and every program's
    run_dir = Path(os.environ.get(ENV_RUN_DIR) or REPO / ".run")
    data_dir = Path(os.environ.get(ENV_DATA_DIR) or REPO / ".data")
    try:
        env = prepare_env(run_dir, data_dir, dict(os.environ))
    except ExtensionConfigError as exc:
        sys.exit(f"launch: {exc}")
    supervisord = str(Path(sys.executable).parent / "supervisord")
    print(
        f"supervisord: run dir {env[ENV_RUN_DIR]}, data dir {env[ENV_DATA_DIR]}; Ctrl-C stops everything\n"
        f"  regtest world: .venv/bin/regtest-cli --data-dir {env[ENV_DATA_DIR]}/regtest getblockcount\n"
        f"  gateway API: http://{env['GATEWAY_API_BIND']} (admin password in {env[ENV_RUN_DIR]}/admin-password)",
        file=sys.stderr,
    )
    os.execve(supervisord, [supervisord, "-n", "-c", str(REPO / "supervisord.conf")], env)


if __name__ == "__main__":
    main()
