"""/_ping, /version and /info: the engine's own answers, with swarmpy's version and Swarm section.

The engine's /info and /version are fetched and kept as they are (containers, images, kernel, ...)
except for what swarmpyd decides: the API versions it speaks and the whole `Swarm` section, which
comes from this daemon (its local-node state) and, on a manager, from the control API (node and
manager counts, the cluster).
"""

from __future__ import annotations

import platform
import socket
from typing import Any

from aiohttp import web

from swarmpy.api import control_pb2

from .control_call import call_control
from .convert import to_json
from .errors import EngineError
from .keys import DAEMON, ENGINE
from .proxy import EngineStatusError


def _api_version(request: web.Request) -> str:
    from .server import MAX_API_VERSION, show_version

    engine = request.app[ENGINE].api_version
    return show_version(min(MAX_API_VERSION, engine) if engine else MAX_API_VERSION)


def _swarm_header(daemon: Any) -> str:
    info = daemon.info()
    if info.state == control_pb2.InfoResponse.INACTIVE:
        return "inactive"
    state = control_pb2.InfoResponse.LocalNodeState.Name(info.state).lower()
    return f"{state}/{'manager' if info.control_available else 'worker'}"


async def ping(request: web.Request) -> web.Response:
    headers = {
        "Api-Version": _api_version(request),
        "Ostype": "linux",
        "Docker-Experimental": "false",
        "Builder-Version": "2",
        "Swarm": _swarm_header(request.app[DAEMON]),
        "Cache-Control": "no-cache, no-store, must-revalidate",
        "Pragma": "no-cache",
    }
    if request.method == "HEAD":
        return web.Response(headers={**headers, "Content-Type": "text/plain; charset=utf-8", "Content-Length": "0"})
    return web.Response(text="OK", headers=headers)


async def _engine_json(request: web.Request, path: str) -> dict[str, Any] | None:
    try:
        answer = await request.app[ENGINE].get_json(path)
        return answer if isinstance(answer, dict) else None
    except (EngineStatusError, OSError, ValueError):
        return None


async def version(request: web.Request) -> web.Response:
    from swarmpy.daemon.daemon import VERSION

    from .replies import json_reply
    from .server import MIN_API_VERSION, show_version

    answer = await _engine_json(request, "/version") or {
        "Version": VERSION, "Os": "linux", "Arch": _go_arch(), "KernelVersion": platform.release(), "Components": [],
    }
    answer["ApiVersion"] = _api_version(request)
    answer["MinAPIVersion"] = show_version(MIN_API_VERSION)
    components = answer.get("Components") or []
    components.append({"Name": "swarmpyd", "Version": VERSION, "Details": {"ApiVersion": answer["ApiVersion"]}})
    answer["Components"] = components
    return json_reply(answer)


def _go_arch() -> str:
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


async def swarm_section(daemon: Any) -> dict[str, Any]:
    info = daemon.info()
    section: dict[str, Any] = {
        "NodeID": info.node_id,
        "NodeAddr": info.node_addr,
        "LocalNodeState": control_pb2.InfoResponse.LocalNodeState.Name(info.state).lower(),
        "ControlAvailable": info.control_available,
        "Error": info.error,
        "RemoteManagers": [{"NodeID": peer.node_id, "Addr": peer.addr} for peer in info.remote_managers] or None,
    }
    if not info.control_available:
        return section
    try:
        nodes = (await call_control(daemon, "ListNodes", control_pb2.ListNodesRequest())).nodes
        cluster = (await call_control(daemon, "GetCluster", control_pb2.GetClusterRequest())).cluster
    except EngineError as error:  # no leader just now: docker reports it in Swarm.Error, not as a failure
        section["Error"] = error.message
        return section
    managers = [node for node in nodes if node.HasField("manager_status")]
    by_addr = {node.manager_status.addr: node.id for node in managers}
    if section["RemoteManagers"]:
        for peer in section["RemoteManagers"]:
            peer["NodeID"] = peer["NodeID"] or by_addr.get(peer["Addr"], "")
    section["Nodes"] = len(nodes)
    section["Managers"] = len(managers)
    shown = to_json.cluster(cluster)
    shown.pop("JoinTokens", None)  # docker's Info carries the cluster without its tokens
    section["Cluster"] = {**shown, "DefaultAddrPool": None, "SubnetSize": 0,
                          "DataPathPort": 0}
    return section


async def info(request: web.Request) -> web.Response:
    from swarmpy.daemon.daemon import VERSION

    from .replies import json_reply

    daemon = request.app[DAEMON]
    answer = await _engine_json(request, "/info") or {
        "Name": getattr(daemon, "hostname", socket.gethostname()), "ServerVersion": VERSION, "OSType": "linux",
        "OperatingSystem": platform.platform(), "Architecture": platform.machine(),
    }
    answer["Swarm"] = await swarm_section(daemon)
    return json_reply(answer)


ROUTES = [
    ("GET", "/_ping", ping),
    ("HEAD", "/_ping", ping),
    ("GET", "/version", version),
    ("GET", "/info", info),
]
