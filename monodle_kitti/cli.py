"""One-line errors for the command-line entry points (``tools/*.py``).

A known user error (bad data, bad config, bad checkpoint: see :data:`USER_ERRORS`) ends an entry
point with a single line on stderr, ``error: <message>``, whose message names the file and the
fix, and exit status :data:`EXIT_USER_ERROR` (2, as argparse uses for a bad command line). The
full traceback is printed instead with ``--debug`` on the command line (taken out before the
tool parses its arguments) or ``MONODLE_DEBUG=1`` in the environment. Anything else (a bug) keeps
Python's traceback and exit status 1.

Usage in a tool::

    if __name__ == '__main__':
        run_cli(main)          # main(argv) -> None | int (exit status) | anything (status 0)

or, for a command of ``monodle_plugin`` (the environment checked first)::

    if __name__ == '__main__':
        run_command('monodle_plugin.commands.train', first=ENV_CHECK)
"""
from __future__ import annotations

import os
import pickle
import sys
from typing import Any, Callable, NoReturn, Sequence

#: Environment variable that turns one-line errors back into tracebacks.
DEBUG_ENV = 'MONODLE_DEBUG'
#: The environment check the tools of ``monodle_plugin`` run first (``run_command(first=...)``)
ENV_CHECK = 'monodle_plugin.utils.env_check:check_environment'
#: Exit status of a known user error.
EXIT_USER_ERROR = 2


class UserError(Exception):
    """A problem with the user's input (data, config, checkpoint); the message names the file
    and the fix, so no traceback is needed."""


class BrokenEnvironmentError(ImportError):
    """The installed OpenMMLab stack cannot run the package (a missing or clashing piece); the
    message names it and the fix (``make env``). Raised by ``monodle_plugin.utils.env_check``."""


class CheckpointError(UserError):
    """A checkpoint that cannot be read safely or does not match the model."""


#: Exceptions treated as user errors: ours, and the stdlib types our readers raise with a message
#: naming the file (KittiFormatError is a ValueError; missing files are FileNotFoundError).
USER_ERRORS: tuple[type[BaseException], ...] = (UserError, OSError, ValueError, KeyError,
                                                 SyntaxError, pickle.UnpicklingError,
                                                 BrokenEnvironmentError)


def debug_requested(argv: Sequence[str] | None = None) -> bool:
    """True when ``--debug`` is in ``argv`` or ``$MONODLE_DEBUG`` is set to a non-zero value."""
    if argv is not None and '--debug' in argv:
        return True
    return os.environ.get(DEBUG_ENV, '').strip().lower() not in ('', '0', 'false', 'no')


def format_error(err: BaseException) -> str:
    """The exception as one line (whitespace runs, newlines included, become one space)."""
    msg = str(err.args[0] if isinstance(err, KeyError) and len(err.args) == 1 else err)
    prefix = not isinstance(err, UserError)
    if 'Original Traceback' in msg:  # re-raised from a DataLoader worker: its last line
        msg = [line for line in msg.splitlines() if line.strip()][-1]  # "Type: message"
        prefix = False
    text = ' '.join(msg.split())
    if not text:
        text = type(err).__name__
    elif prefix:
        text = f'{type(err).__name__}: {text}'
    return text


def run_cli(main: Callable[[list[str]], Any], argv: Sequence[str] | None = None) -> NoReturn:
    """Run ``main(argv)`` and exit: 0 (or the int it returns), 2 with one line on a user error.

    Args:
        main: the tool's ``main``; it receives the arguments without ``--debug``.
        argv: the command line without the program name (default ``sys.argv[1:]``).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = debug_requested(argv)
    argv = [a for a in argv if a != '--debug']
    try:
        ret = main(argv)
    except USER_ERRORS as err:
        if debug:
            raise
        sys.stdout.flush()
        print(f'error: {format_error(err)} (traceback: add --debug or set {DEBUG_ENV}=1)',
              file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    sys.exit(ret if isinstance(ret, int) and not isinstance(ret, bool) else 0)


def write_json_file(path: str, obj: Any) -> None:
    """Write ``obj`` as JSON (indent 1) to ``path``, its folders created: the tools'
    ``--out-json``."""
    import json
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(obj, f, indent=1)


def run_command(module: str, first: str | None = None) -> NoReturn:
    """The entry point of a tool shim: :func:`run_cli` of ``module``'s ``main``, with the import
    of ``module`` and the ``first`` check inside it, so that an environment that cannot run the
    command (the check fails, or importing the package does) is one line as well, not a
    traceback from the shim's imports.

    Args:
        module: dotted name of the command module, e.g. ``'monodle_plugin.commands.train'``.
        first: ``'package.module:function'`` called with no arguments before ``module`` is
            imported (the tools of ``monodle_plugin`` name its environment check).
    """
    import importlib

    def main(argv: list[str]) -> Any:
        if first is not None:
            where, name = first.split(':')
            getattr(importlib.import_module(where), name)()
        return importlib.import_module(module).main(argv)

    run_cli(main)


__all__ = ['DEBUG_ENV', 'ENV_CHECK', 'EXIT_USER_ERROR', 'BrokenEnvironmentError', 'CheckpointError',
           'USER_ERRORS', 'UserError', 'debug_requested', 'format_error', 'run_cli',
           'run_command', 'write_json_file']
