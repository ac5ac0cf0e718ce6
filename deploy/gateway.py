"""`python -m deploy.gateway --env-file FILE [--check]`: run the gateway alone, as an operator
deploys it (deploy/gateway.conf: router, API front, and, for LND only, the Lightning extension,
deploy/lnrpc-extension.conf; with Core Lightning supervisord lists no extension program at all).

Reads FILE (KEY=VALUE lines, `#` comments, optional quotes; documented in
deploy/gateway.env.example) over the process environment, checks it, creates the private run
and data directories, and replaces itself with `supervisord -n -c deploy/gateway.conf` under
umask 077 (gwcore.files), so systemd (or any supervisor of supervisord) sees one process. The API
front's secrets (the password hash, the session secret, the metrics token) go to the front alone
(deploy/api_front.py), never into supervisord's environment, which every program gets.
`--check` only checks and prints what it would run; a bad file exits 2 with one line saying what
is wrong.

`--rollback` is the last step of rolling an upgrade back, run with the old version's launcher on
the stopped gateway: every database the newer version migrated gets back the copy made before
(`<db>.v<this version's schema>.bak`), its `-wal`/`-shm` removed; all checked before any is put
back.

`--restore-from BACKUP` brings a backup of `gateway-cli backup --to` back into the file's data
folder instead of starting, on a stopped gateway whose data folder is empty (a lost disk): the
seed's 12 words are read from stdin (asked for, hidden, on a terminal; never an argument). Wrong
words or a damaged file: one line, exit 2, nothing written.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from pathlib import Path

import bcrypt
import click

from bus.dedup import REPLIES_DB
from bus.endpoints import ensure_run_dir
from deploy.api_front import hand_over
from fmclient.wallet import WALLET_DB
from gwcore.constants import (
    ENV_API_PASSWORD_HASH,
    ENV_API_SESSION_SECRET,
    ENV_DATA_DIR,
    ENV_LNRPC_LISTEN,
    ENV_LNRPC_TLS_DIR,
    ENV_RUN_DIR,
)
from gwcore.databackup import BackupFileError, restore_backup
from gwcore.errors import InvalidInput
from gwcore.extension import ExtensionConfigError, ExtensionEndpoint
from gwcore.files import keep_private, private_dir
from gwcore.schema import backup_path, stored_version
from gwcore.secretfile import secret_file
from gwcore.seed import GatewaySeed
from services.actor.store import ACTOR_DB
from services.router.registry import ROUTER_DB

HERE = Path(__file__).resolve().parent
CONF = HERE / "gateway.conf"
EXTENSION_CONF = HERE / "lnrpc-extension.conf"  # included by CONF for LND only
# every database of the data folder, by file name: its schema (gwcore/schema.py)
SCHEMAS = {s.name: s for s in (ROUTER_DB, ACTOR_DB, WALLET_DB, REPLIES_DB)}
REQUIRED = (ENV_DATA_DIR, ENV_RUN_DIR, ENV_API_PASSWORD_HASH, "GATEWAY_ROUTER_PUBLIC_API_URL")


class EnvFileError(ValueError):
    """The environment file is unreadable or incomplete (the message is one line)."""


def read_env_file(path: Path) -> dict[str, str]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise EnvFileError(f"cannot read {path}: {exc.strerror}") from None
    out: dict[str, str] = {}
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        key, value = key.strip().removeprefix("export "), value.strip()
        if not sep or not key.replace("_", "").isalnum():
            raise EnvFileError(f"{path}:{n}: expected KEY=VALUE, got {raw!r}")
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        out[key] = value
    return out


def gateway_env(file_env: dict[str, str], environ: dict[str, str]) -> dict[str, str]:
    """The environment supervisord gets: the process's, then the file's; checked; the run and
    data directories made (mode 0700), the session secret kept in the data directory; the API
    front's secrets handed over to it (in the run directory), not in the environment."""
    env = {**environ, **{k: v for k, v in file_env.items()}}
    missing = [k for k in REQUIRED if not env.get(k)]
    if missing:
        raise EnvFileError(f"missing in the environment file: {', '.join(missing)}")
    if not env[ENV_API_PASSWORD_HASH].startswith("$2"):
        raise EnvFileError(
            "GATEWAY_API_PASSWORD_HASH is not a bcrypt hash (gateway-cli create-password-hash)"
        )
    try:
        bcrypt.checkpw(b"", env[ENV_API_PASSWORD_HASH].encode())
    except ValueError:
        raise EnvFileError("GATEWAY_API_PASSWORD_HASH is not a valid bcrypt hash") from None
    run_extension = env.setdefault("GATEWAY_RUN_EXTENSION", "true").lower()
    if run_extension not in ("true", "false"):
        raise EnvFileError("GATEWAY_RUN_EXTENSION must be true (LND) or false (CLN)")
    env["GATEWAY_RUN_EXTENSION"] = run_extension
    # gateway.conf includes the extension's program only when supervisord runs it (LND)
    env["GATEWAY_EXTENSION_CONF"] = EXTENSION_CONF.name if run_extension == "true" else ""
    if run_extension == "true":
        backend = env.setdefault("GATEWAY_LNRPC_BACKEND", "lnd")
        if backend != "lnd":
            raise EnvFileError(
                f"GATEWAY_LNRPC_BACKEND={backend}: supervisord runs the extension for lnd only"
            )
        for key in (
            "GATEWAY_LNRPC_LND_HOST",
            "GATEWAY_LNRPC_LND_TLS_CERT",
            "GATEWAY_LNRPC_LND_MACAROON",
        ):
            if not env.get(key):
                raise EnvFileError(f"missing in the environment file: {key}")
    env.setdefault("GATEWAY_API_BIND", "127.0.0.1:8175")
    env[ENV_LNRPC_LISTEN], env[ENV_LNRPC_TLS_DIR] = extension_env(
        env, Path(env[ENV_RUN_DIR]).resolve()
    )
    run_dir = ensure_run_dir(env[ENV_RUN_DIR])
    data_dir = ensure_run_dir(env[ENV_DATA_DIR])
    private_dir(run_dir / "logs", tighten=True)
    private_dir(run_dir / "conf.d", tighten=True)
    env[ENV_RUN_DIR], env[ENV_DATA_DIR] = str(run_dir), str(data_dir)
    env["GATEWAY_BIN_DIR"] = str(bin_dir())
    if not env.get(ENV_API_SESSION_SECRET):
        env[ENV_API_SESSION_SECRET] = secret_file(data_dir / "session-secret", 32)
    env["SUPERVISOR_SERVER_URL"] = f"unix://{run_dir}/supervisor.sock"
    return hand_over(env, run_dir)


