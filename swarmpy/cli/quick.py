"""`swarmpy service ls` without click, grpc or protobuf: the daemon's Engine API socket and its JSON.

Theory of operation
-------------------
A `swarmpy` start-up that imports click, grpc and the generated stubs spends ~4x the interpreter's own
start-up before it sends a byte. `service ls` is what scripts and people poll, so its plain forms
(`[-H HOST] service ls [-q] [--format F] [-f KEY=VALUE]...`) are answered here: one HTTP/1.1 request,
`GET /services?status=true`, over the Engine API socket the daemon serves beside its gRPC socket
(docker.sock in the same directory, or SWARMPY_API_SOCKET as for swarmpyd), and the rows built from
that JSON by swarmpy.cli.listings, which the gRPC door also uses after converting with
engineapi.convert.to_json: one model, one conversion, two doors.

`run` answers None whenever it does not take the command line (any other command or flag, a filter it
would refuse, a TCP host, no Engine API socket, a daemon that does not answer 200): the click command
tree then runs it as before and gives its own messages. So the quick path never has error wording of
its own except what the shared formatter raises for a bad `--format` template.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import urllib.parse

from swarmpy.cli.context import DEFAULT_HOST

REQUEST_TIMEOUT = 30.0  # seconds, as the gRPC path's default call deadline
_RESPONSE_LIMIT = 256 * 1024 * 1024


def run(args: list[str]) -> int | None:
    """The exit status of `swarmpy ARGS` if answered here, None to leave it to the click tree."""
    parsed = _parse(args)
    if parsed is None:
        return None
    host, quiet, output_format, filters = parsed
    api_socket = engine_api_socket(host)
    if api_socket is None:
        return None
    wanted: dict[str, list[str]] = {}
    if filters:
        from swarmpy.cli.value_parsers import parse_filters, parse_labels

        try:
            wanted = parse_filters(filters, ("id", "name", "label", "mode"))
            parse_labels(wanted.get("label", []))
        except ValueError:
            return None  # the click path says what is wrong, in its words
    query = {"status": "true"}
    server_side = {key: values for key, values in wanted.items() if key != "mode"}
    if server_side:
        query["filters"] = json.dumps(server_side)
    try:
        status, services = get_json(api_socket, "/services?" + urllib.parse.urlencode(query))
    except (OSError, ValueError):
        return None
    if status != 200 or not isinstance(services, list):
        return None
    from swarmpy.cli.errors import CliError
    from swarmpy.cli.listings import SERVICE_COLUMNS, service_json_rows
    from swarmpy.cli.table import print_listing

    rows = service_json_rows(services)
    if "mode" in wanted:
        rows = [row for row in rows if row["Mode"] in wanted["mode"]]
    try:
        print_listing(SERVICE_COLUMNS, rows, output_format, "ID", quiet, type_name="*service.serviceContext")
        sys.stdout.flush()
    except CliError as error:
        sys.stderr.write(error.message + "\n")
        return error.exit_code
    except BrokenPipeError:
        return 1
    return 0


def _parse(args: list[str]) -> tuple[str, bool, str | None, list[str]] | None:
    """(host, quiet, format, filters) of a plain `service ls` command line, else None."""
    host = os.environ.get("SWARMPY_HOST") or DEFAULT_HOST
    rest = list(args)
    while rest and rest[0].startswith("-"):
        flag = rest.pop(0)
        if flag in ("-H", "--host") and rest:
            host = rest.pop(0)
        elif flag.startswith("--host="):
            host = flag[len("--host="):]
        else:
            return None
    if rest[:2] != ["service", "ls"]:
        return None
    quiet, output_format, filters = False, None, []
    rest = rest[2:]
    while rest:
        flag = rest.pop(0)
        if flag in ("-q", "--quiet"):
            quiet = True
        elif flag == "--format" and rest:
            output_format = rest.pop(0)
        elif flag.startswith("--format="):
            output_format = flag[len("--format="):]
        elif flag in ("-f", "--filter") and rest:
            filters.append(rest.pop(0))
        elif flag.startswith("--filter="):
            filters.append(flag[len("--filter="):])
        else:
            return None
    return host, quiet, output_format, filters


def engine_api_socket(host: str) -> str | None:
    """The Engine API socket of the daemon whose gRPC socket is `host`: SWARMPY_API_SOCKET when set
    (as swarmpyd reads it), else docker.sock beside a unix `host` (swarmpyd's default); None for a TCP
    host or when there is no such socket (a daemon started with --api-socket '')."""
    explicit = os.environ.get("SWARMPY_API_SOCKET")
    if explicit is not None:
        return explicit or None
    if host.startswith("unix://"):
        path = host[len("unix://"):]
    elif host.startswith("/") or host.startswith("."):
        path = host
    else:
        return None
    candidate = os.path.join(os.path.dirname(path) or ".", "docker.sock")
    return candidate if os.path.exists(candidate) else None


def get_json(socket_path: str, target: str) -> tuple[int, object]:
    """(status, decoded JSON body) of `GET target` over a unix socket, one request per connection."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(REQUEST_TIMEOUT)
        conn.connect(socket_path)
        conn.sendall(f"GET {target} HTTP/1.1\r\nHost: swarmpy\r\nConnection: close\r\n\r\n".encode("ascii"))
        received, size = [], 0
        while chunk := conn.recv(65536):
            received.append(chunk)
            size += len(chunk)
            if size > _RESPONSE_LIMIT:
                raise ValueError("response too large")
    head, separator, body = b"".join(received).partition(b"\r\n\r\n")
    if not separator:
        raise ValueError("incomplete HTTP response")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    status = int(status_line.split(" ", 2)[1])
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = _dechunked(body)
    elif "content-length" in headers:
        body = body[:int(headers["content-length"])]
    return status, json.loads(body) if body else None


def _dechunked(body: bytes) -> bytes:
    pieces, position = [], 0
    while True:
        line_end = body.index(b"\r\n", position)
        length = int(body[position:line_end].split(b";")[0], 16)
        if length == 0:
            return b"".join(pieces)
        start = line_end + 2
        pieces.append(body[start:start + length])
        position = start + length + 2
