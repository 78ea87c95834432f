"""The one exception type for bad user input."""


class GIDInputError(ValueError):
    """Raised when user-supplied input (a file, a size, a parameter) cannot be used.

    The message names the problem in words a user can act on; the CLI and the app show it without a traceback.
    """
