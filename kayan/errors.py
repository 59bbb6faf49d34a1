"""The one exception type for errors a user can cause.

The CLI turns a :class:`KayanError` into one line on stderr and exit status 2;
anything else is a bug and raises normally with its traceback.
"""


class KayanError(Exception):
    """An error the user can fix: the message names the file/line/key, the cause and the fix."""
