"""compose.yaml and the Dockerfile, checked without a container engine: the compose file
against the Compose Specification's JSON schema, and both against the code they run (each
command exists, each setting is real and accepted, the start order holds).

compose-spec.json is the Compose Specification's schema, vendored unchanged from
https://github.com/compose-spec/compose-spec (schema/compose-spec.json, commit
170098ba07d9f53c383a41bfd4c5166b0a4529a6; Apache License 2.0), so the test needs no network.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

from signoff.cli import app as cli
from signoff.config import Settings

ROOT = Path(__file__).parents[2]
SCHEMA = Path(__file__).with_name("compose-spec.json")
# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}
INTERPOLATION = re.compile(r"\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")
# What a user puts in .env (README, Self-host).
DOT_ENV = {"POSTGRES_PASSWORD": "pg-password", "SIGNOFF_TOKEN_SECRET": "s" * 48}


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return loaded


def _interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's variable substitution, for the forms compose.yaml uses."""

    def substitute(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        value = env.get(name)
        if op in (":-", "-"):
            return value if value or (op == "-" and value is not None) else arg
        if op in (":?", "?") and not value:
            raise LookupError(f"{name}: {arg}")
        return value or ""

    return INTERPOLATION.sub(substitute, value)


def _signoff_services() -> dict[str, dict[str, Any]]:
    """The services that run the image built from this directory."""
    services = _compose()["services"]
    return {name: service for name, service in services.items() if service.get("build") == "."}


def test_compose_yaml_follows_the_compose_specification() -> None:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    errors = list(jsonschema.Draft7Validator(schema).iter_errors(_compose()))
    assert not errors, [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors]


def test_the_schema_check_catches_a_mistake() -> None:
    schema = json.loads(SCHEMA.read_text())
    broken = _compose()
    broken["services"]["web"]["depends_on"]["migrate"]["condition"] = "service_finished"
    assert list(jsonschema.Draft7Validator(schema).iter_errors(broken))


def test_the_services_run_postgresql_migrations_serve_workers_and_a_mail_catcher() -> None:
    services = _compose()["services"]
    signoff = _signoff_services()
    assert {name: service["command"] for name, service in signoff.items()} == {
        "migrate": ["db", "upgrade"],
        "web": ["serve"],
        "worker": ["worker"],
    }
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["mailpit"]["image"].startswith("axllent/mailpit:")
    # migrate waits for a healthy database, serve and worker for a finished migration.
    assert signoff["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert signoff["migrate"]["restart"] == "no"
    for name in ("web", "worker"):
        assert signoff[name]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }


def test_every_dependency_names_a_service_that_can_satisfy_its_condition() -> None:
    services = _compose()["services"]
    for name, service in services.items():
        for target, rule in service.get("depends_on", {}).items():
            assert target in services, f"{name} depends on an unknown service {target}"
            if rule["condition"] == "service_healthy":
                check = services[target].get("healthcheck", {})
                healthy = bool(check.get("test")) and not check.get("disable")
                assert healthy, f"{name} waits for {target} to be healthy: it has no healthcheck"
            if rule["condition"] == "service_completed_successfully":
                assert services[target].get("restart") == "no", f"{target} must run once"


@pytest.mark.parametrize("service", ["migrate", "web", "worker"])
def test_each_service_command_exists(service: str) -> None:
    command = _signoff_services()[service]["command"]
    result = CliRunner().invoke(cli, [*command, "--help"])
    assert result.exit_code == 0, result.output


def test_each_setting_compose_passes_is_a_real_setting_with_a_valid_value() -> None:
    fields = set(Settings.model_fields)
    for name, service in _signoff_services().items():
        environment = service["environment"]
        for variable in environment:
            assert variable.startswith("SIGNOFF_"), f"{name}: {variable} is not a setting"
            assert variable.removeprefix("SIGNOFF_").lower() in fields, variable
        values = {
            variable.removeprefix("SIGNOFF_").lower(): _interpolate(value, DOT_ENV)
            for variable, value in environment.items()
        }
        settings = Settings(_env_file=None, **values)  # type: ignore[call-arg]
        assert settings.queue == "procrastinate"
        assert settings.effective_database_url == (
            "postgresql://signoff:pg-password@postgres:5432/signoff"
        )
        assert settings.token_secret is not None
        assert settings.smtp_url == "smtp://mailpit:1025"


def test_compose_refuses_to_start_without_the_two_secrets() -> None:
    environment = _signoff_services()["web"]["environment"]
    for missing in DOT_ENV:
        env = {name: value for name, value in DOT_ENV.items() if name != missing}
        with pytest.raises(LookupError, match=missing):
            [_interpolate(value, env) for value in environment.values()]


def test_the_postgresql_password_is_the_one_signoff_uses() -> None:
    postgres = _compose()["services"]["postgres"]["environment"]
    url = _interpolate(_signoff_services()["web"]["environment"]["SIGNOFF_DATABASE_URL"], DOT_ENV)
    user, database = postgres["POSTGRES_USER"], postgres["POSTGRES_DB"]
    password = _interpolate(postgres["POSTGRES_PASSWORD"], DOT_ENV)
    assert url == f"postgresql://{user}:{password}@postgres:5432/{database}"


# -- the Dockerfile -------------------------------------------------------------------------


def _dockerfile() -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    text = (ROOT / "Dockerfile").read_text()
    text = re.sub(r"\\\n", " ", text)
    return [line.strip() for line in text.splitlines() if line.strip() and line[0] != "#"]


def _instruction(keyword: str) -> list[str]:
    return [line.split(None, 1)[1] for line in _dockerfile() if line.split()[0] == keyword]


def test_the_image_installs_with_the_tested_script_and_runs_signoff_as_a_user() -> None:
    runs = _instruction("RUN")
    assert any(run.startswith("scripts/image-install.sh ") for run in runs), runs
    assert json.loads(_instruction("ENTRYPOINT")[-1]) == ["signoff"]
    command = json.loads(_instruction("CMD")[-1])
    assert CliRunner().invoke(cli, [*command, "--help"]).exit_code == 0
    assert _instruction("USER")[-1] not in ("root", "0")
    assert _instruction("HEALTHCHECK")[-1].split("CMD", 1)[1].strip()


def test_every_setting_the_image_sets_is_real() -> None:
    fields = set(Settings.model_fields)
    for env in _instruction("ENV"):
        for assignment in shlex.split(env):
            name = assignment.split("=", 1)[0]
            if name.startswith("SIGNOFF_"):
                assert name.removeprefix("SIGNOFF_").lower() in fields, name


def test_the_build_context_holds_what_the_dockerfile_copies() -> None:
    kept = {
        line.removeprefix("!").rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    for copy in _instruction("COPY"):
        if copy.startswith("--from="):
            continue
        *sources, _ = copy.split()
        for source in sources:
            assert source.rstrip("/") in kept, f"{source} is excluded by .dockerignore"
            assert (ROOT / source).exists(), source