def bin_dir() -> Path:
    """This virtualenv's bin folder, links resolved: every program supervisord (re)starts runs
    the installed version it was started from, even if /opt/fmgw/venv is switched meanwhile."""
    return Path(sys.executable).parent.resolve()


def extension_env(env: dict[str, str], run_dir: Path) -> tuple[str, str]:
    """The extension's address (default: its unix socket in the run dir) and TLS folder,
    checked: TCP only with mutual TLS, every file the gateway (and, when supervisord runs the
    extension, the extension) needs readable now."""
    try:
        extension = ExtensionEndpoint.parse(
            env.get(ENV_LNRPC_LISTEN, ""), env.get(ENV_LNRPC_TLS_DIR), run_dir=run_dir
        )
        extension.check_client()
        if extension.tls_dir is not None and env["GATEWAY_RUN_EXTENSION"] == "true":
            extension.server_credentials()
    except ExtensionConfigError as exc:
        raise EnvFileError(str(exc)) from None
    return extension.address, str(extension.tls_dir or "")


def restore(file_env: dict[str, str], environ: dict[str, str], backup: Path, words: str) -> dict:
    """Bring `backup` back into the data folder of the environment file (stopped gateway, empty
    folder). EnvFileError / InvalidInput / BackupFileError: one line, nothing written."""
    data_dir = _stopped_gateway(file_env, environ)
    key = GatewaySeed(words).file_backup_key()
    manifest = restore_backup(backup, key, data_dir)
    return {"restored": str(data_dir), "files": len(manifest["files"]), "made": manifest["created"]}


