"""How the project's command-line tools end: every refusal is one line on stderr.

`run(group)` runs a click group as the tools' `main()`: a usage error (a bad option value, a
missing argument, an unknown command) is `error: usage: <reason> (see <command> --help)` and
exit code 2, instead of click's four-line block; `--help` and a bare command print the help.
The tools' own refusals keep their own exit codes (they call sys.exit themselves). Anything
else that escapes a command is a bug: one line `error: internal: …`, exit code 70 (EX_SOFTWARE),
the traceback only with FMGW_TRACEBACK=1.
"""

from __future__ import annotations

import os
import sys
import traceback
from typing import NoReturn

import click

EXIT_USAGE, EXIT_INTERNAL = 2, 70
TRACEBACK_ENV = "FMGW_TRACEBACK"


def run(group: click.Command, args: list[str] | None = None) -> NoReturn:
    try:
        group.main(args=args, standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:
        click.echo(exc.ctx.get_help() if exc.ctx else exc.format_message())
        sys.exit(0)
    except click.UsageError as exc:
        where = f" (see {exc.ctx.command_path} --help)" if exc.ctx else ""
        click.echo(f"error: usage: {exc.format_message()}{where}", err=True)
        sys.exit(EXIT_USAGE)
    except click.exceptions.Abort:
        click.echo("error: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except Exception as exc:
        if os.environ.get(TRACEBACK_ENV) == "1":
            traceback.print_exc()
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())
        click.echo(f"error: internal: {reason} (a bug; {TRACEBACK_ENV}=1 shows where)", err=True)
        sys.exit(EXIT_INTERNAL)
    sys.exit(0)
