"""Singer messages to stdout: msgspec's encoder, one write per batch of records."""

from __future__ import annotations

import atexit
import contextlib
import sys

from singer_sdk.contrib.msgspec import MsgSpecWriter, serialize_jsonl
from singer_sdk.singerlib import Message, RecordMessage, StateMessage

FLUSH_BYTES = 64 * 1024


class BatchingWriter(MsgSpecWriter):
    """Like the SDK's writer, which flushes stdout after every message, but records wait for
    the next other message (STATE, SCHEMA, ...) or for 64 KiB.

    A process killed mid-run therefore leaves a prefix of its message stream, as before: a STATE
    never reaches the target ahead of the records it covers. Whatever is pending at exit is
    written too, so a run that stops on an error still delivers every record it produced.
    """

    def __init__(self) -> None:
        super().__init__()
        self._pending = bytearray()
        atexit.register(self._flush_at_exit)

    def write_message(self, message: Message) -> None:
        self._pending += self.format_message(message)
        if type(message) is not RecordMessage or len(self._pending) >= FLUSH_BYTES:
            self.flush()

    def serialize_message(self, message: Message) -> bytearray:
        if type(message) is StateMessage:
            # Its to_dict (dataclasses.asdict) deep-copies the whole state only to encode it;
            # a run writes one per blog and stream.
            return serialize_jsonl({"type": "STATE", "value": message.value})
        return super().serialize_message(message)

    def _flush_at_exit(self) -> None:
        with contextlib.suppress(BrokenPipeError):  # the reader is gone: nothing to deliver
            self.flush()

    def flush(self) -> None:
        if self._pending:
            sys.stdout.buffer.write(self._pending)
            self._pending.clear()
        sys.stdout.flush()