def rollback(file_env: dict[str, str], environ: dict[str, str]) -> dict:
    """Put back, for each database of the data folder newer than this gateway's schema, the copy
    made before it was migrated from this version (stopped gateway). EnvFileError if one lacks
    its copy: then nothing is put back."""
    data_dir = _stopped_gateway(file_env, environ)
    moves = []
    for path in sorted(data_dir.rglob("*.sqlite")):
        schema = SCHEMAS.get(path.name)
        if schema is None:
            continue
        db = sqlite3.connect(path)
        try:
            found = stored_version(db)
        finally:
            db.close()
        if found > schema.version:
            copy = backup_path(path, schema.version)
            if not copy.is_file():
                raise EnvFileError(f"{path} is version {found} and {copy.name} is missing")
            moves.append((copy, path))
    for copy, path in moves:
        for side in ("-wal", "-shm"):  # the newer version's: never to be applied to the copy
            path.with_name(path.name + side).unlink(missing_ok=True)
        os.replace(copy, path)
    return {"rolled_back": [str(path.relative_to(data_dir)) for _, path in moves]}


def _stopped_gateway(file_env: dict[str, str], environ: dict[str, str]) -> Path:
    """The data folder of the environment file's gateway, which must not be running
    (EnvFileError, one line, otherwise or if the file lacks its folders)."""
    env = {**environ, **file_env}
    missing = [k for k in (ENV_DATA_DIR, ENV_RUN_DIR) if not env.get(k)]
    if missing:
        raise EnvFileError(f"missing in the environment file: {', '.join(missing)}")
    pid = _supervisord_pid(Path(env[ENV_RUN_DIR]))
    if pid is not None:
        raise EnvFileError(f"the gateway is running (supervisord, pid {pid}): stop it first")
    return Path(env[ENV_DATA_DIR])


def _supervisord_pid(run_dir: Path) -> int | None:
    """supervisord's pid if the gateway of this run folder runs."""
    try:
        pid = int((run_dir / "supervisord.pid").read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def _words() -> str:
    if sys.stdin.isatty():
        return click.prompt("the gateway's 12 seed words", hide_input=True)
    return sys.stdin.readline()


@click.command()
@click.option(
    "--env-file",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="KEY=VALUE settings (deploy/gateway.env.example)",
)
@click.option("--check", is_flag=True, help="check the file and print what would run")
@click.option(
    "--restore-from",
    type=click.Path(path_type=Path, dir_okay=False),
    help="bring this backup (gateway-cli backup --to) back into the empty data folder, the"
    " seed's words on stdin, and exit",
)
@click.option(
    "--rollback",
    "roll_back",
    is_flag=True,
    help="put back the databases' copies from before a newer version migrated them, and exit",
)
def main(env_file: Path, check: bool, restore_from: Path | None, roll_back: bool) -> None:
    """Run the gateway (router, API front, Lightning extension) under supervisord."""
    keep_private()  # supervisord's own files (its log, pid file) and every program's
    if roll_back:
        try:
            done = rollback(read_env_file(env_file), dict(os.environ))
        except (EnvFileError, OSError, sqlite3.Error) as exc:
            click.echo(f"gateway: {exc}", err=True)
            sys.exit(2)
        click.echo(json.dumps(done, indent=2))
        return
    if restore_from is not None:
        try:
            done = restore(read_env_file(env_file), dict(os.environ), restore_from, _words())
        except (EnvFileError, InvalidInput, BackupFileError, PermissionError) as exc:
            click.echo(f"gateway: {exc}", err=True)
            sys.exit(2)
        click.echo(json.dumps(done, indent=2))
        return
    try:
        env = gateway_env(read_env_file(env_file), dict(os.environ))
    except (EnvFileError, PermissionError) as exc:
        click.echo(f"gateway: {exc}", err=True)
        sys.exit(2)
    supervisord = str(bin_dir() / "supervisord")
    argv = [supervisord, "-n", "-c", str(CONF)]
    extension = (
        f"extension: {env['GATEWAY_LNRPC_BACKEND']} at {env['GATEWAY_LNRPC_LND_HOST']}"
        if env["GATEWAY_RUN_EXTENSION"] == "true"
        else "extension: run by lightningd (CLN plugin)"
    )
    click.echo(
        f"gateway: data {env[ENV_DATA_DIR]}, run {env[ENV_RUN_DIR]}, API {env['GATEWAY_API_BIND']}"
        f" ({env['GATEWAY_ROUTER_PUBLIC_API_URL']}), {extension} on {env['GATEWAY_LNRPC_LISTEN']}",
        err=True,
    )
    if check:
        click.echo(" ".join(argv))
        return
    os.execve(supervisord, argv, env)


if __name__ == "__main__":
    main()
