"""Parsers for the structured values docker's flags take: ports, KEY=VALUE lists, env files, scale
specifiers, filters. Pure functions; they raise ValueError with docker's reason text."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PortSpec:
    target: int
    published: int = 0  # 0: the daemon picks one
    protocol: str = "tcp"
    mode: str = "ingress"
    proxy_protocol: str = ""  # swarmpy's option: "v2" puts a PROXY v2 header before each connection


_PROTOCOLS = ("tcp", "udp", "sctp")
_PUBLISH_MODES = ("ingress", "host")


def _port_number(text: str, what: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise ValueError(f"invalid {what} port: {text!r}") from None
    if not 0 <= number <= 65535:
        raise ValueError(f"invalid {what} port: {text} out of range")
    return number


def _protocol(text: str) -> str:
    protocol = text.lower()
    if protocol not in _PROTOCOLS:
        raise ValueError(f"invalid protocol '{text}' for port")
    return protocol


def parse_port(text: str) -> list[PortSpec]:
    """`8080:80`, `80/udp`, `8000-8001:80-81/tcp`, or the long form `mode=host,target=80,published=8080`."""
    if "=" in text:
        return [_parse_long_port(text)]
    spec, _, protocol = text.partition("/")
    protocol = _protocol(protocol) if protocol else "tcp"
    published_text, _, target_text = spec.rpartition(":")
    if ":" in published_text:
        raise ValueError("hostip is not supported")  # docker: swarm publishes on every address
    targets = _port_range(target_text, "target")
    published = _port_range(published_text, "published") if published_text else [0] * len(targets)
    if len(published) != len(targets):
        raise ValueError(f"invalid ranges specified for container and host Ports: {text}")
    return [PortSpec(target=t, published=p, protocol=protocol) for t, p in zip(targets, published)]


def _port_range(text: str, what: str) -> list[int]:
    if not text:
        raise ValueError(f"no port specified: {what}")
    start, dash, end = text.partition("-")
    first = _port_number(start, what)
    last = _port_number(end, what) if dash else first
    if last < first:
        raise ValueError(f"invalid range specified for {what} port: {text}")
    return list(range(first, last + 1))


def _parse_long_port(text: str) -> PortSpec:
    fields: dict[str, str] = {}
    for part in text.split(","):
        key, eq, value = part.partition("=")
        if not eq:
            raise ValueError(f"invalid field {part!r} must be a key=value pair")
        fields[key.strip().lower()] = value.strip()
    known = {"mode", "target", "published", "protocol", "proxy-protocol"}
    unknown = set(fields) - known
    if unknown:
        raise ValueError(f"invalid field key {sorted(unknown)[0]}")
    if "target" not in fields:
        raise ValueError("missing mandatory field \"target\"")
    mode = fields.get("mode", "ingress").lower()
    if mode not in _PUBLISH_MODES:
        raise ValueError(f"invalid publish mode value ({fields['mode']}): must be either \"ingress\" or \"host\"")
    protocol = _protocol(fields.get("protocol", "tcp"))
    proxy = fields.get("proxy-protocol", "").lower()
    if "proxy-protocol" in fields:
        # A header needs the mesh's stream relay: an ingress TCP port (host-mode ports are the engine's).
        if proxy != "v2":
            raise ValueError(f"invalid proxy-protocol value ({fields['proxy-protocol']}): must be \"v2\"")
        if mode != "ingress":
            raise ValueError("invalid proxy-protocol=v2: only for mode=ingress ports, not mode=host")
        if protocol != "tcp":
            raise ValueError(f"invalid proxy-protocol=v2: only for protocol=tcp ports, not protocol={protocol}")
    return PortSpec(
        target=_port_number(fields["target"], "target"),
        published=_port_number(fields["published"], "published") if fields.get("published") else 0,
        protocol=protocol,
        mode=mode,
        proxy_protocol=proxy,
    )


def parse_key_value(text: str, what: str = "label") -> tuple[str, str]:
    """`k=v` -> (k, v); a bare `k` means an empty value, as docker's label flags do."""
    key, _, value = text.partition("=")
    if not key:
        raise ValueError(f"invalid {what} format: {text!r}")
    return key, value


def parse_labels(items: tuple[str, ...] | list[str], what: str = "label") -> dict[str, str]:
    return dict(parse_key_value(item, what) for item in items)


def normalize_env(item: str, environ: dict[str, str] | None = None) -> str | None:
    """docker's -e: `K=V` stays; a bare `K` takes the caller's value, or is dropped if unset."""
    if "=" in item:
        if item.startswith("="):
            raise ValueError(f"invalid environment variable: {item}")
        return item
    if environ is not None and item in environ:
        return f"{item}={environ[item]}"
    return None


def parse_env_file(content: str, environ: dict[str, str] | None = None) -> list[str]:
    """docker's --env-file: one KEY=VALUE a line, `#` comments and blank lines skipped, a bare KEY
    imported from the caller's environment, values taken literally (no quotes, no expansion)."""
    variables = []
    for number, raw_line in enumerate(content.splitlines(), start=1):
        line = raw_line.lstrip()
        if not line or line.startswith("#"):
            continue
        key, eq, value = line.partition("=")
        if not key or any(c.isspace() for c in key):
            raise ValueError(f"variable '{key}' contains whitespaces (line {number})")
        if eq:
            variables.append(f"{key}={value}")
        elif environ is not None and key in environ:
            variables.append(f"{key}={environ[key]}")
    return variables


def parse_scale_spec(text: str) -> tuple[str, int]:
    """`web=5` -> ("web", 5); docker's messages for what does not fit."""
    name, eq, count = text.partition("=")
    if not eq or not name:
        raise ValueError(f"invalid scale specifier '{text}'.\nSee 'swarmpy service scale --help'.")
    try:
        replicas = int(count)
    except ValueError:
        raise ValueError(f'invalid replicas value {count}: strconv.ParseUint: parsing "{count}": invalid syntax') from None
    if replicas < 0:
        raise ValueError(f'invalid replicas value {count}: strconv.ParseUint: parsing "{count}": invalid syntax')
    return name, replicas


def parse_filters(items: tuple[str, ...] | list[str], allowed: tuple[str, ...]) -> dict[str, list[str]]:
    """`-f name=web -f name=api` -> {"name": ["web", "api"]}; docker's messages for bad keys."""
    filters: dict[str, list[str]] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq:
            raise ValueError("bad format of filter (expected name=value)")
        key = key.strip().lower()
        if key not in allowed:
            raise ValueError(f"invalid filter '{key}'")
        filters.setdefault(key, []).append(value.strip())
    return filters


def parse_placement_pref(text: str) -> str:
    """`spread=node.labels.zone` -> "node.labels.zone" (spread is the only strategy)."""
    strategy, eq, argument = text.partition("=")
    if not eq:
        raise ValueError("placement preference must be of the format \"<strategy>=<arg>\"")
    if strategy.lower() != "spread":
        raise ValueError(f"unsupported placement preference {strategy} (only spread is supported)")
    return argument
