"""The container image's install steps, run outside a container: scripts/image-install.sh is the
one RUN line of the Dockerfile's build stage (tests/deploy/test_compose.py checks that), so this
test installs what the image holds into a temporary directory, starts it with the image's
settings from a directory outside the repository, and probes it the way the image's HEALTHCHECK
does. Offline: uv takes everything from its cache (UV_OFFLINE=1)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.deploy.test_compose import _instruction
from tests.support.ports import free_port
from tests.support.processes import processes

ROOT = Path(__file__).parents[2]
UV = Path(sys.executable).with_name("uv")


def _image_settings() -> dict[str, str]:
    """The SIGNOFF_* values the Dockerfile's ENV sets, as setting names."""
    settings = {}
    for env in _instruction("ENV"):
        for assignment in shlex.split(env):
            name, _, value = assignment.partition("=")
            if name.startswith("SIGNOFF_"):
                settings[name.removeprefix("SIGNOFF_").lower()] = value
    return settings


def _healthcheck(prefix: Path, port: int) -> int:
    """The image's HEALTHCHECK command, run with the installed environment first on PATH."""
    command = _instruction("HEALTHCHECK")[-1].split("CMD", 1)[1].strip()
    env = {
        **os.environ,
        "PATH": f"{prefix / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "SIGNOFF_PORT": str(port),
    }
    probe = subprocess.run(
        ["sh", "-c", command], env=env, timeout=30, capture_output=True, check=False
    )
    return probe.returncode


@pytest.mark.processes
@pytest.mark.timeout(300)  # the install alone takes 12 s on an idle 2-core machine
def test_the_image_install_serves_outside_the_repository(tmp_path: Path) -> None:
    prefix, workdir = tmp_path / "opt-signoff", tmp_path / "data"
    workdir.mkdir()
    started = time.monotonic()
    install = subprocess.run(
        [str(ROOT / "scripts" / "image-install.sh"), str(ROOT), str(prefix)],
        cwd=tmp_path,
        env={**os.environ, "UV": str(UV), "UV_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    print(f"image install: {time.monotonic() - started:.1f} s")

    python = prefix / "bin" / "python"
    where = subprocess.run(
        [str(python), "-c", "import signoff; print(signoff.__file__)"],
        cwd=workdir,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert where.startswith(str(prefix)), where  # a copy, not the repository's src/
    installed = subprocess.run(
        [str(UV), "pip", "list", "--python", str(python), "--format", "freeze"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    names = {re.split("==", line)[0].lower() for line in installed.splitlines()}
    assert {"signoff", "uvicorn", "psycopg", "lxml-html-clean"} <= names
    assert not names & {"pytest", "mypy", "ruff", "playwright"}, "development tools installed"

    settings = _image_settings()
    assert settings["host"] == "0.0.0.0"  # noqa: S104 (the image listens on every interface)
    port = free_port()
    settings["data_dir"] = str(workdir)
    del settings["port"]
    with processes(workdir, signoff=prefix / "bin" / "signoff") as running:
        serve, base = running.serve(port=port, defaults=False, **settings)
        ready = httpx.get(f"{base}/readyz", timeout=10)
        assert ready.status_code == 200, ready.text
        assert _healthcheck(prefix, port) == 0
        serve.stop()
    assert _healthcheck(prefix, port) != 0
