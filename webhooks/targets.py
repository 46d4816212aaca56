"""Where a webhook may be sent (SPEC §9): `https` to a public address.

A subscriber chooses the URL, so without a check it could make the server
call itself, the private network or a cloud metadata service (SSRF). The URL
is checked when the subscription is made and again before every send, after
resolving the name then: a name that resolved to a public address at
creation may point at 127.0.0.1 later. The send goes to the address that
was checked, not to a second lookup, so the name cannot change in between.
`WEBHOOK_ALLOW_PRIVATE_TARGETS=1` (development) allows private addresses
and plain `http`.
"""

import ipaddress
import socket
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout
from typing import NamedTuple
from urllib.parse import urlsplit

from django.conf import settings

# Cloud metadata endpoints, refused even though some are "private" anyway.
METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}


class TargetRefused(ValueError):
    """The URL may not receive webhooks; the message says why."""


class Target(NamedTuple):
    scheme: str
    host: str  # as written in the URL, for Host, SNI and the certificate
    port: int
    address: str  # the checked IP address to connect to
    path: str  # path and query


# Name lookups run in these threads, so that a slow DNS server costs a
# request or a send at most DNS_TIMEOUT seconds (getaddrinfo has no timeout).
_lookups = ThreadPoolExecutor(max_workers=4, thread_name_prefix="webhook-dns")
DNS_TIMEOUT = 3.0


def resolve(host: str, port: int) -> list[str]:
    """The IP addresses `host` resolves to (a seam for tests, which change
    what a name resolves to)."""
    lookup = _lookups.submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
    try:
        infos = lookup.result(timeout=DNS_TIMEOUT)
    except FuturesTimeout:
        raise OSError(f"looking up {host} took over {DNS_TIMEOUT} s") from None
    return [info[4][0] for info in infos]


def _refused_reason(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    if address in METADATA:
        return "a cloud metadata address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_private or address.is_reserved or address.is_unspecified:
        return "a private address"
    if address.is_multicast:
        return "a multicast address"
    return None


def check_url(url: str) -> Target:
    """The target of `url` if webhooks may go there, else TargetRefused."""
    parts = urlsplit(url)
    allow_private = settings.WEBHOOK_ALLOW_PRIVATE_TARGETS
    allowed_schemes = ("https", "http") if allow_private else ("https",)
    if parts.scheme not in allowed_schemes:
        raise TargetRefused("The URL must use https.")
    if not parts.hostname:
        raise TargetRefused("The URL has no host.")
    if parts.username or parts.password:
        raise TargetRefused("The URL may not carry a user name or password.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise TargetRefused("The URL's port is not a number.") from None
    try:
        addresses = resolve(parts.hostname, port)
    except (OSError, UnicodeError):
        raise TargetRefused(f"The host {parts.hostname} cannot be resolved.") from None
    if not addresses:
        raise TargetRefused(f"The host {parts.hostname} cannot be resolved.")
    for raw in addresses:
        address = ipaddress.ip_address(raw.split("%", 1)[0])
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        reason = _refused_reason(address)
        if reason and not (allow_private and address not in METADATA):
            raise TargetRefused(f"The host {parts.hostname} resolves to {reason} ({address}).")
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return Target(parts.scheme, parts.hostname, port, addresses[0].split("%", 1)[0], path)
