"""`swarmpy`'s click command tree (swarmpy.cli.main is the entry point; swarmpy.cli.quick answers
`service ls` without it).

Only click and the command declarations load at startup; grpc, the stubs and the helpers that need
them are imported inside the command bodies. Every failure ends as one line on stderr and docker's
exit status (125 for a rejected command line, 1 otherwise); `--debug` adds the traceback.
"""

from __future__ import annotations

import sys
import traceback

import click

from swarmpy.cli.context import DEFAULT_HOST, CliContext
from swarmpy.cli.errors import EXIT_FAILURE, EXIT_FLAG_ERROR, CliError
from swarmpy.cli.flag_types import FlagValueError


class SwarmpyGroup(click.Group):
    """Runs a command line and turns every outcome into (output, exit status), never a traceback."""

    def main(self, args=None, prog_name=None, **extra):
        if args is None:
            args = sys.argv[1:]
        args = list(args)
        debug = "--debug" in args
        try:
            with self.make_context(prog_name or "swarmpy", args) as ctx:
                self.invoke(ctx)
            code = 0
        except click.exceptions.Exit as exit_request:
            code = exit_request.exit_code
        except FlagValueError as error:
            sys.stderr.write(error.message + "\n")
            code = EXIT_FLAG_ERROR
        except click.UsageError as error:
            command_path = error.ctx.command_path if error.ctx else "swarmpy"
            sys.stderr.write(f"{error.format_message()}\nSee '{command_path} --help'.\n")
            code = EXIT_FLAG_ERROR
        except CliError as error:
            if debug:
                traceback.print_exc()
            sys.stderr.write(error.message + "\n")
            code = error.exit_code
        except (KeyboardInterrupt, click.exceptions.Abort):
            code = 130
        except BrokenPipeError:
            code = EXIT_FAILURE
        except Exception as error:  # the last line of defence: one line, unless --debug
            if debug:
                traceback.print_exc()
            sys.stderr.write(f"Error: {error}\n")
            code = EXIT_FAILURE
        sys.exit(code)


@click.group(cls=SwarmpyGroup, context_settings={"max_content_width": 100})
@click.option("-H", "--host", envvar="SWARMPY_HOST", default=DEFAULT_HOST, show_default=True,
              help="Daemon socket to connect to (unix:///path, a path, or host:port).")
@click.option("--debug", is_flag=True, help="Print tracebacks on errors.")
@click.pass_context
def cli(ctx: click.Context, host: str, debug: bool) -> None:
    """Manage a swarmpy swarm."""
    state = CliContext(host, debug)
    ctx.obj = state
    ctx.call_on_close(state.close)


def _register_commands() -> None:
    from swarmpy.cli.node_commands import node
    from swarmpy.cli.network_commands import network
    from swarmpy.cli.secret_commands import config, secret
    from swarmpy.cli.stack_commands import stack
    from swarmpy.cli.service_commands import service
    from swarmpy.cli.swarm_ca import ca
    from swarmpy.cli.swarm_commands import swarm

    swarm.add_command(ca)
    cli.add_command(swarm)
    cli.add_command(service)
    cli.add_command(node)
    cli.add_command(secret)
    cli.add_command(network)
    cli.add_command(config)
    cli.add_command(stack)


_register_commands()

