"""Who a per-client limit counts (registration, recovery codes, sign-in attempts)."""

from __future__ import annotations

import ipaddress


def address_bucket(address: str) -> str:
    """What a per-address limit counts: an IPv4 address, or the /64 network of an IPv6 one (a
    home or phone gets a whole /64, and would otherwise have 2^64 addresses to spread over)."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return str(parsed)
