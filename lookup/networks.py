"""IP networks as people write them in allow-lists. Pure."""

from __future__ import annotations

import ipaddress

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def network(text: str) -> Network:
    """A CIDR network or a single address; `ValueError` saying why not, and for a network
    with host bits set which network was meant: widened silently, `10.1.2.3/8` would allow
    a whole /8 where one address may have been meant (and uvicorn matches no address
    against it at all)."""
    if "%" in text:
        # Python reads `fe80::1%eth0` as an address; no client's address carries the scope.
        raise ValueError(f"{text!r} names a network interface (%...): give the address alone")
    try:
        parsed = ipaddress.ip_network(text)
    except ValueError:
        try:
            meant = ipaddress.ip_network(text, strict=False)
        except ValueError:
            meant = None
        hint = f"; did you mean {meant}?" if meant is not None else ""
        raise ValueError(f"{text!r} is not an IP address or CIDR network{hint}") from None
    mapped = parsed.network_address.ipv4_mapped if parsed.version == 6 else None
    if mapped is not None and parsed.prefixlen >= 96:
        # Clients are seen as IPv4 (`client_ip`): so are IPv4-mapped networks.
        return ipaddress.IPv4Network(f"{mapped}/{parsed.prefixlen - 96}")
    return parsed


def stored_network(text: str) -> Network:
    """A network as an allow-list keeps it. One an earlier version kept with an interface
    scope (`fe80::1%eth0/128`) is its address alone: what it matched then, and what the
    service matches now (a scope is refused where a network is given)."""
    address, scoped, rest = text.partition("%")
    if scoped:
        text = address + rest[rest.index("/") :] if "/" in rest else address
    return network(text)


def listed_networks(text: str) -> tuple[Network, ...]:
    """The networks of a comma-separated list, as a setting gives them (blanks around and
    between commas are no network: `10.0.0.0/8,` is the one network); `ValueError` naming
    the first that is not one."""
    return tuple(network(part.strip()) for part in text.split(",") if part.strip())


def client_ip(address: str) -> str:
    """The client's address as allow-lists and the abuse rules see it: an IPv4 client of a
    dual-stack socket arrives as `::ffff:a.b.c.d`, which is `a.b.c.d`; an IPv6 address in
    its one written form (`2001:DB8::7` and `2001:0db8:0:0:0:0:0:7` are `2001:db8::7`, as a
    proxy's `X-Forwarded-For` may write it: the per-address rules count one client once)."""
    if ":" not in address:  # IPv4 (or not an address: kept as given, refused by name)
        return address
    try:
        parsed = ipaddress.IPv6Address(address)
    except ValueError:
        return address
    return str(parsed.ipv4_mapped or parsed)
