"""The one HTTP client for URLs that a model or a web page chose (SSRF-safe).

:func:`safe_get` only talks to public internet addresses, checks every redirect like the first
request and caps time and size; docs/security.md explains the threat. Configured provider
endpoints (a search API, a SearXNG on the local network) are trusted settings and use plain httpx.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import ipaddress
import re
import socket
import ssl
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache

import httpx

MAX_REDIRECTS = 5
"""Redirects are followed by hand, at most this many, each hop checked like the first."""
USER_AGENT = "Mozilla/5.0 (compatible; Signoff/0.1; +https://github.com/signoff)"

Resolver = Callable[[str, int], Awaitable[Sequence[str]]]
"""``async (host, port) -> addresses``: how a name becomes IP addresses (tests pass a stub)."""

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_HOSTNAME = re.compile(r"^[a-z0-9_-]+(\.[a-z0-9_-]+)*$")
_MEDIA_TYPE = re.compile(r"^[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+$")
_CHARSET = re.compile(r"""charset\s*=\s*["']?([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
_READ_CHUNK = 64 * 1024

_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_METADATA = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)
_TEST_LOOPBACK = ipaddress.IPv4Address("127.0.0.1")
_test_loopback_ports: frozenset[int] = frozenset()


class FetchError(Exception):
    """A fetch that failed; ``message`` is a sentence a person (or the agent) can act on."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BlockedUrl(FetchError):
    """Refused by the policy before any connection was made to the address in question."""


class UnwantedContent(FetchError):
    """The server answered with a content type the caller said it cannot use."""

    def __init__(self, message: str, *, content_type: str) -> None:
        super().__init__(message)
        self.content_type = content_type


@dataclass(frozen=True)
class SafeResponse:
    """What :func:`safe_get` read: the last hop's status and headers, and the decoded body."""

    url: str
    """The final URL after redirects, with its host name (not the address we connected to)."""
    status: int
    headers: httpx.Headers
    body: bytes
    """Decompressed, at most ``max_bytes`` long."""
    content_type: str
    """The media type, lower case without parameters (``text/html``); empty when none was sent."""
    charset: str | None
    """The charset the server declared, when Python knows it."""
    truncated: bool
    """True when the body was longer than ``max_bytes`` (raw or decompressed) and was cut."""


@contextlib.contextmanager
def allow_loopback_for_tests(*ports: int) -> Iterator[None]:
    """Let :func:`safe_get` reach ``127.0.0.1`` on these ports, for the block's duration.

    For tests that serve pages from a local server. Only 127.0.0.1 and only the listed ports:
    every other rule still applies (so a test can prove a redirect to another local port is
    refused). Deliberately a code hook: no setting, environment variable or input turns it on.
    """
    global _test_loopback_ports
    previous = _test_loopback_ports
    _test_loopback_ports = previous | frozenset(ports)
    try:
        yield
    finally:
        _test_loopback_ports = previous


