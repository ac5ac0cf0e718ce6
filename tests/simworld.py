"""The simulated world beside a test's gateway tree: regtestd (the simulated chain and Lightning
network, whose node "gateway" the extension's sim backend drives). It is a program of the tree's
supervisord, but not the gateway's: `add_sim_world` writes it into the run folder's conf.d (the
gateway's own supervisord.conf holds the gateway's programs alone) and returns the extension's
settings."""

from __future__ import annotations

from pathlib import Path

from gwcore.files import write_private

REPO = Path(__file__).resolve().parents[1]

_PROGRAM = """
[program:{name}]
command={command}
directory={repo}
autostart=true
autorestart=true
startsecs=1
startretries=100
stopwaitsecs=20
stopasgroup=true
killasgroup=true
redirect_stderr=true
stdout_logfile=/dev/stdout
stdout_logfile_maxbytes=0
"""


def add_sim_world(run_dir: Path, data_dir: Path) -> dict[str, str]:
    """Write conf.d/sim-world.conf (regtestd); the environment that points the extension's sim
    backend at regtestd's node "gateway"."""
    command = f"%(ENV_GATEWAY_BIN_DIR)s/regtestd --data-dir {data_dir}/regtest"
    conf = _PROGRAM.format(name="regtestd", command=command, repo=REPO)
    (run_dir / "conf.d").mkdir(parents=True, exist_ok=True)
    write_private(run_dir / "conf.d" / "sim-world.conf", conf)
    return {
        "GATEWAY_LNRPC_BACKEND": "sim",
        "GATEWAY_LNRPC_SIM_REGTEST_DIR": str(data_dir / "regtest"),
        "GATEWAY_LNRPC_SIM_NODE": "gateway",
    }
