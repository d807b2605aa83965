"""/networks: swarm-scoped (overlay) networks through the control API, local ones from the engine.

A list is the engine's own networks followed by the swarm's (on a manager); create with the overlay
driver (or Scope "swarm") makes a swarm network, anything else is the engine's; inspect and delete look
in the swarm first and fall back to the engine; connect, disconnect and prune are the engine's.
"""

from __future__ import annotations

import json

from aiohttp import web

from swarmpy.api import control_pb2

from .control_call import call_control
from .convert import from_json, to_json
from .errors import EngineError
from .filters import parse_filters
from .keys import DAEMON, ENGINE
from .proxy import EngineStatusError
from .replies import empty_reply, json_reply

NETWORK_FILTERS = ("dangling", "driver", "id", "label", "name", "scope", "type")


def _is_manager(request: web.Request) -> bool:
    daemon = request.app[DAEMON]
    return daemon.swarm is not None and daemon.info().control_available


async def list_networks(request: web.Request) -> web.Response:
    filters = parse_filters(request.query, NETWORK_FILTERS)
    engine = request.app[ENGINE]
    query = f"?{request.rel_url.raw_query_string}" if request.rel_url.raw_query_string else ""
    try:
        local = await engine.get_json(engine.engine_path(request.rel_url.raw_path) + query)
    except (EngineStatusError, OSError, ValueError) as error:
        raise EngineError(500, f"the Docker engine did not list its networks: {error}") from None
    shown = [network for network in local if network.get("Scope") != "swarm"]
    wants_swarm = (not filters.get("scope") or "swarm" in filters.get("scope")) and \
                  (not filters.get("type") or "custom" in filters.get("type"))
    if _is_manager(request) and wants_swarm:
        wanted = control_pb2.ListNetworksRequest.Filters(ids=filters.get("id"), names=filters.get("name"),
                                                         drivers=filters.get("driver"))
        wanted.labels.update(filters.labels("label"))
        answer = await call_control(request.app[DAEMON], "ListNetworks", control_pb2.ListNetworksRequest(filters=wanted))
        shown += [to_json.network(network) for network in answer.networks]
    return json_reply(shown)


async def create_network(request: web.Request) -> web.StreamResponse:
    body = await request.read()
    try:
        raw = json.loads(body or b"{}")
    except ValueError:
        raw = None
    fields = from_json.read_body(raw) if isinstance(raw, dict) else None
    if fields is None or not (fields.text("Driver") == "overlay" or fields.text("Scope") == "swarm"):
        return await request.app[ENGINE].relay(request, body)
    spec, unmodelled = from_json.converted_and_unread(from_json.network_spec, raw)
    answer = await call_control(request.app[DAEMON], "CreateNetwork", control_pb2.CreateNetworkRequest(spec=spec))
    # the engine's one Warning string (the docker CLI prints it as it is)
    return json_reply({"Id": answer.network.id, "Warning": "\n".join(unmodelled)}, 201)


async def _in_swarm(request: web.Request, rpc: str, message: object) -> object | None:
    """The control API's answer, or None when the swarm has no such network (the engine may)."""
    if not _is_manager(request):
        return None
    try:
        return await call_control(request.app[DAEMON], rpc, message)
    except EngineError as error:
        if error.status == 404:
            return None
        raise


async def inspect_network(request: web.Request) -> web.StreamResponse:
    answer = await _in_swarm(request, "GetNetwork", control_pb2.GetNetworkRequest(ref=request.match_info["ref"]))
    if answer is None:
        return await request.app[ENGINE].relay(request)
    return json_reply(to_json.network(answer.network))


async def remove_network(request: web.Request) -> web.StreamResponse:
    ref = request.match_info["ref"]
    if await _in_swarm(request, "GetNetwork", control_pb2.GetNetworkRequest(ref=ref)) is None:
        return await request.app[ENGINE].relay(request)
    await call_control(request.app[DAEMON], "RemoveNetwork", control_pb2.RemoveNetworkRequest(ref=ref))
    return empty_reply(204)


ROUTES = [
    ("GET", "/networks", list_networks),
    ("POST", "/networks/create", create_network),
    ("GET", "/networks/{ref}", inspect_network),
    ("DELETE", "/networks/{ref}", remove_network),
]
