"""Fixtures for the tools' tests: a local web, a listener an SSRF must not reach, and a log of
every TCP connection the process attempts.

``connect_attempts`` uses a Python audit hook (``socket.connect`` events): it records every
connection attempt during the test, and refuses (ConnectionRefusedError, before any packet) any
that is not to a loopback address. So a test can show that a refused URL never led to a
connection attempt, and that an allowed public address really was the one connected to, while
the test still never talks to the outside world.
"""

from __future__ import annotations

import ipaddress
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from signoff.config import Settings
from signoff.kit.safe_http import allow_loopback_for_tests
from tests.tools.fakeweb import FakeWeb, Listener

_attempts: list[tuple[str, int]] | None = None
_hook_installed = False


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event != "socket.connect" or _attempts is None:
        return
    sock, address = args
    if sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    host, port = str(address[0]), int(address[1])
    _attempts.append((host, port))
    if not ipaddress.ip_address(host.split("%", 1)[0]).is_loopback:
        raise ConnectionRefusedError(f"tests never connect outside: {host}:{port}")


@pytest.fixture
def connect_attempts() -> Iterator[list[tuple[str, int]]]:
    """Every (address, port) this process tries to connect to during the test."""
    global _attempts, _hook_installed
    if not _hook_installed:
        sys.addaudithook(_audit)  # audit hooks cannot be removed; it idles when _attempts is None
        _hook_installed = True
    _attempts = []
    try:
        yield _attempts
    finally:
        _attempts = None


@pytest.fixture
def web() -> Iterator[FakeWeb]:
    """A scripted HTTP server on 127.0.0.1 that safe_get may reach (its port only)."""
    server = FakeWeb().start()
    try:
        with allow_loopback_for_tests(server.port):
            yield server
    finally:
        server.stop()


@pytest.fixture
def listener() -> Iterator[Listener]:
    """A TCP listener on 127.0.0.1 that nothing may reach; it counts connections."""
    target = Listener()
    try:
        yield target
    finally:
        target.stop()


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """Settings for a tool call, from keyword overrides only (no environment, no .env)."""

    def make(**overrides: Any) -> Settings:
        return Settings(_env_file=None, data_dir=tmp_path / "data", **overrides)

    return make


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], tuple[Path, Path]]:
    """A factory of self-signed certificates for a host name: (cert.pem, key.pem)."""
    directory = tmp_path_factory.mktemp("tls")

    def make(host: str) -> tuple[Path, Path]:
        cert, key = directory / f"{host}.crt", directory / f"{host}.key"
        if not cert.exists():
            subprocess.run(
                [
                    "openssl", "req", "-x509", "-newkey", "ec",
                    "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", str(key), "-out", str(cert), "-days", "2",
                    "-subj", f"/CN={host}", "-addext", f"subjectAltName=DNS:{host}",
                ],
                check=True,
                capture_output=True,
            )  # fmt: skip
        return cert, key

    return make