async def safe_get(
    url: str,
    *,
    timeout: float,  # noqa: ASYNC109 - one deadline for DNS, hops and body; also per-read
    max_bytes: int,
    resolver: Resolver | None = None,
    accept_content: Callable[[str], bool] | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> SafeResponse:
    """GET ``url`` from the public internet only. Raises :class:`BlockedUrl` or :class:`FetchError`.

    The rules: http and https only, no user name or password, a strictly parsed host
    (:func:`_parse`); the name resolved once and refused if *any* of its addresses is not public
    (:func:`_checked_addresses`); the connection made to a checked address, never to the name
    again (:func:`_open`); every redirect checked like the first request (:func:`_fetch`); the
    body cut at ``max_bytes`` before and after decompression (:func:`_read`).

    ``timeout`` is one deadline for the whole call (resolution, every hop, the body).
    ``accept_content`` is asked about the final response's media type (``""`` when the server
    sent none) before its body is read; False raises :class:`UnwantedContent` without
    downloading it. ``ssl_context`` replaces the default trust store (certifi's, as httpx uses).
    """
    try:
        async with asyncio.timeout(timeout):
            return await _fetch(
                url,
                read_timeout=timeout,
                max_bytes=max_bytes,
                resolver=resolver or _system_resolver,
                accept_content=accept_content,
                ssl_context=ssl_context or shared_ssl_context(),
            )
    except TimeoutError:
        raise FetchError(f"{_shown(url)} did not answer within {timeout:g} seconds") from None


@dataclass(frozen=True)
class _Target:
    url: httpx.URL
    scheme: str
    host: str
    """ASCII host: a name (IDNA-encoded, no trailing dot) or an IP address without brackets."""
    port: int
    literal: IPAddress | None
    """The address when the URL names one directly."""

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


async def _fetch(
    url: str,
    *,
    read_timeout: float,
    max_bytes: int,
    resolver: Resolver,
    accept_content: Callable[[str], bool] | None,
    ssl_context: ssl.SSLContext,
) -> SafeResponse:
    """Follow redirects by hand, at most :data:`MAX_REDIRECTS`, each hop checked like the first."""
    transport = httpx.AsyncHTTPTransport(
        verify=ssl_context,
        retries=0,
        # No keep-alive: a connection that TLS-verified one name must never carry a request
        # for another name that happens to resolve to the same address.
        limits=httpx.Limits(max_keepalive_connections=0),
    )
    async with httpx.AsyncClient(
        transport=transport,
        # A short connect timeout leaves time to try the next address when one is unreachable
        # (an IPv6 address without an IPv6 route, say).
        timeout=httpx.Timeout(read_timeout, connect=min(read_timeout, 5.0)),
        follow_redirects=False,
        trust_env=False,  # a proxy would resolve the name again, behind our back
    ) as client:
        target = _parse(url)
        for hop in range(MAX_REDIRECTS + 1):
            addresses = await _checked_addresses(target, resolver)
            client.cookies.clear()
            async with _open(client, target, addresses) as response:
                location = response.headers.get("location")
                if response.status_code in _REDIRECT_STATUSES and location:
                    if hop == MAX_REDIRECTS:
                        raise FetchError(
                            f"{_shown(url)} redirected more than {MAX_REDIRECTS} times"
                        )
                    target = _parse(_redirect_url(target, location))
                    continue
                return await _read(response, target, max_bytes, accept_content)
    raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover


def _parse(url: str) -> _Target:
    """The URL's parts, or :class:`BlockedUrl` for anything but a plain http(s) URL.

    Refused: other schemes, userinfo (``http://bank.com@10.0.0.1/``), a bad port, an IPv6 zone,
    a host name with characters outside ``[a-z0-9_-]``. A host that is a number in any IPv4
    spelling becomes that address (:func:`_ipv4_number_form`), so it is checked as what it is.
    """
    shown = _shown(url)
    try:
        parsed = httpx.URL(url.strip())
    except (httpx.InvalidURL, TypeError, ValueError):
        raise BlockedUrl(f"{shown} is not a valid web address") from None
    if parsed.scheme not in ("http", "https"):
        scheme = parsed.scheme or "no scheme"
        raise BlockedUrl(f"{shown} uses {scheme}; only http and https URLs can be fetched")
    if parsed.userinfo:
        raise BlockedUrl(f"{shown} contains a user name or password before the host; refused")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    if not 0 < port < 65536:
        raise BlockedUrl(f"{shown} has an invalid port")
    host = parsed.raw_host.decode("ascii", errors="replace").lower().removesuffix(".")
    if ":" in host:  # httpx only lets an IPv6 literal in [brackets] through with a colon
        if "%" in host:
            raise BlockedUrl(f"{shown} names an IPv6 zone; refused")
        try:
            literal: IPAddress | None = ipaddress.IPv6Address(host)
        except ValueError:
            raise BlockedUrl(f"{shown} has an invalid IPv6 address") from None
    elif not host or not _HOSTNAME.match(host):
        raise BlockedUrl(f"{shown} has an invalid host name")
    else:
        try:
            literal = _ipv4_number_form(host)
        except ValueError:
            raise BlockedUrl(f"{shown} has an invalid host name") from None
    if literal is not None:
        host = str(literal)
    return _Target(
        url=parsed.copy_with(fragment=None),
        scheme=parsed.scheme,
        host=host,
        port=port,
        literal=literal,
    )


def _ipv4_number_form(host: str) -> ipaddress.IPv4Address | None:
    """The IPv4 address a host means under the WHATWG URL rules, None for a host name.

    ``127.1``, ``2130706433``, ``0x7f.1`` and ``0177.1`` are all 127.0.0.1 to browsers and to
    ``inet_aton``; a host whose last label is a number must be such an address (else
    ValueError), as WHATWG says. (httpx's own parser already rejects ``0177.0.0.1``.)
    """
    parts = host.split(".")
    if not _ipv4_part_is_number(parts[-1]):
        return None
    if len(parts) > 4:
        raise ValueError("too many parts for an IPv4 address")
    numbers = [_ipv4_part(part) for part in parts]
    if any(number > 255 for number in numbers[:-1]) or numbers[-1] >= 256 ** (5 - len(numbers)):
        raise ValueError("IPv4 part out of range")
    value = numbers[-1]
    for index, number in enumerate(numbers[:-1]):
        value += number * 256 ** (3 - index)
    return ipaddress.IPv4Address(value)


def _ipv4_part_is_number(part: str) -> bool:
    try:
        _ipv4_part(part)
    except ValueError:
        return False
    return True


def _ipv4_part(part: str) -> int:
    if not part:
        raise ValueError("empty IPv4 part")
    if part[:2] in ("0x", "0X"):
        digits, base, allowed = part[2:], 16, "0123456789abcdefABCDEF"
    elif len(part) > 1 and part[0] == "0":
        digits, base, allowed = part[1:], 8, "01234567"
    else:
        digits, base, allowed = part, 10, "0123456789"
    if any(char not in allowed for char in digits):
        raise ValueError("not a number")
    return int(digits or "0", base)


async def _checked_addresses(target: _Target, resolver: Resolver) -> list[IPAddress]:
    """The addresses to connect to, after refusing the target if any of them is not public.

    The name is resolved once, here; ``localhost`` and ``*.localhost`` are refused unresolved.
    A name with one private address among public ones is refused as a whole.
    """
    if target.literal is not None:
        addresses = [target.literal]
    else:
        if target.host == "localhost" or target.host.endswith(".localhost"):
            raise BlockedUrl(f"{target.host} is this machine; only public addresses are fetched")
        try:
            found = await resolver(target.host, target.port)
        except OSError:
            raise FetchError(f"the host name {target.host} could not be found") from None
        addresses = []
        for text in found:
            try:
                address = ipaddress.ip_address(text.split("%", 1)[0])
            except ValueError:
                raise FetchError(f"{target.host} resolved to an invalid address") from None
            if address not in addresses:
                addresses.append(address)
        if not addresses:
            raise FetchError(f"the host name {target.host} could not be found")
    for address in addresses:
        if address == _TEST_LOOPBACK and target.port in _test_loopback_ports:
            continue
        reason = _why_not_public(address)
        if reason is not None:
            where = (
                f"{address} is"
                if target.literal is not None
                else f"{target.host} resolves to {address},"
            )
            raise BlockedUrl(
                f"Refused to fetch {_shown(str(target.url))}: {where} {reason}; "
                "only public internet addresses can be fetched"
            )
    return addresses


def _why_not_public(address: IPAddress) -> str | None:
    """Why the address must not be fetched, or None when it is a public internet address.

    Refused: loopback, private, link-local, carrier-grade NAT, multicast, reserved, unspecified,
    the cloud metadata address, IPv6 unique-local/site-local, and anything not global. An IPv4
    address inside an IPv6 one (mapped, compatible, 6to4, NAT64) is judged as that IPv4 address.
    """
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            reason = _why_not_public(embedded)
            if reason is not None:
                return f"{reason} ({embedded} inside an IPv6 address)"
            if address.ipv4_mapped is not None or address in _NAT64:
                # ::ffff:a.b.c.d is a.b.c.d on a dual-stack socket; 64:ff9b::a.b.c.d is how
                # DNS64 on an IPv6-only network spells a public IPv4 site.
                return None
    if address in _METADATA:
        return "the cloud metadata address"
    checks: list[tuple[bool, str]] = [
        (address.is_unspecified, "an unspecified address"),
        (address.is_loopback, "a loopback address (this machine)"),
        (address.is_link_local, "a link-local address"),
        (
            isinstance(address, ipaddress.IPv4Address) and address in _CGNAT,
            "a carrier-grade NAT address (100.64.0.0/10)",
        ),
        (address.is_multicast, "a multicast address"),
        (
            isinstance(address, ipaddress.IPv6Address) and address.is_site_local,
            "a site-local address",
        ),
        (address.is_private, "a private network address"),
        (address.is_reserved, "a reserved address"),
        (not address.is_global, "not a public internet address"),
    ]
    return next((reason for failed, reason in checks if failed), None)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address that an IPv4-mapped, -compatible, 6to4 or NAT64 address carries."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64 or (address in _IPV4_COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


@contextlib.asynccontextmanager
async def _open(
    client: httpx.AsyncClient, target: _Target, addresses: list[IPAddress]
) -> AsyncIterator[httpx.Response]:
    """A streamed response from the first checked address that accepts the connection.

    The request goes to the checked address itself, never to the name again, so a DNS answer
    that changes between the check and the connection (DNS rebinding) cannot move it. The name
    travels in the ``Host`` header and, for https, as the TLS SNI name that the certificate is
    verified against.
    """
    headers = {
        "Host": target.host_header,
        "User-Agent": USER_AGENT,
        "Accept": "text/html,application/xhtml+xml,text/plain;q=0.9,*/*;q=0.5",
        # Only what we decompress ourselves, with a bound (no br/zstd).
        "Accept-Encoding": "gzip, deflate",
        "Accept-Language": "en;q=0.9, *;q=0.5",
    }
    extensions: dict[str, str] = {}
    if target.scheme == "https" and target.literal is None:
        extensions["sni_hostname"] = target.host  # SNI and certificate checks use the name
    failure: httpx.HTTPError | None = None
    for address in addresses:
        request = client.build_request(
            "GET", target.url.copy_with(host=str(address)), headers=headers
        )
        request.extensions.update(extensions)
        try:
            response = await client.send(request, stream=True)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            failure = exc
            continue
        except httpx.HTTPError as exc:
            raise FetchError(_describe(exc, target)) from None
        try:
            yield response
        finally:
            await response.aclose()
        return
    assert failure is not None
    raise FetchError(_describe(failure, target)) from None


def _describe(exc: httpx.HTTPError, target: _Target) -> str:
    shown = _shown(str(target.url))
    if isinstance(exc, httpx.TimeoutException):
        return f"{shown} did not answer in time"
    cause = exc.__cause__ or exc.__context__
    while cause is not None and not isinstance(cause, ssl.SSLError):
        cause = cause.__cause__ or cause.__context__
    if isinstance(cause, ssl.SSLCertVerificationError):
        return f"{shown} has an invalid TLS certificate ({cause.verify_message})"
    if isinstance(cause, ssl.SSLError):
        return f"the TLS connection to {target.host} failed"
    if isinstance(exc, httpx.ConnectError):
        return f"could not connect to {target.host_header}"
    return f"the connection to {target.host_header} failed ({type(exc).__name__})"


def _redirect_url(target: _Target, location: str) -> str:
    try:
        return str(target.url.join(location.strip()).copy_with(fragment=None))
    except (httpx.InvalidURL, ValueError):
        raise BlockedUrl(f"{_shown(str(target.url))} redirected to an invalid address") from None


async def _read(
    response: httpx.Response,
    target: _Target,
    max_bytes: int,
    accept_content: Callable[[str], bool] | None,
) -> SafeResponse:
    """The body, streamed and cut at ``max_bytes`` both before and after decompression.

    A 50 MB page or a gzip bomb costs at most ``max_bytes`` of memory: we decompress ourselves,
    bounded at every step (:class:`_Decoder`).
    """
    raw_type = response.headers.get("content-type", "")
    media_type = raw_type.split(";", 1)[0].strip().lower()
    if not _MEDIA_TYPE.match(media_type) or len(media_type) > 100:
        media_type = ""
    # Error pages are read whatever their type: the caller reports the status instead.
    ok = 200 <= response.status_code < 300
    if ok and accept_content is not None and not accept_content(media_type):
        raise UnwantedContent(
            f"{_shown(str(target.url))} is {media_type or 'of an unknown type'}",
            content_type=media_type,
        )
    decoder = _Decoder(response.headers.get("content-encoding", ""), target)
    parts: list[bytes] = []
    size = raw_size = 0
    truncated = False
    try:
        async for raw in response.aiter_raw(_READ_CHUNK):
            raw_size += len(raw)
            # Ask for one byte more than fits: getting it back means the body is over the cap.
            piece = decoder.decode(raw, max_bytes - size + 1)
            if size + len(piece) > max_bytes:
                parts.append(piece[: max_bytes - size])
                size = max_bytes
                truncated = True
                break
            parts.append(piece)
            size += len(piece)
            if raw_size > max_bytes:
                truncated = True
                break
    except httpx.HTTPError as exc:
        raise FetchError(_describe(exc, target)) from None
    charset_match = _CHARSET.search(raw_type)
    return SafeResponse(
        url=str(target.url),
        status=response.status_code,
        headers=response.headers,
        body=b"".join(parts),
        content_type=media_type,
        charset=_known_charset(charset_match.group(1)) if charset_match else None,
        truncated=truncated,
    )


class _Decoder:
    """Undoes one Content-Encoding, never producing more than asked for in one step.

    Each call's output is bounded (zlib's ``max_length``), so a highly compressed chunk (gzip
    can reach ~1000:1) cannot expand past the caller's cap in memory.
    """

    def __init__(self, header: str, target: _Target) -> None:
        codings = [
            c.strip() for c in header.lower().split(",") if c.strip() not in ("", "identity")
        ]
        self._shown = _shown(str(target.url))
        if len(codings) > 1:
            raise FetchError(f"{self._shown} is compressed several times over; refused")
        self._coding = codings[0] if codings else "identity"
        if self._coding not in ("identity", "gzip", "x-gzip", "deflate"):
            raise FetchError(f"{self._shown} is compressed with {self._coding[:20]}, unsupported")
        gzip_wbits = 16 + zlib.MAX_WBITS
        self._wbits = gzip_wbits if self._coding in ("gzip", "x-gzip") else zlib.MAX_WBITS
        self._zlib = zlib.decompressobj(self._wbits)
        self._started = False

    def decode(self, data: bytes, limit: int) -> bytes:
        if self._coding == "identity":
            return data[:limit]
        try:
            return self._inflate(data, limit)
        except zlib.error:
            raise FetchError(f"{self._shown} sent a corrupt {self._coding} body") from None

    def _inflate(self, data: bytes, limit: int) -> bytes:
        if not self._started and self._coding == "deflate":
            # "deflate" should be zlib-wrapped, but some servers send raw deflate.
            self._started = True
            try:
                return self._inflate(data, limit)
            except zlib.error:
                self._wbits = -zlib.MAX_WBITS
                self._zlib = zlib.decompressobj(self._wbits)
        self._started = True
        out = self._zlib.decompress(data, limit)
        # A gzip body may hold several members one after another; other trailing bytes are
        # ignored, as browsers do.
        while self._zlib.eof and self._zlib.unused_data[:2] == b"\x1f\x8b" and len(out) < limit:
            rest = self._zlib.unused_data
            self._zlib = zlib.decompressobj(self._wbits)
            out += self._zlib.decompress(rest, limit - len(out))
        return out


async def _system_resolver(host: str, port: int) -> list[str]:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


@cache
def shared_ssl_context() -> ssl.SSLContext:
    """The default TLS trust (certifi's bundle, as httpx), built once per process.

    Building it costs ~70 ms of CPU, which every ``httpx.AsyncClient()`` with default settings
    pays again; clients made per call pass this one as ``verify=``.
    """
    return httpx.create_ssl_context()


def _known_charset(name: str) -> str | None:
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def _shown(url: str) -> str:
    """A URL as quoted back in messages: printable and short."""
    printable = "".join(char for char in url.strip() if char.isprintable())
    return printable if len(printable) <= 200 else printable[:199] + "…"
