"""The service's answer to a user's mistake in a request (a 4xx status and one line)."""

__all__ = ["ServiceError"]


class ServiceError(Exception):
    """A user's mistake in a request: answered as ``status`` with ``{"error": message}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = int(status)
        self.message = " ".join(str(message).split())
