"""Keep secrets out of every log line, whoever logs it (the tap, the SDK, requests, urllib3)."""

from __future__ import annotations

import logging
import threading
import typing as t
from urllib.parse import quote, quote_plus

MASK = "***"
_secrets: set[str] = set()
_lock = threading.Lock()
_installed = False


def protect_secrets(values: t.Iterable[str]) -> None:
    """Mask these values, raw and URL-encoded, in every log record from now on."""
    global _installed  # logging's record factory is process-wide too
    with _lock:
        for value in values:
            if value and len(value) >= 4:  # shorter strings would mask ordinary words
                _secrets.update({value, quote(value, safe=""), quote_plus(value)})
        if not _installed:
            _install()
            _installed = True


def redact(text: str) -> str:
    # Longest first, so a secret is masked whole before any shorter one inside it.
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def _install() -> None:
    make_record = logging.getLogRecordFactory()

    def redacting_record(*args: t.Any, **kwargs: t.Any) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        if not _secrets:
            return record
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must still not leak
            message = f"{record.msg!s} {record.args!s}"
        record.msg, record.args = redact(message), None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return record

    logging.setLogRecordFactory(redacting_record)
