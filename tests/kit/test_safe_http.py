"""The SSRF-safe client: what it refuses, that refused URLs never reach a connection, that it
connects to the address it checked, and that size caps hold against big bodies and gzip bombs."""

from __future__ import annotations

import ipaddress
import ssl
import time
import tracemalloc
import zlib
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import pytest

from signoff.kit.safe_http import (
    BlockedUrl,
    FetchError,
    SafeResponse,
    UnwantedContent,
    allow_loopback_for_tests,
    safe_get,
)
from tests.support.fakeweb import FakeWeb, Listener, Reply, gzip_of_zeros, repeated

MiB = 1 << 20


class StubResolver:
    """Answers every name with fixed addresses (one list per call, the last repeats)."""

    def __init__(self, *answers: Sequence[str]) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        self.calls.append((host, port))
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


async def test_fetches_from_the_allowed_test_server(web: FakeWeb) -> None:
    web.route("/page", Reply(body=b"<p>Hello</p>"))

    response = await safe_get(web.url("/page?x=1"), timeout=5, max_bytes=MiB)

    assert (response.status, response.body, response.truncated) == (200, b"<p>Hello</p>", False)
    assert (response.content_type, response.charset) == ("text/html", "utf-8")
    assert response.url == web.url("/page?x=1")
    seen = web.requests[0]
    assert seen.query == {"x": ["1"]}
    assert seen.headers["host"] == f"127.0.0.1:{web.port}"
    assert seen.headers["accept-encoding"] == "gzip, deflate"


LOOPBACK_SPELLINGS = [
    "http://127.0.0.1:{port}/",
    "http://localhost:{port}/",
    "http://LocalHost.:{port}/",
    "http://api.localhost:{port}/",
    "http://[::1]:{port}/",
    "http://2130706433:{port}/",
    "http://0x7f000001:{port}/",
    "http://127.1:{port}/",
    "http://0177.0.0.1:{port}/",
    "http://0x7f.0.0.1:{port}/",
    "http://127.0.0.1.:{port}/",
    "http://[::ffff:127.0.0.1]:{port}/",
    "http://[::ffff:7f00:1]:{port}/",
    "http://[64:ff9b::7f00:1]:{port}/",
    "http://[2002:7f00:1::]:{port}/",
    "http://[::127.0.0.1]:{port}/",
    "http://0.0.0.0:{port}/",
    "http://0:{port}/",
    "http://news.example.com@127.0.0.1:{port}/",
    "http://127.0.0.1:{port}@news.example.com/",
    "file:///etc/passwd",
    "gopher://127.0.0.1:{port}/_GET%20/",
    "ftp://127.0.0.1:{port}/",
    "//127.0.0.1:{port}/",
    "javascript:alert(1)",
    "http://１２７.０.０.１:{port}/",
    "http://127.0.0.1:99999/",
    "http://1.2.3.4.5:{port}/",
    "",
]


@pytest.mark.parametrize("template", LOOPBACK_SPELLINGS)
async def test_loopback_in_any_spelling_never_reaches_the_listener(
    template: str, listener: Listener, connect_attempts: list[tuple[str, int]]
) -> None:
    resolver = StubResolver(["127.0.0.1"])

    with pytest.raises(BlockedUrl) as refused:
        await safe_get(
            template.format(port=listener.port), timeout=2, max_bytes=MiB, resolver=resolver
        )

    assert refused.value.message
    assert connect_attempts == []
    assert listener.connections == 0


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://2130706433:{port}/", "127.0.0.1"),
        ("http://0x7f000001:{port}/", "127.0.0.1"),
        ("http://127.1:{port}/", "127.0.0.1"),
        ("http://0177.1:{port}/", "127.0.0.1"),
        ("http://0x7f.0.0.1:{port}/", "127.0.0.1"),
        ("http://[::ffff:127.0.0.1]:{port}/", "127.0.0.1"),
    ],
)
async def test_numeric_forms_are_recognised_as_the_address_they_are(
    url: str, shown: str, listener: Listener
) -> None:
    with pytest.raises(BlockedUrl, match="loopback") as refused:
        await safe_get(url.format(port=listener.port), timeout=2, max_bytes=MiB)
    assert shown in refused.value.message


