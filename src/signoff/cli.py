"""The ``signoff`` command: serve, worker, db upgrade, doctor, and operator tasks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
from typing import Any

import typer

import signoff
from signoff.config import ConfigError, Settings, load_settings
from signoff.kit.logging import configure_logging

app = typer.Typer(help="Signoff: AI workflows that people sign off on.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")


def _print_version(asked: bool) -> None:
    if asked:
        typer.echo(f"signoff {signoff.__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: bool = typer.Option(
        False,
        "--version",
        callback=_print_version,
        is_eager=True,
        help="Print the version and exit.",
    ),
) -> None:
    """Signoff: AI workflows that people sign off on."""


def _settings(**overrides: object) -> Settings:
    """The settings, with logging configured from them (level, format, the secrets to redact)."""
    try:
        settings = load_settings(**overrides)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    configure_logging(settings.log_level, settings.log_format, settings.secret_values())
    return settings


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head")) -> None:
    """Apply database migrations up to REVISION (default: the latest)."""
    from signoff.migrations.runner import upgrade

    settings = _settings()
    upgrade(settings.effective_database_url, revision)
    typer.echo("database is up to date")


@db_app.command("revision", hidden=True)
def db_revision(message: str, rev_id: str = typer.Option(..., help="e.g. 0002")) -> None:
    """For developers: autogenerate a migration from the models against a scratch database."""
    import tempfile

    from alembic import command

    from signoff.migrations.runner import alembic_config, upgrade

    with tempfile.TemporaryDirectory() as scratch:
        url = f"sqlite+aiosqlite:///{scratch}/scratch.db"
        upgrade(url)
        command.revision(alembic_config(url), message=message, autogenerate=True, rev_id=rev_id)


def _port_problem(host: str, port: int, setting: str = "SIGNOFF_PORT (or --port)") -> str | None:
    """Why we cannot listen on host:port, naming the setting; None if we can."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            return (
                f"cannot listen on {host}:{port} ({error.strerror}): set {setting} "
                "to a free port, or SIGNOFF_HOST to another address"
            )
    return None


@app.command()
def serve(
    host: str | None = typer.Option(None, help="Interface to bind (default SIGNOFF_HOST)."),
    port: int | None = typer.Option(None, help="Port (default SIGNOFF_PORT, 8000)."),
    workers: int = typer.Option(
        1,
        min=1,
        max=64,
        help="API processes sharing the port (about one per CPU core); the first also runs "
        "the engine, the scheduler and the mail sender.",
    ),
) -> None:
    """Serve the API and dashboard (SQLite databases are migrated first)."""
    import uvicorn

    from signoff.health import database_problem
    from signoff.metrics import directory as metrics_directory
    from signoff.migrations.runner import upgrade

    overrides = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    settings = _settings(**overrides)
    problem = asyncio.run(database_problem(settings.effective_database_url))
    if problem is None:
        problem = _port_problem(settings.host, settings.port)
    if problem is not None:
        typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(2)
    if settings.is_sqlite:
        upgrade(settings.effective_database_url)
    if settings.queue == "procrastinate" and settings.token_secret is None:
        typer.echo(
            "error: with SIGNOFF_QUEUE=procrastinate several processes sign email links: "
            "set the same SIGNOFF_TOKEN_SECRET for every process",
            err=True,
        )
        raise typer.Exit(2)
    # Before the application is imported: prometheus_client picks its storage then.
    metrics_directory.prepare(settings.data_dir)
    from signoff.app import create_app

    base = settings.public_base_url.rstrip("/")
    # A log line, not a print: with SIGNOFF_LOG_FORMAT=json every line of output is JSON.
    logger = logging.getLogger("signoff.cli")
    logger.info(
        "Signoff on %s: the dashboard at %s/dashboard, API docs at %s/docs", base, base, base
    )
    if workers == 1:
        uvicorn.run(create_app(settings), **_uvicorn_options(settings))
        return
    settings.secret_key()  # generated once, before the processes that share it start
    listener = _listen(settings.host, settings.port)
    links, children = _start_http_workers(workers - 1, settings.host, settings.port)
    logger.info(
        "%d processes serve HTTP (pids %d, %s)",
        workers,
        os.getpid(),
        ", ".join(str(child.pid) for child in children),
    )
    # uvicorn raises the signal that stopped it again once it is done: SIGTERM then ends this
    # process through the `finally` below, which stops the others (as Ctrl-C does).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        app = create_app(settings, http_workers=links)
        uvicorn.Server(uvicorn.Config(app, **_uvicorn_options(settings))).run(sockets=[listener])
    finally:
        _stop(children)


