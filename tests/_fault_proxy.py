"""A fault-injecting HTTP/1.1 TCP proxy on 127.0.0.1, in front of the real OpenSearch node.

The real node cannot be made to answer 429 or 503, drop a connection halfway through a response
or go silent for a while on demand, so this proxy scripts those faults (the project allows a
scripted fake only for such faults). It parses just enough HTTP/1.1 to know where each request and
response ends (Content-Length or chunked), so it can answer a whole request with a canned error and
keep the connection usable, or cut/stall it at a precise point. Which fault a request gets is drawn
from a seeded ``random.Random`` in arrival order, so a failing run can be replayed.

Faults, per request matching ``fault_paths``:

* ``429`` / ``503``: the request is read whole and answered with a canned OpenSearch-style error;
  the node never sees it.
* ``reset_request``: part of the request is read, then the connection is reset (RST); the node
  never sees it.
* ``reset_response``: the node processes the request, the client gets half of the response, then
  a reset: the write happened but was never acknowledged (the dangerous case for duplicates).
* ``stall``: the node processes the request; the response head is sent, then nothing for
  ``stall_seconds`` before the rest (longer than the client's timeout, it is a read timeout).
"""

from __future__ import annotations

import contextlib
import random
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Sequence

FAULTS = ("429", "503", "reset_request", "reset_response", "stall")
_CANNED = {
    "429": (
        b"429 Too Many Requests",
        b'{"error":{"type":"es_rejected_execution_exception","reason":"injected by the fault proxy"},"status":429}',
    ),
    "503": (
        b"503 Service Unavailable",
        b'{"error":{"type":"unavailable_shards_exception","reason":"injected by the fault proxy"},"status":503}',
    ),
}


class _Closed(Exception):
    """The peer closed the connection before a whole message arrived."""


class _Reader:
    """Buffered reads of whole HTTP/1.1 messages from one socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise _Closed
        self.buf += data

    def _take(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line + b"\r\n"

    def head(self) -> bytes:
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        return head + b"\r\n\r\n"

    def body(self, head: bytes, is_response_to_head: bool = False) -> bytes:
        """The message body after `head` (Content-Length, chunked, or none)."""
        headers = _headers(head)
        if is_response_to_head or head.split(b" ", 2)[1:2] in ([b"204"], [b"304"]):
            return b""
        if b"chunked" in headers.get(b"transfer-encoding", b"").lower():
            parts = []
            while True:
                size_line = self._line()
                parts.append(size_line)
                size = int(size_line.split(b";")[0].strip(), 16)
                if size == 0:
                    while True:  # trailers, up to the empty line
                        trailer = self._line()
                        parts.append(trailer)
                        if trailer == b"\r\n":
                            return b"".join(parts)
                parts.append(self._take(size + 2))
        return self._take(int(headers.get(b"content-length", b"0")))


def _headers(head: bytes) -> dict[bytes, bytes]:
    out: dict[bytes, bytes] = {}
    for line in head.split(b"\r\n")[1:]:
        if b":" in line:
            name, value = line.split(b":", 1)
            out[name.strip().lower()] = value.strip()
    return out


def _reset(sock: socket.socket) -> None:
    """Close with an RST (SO_LINGER 0), as a crashed peer or a middlebox would."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class FaultProxy:
    """Listen on 127.0.0.1 (a free port); forward to upstream, injecting faults by a seeded schedule."""

    def __init__(
        self,
        upstream: tuple[str, int],
        seed: int,
        fault_rate: float = 0.3,
        faults: Sequence[str] = FAULTS,
        fault_paths: Sequence[str] = ("/_bulk",),
        stall_seconds: float = 1.5,
    ) -> None:
        self.upstream = upstream
        self.rng = random.Random(seed)
        self.fault_rate = fault_rate
        self.faults = tuple(faults)
        self.fault_paths = tuple(fault_paths)
        self.stall_seconds = stall_seconds
        self.counts: Counter[str] = Counter()  # action -> requests that got it ("pass" included)
        self.matching = 0  # requests on fault_paths seen so far (the test kills the loader by this clock)
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._stopping = False
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stopping = True
        self._server.close()

    def _accept(self) -> None:
        while not self._stopping:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def reseed(self, seed: int) -> None:
        """Start a new schedule: the faults the next requests get are the draws of this seed, in order."""
        with self._lock:
            self.rng = random.Random(seed)

    def _choose(self, path: bytes) -> str:
        if not path.decode("latin-1").split("?")[0].endswith(self.fault_paths):
            return "pass"
        with self._lock:
            self.matching += 1
            action = self.rng.choice(self.faults) if self.rng.random() < self.fault_rate else "pass"
            self.counts[action] += 1
            return action

    def _serve(self, client: socket.socket) -> None:
        upstream: socket.socket | None = None
        try:
            reader = _Reader(client)
            while True:
                head = reader.head()
                method, path = head.split(b" ", 2)[:2]
                action = self._choose(path)
                if action == "reset_request":
                    # The head and at most half of the body got here; the rest never will.
                    _reset(client)
                    return
                body = reader.body(head)
                if action in _CANNED:
                    status, payload = _CANNED[action]
                    client.sendall(
                        b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json; charset=UTF-8\r\n"
                        b"content-length: " + str(len(payload)).encode() + b"\r\n\r\n" + payload
                    )
                    continue
                if upstream is None:
                    upstream = socket.create_connection(self.upstream)
                    up_reader = _Reader(upstream)
                upstream.sendall(head + body)
                response_head = up_reader.head()
                response = response_head + up_reader.body(response_head, method == b"HEAD")
                if action == "reset_response":
                    client.sendall(response[: len(response) // 2])
                    _reset(client)
                    return
                if action == "stall":
                    client.sendall(response_head)
                    time.sleep(self.stall_seconds)
                    client.sendall(response[len(response_head) :])
                    continue
                client.sendall(response)
        except (_Closed, OSError):
            pass
        finally:
            for sock in (client, upstream):
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.close()