async def test_a_public_looking_name_that_resolves_to_loopback_is_refused(
    listener: Listener, connect_attempts: list[tuple[str, int]]
) -> None:
    resolver = StubResolver(["127.0.0.1"])

    with pytest.raises(BlockedUrl, match=r"news\.example\.com resolves to 127\.0\.0\.1"):
        await safe_get(
            f"http://news.example.com:{listener.port}/", timeout=2, max_bytes=MiB, resolver=resolver
        )

    assert resolver.calls == [("news.example.com", listener.port)]
    assert connect_attempts == []
    assert listener.connections == 0


@pytest.mark.parametrize(
    "answer",
    [
        ["10.1.2.3"],
        ["93.184.215.14", "192.168.0.10"],  # any bad address refuses the whole name
        ["169.254.169.254"],
        ["100.100.100.200"],
        ["::1"],
        ["fe80::1%eth0"],
        ["fd12:3456::1"],
        ["::ffff:10.0.0.1"],
        ["ff02::1"],
        ["224.0.0.251"],
    ],
)
async def test_every_resolved_address_must_be_public(
    answer: list[str], connect_attempts: list[tuple[str, int]]
) -> None:
    with pytest.raises(BlockedUrl, match="resolves to"):
        await safe_get(
            "https://news.example.com/", timeout=2, max_bytes=MiB, resolver=StubResolver(answer)
        )
    assert connect_attempts == []


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://10.0.0.1/",
        "http://[fd00:ec2::254]/",
        "http://100.64.0.1/",
        "http://172.16.5.4/",
        "http://192.168.1.1/",
        "http://[fe80::1]/",
        "http://[fc00::1]/",
        "http://224.0.0.1/",
        "http://240.0.0.1/",
        "http://255.255.255.255/",
        "http://198.18.0.1/",
        "http://[::ffff:169.254.169.254]/",
        "http://[2002:a9fe:a9fe::]/",
    ],
)
async def test_metadata_and_private_addresses_are_refused_before_any_connection(
    url: str, connect_attempts: list[tuple[str, int]]
) -> None:
    resolver = StubResolver(["93.184.215.14"])

    with pytest.raises(BlockedUrl, match="only public internet addresses"):
        await safe_get(url, timeout=2, max_bytes=MiB, resolver=resolver)

    assert resolver.calls == []
    assert connect_attempts == []


async def test_resolves_once_and_connects_to_the_checked_address(
    connect_attempts: list[tuple[str, int]],
) -> None:
    # DNS rebinding: a first answer that passes the check, then loopback for anyone who asks again.
    resolver = StubResolver(["93.184.215.14"], ["127.0.0.1"])

    with pytest.raises(FetchError, match="could not connect"):
        await safe_get("http://news.example.com/", timeout=2, max_bytes=MiB, resolver=resolver)

    assert len(resolver.calls) == 1
    assert connect_attempts == [("93.184.215.14", 80)]


async def test_a_redirect_to_loopback_is_refused(
    web: FakeWeb, listener: Listener, connect_attempts: list[tuple[str, int]]
) -> None:
    web.route("/go", Reply(status=302, headers={"Location": f"http://127.0.0.1:{listener.port}/"}))
    web.route("/go2", Reply(status=301, headers={"Location": f"http://localhost:{listener.port}/"}))
    web.route("/go3", Reply(status=307, headers={"Location": "file:///etc/passwd"}))

    for path in ("/go", "/go2", "/go3"):
        with pytest.raises(BlockedUrl):
            await safe_get(web.url(path), timeout=2, max_bytes=MiB)

    assert [seen.path for seen in web.requests] == ["/go", "/go2", "/go3"]
    assert all(port == web.port for _, port in connect_attempts)
    assert listener.connections == 0