def _uvicorn_options(settings: Settings) -> dict[str, Any]:
    # Open dashboard event streams would hold a graceful stop for up to their 30 s lifetime;
    # after 5 s they are cut (browsers reconnect) and shutdown goes on to the run engine.
    # log_config=None: uvicorn's loggers reach our handler (kit.logging).
    # proxy_headers=False: uvicorn would believe X-Forwarded-For from any loopback peer;
    # kit.client_ip believes it only from SIGNOFF_TRUSTED_PROXIES (docs/security.md).
    return {
        "host": settings.host,
        "port": settings.port,
        "log_config": None,
        "timeout_graceful_shutdown": 5,
        "proxy_headers": False,
    }


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket of its own for each process of ``--workers``, all on one port
    (SO_REUSEPORT): the kernel spreads new connections evenly across them. (One shared socket
    would let whichever process wakes first accept every waiting connection at once.)"""
    listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    listener.bind((host, port))
    listener.listen(2048)
    return listener


def _start_http_workers(
    count: int, host: str, port: int
) -> tuple[list[socket.socket], list[subprocess.Popen[bytes]]]:
    """``count`` HTTP-only processes on host:port, each linked to this one by a socket pair
    (runtime.HandOver): this end stays here, the other goes to the process."""
    links, children = [], []
    for _ in range(count):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        command = [
            sys.executable,
            "-c",
            "from signoff.cli import main; main()",
            "http-worker",
            "--host",
            host,
            "--port",
            str(port),
            str(theirs.fileno()),
        ]
        children.append(
            subprocess.Popen(command, pass_fds=(theirs.fileno(),))  # noqa: S603 - our own command
        )
        theirs.close()
        links.append(ours)
    return links, children


def _stop(children: list[subprocess.Popen[bytes]]) -> None:
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    for child in children:
        try:
            child.wait(timeout=15)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


@app.command("http-worker", hidden=True)
def http_worker(link_fd: int, host: str = typer.Option(...), port: int = typer.Option(...)) -> None:
    """One of ``signoff serve --workers N``'s other processes (started by it, not by hand):
    HTTP only; it stops when the first process goes away."""
    import uvicorn

    from signoff.app import create_app
    from signoff.runtime import HandOver

    settings = _settings()
    link = socket.socket(fileno=link_fd)
    listener = _listen(host, port)
    app = create_app(settings, hand_over=HandOver(link))
    server = uvicorn.Server(uvicorn.Config(app, **_uvicorn_options(settings)))

    async def run() -> None:
        # The first process holds the other end: end of file on the link means it is gone.
        asyncio.get_running_loop().add_reader(link_fd, lambda: setattr(server, "should_exit", True))
        await server.serve(sockets=[listener])

    asyncio.run(run())


@app.command()
def worker() -> None:
    """Execute run steps from the PostgreSQL job queue (SIGNOFF_QUEUE=procrastinate).

    Start any number, on any machines, sharing SIGNOFF_DATABASE_URL and SIGNOFF_TOKEN_SECRET.
    """
    import asyncio

    from signoff.db import Database
    from signoff.metrics.worker_server import WorkerProbe
    from signoff.runtime import Runtime, metered_llm

    settings = _settings()
    if settings.queue != "procrastinate" or settings.is_sqlite:
        typer.echo(
            "error: `signoff worker` needs SIGNOFF_QUEUE=procrastinate and a PostgreSQL "
            "SIGNOFF_DATABASE_URL (with the inline queue, `signoff serve` runs the steps itself)",
            err=True,
        )
        raise typer.Exit(2)
    if settings.token_secret is None:
        typer.echo(
            "error: several processes sign email links: set the same SIGNOFF_TOKEN_SECRET "
            "for every `signoff serve` and `signoff worker`",
            err=True,
        )
        raise typer.Exit(2)

    probe: WorkerProbe | None = None
    if settings.worker_port:
        problem = _port_problem(settings.host, settings.worker_port, "SIGNOFF_WORKER_PORT")
        if problem is not None:
            typer.echo(f"error: {problem}", err=True)
            raise typer.Exit(2)
        probe = WorkerProbe(settings)

    async def run() -> None:
        db = Database.from_url(settings.effective_database_url)
        runtime = Runtime(settings, db, metered_llm(settings))
        beat = asyncio.create_task(probe.beat()) if probe is not None else None
        await runtime.start()
        try:
            await runtime.run_worker()
        finally:
            if beat is not None:
                beat.cancel()
            await runtime.stop()
            await db.dispose()

    typer.echo(f"Signoff worker: {settings.worker_concurrency} concurrent steps")
    if probe is not None:
        probe.start()
        typer.echo(f"Signoff worker: /healthz and /metrics on {settings.host}:{probe.port}")
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(run())
    finally:
        if probe is not None:
            probe.stop()


@app.command()
def doctor() -> None:
    """Check the configuration: database, queue, email links, SMTP, model, web search.

    One line per check (ok, missing, failed); exits 1 when a check failed.
    """
    import logging

    from signoff.doctor import run_checks

    settings = _settings()
    # The checks report every failure themselves; the libraries' own warnings would repeat them.
    logging.disable(logging.WARNING)
    checks = asyncio.run(run_checks(settings))
    for check in checks:
        typer.echo(check.line())
    if any(check.status == "failed" for check in checks):
        raise typer.Exit(1)


def main() -> None:
    try:
        app()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
