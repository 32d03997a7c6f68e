"""The one error type of imagion: raised in the core, printed by the CLI without a traceback."""


class ImagionError(Exception):
    """A user-facing error whose message says what went wrong and what to do."""
