"""/services: list (with ?status), create (201), inspect (?insertDefaults), update (?version,
?rollback=previous, ?registryAuthFrom), delete, logs; and /distribution/NAME/json for the CLI's image
resolution. Logs are shared with /tasks/{id}/logs (tasks.py)."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any
from urllib.parse import quote

from aiohttp import web

from swarmpy.api import control_pb2, dispatcher_pb2, objects_pb2

from .control_call import call_control, stream_control
from .convert import from_json, to_json
from .errors import BadRequest, EngineError, NotFound
from .filters import parse_filters, query_flag
from .keys import DAEMON, ENGINE
from .proxy import EngineStatusError
from .replies import JSON, empty_reply, json_reply, read_json
from .swarm import read_version

SERVICE_FILTERS = ("id", "label", "mode", "name", "runtime")
_MODES = {"replicated": "replicated", "global": "global"}
MULTIPLEXED = "application/vnd.docker.multiplexed-stream"
RAW_STREAM = "application/vnd.docker.raw-stream"
FOLLOW_CHECK_INTERVAL = 1.0  # seconds between checks that a followed service still exists


_CACHE_LIMIT = 10_000
_encoded: dict[tuple[str, int], bytes] = {}


def _encoded_service(service: objects_pb2.Service) -> bytes:
    """to_json.service as JSON bytes, remembered per (ID, version): a stored object never changes in
    place and every write gives it a new version, so `service ls` polls convert and encode only what
    changed since the last one (conversion and encoding were most of a GET /services)."""
    key = (service.id, service.meta.version.index)
    encoded = _encoded.get(key)
    if encoded is None:
        if len(_encoded) >= _CACHE_LIMIT:
            _encoded.clear()
        encoded = _encoded[key] = encode(to_json.service(service))
    return encoded


def encode(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


async def list_services(request: web.Request) -> web.Response:
    filters = parse_filters(request.query, SERVICE_FILTERS)
    for mode in filters.get("mode"):
        if mode not in _MODES:
            raise BadRequest(f"Invalid filter: 'mode'='{mode}'")
    for runtime in filters.get("runtime"):
        if runtime != "container":
            raise BadRequest(f"Invalid filter: 'runtime'='{runtime}': swarmpy runs containers only")
    wanted = control_pb2.ListServicesRequest.Filters(ids=filters.get("id"), names=filters.get("name"))
    wanted.labels.update(filters.labels("label"))
    answer = await call_control(request.app[DAEMON], "ListServices", control_pb2.ListServicesRequest(filters=wanted))
    with_status = query_flag(request.query, "status")
    modes = set(filters.get("mode"))
    shown = []
    for service, status in zip(answer.services, answer.statuses):
        if modes and service.spec.WhichOneof("mode") not in modes:
            continue
        encoded = _encoded_service(service)
        if with_status:  # the object with one more key, ServiceStatus, last (as json_reply would write it)
            encoded = encoded[:-1] + b',"ServiceStatus":' + encode(to_json.service_status(status)) + b"}"
        shown.append(encoded)
    return web.Response(body=b"[" + b",".join(shown) + b"]\n", headers={"Content-Type": JSON})


async def create_service(request: web.Request) -> web.Response:
    spec, unmodelled = from_json.service_spec_and_unread(await read_json(request))
    answer = await call_control(request.app[DAEMON], "CreateService", control_pb2.CreateServiceRequest(spec=spec))
    created: dict[str, Any] = {"ID": answer.service.id}
    if answer.warnings or unmodelled:
        created["Warnings"] = [*answer.warnings, *unmodelled]
    return json_reply(created, 201)


async def inspect_service(request: web.Request) -> web.Response:
    answer = await call_control(request.app[DAEMON], "GetService", control_pb2.GetServiceRequest(
        ref=request.match_info["ref"], insert_defaults=query_flag(request.query, "insertDefaults")))
    return json_reply(to_json.service(answer.service))  # with defaults already when asked: not remembered


async def update_service(request: web.Request) -> web.Response:
    version = read_version(request, "service")
    rollback = request.query.get("rollback", "")
    if rollback not in ("", "previous"):
        raise BadRequest(f"unrecognized rollback value '{rollback}': only \"previous\" is supported")
    registry_auth_from = request.query.get("registryAuthFrom", "")
    if registry_auth_from not in ("", "spec", "previous-spec"):
        raise BadRequest(f"invalid registryAuthFrom value '{registry_auth_from}': must be spec or previous-spec")
    body = await read_json(request)
    update = control_pb2.UpdateServiceRequest(ref=request.match_info["ref"], version=version)
    unmodelled: list[str] = []
    if rollback:
        update.rollback = control_pb2.UpdateServiceRequest.PREVIOUS  # the body is ignored, as docker does
    else:
        spec, unmodelled = from_json.service_spec_and_unread(body)
        update.spec.CopyFrom(spec)
    answer = await call_control(request.app[DAEMON], "UpdateService", update)
    updated: dict[str, Any] = {}
    if answer.warnings or unmodelled:
        updated["Warnings"] = [*answer.warnings, *unmodelled]
    return json_reply(updated)


async def remove_service(request: web.Request) -> web.Response:
    await call_control(request.app[DAEMON], "RemoveService",
                       control_pb2.RemoveServiceRequest(ref=request.match_info["ref"]))
    return empty_reply()


# -- logs ------------------------------------------------------------------------------------------

_SINCE = re.compile(r"^(\d+)(?:\.(\d{1,9}))?$")


def _log_options(query: Any) -> tuple[dispatcher_pb2.LogOptions, bool, bool]:
    stdout, stderr = query_flag(query, "stdout"), query_flag(query, "stderr")
    if not (stdout or stderr):
        raise BadRequest("Bad parameters: you must choose at least one stream")
    tail_text = query.get("tail", "all")
    if tail_text in ("", "all"):
        tail = -1
    else:
        try:
            tail = int(tail_text)
        except ValueError:
            raise BadRequest(f"invalid tail value '{tail_text}': must be a number or \"all\"") from None
        tail = -1 if tail < 0 else tail
    since = 0
    since_text = query.get("since", "")
    if since_text and since_text != "0":
        match = _SINCE.match(since_text)
        if match is None:
            raise BadRequest(f"invalid since value '{since_text}': must be a Unix time (seconds[.nanoseconds])")
        since = int(match.group(1)) * 1_000_000_000 + int((match.group(2) or "0").ljust(9, "0"))
    options = dispatcher_pb2.LogOptions(follow=query_flag(query, "follow"), tail=tail,
                                        timestamps=query_flag(query, "timestamps"), since=since)
    return options, stdout, stderr


def log_frame(message: dispatcher_pb2.LogMessage, *, details: bool, timestamps: bool, framed: bool) -> bytes:
    """One log line as the engine writes it: [timestamp ][attributes ]line, in an 8-byte stdcopy frame."""
    line = message.data if message.data.endswith(b"\n") else message.data + b"\n"
    if details:
        context = message.context
        attributes = (f"com.docker.swarm.node.id={context.node_id},com.docker.swarm.service.id={context.service_id},"
                      f"com.docker.swarm.task.id={context.task_id}")
        line = attributes.encode() + b" " + line
    if timestamps:
        line = to_json.fixed_rfc3339_nano(message.timestamp).encode() + b" " + line
    if not framed:
        return line
    stream = 2 if message.stream == dispatcher_pb2.LogMessage.STDERR else 1
    return bytes([stream, 0, 0, 0]) + len(line).to_bytes(4, "big") + line


async def _until_removed(daemon: Any, service_id: str) -> None:
    """Returns once the service is gone: a followed log stream of a removed service ends, as docker's does."""
    while True:
        await asyncio.sleep(FOLLOW_CHECK_INTERVAL)
        try:
            await call_control(daemon, "GetService", control_pb2.GetServiceRequest(ref=service_id))
        except EngineError as error:
            if error.status == 404:
                return


