"""The one exception type that reaches users as a one-line message instead of a traceback."""


class UserError(Exception):
    """A problem with the user's input, files or options.

    The message is a single line that names the offending file, line or option; the console
    scripts print it as ``nmt-<command>: error: <message>`` and exit with status 1 (2 for usage
    errors: argparse's, and nmt-train's ``compose.UsageError`` subclass).
    """
