"""`gateway-bus status|ping`: a bus client for operators and scripts.

Exit codes: 0 ok, 2 invalid input, 3 the broker did not answer, 4 the service failed.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import click
from pydantic_settings import BaseSettings, SettingsConfigDict

from bus import BusClient, ipc_endpoint
from gwcore.cli import run as run_cli
from gwcore.constants import (
    BUS_SERVICE,
    DEFAULT_RUN_DIR,
    ENV_PREFIX_BUSCLI,
    METHOD_BUS_LIVENESS,
    METHOD_BUS_PING,
    ROUTER_ENDPOINT_NAME,
)
from gwcore.errors import BusError, GatewayError
from gwcore.files import keep_private
from gwproto.bus_pb2 import LivenessReport, WorkerStatus

EXIT_INVALID, EXIT_UNREACHABLE, EXIT_FAILED = 2, 3, 4


class BusCliSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX_BUSCLI, extra="ignore")
    run_dir: str = DEFAULT_RUN_DIR
    endpoint: str = ""  # overrides ipc://<run_dir>/bus/router.sock


def _endpoint(settings: BusCliSettings) -> str:
    return settings.endpoint or ipc_endpoint(settings.run_dir, ROUTER_ENDPOINT_NAME)


def _call(settings: BusCliSettings, service: str, method: str, payload: bytes, timeout: float):
    async def go() -> bytes:
        client = BusClient(_endpoint(settings), identity=f"gateway-bus-{time.time_ns()}")
        try:
            return await client.request(service, method, payload, timeout=timeout, retries=1)
        finally:
            await client.close()

    try:
        return asyncio.run(go())
    except BusError as exc:
        click.echo(f"error: {exc.code}: {exc.message}", err=True)
        sys.exit(EXIT_UNREACHABLE)
    except GatewayError as exc:
        click.echo(f"error: {exc.code}: {exc.message}", err=True)
        sys.exit(EXIT_FAILED)
    except ValueError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_INVALID)


@click.group()
@click.option("--run-dir", envvar=f"{ENV_PREFIX_BUSCLI}RUN_DIR", default=DEFAULT_RUN_DIR)
@click.option("--endpoint", envvar=f"{ENV_PREFIX_BUSCLI}ENDPOINT", default="")
@click.option("--timeout", default=3.0, show_default=True, type=click.FloatRange(min=0.01))
@click.pass_context
def cli(ctx: click.Context, run_dir: str, endpoint: str, timeout: float) -> None:
    """Inspect the gateway's message bus."""
    ctx.obj = (BusCliSettings(run_dir=run_dir, endpoint=endpoint), timeout)


@cli.command()
@click.pass_obj
def status(obj: tuple[BusCliSettings, float]) -> None:
    """The broker's liveness table, as JSON."""
    settings, timeout = obj
    report = LivenessReport.FromString(
        _call(settings, BUS_SERVICE, METHOD_BUS_LIVENESS, b"", timeout)
    )
    out = {
        "broker_started_unix_ms": report.broker_started_unix_ms,
        "workers": [
            {
                "identity": w.identity,
                "service": w.service,
                "state": WorkerStatus.State.Name(w.state).lower(),
                "incarnation": w.incarnation,
                "last_seen_age_s": w.last_seen_age_s,
                "in_flight": w.in_flight,
                "requests_forwarded": w.requests_forwarded,
            }
            for w in report.workers
        ],
        "counters": dict(sorted(report.counters.items())),
    }
    click.echo(json.dumps(out, indent=2))


@cli.command()
@click.argument("service", default=BUS_SERVICE)
@click.pass_obj
def ping(obj: tuple[BusCliSettings, float], service: str) -> None:
    """Round trip to SERVICE (default: the broker itself); prints the time taken."""
    settings, timeout = obj
    start = time.perf_counter()
    _call(settings, service, METHOD_BUS_PING, b"ping", timeout)
    click.echo(
        json.dumps({"service": service, "rtt_ms": round((time.perf_counter() - start) * 1e3, 3)})
    )


def main() -> None:
    keep_private()  # wallets and files it makes: 0600, folders 0700
    run_cli(cli)


if __name__ == "__main__":
    main()
