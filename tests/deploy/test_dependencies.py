"""The wheel declares what the code imports: every third-party module imported anywhere in
src/signoff comes from a distribution listed in pyproject.toml's dependencies, so an install
by any resolver has it (not only when another dependency happens to pull it in)."""

from __future__ import annotations

import ast
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).parents[2]

# Imported by a dependency under a name whose distribution it does not declare for every pip:
# trafilatura uses justext, which imports lxml.html.clean; lxml moved that module to the
# lxml_html_clean distribution (lxml 5.2), justext asks for it as lxml's `html_clean` extra, and
# lxml 6 spells that extra `html-clean` (PEP 685), which pip before 23.3 (Python 3.11's bundled
# 23.2.1 among them) does not match, so it leaves lxml_html_clean out (tests/deploy/test_wheel.py).
NEEDED_INDIRECTLY = {"lxml-html-clean": "trafilatura → justext imports lxml.html.clean"}


def _declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {canonicalize_name(Requirement(line).name) for line in project["dependencies"]}


def _imported_top_level_modules() -> set[str]:
    modules = set()
    for path in (ROOT / "src" / "signoff").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                modules |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                modules.add(node.module.split(".")[0])
    return modules - set(sys.stdlib_module_names) - {"signoff", "__future__"}


def test_every_imported_distribution_is_declared() -> None:
    owners = packages_distributions()
    undeclared = {}
    for module in sorted(_imported_top_level_modules()):
        assert module in owners, f"{module} is imported but no installed distribution has it"
        distributions = {canonicalize_name(name) for name in owners[module]}
        if not distributions & _declared():
            undeclared[module] = sorted(distributions)
    assert undeclared == {}, "imported in src/signoff but not in pyproject.toml dependencies"


def test_what_dependencies_import_without_declaring_it_is_declared() -> None:
    assert set(NEEDED_INDIRECTLY) <= _declared()


def _pins(lock: str) -> dict[str, str]:
    pins = {}
    for line in (ROOT / lock).read_text().splitlines():
        if "==" in line and not line.startswith((" ", "#")):
            name, version = line.split("==", 1)
            pins[canonicalize_name(name)] = version.strip()
    return pins


def test_the_runtime_lock_is_the_locks_runtime_part() -> None:
    """requirements-runtime.lock (the image's, `make lock`) pins the declared dependencies at
    the versions of requirements.lock, without the development tools."""
    runtime, full = _pins("requirements-runtime.lock"), _pins("requirements.lock")
    assert {name: version for name, version in runtime.items() if full.get(name) != version} == {}
    assert _declared() <= set(runtime)
    assert not set(runtime) & {"pytest", "mypy", "ruff", "playwright", "schemathesis"}
