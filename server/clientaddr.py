"""Who the client is: the peer, or behind a trusted proxy the right-most address in
X-Forwarded-For that is not itself a trusted proxy (what uvicorn's --forwarded-allow-ips does,
done here so per-address limits count citizens, not nginx)."""

from __future__ import annotations

import ipaddress
import socket
from typing import Annotated

from fastapi import Depends, Request
from starlette.requests import HTTPConnection

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxies:
    """KAIFANG_TRUSTED_PROXIES: comma-separated addresses or networks, or `*` for any peer."""

    def __init__(self, spec: str) -> None:
        items = [item.strip() for item in spec.split(",") if item.strip()]
        self.everyone = "*" in items
        self.names = {item for item in items if item != "*"}
        self.networks: list[Network] = []
        for item in self.names:
            try:
                self.networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                continue  # a name such as "testclient" or a unix socket's: matched as written

        # The same networks as integer ranges per family: an address of a burst's every
        # request is parsed by the C library, not by ipaddress's Python.
        self._ranges: dict[int, list[tuple[int, int]]] = {socket.AF_INET: [],
                                                          socket.AF_INET6: []}
        for network in self.networks:
            family = socket.AF_INET if network.version == 4 else socket.AF_INET6
            self._ranges[family].append((int(network.network_address),
                                         int(network.broadcast_address)))

    def __contains__(self, host: str) -> bool:
        if self.everyone or host in self.names:
            return True
        for family, ranges in self._ranges.items():
            try:
                number = int.from_bytes(socket.inet_pton(family, host), "big")
            except (OSError, ValueError):
                continue
            return any(low <= number <= high for low, high in ranges)
        try:  # e.g. an IPv6 address with a zone (fe80::1%eth0)
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.networks)


def client_address(peer: str | None, forwarded_for: str | None, trusted: TrustedProxies) -> str:
    peer = peer or "unknown"
    if not forwarded_for or peer not in trusted:
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if hop not in trusted:
            return hop[:64]
    return hops[0][:64] if hops else peer


def client_of(request: HTTPConnection) -> str:
    """The client of a request or a socket, as the trusted proxies name it."""
    trusted: TrustedProxies = request.app.state.trusted_proxies
    # ASGI header names are lower case: read the scope, as Headers.getlist would.
    forwarded = ",".join(value.decode("latin-1") for name, value in request.scope["headers"]
                         if name == b"x-forwarded-for")
    return client_address(request.client.host if request.client else None, forwarded, trusted)


async def request_client(request: Request) -> str:
    return client_of(request)


ClientAddressDep = Annotated[str, Depends(request_client)]
