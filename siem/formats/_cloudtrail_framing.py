"""CloudTrail framing: the records of an object in any JSON layout, linear in its size, memory flat.

CloudTrail objects come as one `{"Records":[...]}` document (AWS writes it compact on one line; tools
re-write it with `", "` separators or pretty-printed), as NDJSON (a record, or a Records document, per
line), or as a top-level array. They can inflate to hundreds of MB, so nothing reads an object whole:
a sliding window of decoded text (1 MiB reads) is cut into records in three ways, fastest first.

1. A top-level value that ends on its own line inside the window (NDJSON lines, a delivery file
   smaller than the window) is one orjson call.
2. Inside a big array, records are parsed a batch at a time: the batch ends at the last
   `} , {"<key>":` in the span (any whitespace; `<key>` is the first key of the batch's first record,
   `eventVersion` as AWS writes it) and `[` + batch + `]` is one orjson call. If that boundary sat
   inside a string or a nested object, orjson refuses the batch and nothing was decided from it.
3. Otherwise (the record after a refused batch, the last record of an array, damage), one record:
   the stdlib decoder's raw_decode finds where it ends (it tells a truncated record from a corrupt
   one), orjson gives its value. After a refused batch this path runs past the refused boundary and
   the span halves, so every character costs at most one refused batch: linear in every layout.

The value is always orjson's, so a record the sink could not serialise (NaN, 1e999, lone surrogates)
is refused here, and integers and floats are what orjson makes of them on every path. The batch path
was chosen by measurement over ijson's yajl2_c backend (see docs/log-types/aws.cloudtrail.md), which
stops at the first error, raises on integers past 2**63 and turns lone surrogates into '?'.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from typing import Any, BinaryIO

import orjson

from siem.formats.base import BadRecord, Record, Skipped

CHUNK = 1 << 20  # bytes read per refill
MAX_SPAN = 32 * 1024  # characters one batch spans at most: bigger ones cost more (allocator, GC) than they save
MIN_SPAN = 4 * 1024  # a refused batch halves the next one's span down to this
MAX_RECORD = 16 << 20  # characters one record may span before it is called corrupt
RAW_KEEP = 16 * 1024  # characters of a bad record kept for its dead letter

_WS = re.compile(r"[ \t\r\n]*")
_RECORDS_OPEN = re.compile(r'\{[ \t\r\n]*"Records"[ \t\r\n]*:[ \t\r\n]*\[')
_FIRST_KEY = re.compile(r'\{[ \t\r\n]*("(?:[^"\\\n]|\\.){1,64}")[ \t\r\n]*:')
_RESYNC_IN_ARRAY = re.compile(r'\{[ \t\r\n]*"eventVersion"[ \t\r\n]*:')
_RESYNC_TOP = re.compile(r"\n(?=[\[{])")  # the next line that starts a top-level value
_DECODER = json.JSONDecoder()
_BOUNDARIES: dict[str, re.Pattern[str]] = {}


def _boundary(key: str) -> re.Pattern[str]:
    """`}` , `{"<key>":` with any whitespace: where the next record starts if it starts with the same key."""
    pattern = _BOUNDARIES.get(key)
    if pattern is None:
        if len(_BOUNDARIES) > 64:
            _BOUNDARIES.clear()
        pattern = re.compile(r"\}[ \t\r\n]*,[ \t\r\n]*(?=\{[ \t\r\n]*" + re.escape(key) + r"[ \t\r\n]*:)")
        _BOUNDARIES[key] = pattern
    return pattern


class _Window:
    """Decoded text of the stream from the oldest character still needed; refilled a chunk at a time."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.text = ""
        self.pos = 0
        self.dropped = 0  # characters of the stream before text[0]
        self.eof = False

    def fill(self, want: int = CHUNK) -> bool:
        """Drop text before pos and append at least ``want`` more bytes; False at end of stream."""
        if self.eof:
            return False
        data = self._stream.read(max(want, CHUNK))
        if self.pos:
            self.text = self.text[self.pos :]
            self.dropped += self.pos
            self.pos = 0
        if not data:
            self.eof = True
            self.text += self._decoder.decode(b"", final=True)
            return False
        self.text += self._decoder.decode(data)
        return True

    def skip_ws(self) -> bool:
        """Advance over whitespace; False when only whitespace is left in the stream."""
        while True:
            self.pos = _WS.match(self.text, self.pos).end()
            if self.pos < len(self.text):
                return True
            if not self.fill():
                return self.pos < len(self.text)

    def ensure(self, count: int) -> None:
        """At least ``count`` characters after pos, unless the stream ends first."""
        while len(self.text) - self.pos < count and self.fill():
            pass


