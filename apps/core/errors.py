"""Application errors raised by services; views and APIs turn them into clear responses."""


class ApplicationError(Exception):
    """A request that cannot be carried out as asked; `message` is shown to the user."""

    def __init__(self, message: str, *, field: str | None = None, extra: dict | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.extra = extra or {}


class InvalidStateError(ApplicationError):
    """The object is not in a state that allows the action (e.g. cancelling a finished job)."""
