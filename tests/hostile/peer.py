"""Raw-socket peers for the hostile tests: handshakes and frames written by hand, no wsio client.

A hostile peer must be able to send what no client library would (an unmasked
frame, a 2**63-1 length, a header that never ends), so these helpers build the
bytes themselves; they parse what the server answers just enough to check it.
"""

from __future__ import annotations

import base64
import os
import socket
import struct
import time
import zlib

from wsio.protocol.frames import py_apply_mask

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
MASK = b"\x37\xfa\x21\x3d"

OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x1, 0x2, 0x8, 0x9, 0xA


def request_bytes(
    path: str = "/", *extra: str, key: str | None = KEY, method: str = "GET", version: str = "HTTP/1.1", ws_version: str = "13"
) -> bytes:
    """A handshake request; ``extra`` header lines go after the usual ones."""
    lines = [
        f"{method} {path} {version}",
        "Host: 127.0.0.1",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Version: {ws_version}",
    ]
    if key is not None:
        lines.append(f"Sec-WebSocket-Key: {key}")
    return ("\r\n".join([*lines, *extra]) + "\r\n\r\n").encode("latin-1")


def connect(port: int, timeout: float = 5) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_head(sock: socket.socket, timeout: float = 5) -> tuple[int, dict[str, str], bytes]:
    """Read an HTTP response head; return (status, headers with lower-case names, bytes after the head)."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"EOF before the end of the response head: {data[:200]!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, rest


def http_status(port: int, raw: bytes, timeout: float = 5) -> tuple[int, dict[str, str]]:
    """Send ``raw`` on a new connection; return the status and headers of the answer."""
    with connect(port, timeout) as sock:
        try:
            sock.sendall(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before reading all of a huge request
        status, headers, _ = read_head(sock, timeout)
        return status, headers


def open_websocket(port: int, path: str = "/", *extra: str, timeout: float = 5) -> tuple[socket.socket, bytes]:
    """Connect and complete the handshake; return the socket and any bytes read past the 101."""
    sock = connect(port, timeout)
    sock.sendall(request_bytes(path, *extra))
    status, headers, rest = read_head(sock, timeout)
    assert status == 101, (status, headers)
    return sock, rest


def frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv1: bool = False,
    mask: bytes | None = MASK,
    length: int | None = None,
) -> bytes:
    """A frame as a client sends it (masked unless ``mask=None``); ``length`` overrides the announced length."""
    n = len(payload) if length is None else length
    head = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    bit = 0x80 if mask is not None else 0
    if n < 126:
        header = bytes((head, bit | n))
    elif n < 65536:
        header = struct.pack("!BBH", head, bit | 126, n)
    else:
        header = struct.pack("!BBQ", head, bit | 127, n)
    if mask is None:
        return header + payload
    return header + mask + py_apply_mask(payload, mask)


def deflate(data: bytes) -> bytes:
    """A permessage-deflate payload: raw deflate, sync-flushed, without the 00 00 ff ff tail."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return (compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]


class FrameReader:
    """Reads the server's (unmasked) frames from a socket."""

    def __init__(self, sock: socket.socket, buffered: bytes = b"") -> None:
        self.sock = sock
        self.buf = bytearray(buffered)

    def _fill(self, n: int, deadline: float) -> bool:
        while len(self.buf) < n:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no complete frame in time")
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                return False
            if not chunk:
                return False
            self.buf += chunk
        return True

    def next_frame(self, timeout: float = 5) -> tuple[int, bytes] | None:
        """The next frame as (opcode, payload); None at EOF or reset."""
        deadline = time.monotonic() + timeout
        if not self._fill(2, deadline):
            return None
        n = self.buf[1] & 0x7F
        start = 2
        if n == 126:
            if not self._fill(4, deadline):
                return None
            n = struct.unpack_from("!H", self.buf, 2)[0]
            start = 4
        elif n == 127:
            if not self._fill(10, deadline):
                return None
            n = struct.unpack_from("!Q", self.buf, 2)[0]
            start = 10
        if not self._fill(start + n, deadline):
            return None
        opcode = self.buf[0] & 0x0F
        payload = bytes(self.buf[start : start + n])
        del self.buf[: start + n]
        return opcode, payload

    def close_frame(self, timeout: float = 5) -> tuple[int, str] | None:
        """Skip to the server's close frame; return (code, reason), or None if the connection ended without one."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.next_frame(max(deadline - time.monotonic(), 0.001))
            if got is None:
                return None
            opcode, payload = got
            if opcode == OP_CLOSE:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                return code, payload[2:].decode("utf-8", "replace")


def wait_eof(sock: socket.socket, timeout: float) -> float:
    """Read and drop until the server ends the connection; return how long that took."""
    start = time.monotonic()
    deadline = start + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"the server kept the connection open for more than {timeout}s")
        sock.settimeout(remaining)
        try:
            if not sock.recv(65536):
                break
        except (ConnectionResetError, BrokenPipeError):
            break
    return time.monotonic() - start


def echo_roundtrip(port: int, timeout: float = 5) -> float:
    """What a well-behaved client does: connect, handshake, one echo, close. Return the seconds it took."""
    start = time.monotonic()
    sock, rest = open_websocket(port, "/", timeout=timeout)
    try:
        payload = os.urandom(8).hex().encode()
        sock.sendall(frame(OP_TEXT, payload))
        reader = FrameReader(sock, rest)
        got = reader.next_frame(timeout)
        assert got == (OP_TEXT, payload), got
        sock.sendall(frame(OP_CLOSE, struct.pack("!H", 1000)))
        reader.close_frame(timeout)
    finally:
        sock.close()
    return time.monotonic() - start


def abort(sock: socket.socket) -> None:
    """Close with a TCP reset (SO_LINGER 0): the abrupt drop of a crashed client."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def random_key() -> str:
    return base64.b64encode(os.urandom(16)).decode()
