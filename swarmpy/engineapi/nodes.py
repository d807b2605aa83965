"""/nodes: list (filters id, name, role from the control API; label, node.label and membership applied
here, where the control API has no such filter), inspect, update with ?version, delete with ?force."""

from __future__ import annotations

from aiohttp import web

from swarmpy.api import control_pb2, objects_pb2

from .control_call import call_control
from .convert import from_json, to_json
from .errors import BadRequest
from .filters import matches_labels, parse_filters, query_flag
from .keys import DAEMON
from .replies import empty_reply, json_reply, log_unmodelled, read_json
from .swarm import read_version

NODE_FILTERS = ("id", "label", "membership", "name", "node.label", "role")
_ROLES = {"worker": objects_pb2.WORKER, "manager": objects_pb2.MANAGER}


async def list_nodes(request: web.Request) -> web.Response:
    filters = parse_filters(request.query, NODE_FILTERS)
    wanted = control_pb2.ListNodesRequest.Filters(ids=filters.get("id"), names=filters.get("name"))
    for role in filters.get("role"):
        if role not in _ROLES:
            raise BadRequest(f"Invalid role filter value '{role}': must be worker or manager")
        wanted.roles.append(_ROLES[role])
    for membership in filters.get("membership"):
        if membership not in ("accepted", "pending"):
            raise BadRequest(f"Invalid membership filter value '{membership}': must be accepted or pending")
    answer = await call_control(request.app[DAEMON], "ListNodes", control_pb2.ListNodesRequest(filters=wanted))
    engine_labels, node_labels = filters.labels("label"), filters.labels("node.label")
    memberships = set(filters.get("membership"))
    shown = [
        to_json.node(node)
        for node in answer.nodes
        if matches_labels(node.description.engine.labels, engine_labels)
        and matches_labels(node.spec.annotations.labels, node_labels)
        and (not memberships or "accepted" in memberships)  # swarmpy admits nodes by token: all are accepted
    ]
    return json_reply(shown)


def node_ref(request: web.Request) -> str:
    """The node in the path; "self" is this daemon's node, as the docker CLI means it."""
    ref = request.match_info["ref"]
    return request.app[DAEMON].info().node_id or ref if ref == "self" else ref


async def inspect_node(request: web.Request) -> web.Response:
    ref = node_ref(request)
    answer = await call_control(request.app[DAEMON], "GetNode", control_pb2.GetNodeRequest(ref=ref))
    return json_reply(to_json.node(answer.node))


async def update_node(request: web.Request) -> web.Response:
    version = read_version(request, "node")
    spec, unmodelled = from_json.converted_and_unread(from_json.node_spec, await read_json(request))
    log_unmodelled("node update", unmodelled)
    await call_control(request.app[DAEMON], "UpdateNode", control_pb2.UpdateNodeRequest(
        ref=node_ref(request), version=version, spec=spec))
    return empty_reply()


async def remove_node(request: web.Request) -> web.Response:
    await call_control(request.app[DAEMON], "RemoveNode", control_pb2.RemoveNodeRequest(
        ref=node_ref(request), force=query_flag(request.query, "force")))
    return empty_reply()


ROUTES = [
    ("GET", "/nodes", list_nodes),
    ("GET", "/nodes/{ref}", inspect_node),
    ("POST", "/nodes/{ref}/update", update_node),
    ("DELETE", "/nodes/{ref}", remove_node),
]
