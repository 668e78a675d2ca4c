"""The one way an editor says a fix cannot be written into this file."""


class NotFixable(Exception):
    """The fix has no place in this file (a script call with positional arguments, a scalar root, ...).

    The finding then stays, counted as remaining.
    """
