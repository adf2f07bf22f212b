"""The wheel, as a user installs it: built from the repository, installed into a fresh virtual
environment by the pip that Python's ``venv`` bundles (the oldest pip a Python 3.11 user has,
never upgraded) with that pip's own resolver, checked by it, every module imported, and
``signoff serve`` started from a directory outside the repository.

No network: pip resolves from a local wheelhouse of the distributions installed here (repacked
from their RECORD), every one the wheel could need, extras included; what pip installs from it is
what the wheel's metadata asks for. Without ``lxml-html-clean`` declared this test failed the way
the issue reported: justext asks for ``lxml[html_clean]``, lxml 6 spells that extra
``html-clean`` (normalised names, PEP 685), and pip 23.2.1 predates the normalisation, so it
warned that lxml "does not provide the extra", left lxml_html_clean out, ``pip check`` passed,
and importing trafilatura failed on ``lxml.html.clean``."""

from __future__ import annotations

import ensurepip
import subprocess
import sys
import time
import zipfile
from importlib.metadata import Distribution, distribution
from pathlib import Path

import httpx
import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support.processes import processes

ROOT = Path(__file__).parents[2]
UV = Path(sys.executable).with_name("uv")
IMPORT_EVERY_MODULE = """
import importlib, pkgutil, signoff
for module in pkgutil.walk_packages(signoff.__path__, "signoff."):
    if not module.name.startswith(("signoff.migrations.env", "signoff.migrations.versions")):
        importlib.import_module(module.name)
print(signoff.__file__)
"""


def _venv_pip_wheel() -> Path:
    """The pip wheel ``python -m venv`` installs: ensurepip's bundled one, or on Debian's Python
    the one in /usr/share/python-wheels (ensurepip's ``_get_packages`` knows which, on 3.11)."""
    packages = getattr(ensurepip, "_get_packages", None)
    if packages is not None:
        pip = packages()["pip"]
        if pip.wheel_path:
            return Path(pip.wheel_path)
        return Path(ensurepip.__file__).with_name("_bundled") / pip.wheel_name
    return next(Path(ensurepip.__file__).with_name("_bundled").glob("pip-*.whl"))


def _run(*command: str | Path, cwd: Path) -> str:
    done = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"{command}:\n{done.stdout}{done.stderr}"
    return done.stdout


def _requirements(wheel: Path) -> list[Requirement]:
    with zipfile.ZipFile(wheel) as archive:
        metadata = next(name for name in archive.namelist() if name.endswith(".dist-info/METADATA"))
        lines = archive.read(metadata).decode().splitlines()
    return [
        Requirement(line.split(":", 1)[1]) for line in lines if line.startswith("Requires-Dist:")
    ]


def _closure(requirements: list[Requirement]) -> list[Distribution]:
    """The distributions of this environment that ``requirements`` need, extras followed:
    what any correct resolver may pick from."""
    found: dict[str, Distribution] = {}
    pending = [
        (requirement, frozenset({""}))
        for requirement in requirements
        if requirement.marker is None or requirement.marker.evaluate({"extra": ""})
    ]
    seen: set[tuple[str, frozenset[str]]] = set()
    while pending:
        requirement, _ = pending.pop()
        name = canonicalize_name(requirement.name)
        extras = frozenset({"", *requirement.extras})
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        found[name] = installed = distribution(name)
        for line in installed.requires or []:
            needed = Requirement(line)
            if needed.marker is None or any(
                needed.marker.evaluate({**default_environment(), "extra": extra})
                for extra in extras
            ):
                pending.append((needed, extras))
    return list(found.values())


def _repack(installed: Distribution, wheelhouse: Path) -> None:
    """A wheel of an installed distribution, from the files its RECORD lists in site-packages
    (scripts are left out: installers write them from entry_points.txt)."""
    wheel_info = installed.read_text("WHEEL") or ""
    tags = [
        line.split(":", 1)[1].strip() for line in wheel_info.splitlines() if line.startswith("Tag:")
    ]
    python, abi, platform = (sorted({tag.split("-")[i] for tag in tags}) for i in range(3))
    name = canonicalize_name(installed.metadata["Name"]).replace("-", "_")
    filename = (
        f"{name}-{installed.version}-{'.'.join(python)}-{'.'.join(abi)}-{'.'.join(platform)}.whl"
    )
    with zipfile.ZipFile(wheelhouse / filename, "w", zipfile.ZIP_STORED) as archive:
        for file in installed.files or []:
            if file.parts[0] == ".." or "__pycache__" in file.parts:
                continue
            archive.write(file.locate(), file.as_posix())


@pytest.mark.processes
@pytest.mark.timeout(300)  # about 30 s on an idle 2-core machine; far more when it is shared
def test_the_wheel_installs_with_the_bundled_pip_and_serves_outside_the_repository(
    tmp_path: Path,
) -> None:
    started = time.monotonic()
    _run(
        UV,
        "build",
        "--offline",
        "--quiet",
        "--wheel",
        "--out-dir",
        tmp_path / "dist",
        ROOT,
        cwd=tmp_path,
    )
    wheel = next((tmp_path / "dist").glob("signoff-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        packaged = set(archive.namelist())
    data = [
        path.relative_to(ROOT / "src").as_posix()
        for path in (ROOT / "src" / "signoff").rglob("*")
        if path.is_file() and path.suffix not in (".py", ".pyc")
    ]
    assert len(data) > 40  # templates, static files, the migration template
    assert sorted(set(data) - packaged) == [], "package data left out of the wheel"

    # The venv module's own pip: the wheel ensurepip installs, put in place by uv (ensurepip
    # does the same, several times slower).
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path)
    python = venv / "bin" / "python"
    bundled = _venv_pip_wheel()
    _run(UV, "pip", "install", "--offline", "--quiet", "--python", python, bundled, cwd=tmp_path)
    pip_version = _run(python, "-m", "pip", "--version", cwd=tmp_path)
    assert pip_version.startswith(f"pip {ensurepip.version()} "), pip_version
    wheelhouse = tmp_path / "wheelhouse"
    wheelhouse.mkdir()
    for installed in _closure(_requirements(wheel)):
        _repack(installed, wheelhouse)
    # pip's own resolver picks the dependencies from the wheelhouse: only what the wheel declares.
    pip_install = (python, "-m", "pip", "install", "--quiet", "--no-index", "--no-compile")
    _run(*pip_install, "--find-links", wheelhouse, wheel, cwd=tmp_path)
    _run(python, "-m", "pip", "check", cwd=tmp_path)

    workdir = tmp_path / "service"
    workdir.mkdir()
    where = _run(python, "-c", IMPORT_EVERY_MODULE, cwd=workdir)
    assert where.startswith(str(venv)), where
    with processes(workdir, signoff=venv / "bin" / "signoff") as running:
        _, base = running.serve(data_dir=workdir)
        with httpx.Client(base_url=base, timeout=10) as client:
            # serve migrated the new SQLite database with the migrations the wheel carries
            assert client.get("/readyz").status_code == 200
            page = client.get("/dashboard", follow_redirects=True)
            assert page.status_code == 200
            assert 'href="/dashboard/static/app.css' in page.text, page.text[:500]
            assert client.get("/dashboard/static/app.css").status_code == 200
            assert client.get("/docs").status_code == 200
    print(f"wheel test: {time.monotonic() - started:.1f} s with {pip_version.split(' from')[0]}")