async def test_a_redirect_through_a_name_is_checked_again(web: FakeWeb, listener: Listener) -> None:
    web.route("/go", Reply(status=303, headers={"Location": "http://intranet.example/admin"}))
    resolver = StubResolver(["10.20.30.40"])

    with pytest.raises(BlockedUrl, match=r"intranet\.example resolves to 10\.20\.30\.40"):
        await safe_get(web.url("/go"), timeout=2, max_bytes=MiB, resolver=resolver)


async def test_follows_up_to_five_redirects_and_no_more(web: FakeWeb) -> None:
    web.route("/a", Reply(status=301, headers={"Location": "/b"}))
    web.route("/b", Reply(status=308, headers={"Location": web.url("/c")}))
    web.route("/c", Reply(body=b"arrived"))
    web.route("/loop", Reply(status=302, headers={"Location": "/loop"}))

    response = await safe_get(web.url("/a"), timeout=2, max_bytes=MiB)
    assert (response.body, response.url) == (b"arrived", web.url("/c"))

    with pytest.raises(FetchError, match="redirected more than 5 times"):
        await safe_get(web.url("/loop"), timeout=2, max_bytes=MiB)
    assert [seen.path for seen in web.requests].count("/loop") == 6


async def _peak_memory_of(
    call: Callable[[], Awaitable[SafeResponse]],
) -> tuple[SafeResponse, int]:
    """The call's result and the peak of Python allocations while it ran (after a warm-up
    call, since the first fetch of a process loads the CA bundle and lazy imports)."""
    await call()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        result = await call()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


async def test_a_50_mb_response_is_cut_at_the_cap_in_bounded_memory(web: FakeWeb) -> None:
    chunk = b"a" * (64 * 1024)
    web.route(
        "/huge",
        Reply(body=repeated(chunk, 800), headers={"Content-Length": str(800 * len(chunk))}),
    )
    cap = MiB

    response, peak = await _peak_memory_of(
        lambda: safe_get(web.url("/huge"), timeout=5, max_bytes=cap)
    )

    assert response.truncated
    assert len(response.body) == cap
    assert peak < 3 * cap


async def test_a_gzip_bomb_is_cut_at_the_cap_in_bounded_memory(web: FakeWeb) -> None:
    bomb = gzip_of_zeros(1024)  # 1 GiB of zeros in about 1 MB
    web.route("/bomb", Reply(body=bomb, headers={"Content-Encoding": "gzip"}))
    cap = MiB

    started = time.monotonic()
    response, peak = await _peak_memory_of(
        lambda: safe_get(web.url("/bomb"), timeout=5, max_bytes=cap)
    )

    assert response.truncated
    assert response.body == bytes(cap)
    assert peak < 3 * cap
    assert time.monotonic() - started < 2


def test_the_gzip_bomb_fixture_is_a_valid_gzip_stream() -> None:
    assert zlib.decompress(b"".join(gzip_of_zeros(8)()), 31) == bytes(8 * MiB)


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [
        ("gzip", lambda data: zlib.compress(data, wbits=31)),
        ("deflate", lambda data: zlib.compress(data)),
        ("deflate", lambda data: zlib.compress(data, wbits=-15)),  # raw deflate, seen in the wild
    ],
)
async def test_compressed_bodies_are_decoded(
    web: FakeWeb, encoding: str, compress: Callable[[bytes], bytes]
) -> None:
    text = b"<p>" + b"compressible text " * 500 + b"</p>"
    web.route("/z", Reply(body=compress(text), headers={"Content-Encoding": encoding}))

    response = await safe_get(web.url("/z"), timeout=2, max_bytes=MiB)

    assert (response.body, response.truncated) == (text, False)


async def test_an_unknown_encoding_is_an_error(web: FakeWeb) -> None:
    web.route("/br", Reply(body=b"\x0b\x02\x80", headers={"Content-Encoding": "br"}))
    with pytest.raises(FetchError, match="compressed with br"):
        await safe_get(web.url("/br"), timeout=2, max_bytes=MiB)


