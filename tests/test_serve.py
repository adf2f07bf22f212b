"""`signoff serve` as a new user starts it: a real process on a real port, offline docs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.processes import processes

pytestmark = pytest.mark.processes


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir: Path = tmp_path_factory.mktemp("serve")
    with processes(workdir) as started:
        # Nothing configured but the port: the process's health endpoint is polled (for as long
        # as a busy machine needs; an exit fails at once, with the output).
        _, base = started.serve(defaults=False)
        # Zero configuration: SQLite and the generated secret live in ./.signoff/.
        assert (workdir / ".signoff" / "signoff.db").exists()
        assert (workdir / ".signoff" / "token_secret").exists()
        yield base


def test_openapi_and_offline_docs(server: str) -> None:
    openapi = httpx.get(f"{server}/openapi.json").json()
    assert openapi["info"]["title"] == "Signoff"
    assert "/api/auth/signup" in openapi["paths"]
    for page, asset_names in [
        ("/docs", ("swagger-ui-bundle.js", "swagger-ui.css", "favicon.png")),
        ("/redoc", ("redoc.standalone.js",)),
    ]:
        docs = httpx.get(f"{server}{page}")
        assert docs.status_code == 200
        # Every asset the page loads is served by Signoff itself, none from another origin.
        assert "https://" not in docs.text
        assert "default-src 'self'" in docs.headers["content-security-policy"]
        for asset in asset_names:
            response = httpx.get(f"{server}/static/apidocs/vendor/{asset}")
            assert response.status_code == 200, asset
            assert len(response.content) > 500
            assert f"/static/apidocs/vendor/{asset}" in docs.text
    init = httpx.get(f"{server}/static/apidocs/swagger-init.js")
    assert "validatorUrl: null" in init.text


def test_new_user_flow_over_a_real_socket(server: str) -> None:
    signup = httpx.post(
        f"{server}/api/auth/signup",
        json={"email": "first@example.com", "password": "long enough"},
    )
    assert signup.status_code == 201
    token = signup.json()["token"]
    me = httpx.get(f"{server}/api/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200
    assert me.json()["user"]["email"] == "first@example.com"


def test_a_forwarded_for_header_is_not_believed_without_trusted_proxies(server: str) -> None:
    # A client on loopback (a tunnel, a proxy that passes the header on) cannot pose as many
    # clients to dodge the sign-in throttle, nor as its victim's address to lock it out.
    account = {"email": "forwarded@example.com", "password": "long enough"}
    assert httpx.post(f"{server}/api/auth/signup", json=account).status_code == 201
    wrong = {**account, "password": "not the password"}
    answers = [
        httpx.post(
            f"{server}/api/auth/login",
            json=wrong,
            headers={"X-Forwarded-For": f"198.51.100.{attempt}"},
        ).status_code
        for attempt in range(1, 8)
    ]
    assert 429 in answers, answers  # one client, 127.0.0.1, whatever the header says