async def stream_logs(request: web.Request, ref: str, tty: bool, service_id: str = "") -> web.StreamResponse:
    options, stdout, stderr = _log_options(request.query)
    details = query_flag(request.query, "details")
    reply = web.StreamResponse(headers={"Content-Type": RAW_STREAM if tty else MULTIPLEXED})
    daemon = request.app[DAEMON]

    async def pump() -> None:
        messages = stream_control(daemon, "ServiceLogs", control_pb2.ServiceLogsRequest(ref=ref, options=options))
        try:
            async for batch in messages:
                if not reply.prepared:
                    await reply.prepare(request)
                chunk = b"".join(
                    log_frame(message, details=details, timestamps=options.timestamps, framed=not tty)
                    for message in batch.messages
                    if (stderr if message.stream == dispatcher_pb2.LogMessage.STDERR else stdout)
                )
                if chunk:
                    await reply.write(chunk)
        except EngineError:
            if not reply.prepared:
                raise
            # The stream broke after it started (the manager lost its leader): end it, as the engine does.
        finally:
            await messages.aclose()

    if options.follow and service_id:
        streaming = asyncio.ensure_future(pump())
        removed = asyncio.ensure_future(_until_removed(daemon, service_id))
        try:
            await asyncio.wait({streaming, removed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (streaming, removed):
                task.cancel()
            await asyncio.gather(streaming, removed, return_exceptions=True)
        if streaming.done() and not streaming.cancelled() and streaming.exception() is not None:
            raise streaming.exception()  # type: ignore[misc]
    else:
        await pump()
    if not reply.prepared:
        await reply.prepare(request)
    await reply.write_eof()
    return reply


async def service_logs(request: web.Request) -> web.StreamResponse:
    answer = await call_control(request.app[DAEMON], "GetService",
                                control_pb2.GetServiceRequest(ref=request.match_info["ref"]))
    service = answer.service
    return await stream_logs(request, service.id, service.spec.task.container.tty, service_id=service.id)


# -- distribution ----------------------------------------------------------------------------------


async def distribution(request: web.Request) -> web.Response:
    """The image's registry digest as the local engine knows it. An image that never came from a registry
    has none: 404, which the CLI turns into its usual warning and uses the name as given."""
    name = request.match_info["name"]
    try:
        image = await request.app[ENGINE].get_json(f"/images/{quote(name, safe='/:@')}/json")
    except EngineStatusError as error:
        if error.status == 404:
            raise NotFound(f"No such image: {name}") from None
        raise EngineError(500, f"the Docker engine could not inspect image {name}: {error.message}") from None
    except (OSError, ValueError) as error:
        raise EngineError(500, f"the Docker engine did not answer: {error}") from None
    repository = name.split("@", 1)[0].rsplit(":", 1)[0] if ":" in name.rsplit("/", 1)[-1] else name.split("@", 1)[0]
    digests = [d for d in image.get("RepoDigests") or [] if d.split("@", 1)[0] == repository]
    if not digests:
        raise NotFound(f"{name}: the local image was not pulled from a registry, so it has no registry digest")
    return json_reply({
        "Descriptor": {"mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                       "digest": digests[0].split("@", 1)[1], "size": 0},
        "Platforms": [{"architecture": image.get("Architecture", ""), "os": image.get("Os", "")}],
    })


ROUTES = [
    ("GET", "/services", list_services),
    ("POST", "/services/create", create_service),
    ("GET", "/services/{ref}", inspect_service),
    ("POST", "/services/{ref}/update", update_service),
    ("DELETE", "/services/{ref}", remove_service),
    ("GET", "/services/{ref}/logs", service_logs),
    ("GET", "/distribution/{name:.+}/json", distribution),
]
