"""Errors that end a run with a message a user can act on."""

from __future__ import annotations


class TapBloggerError(Exception):
    """A failure the tap explains itself: the CLI prints the message and exits non-zero."""


class BloggerAPIError(TapBloggerError):
    """The Blogger API refused a request, or kept failing it until the retries ran out."""

    def __init__(self, message: str, *, status: int | None = None, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


class AuthError(TapBloggerError):
    """Google's token endpoint refused the credentials."""


class PaginationError(TapBloggerError):
    """A list's page tokens do not lead to its end."""


class BadRecordError(TapBloggerError):
    """The API returned data that does not match Blogger v3 and cannot be emitted as declared."""
