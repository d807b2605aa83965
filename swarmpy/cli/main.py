"""`swarmpy`: the docker-like command line for a swarmpy daemon.

The entry point first offers the command line to swarmpy.cli.quick, which answers the plain forms of
`service ls` over the daemon's Engine API socket without importing click, grpc or protobuf (~1/4 of
the start-up they cost); anything it does not take runs through the click command tree
(swarmpy.cli.group), which every other command and every error path uses.
"""

from __future__ import annotations

import sys


def main() -> None:
    from swarmpy.cli import quick

    code = quick.run(sys.argv[1:])
    if code is not None:
        sys.exit(code)
    from swarmpy.cli.group import cli

    cli.main(prog_name="swarmpy")


def __getattr__(name: str):
    """`from swarmpy.cli.main import cli` (tests, scripts) still finds the command tree."""
    if name in ("cli", "SwarmpyGroup"):
        from swarmpy.cli import group

        return getattr(group, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if __name__ == "__main__":
    main()
