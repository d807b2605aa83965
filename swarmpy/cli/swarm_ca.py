"""`swarmpy swarm ca [--rotate [--ca-cert F --ca-key F] [--cert-expiry D] [-d] [-q]]`, as docker's.

Without --rotate it prints the root CA certificate. With it, the cluster spec's CA config is changed the
way docker's CLI changes it (the daemon decides, swarmpy/manager/controlapi/ca_config.py): the given
root and key, or force_rotate raised by one for a new root. Then, unless -d, it follows the rotation
with docker's two progress lines -- nodes whose certificate comes from the new root, and nodes trusting
only the new root -- and prints the new root once both reach every node (-q: silently).
"""

from __future__ import annotations

import hashlib
import signal
import time

import click

from swarmpy.cli import flag_types
from swarmpy.cli.errors import CliError, FlagError

DIGEST_LINE = "desired root digest"
CERTS_LINE, CERTS_ACTION = "  rotated TLS certificates", ""
# One space: the CA line's label is a character shorter, so the two bars line up (as docker draws them).
ROOTS_LINE, ROOTS_ACTION = "  rotated CA certificates", " "
POLL_INTERVAL = 0.2
MAX_WAIT = 3600.0  # a node that never comes back holds a rotation open; the CLI stops following it then


def _pem_file(flag: str, path: str | None) -> bytes:
    if path is None:
        return b""
    try:
        with open(path, "rb") as handle:
            contents = handle.read()
    except OSError as exc:
        raise FlagError(f'invalid argument "{path}" for "--{flag}" flag: open {path}: {(exc.strerror or str(exc)).lower()}') from None
    if b"-----BEGIN " not in contents or b"-----END " not in contents:
        raise FlagError(f'invalid argument "{path}" for "--{flag}" flag: file contents must be in PEM format')
    return contents


def _trust_root_text(cluster) -> str:
    text = cluster.root_ca.ca_cert.decode("utf-8", "replace").strip()
    if not text:
        raise CliError("No CA information available")
    return text


def _progress(cluster, nodes) -> tuple[list[tuple[str, str]], bool]:
    """docker's updateProgress: the lines to show, and whether every node has rotated both ways."""
    from swarmpy.ca.rotation import desired_issuer
    from swarmpy.cli.progress import progress_bar

    trust_root = cluster.root_ca.ca_cert
    subject, public_key = desired_issuer(cluster.root_ca)
    certs_right = sum(1 for n in nodes if n.description.tls_info.cert_issuer_subject == subject
                      and n.description.tls_info.cert_issuer_public_key == public_key)
    roots_right = sum(1 for n in nodes if n.description.tls_info.trust_root == trust_root)
    total = len(nodes)
    rotating = cluster.root_ca.HasField("root_rotation")
    if certs_right != total or rotating:
        roots_right = 0  # certificates still to renew: no node can have dropped the old root yet
    lines = [
        (DIGEST_LINE, "sha256:" + hashlib.sha256(trust_root.decode("utf-8", "replace").encode()).hexdigest()),
        (CERTS_LINE, f"{CERTS_ACTION} {progress_bar(certs_right, total)} {certs_right}/{total} nodes"),
        (ROOTS_LINE, f"{ROOTS_ACTION} {progress_bar(roots_right, total)} {roots_right}/{total} nodes"),
    ]
    return lines, certs_right == total and not rotating and roots_right == total


def _follow(state, quiet: bool) -> None:
    from swarmpy.api import control_pb2
    from swarmpy.cli.progress_display import progress_display

    daemon = state.daemon
    display = progress_display(click.get_text_stream("stdout"), quiet)
    deadline = time.monotonic() + MAX_WAIT
    interrupted: list[bool] = []
    previous = signal.signal(signal.SIGINT, lambda *_: interrupted.append(True))
    try:
        while True:
            cluster = daemon.call(daemon.control.GetCluster, control_pb2.GetClusterRequest()).cluster
            nodes = daemon.call(daemon.control.ListNodes, control_pb2.ListNodesRequest()).nodes
            lines, done = _progress(cluster, nodes)
            display.show(lines)
            if done:
                break
            if interrupted or time.monotonic() > deadline:
                display.message("Operation continuing in background.")
                display.message("Use `swarmpy swarm ca` and `swarmpy node ls` to check progress.")
                return
            time.sleep(POLL_INTERVAL)
    finally:
        signal.signal(signal.SIGINT, previous)
    if not quiet:
        state.out(_trust_root_text(cluster))


@click.command(cls=flag_types.GoFlagsCommand)
@click.option("--ca-cert", "ca_cert", metavar="pem-file", help="Path to the PEM-formatted root CA certificate to use for the new cluster.")
@click.option("--ca-key", "ca_key", metavar="pem-file", help="Path to the PEM-formatted root CA key to use for the new cluster.")
@click.option("--cert-expiry", type=flag_types.DURATION, help="Validity period for node certificates (ns|us|ms|s|m|h).")
@click.option("-d", "--detach", is_flag=True, help="Exit immediately instead of waiting for the root rotation to converge.")
@click.option("--external-ca", multiple=True, help="Specifications of one or more certificate signing endpoints.")
@click.option("-q", "--quiet", is_flag=True, help="Suppress progress output.")
@click.option("--rotate", is_flag=True, help="Rotate the swarm CA - if no certificate or key are provided, new ones will be generated.")
@click.pass_obj
def ca(state, ca_cert, ca_key, cert_expiry, detach, external_ca, quiet, rotate) -> None:
    """Display and rotate the root CA."""
    from swarmpy.api import control_pb2

    # docker reads the PEM files as it parses the flags: before anything else is checked or asked
    cert_pem, key_pem = _pem_file("ca-cert", ca_cert), _pem_file("ca-key", ca_key)
    daemon = state.daemon
    cluster = daemon.call(daemon.control.GetCluster, control_pb2.GetClusterRequest()).cluster
    if not rotate:
        for flag, value in (("ca-cert", ca_cert), ("ca-key", ca_key), ("cert-expiry", cert_expiry),
                            ("external-ca", external_ca or None)):
            if value is not None:
                raise CliError(f"`--{flag}` flag requires the `--rotate` flag to update the CA")
        state.out(_trust_root_text(cluster))
        return
    if external_ca:
        raise FlagError(f'invalid argument "{external_ca[0]}" for "--external-ca" flag: external CAs are not supported'
                        " (swarmpy signs node certificates with the swarm's own root CA)")
    if ca_cert is not None and ca_key is None:
        raise CliError("the --ca-cert flag requires that a --ca-key flag and/or --external-ca flag be provided as well")
    spec = cluster.spec
    if cert_expiry is not None:
        spec.ca_config.node_cert_expiry = cert_expiry
    spec.ca_config.signing_ca_cert = cert_pem
    spec.ca_config.signing_ca_key = key_pem
    if not cert_pem and not key_pem:
        spec.ca_config.force_rotate += 1
    daemon.call(daemon.control.UpdateCluster, control_pb2.UpdateClusterRequest(version=cluster.meta.version, spec=spec))
    if not detach:
        _follow(state, quiet)
