"""/swarm: inspect, init, join, leave, update (token rotation), unlockkey, unlock.

init, join and leave are the daemon's own membership methods, the ones the LocalNode gRPC service
calls; inspect and update go through the control API. The daemon words its refusals for the swarmpy
CLI; where docker has its own words for the same refusal, the engine's are sent.
"""

from __future__ import annotations

from typing import Any

import grpc
from aiohttp import web

from swarmpy.api import control_pb2
from swarmpy.daemon.localnode import LocalNodeError

from .control_call import call_control
from .convert import from_json, to_json
from .errors import ALREADY_IN_SWARM, NOT_A_MANAGER, NOT_IN_SWARM, BadRequest, EngineError, from_status
from .filters import query_flag
from .keys import DAEMON
from .replies import empty_reply, json_reply, log_unmodelled, read_json


def read_version(request: web.Request, kind: str) -> Any:
    """?version=N, required: the object's version the client read (docker's wording when it is bad)."""
    from swarmpy.api import objects_pb2

    raw = request.query.get("version", "")
    try:
        index = int(raw)
        if index < 0:
            raise ValueError
    except ValueError:
        raise BadRequest(f"invalid {kind} version '{raw}': must be an unsigned integer") from None
    return objects_pb2.Version(index=index)


def _membership_error(error: LocalNodeError) -> EngineError:
    message = str(error)
    if message.startswith("This node is already part of a swarm"):
        return EngineError(503, ALREADY_IN_SWARM)
    if message.startswith("This node is not part of a swarm"):
        return EngineError(503, NOT_IN_SWARM)
    return from_status(error.code, message.replace('"swarmpy ', '"docker '))


def _require_swarm(daemon: Any) -> None:
    if daemon.swarm is None:
        raise EngineError(503, NOT_A_MANAGER)


async def inspect(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON]
    _require_swarm(daemon)
    cluster = (await call_control(daemon, "GetCluster", control_pb2.GetClusterRequest())).cluster
    shown = to_json.cluster(cluster)
    return json_reply({**shown, "DefaultAddrPool": None, "SubnetSize": 0,
                       "DataPathPort": 0})


async def init(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON]
    init_request = from_json.init_request(from_json.read_body(await read_json(request)))
    if daemon.swarm is not None and not init_request.force_new_cluster:
        raise EngineError(503, ALREADY_IN_SWARM)
    try:
        node_id = await daemon.init(init_request)
    except LocalNodeError as error:
        raise _membership_error(error) from None
    return json_reply(node_id)


async def join(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON]
    join_request = from_json.join_request(from_json.read_body(await read_json(request)))
    if daemon.swarm is not None:
        raise EngineError(503, ALREADY_IN_SWARM)
    try:
        await daemon.join(join_request)
    except LocalNodeError as error:
        raise _membership_error(error) from None
    return empty_reply()


async def leave(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON]
    if daemon.swarm is None:
        raise EngineError(503, NOT_IN_SWARM)
    try:
        await daemon.leave(force=query_flag(request.query, "force"))
    except LocalNodeError as error:
        raise _membership_error(error) from None
    return empty_reply()


async def update(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON]
    _require_swarm(daemon)
    version = read_version(request, "swarm")
    spec, unmodelled = from_json.converted_and_unread(from_json.cluster_spec, await read_json(request))
    log_unmodelled("swarm update", unmodelled)
    await call_control(daemon, "UpdateCluster", control_pb2.UpdateClusterRequest(
        version=version, spec=spec,
        rotate_worker_token=query_flag(request.query, "rotateWorkerToken"),
        rotate_manager_token=query_flag(request.query, "rotateManagerToken"),
        rotate_manager_unlock_key=query_flag(request.query, "rotateManagerUnlockKey"),
    ))
    return empty_reply()


async def unlock_key(request: web.Request) -> web.Response:
    """{"UnlockKey": key}; "" when autolock is off (the CLI then says "no unlock key is set")."""
    daemon = request.app[DAEMON]
    _require_swarm(daemon)
    answer = await call_control(daemon, "GetUnlockKey", control_pb2.GetUnlockKeyRequest())
    return json_reply({"UnlockKey": answer.unlock_key})


async def unlock(request: web.Request) -> web.Response:
    """POST /swarm/unlock {"UnlockKey": ...}: a locked manager (restarted with autolock on) starts."""
    daemon = request.app[DAEMON]
    fields = from_json.read_body(await read_json(request))
    key = fields.text("UnlockKey")
    if daemon.swarm is None:
        raise EngineError(503, NOT_IN_SWARM)
    try:
        await daemon.unlock(key)
    except LocalNodeError as error:
        if str(error) == "swarm is not locked":
            raise EngineError(409, "swarm is not locked") from None  # moby's notLockedError, a conflict
        if error.code == grpc.StatusCode.INVALID_ARGUMENT:
            raise BadRequest("swarm could not be unlocked: invalid key provided") from None
        raise _membership_error(error) from None
    return empty_reply()


ROUTES = [
    ("GET", "/swarm", inspect),
    ("POST", "/swarm/init", init),
    ("POST", "/swarm/join", join),
    ("POST", "/swarm/leave", leave),
    ("POST", "/swarm/update", update),
    ("GET", "/swarm/unlockkey", unlock_key),
    ("POST", "/swarm/unlock", unlock),
]