class _Corrupt(Exception):
    """No JSON value where a record should start; the message is the dead-letter reason."""

    def __init__(self, reason: str, end: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.end = end  # where the bad value ends, when that is known


def _line_value(win: _Window) -> tuple[bool, Any]:
    """(True, value) when the value at win.pos ends its line inside the window (or the stream),
    advancing past it; (False, None) leaves win.pos alone for the other paths."""
    text, start = win.text, win.pos
    end = text.find("\n", start)
    if end == -1:
        if not win.eof:
            return False, None
        end = len(text)
    try:
        value = orjson.loads(text[start:end])
    except orjson.JSONDecodeError:
        return False, None
    win.pos = end
    return True, value


def _batch(win: _Window, span: int) -> tuple[list[Any] | None, int]:
    """(records, -1) parsed from win.pos to the last record boundary within ``span`` characters,
    advancing past them; (None, boundary) when orjson refused the batch; (None, -1) when there
    is no boundary to try."""
    text, start = win.text, win.pos
    key = _FIRST_KEY.match(text, start)
    if key is None:
        return None, -1
    last = None
    for last in _boundary(key.group(1)).finditer(text, start + 1, start + span):  # noqa: B007
        pass
    if last is None:
        return None, -1
    cut = last.start() + 1
    try:
        values = orjson.loads("[" + text[start:cut] + "]")
    except orjson.JSONDecodeError:
        return None, cut
    win.pos = cut
    return values, -1


def _decode(win: _Window) -> Any:
    """The JSON value at win.pos, advancing past it; _Corrupt when there is none.

    The stdlib decoder only finds where a value ends; the value itself always comes from orjson,
    so a record the sink could not serialise (lone surrogates, NaN) is rejected here.
    """
    while True:
        try:
            end = _DECODER.raw_decode(win.text, win.pos)[1]
        except json.JSONDecodeError as exc:
            maybe_cut = exc.msg.startswith("Unterminated string") or exc.pos >= len(win.text) - 16
            if not maybe_cut:
                raise _Corrupt(f"invalid JSON: {exc.msg} (character {exc.pos - win.pos} of the record)") from None
            if len(win.text) - win.pos > MAX_RECORD:
                raise _Corrupt(f"record is not complete within {MAX_RECORD} characters") from None
            if not win.fill(len(win.text) - win.pos):
                if exc.pos > win.pos:
                    raise _Corrupt("truncated: the object ends inside this record") from None
                raise _Corrupt(f"invalid JSON: {exc.msg} (at the end of the object)") from None
            continue
        except RecursionError:
            raise _Corrupt("invalid JSON: nested too deeply") from None
        try:
            value = orjson.loads(win.text[win.pos : end])
        except orjson.JSONDecodeError as exc:
            raise _Corrupt(f"invalid JSON: {exc}", end) from None
        win.pos = end
        return value


def _skip_bad(win: _Window, index: int, exc: _Corrupt, pattern: re.Pattern[str]) -> tuple[BadRecord, bool]:
    """Dead-letter the corrupt record at win.pos (where a failed decode leaves it) and move to
    where the next record can start; the bool is False when the stream has nothing after it."""
    reason = exc.reason
    if exc.end is not None:
        raw = win.text[win.pos : min(exc.end, win.pos + RAW_KEEP)]
        win.pos = exc.end
        return BadRecord(index, reason, raw.encode("utf-8", errors="replace")), True
    offset = 1
    raw: str | None = None
    while True:
        match = pattern.search(win.text, win.pos + offset)
        end = match.start() + (1 if pattern is _RESYNC_TOP else 0) if match else len(win.text)
        if raw is None:
            raw = win.text[win.pos : min(end, win.pos + RAW_KEEP)]
        if match:
            win.pos = end
            return BadRecord(index, reason, raw.encode("utf-8", errors="replace")), True
        win.pos = max(len(win.text) - 64, win.pos)  # a pattern may straddle the refill
        offset = 0
        if not win.fill():
            win.pos = len(win.text)
            return BadRecord(index, reason, raw.encode("utf-8", errors="replace")), False


def _classify(value: Any, index: int) -> Record | BadRecord | Skipped:
    if isinstance(value, dict):
        if "digestStartTime" in value or "digestS3Object" in value:
            return Skipped(index, "CloudTrail digest file: log-file integrity metadata, not an event")
        if "Records" in value:
            return BadRecord(index, "Records is not a list of records", json.dumps(value)[:RAW_KEEP].encode())
        detail = value.get("detail")
        if "detail-type" in value and isinstance(detail, dict) and "eventVersion" in detail:
            return index, detail  # an EventBridge "AWS API Call via CloudTrail" event
        return index, value
    raw = json.dumps(value)[:RAW_KEEP].encode()
    return BadRecord(index, f"expected a CloudTrail record (JSON object), got {type(value).__name__}", raw)


def _top_level(value: Any, index: int) -> list[Record | BadRecord | Skipped]:
    """The records of one whole top-level value: a Records document, an array, or one record."""
    if isinstance(value, dict) and isinstance(value.get("Records"), list):
        items: list[Record | BadRecord | Skipped] = [_classify(v, index + i) for i, v in enumerate(value["Records"])]
        if len(value) > 1 and next(iter(value)) == "Records":  # as the streaming path reports it
            rest = json.dumps({k: v for k, v in value.items() if k != "Records"})[:RAW_KEEP].encode()
            items.append(BadRecord(index + len(items), "unexpected content after the Records array", rest))
        return items
    if isinstance(value, list):
        return [_classify(v, index + i) for i, v in enumerate(value)]
    return [_classify(value, index)]


def iter_records(stream: BinaryIO) -> Iterator[Record | BadRecord | Skipped]:
    """Every record of a CloudTrail object, whatever its layout; positions are record ordinals."""
    win = _Window(stream)
    index = 0
    while win.skip_ws():
        win.ensure(CHUNK // 2)
        whole, value = _line_value(win)
        if whole:
            items = _top_level(value, index)
            index += len(items)
            yield from items
            continue
        opening = _RECORDS_OPEN.match(win.text, win.pos)
        if opening or win.text[win.pos] == "[":
            win.pos = opening.end() if opening else win.pos + 1
            for item in _array(win, index):
                index += 1
                yield item
            if opening and win.skip_ws():
                if win.text[win.pos] == "}":
                    win.pos += 1
                else:
                    # Here and below _skip_bad's "more" is not needed: with nothing left, skip_ws() ends the loop.
                    yield _skip_bad(win, index, _Corrupt("unexpected content after the Records array"), _RESYNC_TOP)[0]
                    index += 1
            continue
        try:
            value = _decode(win)
        except _Corrupt as exc:
            yield _skip_bad(win, index, exc, _RESYNC_TOP)[0]
            index += 1
            continue
        items = _top_level(value, index)
        index += len(items)
        yield from items


def _array(win: _Window, first_index: int) -> Iterator[Record | BadRecord | Skipped]:
    """The elements of a JSON array whose '[' has been consumed, up to and including its ']'."""
    index = first_index
    expect_value = True
    span = MAX_SPAN
    one_by_one_until = -1  # stream position (characters) up to which a refused batch is read record by record
    while True:
        if not win.skip_ws():
            yield BadRecord(index, "truncated: the object ends before the Records array is closed", b"")
            return
        char = win.text[win.pos]
        if char == "]":
            win.pos += 1
            return
        if char == "," and not expect_value:
            win.pos += 1
            expect_value = True
            continue
        if not expect_value and char == "{":  # a lost ',': report the damage, keep the record
            yield BadRecord(index, "expected ',' between records, found '{'", b"")
            index += 1
            expect_value = True
        if expect_value and char == "{" and win.dropped + win.pos >= one_by_one_until:
            win.ensure(span)
            batch, refused = _batch(win, span)
            if batch is not None:
                for value in batch:
                    yield _classify(value, index)
                    index += 1
                expect_value = False
                span = min(span * 2, MAX_SPAN)
                continue
            if refused != -1:
                one_by_one_until = win.dropped + refused
                span = max(span // 2, MIN_SPAN)
        try:
            if not expect_value:
                raise _Corrupt(f"expected ',' or ']' between records, found {char!r}")
            value = _decode(win)
        except _Corrupt as exc:
            bad, more = _skip_bad(win, index, exc, _RESYNC_IN_ARRAY)
            yield bad
            index += 1
            if not more:
                return
            expect_value = exc.end is None  # after a value we skipped whole, a ',' comes next
            continue
        yield _classify(value, index)
        index += 1
        expect_value = False