async def test_the_deadline_covers_the_whole_fetch(web: FakeWeb) -> None:
    web.route("/slow", Reply(body=b"late", delay=10))  # cut short when the server stops
    started = time.monotonic()

    with pytest.raises(FetchError, match=r"did not answer within 0\.2 seconds"):
        await safe_get(web.url("/slow"), timeout=0.2, max_bytes=MiB)

    # Far from both the deadline and the answer, however loaded the machine is.
    assert time.monotonic() - started < 5


async def test_unwanted_content_is_refused_before_the_body_is_read(web: FakeWeb) -> None:
    chunk = b"%PDF" + b"x" * (64 * 1024)
    web.route("/file.pdf", Reply(body=repeated(chunk, 10_000), content_type="application/pdf"))

    with pytest.raises(UnwantedContent) as refused:
        await safe_get(
            web.url("/file.pdf"),
            timeout=2,
            max_bytes=MiB,
            accept_content=lambda media_type: media_type.startswith("text/"),
        )

    assert refused.value.content_type == "application/pdf"


def _tls_server(certificate: Callable[[str], tuple[Path, Path]], host: str) -> FakeWeb:
    cert, key = certificate(host)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return FakeWeb(ssl_context=context).start()


async def test_https_verifies_the_certificate_against_the_name_not_the_address(
    certificate: Callable[[str], tuple[Path, Path]],
) -> None:
    server = _tls_server(certificate, "news.example.test")
    server.route("/story", Reply(body=b"<p>secure</p>"))
    trust = ssl.create_default_context(cafile=str(certificate("news.example.test")[0]))
    resolver = StubResolver(["127.0.0.1"])
    try:
        with allow_loopback_for_tests(server.port):
            response = await safe_get(
                f"https://news.example.test:{server.port}/story",
                timeout=5,
                max_bytes=MiB,
                resolver=resolver,
                ssl_context=trust,
            )
    finally:
        server.stop()

    assert response.body == b"<p>secure</p>"
    assert server.sni_names == ["news.example.test"]
    assert server.requests[0].headers["host"] == f"news.example.test:{server.port}"


async def test_https_refuses_a_certificate_for_another_name(
    certificate: Callable[[str], tuple[Path, Path]],
) -> None:
    server = _tls_server(certificate, "other.example.test")
    trust = ssl.create_default_context(cafile=str(certificate("other.example.test")[0]))
    try:
        with (
            allow_loopback_for_tests(server.port),
            pytest.raises(FetchError, match="invalid TLS certificate"),
        ):
            await safe_get(
                f"https://news.example.test:{server.port}/",
                timeout=5,
                max_bytes=MiB,
                resolver=StubResolver(["127.0.0.1"]),
                ssl_context=trust,
            )
    finally:
        server.stop()

    assert server.requests == []


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.215.14", True),
        ("2606:4700::1111", True),
        ("::ffff:93.184.215.14", True),  # IPv4-mapped public address
        ("64:ff9b::5db8:d70e", True),  # DNS64/NAT64 spelling of 93.184.215.14
        ("2002:5db8:d70e::1", True),  # 6to4 of a public address
        ("64:ff9b::a9fe:a9fe", False),  # NAT64 of the metadata address
        ("2002:a00:1::1", False),  # 6to4 of 10.0.0.1
        ("::ffff:192.168.0.1", False),
        ("::7f00:1", False),  # IPv4-compatible 127.0.0.1
        ("64:ff9b:1::5db8:d70e", False),  # local-use NAT64 prefix
        ("2001:db8::1", False),  # documentation
        ("fec0::1", False),  # site-local
        ("192.0.2.1", False),  # documentation
        ("0.0.0.0", False),  # noqa: S104 - an address checked, not bound
    ],
)
def test_which_addresses_count_as_public(address: str, public: bool) -> None:
    from signoff.kit.safe_http import _why_not_public

    assert (_why_not_public(ipaddress.ip_address(address)) is None) is public


def test_the_loopback_hook_is_scoped_to_its_block(listener: Listener) -> None:
    from signoff.kit import safe_http

    with allow_loopback_for_tests(listener.port):
        assert listener.port in safe_http._test_loopback_ports
    assert listener.port not in safe_http._test_loopback_ports
