"""swarmpyd, the per-host daemon. See daemon.py for the theory of operation."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import signal
import sys

import click

from .tuning import BLOCKING_CALL_THREADS


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--data-dir", default=lambda: os.environ.get("SWARMPY_DATA_DIR", "/var/lib/swarmpy"),
              show_default="/var/lib/swarmpy", help="Where this node keeps its swarm state.")
@click.option("--socket", "socket_path", default=lambda: os.environ.get("SWARMPY_SOCKET", "/var/run/swarmpy/swarmpy.sock"),
              show_default="/var/run/swarmpy/swarmpy.sock", help="The local control socket.")
@click.option("--hostname", default=None, help="Hostname this node reports (default: the machine's).")
@click.option("--api-socket", default=lambda: os.environ.get("SWARMPY_API_SOCKET"),
              show_default="docker.sock beside --socket", help="The Docker Engine API socket ('' for none).")
@click.option("--api-listen", default=None, metavar="ADDR:PORT", help="Also serve the Engine API on TCP (TLS).")
@click.option("--api-tls-cert", default=None, help="Server certificate (PEM) for --api-listen.")
@click.option("--api-tls-key", default=None, help="Server key (PEM) for --api-listen.")
@click.option("--api-tls-ca", default=None, help="CA (PEM) that signs the client certificates --api-listen accepts.")
@click.option("--api-insecure", is_flag=True, help="Allow --api-listen without client certificates (anyone may connect).")
@click.option("--api-max-connections", type=int, default=None, show_default="256", metavar="N",
              help="Engine API client connections served at once; more wait up to 2 s for one to end, then get a 503.")
@click.option("--node-generic-resource", "node_generic_resource", multiple=True, metavar="KIND=VALUE",
              help="Advertise user-defined resource (dockerd's flag; repeatable; adds to SWARMPY_NODE_GENERIC_RESOURCES).")
@click.option("--debug", is_flag=True, help="Verbose logs.")
def main(data_dir: str, socket_path: str, hostname: str | None, api_socket: str | None, api_listen: str | None,
         api_tls_cert: str | None, api_tls_key: str | None, api_tls_ca: str | None, api_insecure: bool,
         api_max_connections: int, node_generic_resource: tuple[str, ...], debug: bool) -> None:
    """Run the swarmpy daemon in the foreground.

    SWARMPY_RAFT_TICK (seconds, default 1) shortens the Raft tick for tests and benchmarks.
    The Docker Engine API (the docker CLI's and docker-py's) is served on --api-socket, by default
    docker.sock in --socket's directory (/var/run/swarmpy/docker.sock); what is not a swarm object is
    relayed to the local engine at SWARMPY_ENGINE_SOCKET (default /var/run/docker.sock).

    SWARMPY_NODE_GENERIC_RESOURCES (e.g. `gpu=2,ssd=SSD-1`) and --node-generic-resource (one a flag,
    `--node-generic-resource gpu=GPU-UUID-1`) are the user-defined resources this node offers to
    services' --generic-resource, as dockerd's --node-generic-resource: a count, or one named unit each.
    """
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="time=%(asctime)s level=%(levelname)s module=%(name)s msg=%(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("swarmpy").setLevel(logging.DEBUG if debug else logging.INFO)
    from .daemon import Daemon  # deferred: keeps --help fast
    from .tuning import raft_config_from_environment

    if node_generic_resource:  # one source for describe_node: the flags join the environment's list
        listed = [os.environ.get("SWARMPY_NODE_GENERIC_RESOURCES", ""), *node_generic_resource]
        os.environ["SWARMPY_NODE_GENERIC_RESOURCES"] = ",".join(item for item in listed if item.strip())
    try:
        raft_config_from_environment()  # a bad knob is refused now, not at the first init or join
        from .worker_side import node_generic_resources

        node_generic_resources()
    except ValueError as exc:
        click.echo(f"swarmpyd: --node-generic-resource / SWARMPY_NODE_GENERIC_RESOURCES: {exc}", err=True)
        sys.exit(1)
    except RuntimeError as exc:
        click.echo(f"swarmpyd: {exc}", err=True)
        sys.exit(1)
    from swarmpy.engineapi.server import Listeners

    if api_socket is None:
        api_socket = os.path.join(os.path.dirname(socket_path) or ".", "docker.sock")
    api = Listeners(socket_path=api_socket or None, tcp_addr=api_listen, tls_cert=api_tls_cert, tls_key=api_tls_key,
                    tls_ca=api_tls_ca, insecure=api_insecure)
    if api_max_connections is not None:  # else the front door's own default (relay.MAX_CONNECTIONS)
        api.max_connections = api_max_connections
    try:
        api.check()
    except ValueError as exc:
        click.echo(f"swarmpyd: {exc}", err=True)
        sys.exit(1)

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        # asyncio.to_thread's default pool has min(32, cores + 4) threads: 6 here, so 40 container
        # creations, starts or removals went six at a time. Blocking calls are short but many at once.
        loop.set_default_executor(
            concurrent.futures.ThreadPoolExecutor(max_workers=BLOCKING_CALL_THREADS, thread_name_prefix="swarmpyd-blocking")
        )
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await Daemon(data_dir, socket_path, hostname, engine_api=api).run(stop)

    try:
        asyncio.run(serve())
    except RuntimeError as exc:  # start-up refusals (socket in use, unreadable state) are for the user
        click.echo(f"swarmpyd: {exc}", err=True)
        sys.exit(1)
