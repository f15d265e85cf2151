"""The one exception type that reaches a user as a message instead of a traceback."""


class VlaopsError(Exception):
    """A problem the user can fix: the message says what was wrong, where, and what to do.

    The CLI prints it as one line (``error: <message>``) and exits with status 2.
    """
