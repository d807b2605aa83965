"""/secrets and /configs: create (201 {"ID"}), list with filters, inspect, delete (204), through the
control API. Secrets never carry their data back; configs do, base64, as the engine shows them.
Update is refused as swarmkit refuses it for anything but labels, which swarmpy does not change yet."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from aiohttp import web

from swarmpy.api import control_pb2, objects_pb2

from .control_call import call_control
from .convert import from_json, to_json
from .errors import BadRequest
from .filters import parse_filters
from .keys import DAEMON
from .replies import empty_reply, json_reply, log_unmodelled, read_json

FILTERS = ("id", "label", "name", "names")


@dataclass(frozen=True)
class _Kind:
    name: str  # secret | config
    title: str  # Secret | Config
    spec: type
    shown: Callable[[Any], dict]

    def request(self, verb: str, **fields: Any) -> Any:
        plural = "s" if verb == "List" else ""
        return getattr(control_pb2, f"{verb}{self.title}{plural}Request")(**fields)


SECRET = _Kind("secret", "Secret", objects_pb2.SecretSpec, to_json.secret)
CONFIG = _Kind("config", "Config", objects_pb2.ConfigSpec, to_json.config)


def _handlers(kind: _Kind) -> list[tuple[str, str, Any]]:
    async def create(request: web.Request) -> web.Response:
        spec, unmodelled = from_json.converted_and_unread(lambda fields: from_json.secret_or_config_spec(fields, kind.spec),
                                                          await read_json(request))
        log_unmodelled(f"{kind.name} create", unmodelled)
        answer = await call_control(request.app[DAEMON], f"Create{kind.title}", kind.request("Create", spec=spec))
        return json_reply({"ID": getattr(answer, kind.name).id}, 201)

    async def list_all(request: web.Request) -> web.Response:
        filters = parse_filters(request.query, FILTERS)
        wanted = control_pb2.SecretConfigFilters(ids=filters.get("id"), names=filters.get("names"),
                                                 name_prefixes=filters.get("name"))
        wanted.labels.update(filters.labels("label"))
        answer = await call_control(request.app[DAEMON], f"List{kind.title}s", kind.request("List", filters=wanted))
        return json_reply([kind.shown(obj) for obj in getattr(answer, f"{kind.name}s")])

    async def inspect(request: web.Request) -> web.Response:
        answer = await call_control(request.app[DAEMON], f"Get{kind.title}",
                                    kind.request("Get", ref=request.match_info["ref"]))
        return json_reply(kind.shown(getattr(answer, kind.name)))

    async def remove(request: web.Request) -> web.Response:
        await call_control(request.app[DAEMON], f"Remove{kind.title}", kind.request("Remove", ref=request.match_info["ref"]))
        return empty_reply(204)

    async def update(request: web.Request) -> web.Response:
        raise BadRequest(f"updating a {kind.name} is not supported by swarmpy: remove it and create it again")

    base = f"/{kind.name}s"
    return [
        ("GET", base, list_all),
        ("POST", f"{base}/create", create),
        ("GET", base + "/{ref}", inspect),
        ("DELETE", base + "/{ref}", remove),
        ("POST", base + "/{ref}/update", update),
    ]


ROUTES = _handlers(SECRET) + _handlers(CONFIG)
