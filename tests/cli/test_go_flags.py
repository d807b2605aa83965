"""GoFlagsCommand: docker's `--flag=false` and `-f=false` forms of boolean flags."""

from __future__ import annotations

import click
from click.testing import CliRunner

from swarmpy.cli.flag_types import GoFlagsCommand


@click.command(cls=GoFlagsCommand)
@click.option("-d", "--detach", is_flag=True)
@click.option("-e", "--env", multiple=True)
@click.argument("image")
def _command(detach, env, image):
    click.echo(f"detach={detach} env={list(env)} image={image}")


def run(*args: str) -> click.testing.Result:
    return CliRunner().invoke(_command, list(args))


def test_short_and_long_boolean_forms():
    assert run("-d", "img").output == "detach=True env=[] image=img\n"
    assert run("-d=false", "img").output == "detach=False env=[] image=img\n"
    assert run("-d=true", "img").output == "detach=True env=[] image=img\n"
    assert run("--detach=false", "img").output == "detach=False env=[] image=img\n"
    assert run("--detach=1", "img").output == "detach=True env=[] image=img\n"


def test_a_value_option_is_left_alone_and_a_bad_boolean_refused():
    assert run("-e", "A=b", "-d=false", "img").output == "detach=False env=['A=b'] image=img\n"
    assert run("-e", "-d=false", "img").output == "detach=False env=['-d=false'] image=img\n"  # a value, not a flag
    refused = run("-d=maybe", "img")
    assert refused.exit_code != 0 and 'parsing "maybe": invalid syntax' in refused.output
