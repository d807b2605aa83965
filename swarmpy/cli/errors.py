"""The CLI's failures, each carrying the one line the user sees and the exit status docker uses."""

from __future__ import annotations

# docker exits 125 when its own flag parsing rejects the command line, 1 when the daemon says no.
EXIT_FLAG_ERROR = 125
EXIT_FAILURE = 1


class CliError(Exception):
    """A failure to report as one plain line (no traceback) and a non-zero exit."""

    exit_code = EXIT_FAILURE

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class FlagError(CliError):
    """A flag's value did not parse; nothing was sent to the daemon."""

    exit_code = EXIT_FLAG_ERROR


def remove_each(state, refs, remove_one, *, ignore=lambda error: False, reraise=lambda error: False) -> None:
    """docker's `rm` over several objects: each removed one is printed, a failure does not stop the
    others, and the failures' messages end it as one error. `ignore(error)`: a failure that does not
    count (`network rm -f` of a missing network); `reraise(error)`: one that ends it at once (no daemon)."""
    errors = []
    for ref in refs:
        try:
            remove_one(ref)
        except CliError as error:
            if reraise(error):
                raise
            if not ignore(error):
                errors.append(error.message)
            continue
        state.out(ref)
    if errors:
        raise CliError("\n".join(errors))


def flag_display_name(long_name: str, short_name: str | None = None) -> str:
    """pflag names a flag "-p, --publish" when it has a shorthand, else "--limit-memory"."""
    return f"{short_name}, {long_name}" if short_name else long_name


def invalid_flag_value(value: str, long_name: str, reason: str, short_name: str | None = None) -> FlagError:
    return FlagError(
        f'invalid argument "{value}" for "{flag_display_name(long_name, short_name)}" flag: {reason}'
    )
