"""The error type for problems a user can fix (bad input, wrong path, refused operation).

The CLI prints these as one clear line and exits 2, without a traceback.
"""


class WeedsegError(Exception):
    """A problem with the user's input or request, not a bug."""
