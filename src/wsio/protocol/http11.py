"""The HTTP/1.1 subset of the opening handshake (RFC 7230), with hard limits.

Only what a WebSocket handshake needs: a ``GET`` request without a body on the
server side, and one response (101, or an error page with a body) on the
client side.  The parsers are incremental and sans-I/O: feed them bytes as they
arrive; they return a :class:`Request` / :class:`Response` once it is complete.

Both parsers run in linear time on any input: they keep a scan offset so that
feeding one byte at a time never rescans the buffer, and they never buffer more
than one line (``max_line``) plus a body bounded by ``max_body``.  Regexes are
only ever applied to a single, already delimited line and are anchored with
``fullmatch``; none of them can backtrack.
"""

from __future__ import annotations

import http
import re
from dataclasses import dataclass
from typing import Callable, Generic, TypeVar

# Headers live in datastructures.py; they are also importable from here, where they were first.
from .datastructures import BAD_VALUE_STR_RE, Headers, HeadersLike, MultipleValuesError
from .errors import InvalidHandshake, InvalidMessage, SecurityError
from .frames import SPEEDUPS

# The C accelerator, when built and allowed, splits a request head that came whole in one pass.
parse_request_head: Callable[..., tuple[str, list[str], dict[str, list[str]], int] | None] | None = None
if SPEEDUPS:
    from ._speedups import parse_request_head

__all__ = [
    "MultipleValuesError",
    "Headers",
    "HeadersLike",
    "Request",
    "Response",
    "HandshakeLimits",
    "RequestParser",
    "ResponseParser",
]


# RFC 7230 3.2.6: token = 1*tchar.
_TOKEN_RE = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# RFC 7230 3.2: field-value may hold HTAB, SP, VCHAR and obs-text, never other
# CTLs.  NUL, CR and LF are what header injection and smuggling attacks use.
_BAD_VALUE_RE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
# One whole, valid header line ``name: value`` with its CRLF, at a line start
# (MULTILINE): what _parse_header_line() accepts, as groups (name, the value
# without the surrounding whitespace it strips). Used to split a head that
# arrived whole in one C pass; a line it doesn't match takes the line-by-line
# path, which says what is wrong.
_HEADER_LINE_RE = re.compile(
    rb"^([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*((?:[^\x00-\x08\x0a-\x1f\x7f]*[^\x00-\x20\x7f])?)[ \t]*\r\n",
    re.MULTILINE,
)
# Request line pieces (RFC 7230 3.1.1), checked one line at a time.
_REQUEST_TARGET_RE = re.compile(rb"[\x21-\x7e]+")
_HTTP_VERSION_RE = re.compile(rb"HTTP/[0-9]\.[0-9]")
# Status line (RFC 7230 3.1.2); reason-phrase = *( HTAB / SP / VCHAR / obs-text ).
_STATUS_CODE_RE = re.compile(rb"[0-9]{3}")
_REASON_RE = re.compile(rb"[\t \x21-\x7e\x80-\xff]*")
# Chunk size (RFC 7230 4.1); 16 hex digits already exceed any sane max_body.
_CHUNK_SIZE_RE = re.compile(rb"[0-9A-Fa-f]{1,16}")
_DIGITS_RE = re.compile(r"[0-9]{1,19}")
# Request line pieces set from Python: printable ASCII, no space.
_REQUEST_LINE_FIELD_RE = re.compile(r"[\x21-\x7e]+")


def _check_start_line_field(name: str, value: object) -> None:
    """Refuse what would break the start line out of its line (CR, LF, ...).

    Headers are checked by :class:`Headers`; this covers what
    :meth:`Request.serialize` and :meth:`Response.serialize` write around them,
    so that a value taken from user input can't add a header (response
    splitting) on any path that serializes a message.
    """
    if name == "status_code":
        if isinstance(value, bool) or not isinstance(value, int) or not 100 <= value <= 999:
            raise ValueError(f"invalid HTTP status code: {value!r}; expected an integer from 100 to 999")
        return
    if name not in ("reason_phrase", "path", "method", "version"):
        return
    if not isinstance(value, str):
        raise TypeError(f"{name} must be str, got {type(value).__name__}")
    if name == "reason_phrase":
        bad = BAD_VALUE_STR_RE.search(value)
        if bad is not None:
            raise ValueError(
                f"invalid character {bad.group()!r} at position {bad.start()} in the reason "
                f"phrase; a reason phrase can't contain CR, LF or other control characters "
                f"(put data in a header or the body)"
            )
        try:
            value.encode("iso-8859-1")
        except UnicodeEncodeError as exc:
            raise ValueError(f"reason phrase isn't encodable in ISO-8859-1: character at position {exc.start}") from None
    elif _REQUEST_LINE_FIELD_RE.fullmatch(value) is None:
        # path, method, version: printable ASCII without spaces (RFC 7230 3.1.1).
        hint = " (percent-encode the path)" if name == "path" else ""
        raise ValueError(f"invalid request {name}: {value!r}; it must be printable ASCII without spaces{hint}")


@dataclass(init=False)
class Request:
    """An HTTP request head: the opening handshake sent by a client.

    Setting ``path``, ``method`` or ``version`` to a value with spaces or
    control characters raises :class:`ValueError`.
    """

    path: str
    headers: Headers
    method: str = "GET"
    version: str = "HTTP/1.1"

    def __init__(self, path: str, headers: Headers, method: str = "GET", version: str = "HTTP/1.1") -> None:
        # Written by hand rather than generated: one call per request, not one per field.
        if type(path) is not str or _REQUEST_LINE_FIELD_RE.fullmatch(path) is None:
            _check_start_line_field("path", path)  # raises
        if method != "GET":
            _check_start_line_field("method", method)
        if version != "HTTP/1.1":
            _check_start_line_field("version", version)
        fields = self.__dict__
        fields["path"] = path
        fields["headers"] = headers
        fields["method"] = method
        fields["version"] = version

    def __setattr__(self, name: str, value: object) -> None:
        _check_start_line_field(name, value)
        object.__setattr__(self, name, value)

    @property
    def protocol(self) -> str:
        """The HTTP version, ``"HTTP/1.1"``: websockets' name for :attr:`version`."""
        return self.version

    def serialize(self) -> bytes:
        """Return the request line and headers as bytes, ready to write."""
        # The target is ASCII by construction (parse_uri percent-encodes it);
        # encoding fails loudly rather than sending something unparseable.
        request_line = f"{self.method} {self.path} {self.version}\r\n"
        return request_line.encode("ascii") + self.headers.serialize()


# The reason phrases of the standard statuses: valid, no need to check them again per response.
_STANDARD_PHRASES = frozenset(status.phrase for status in http.HTTPStatus)


@dataclass(init=False)
class Response:
    """An HTTP response: the server's answer to the opening handshake.

    ``status_code`` must be an integer from 100 to 999 and ``reason_phrase``
    must not contain CR, LF or other control characters (HTAB aside), when the
    response is built and whenever they are set: otherwise :class:`ValueError`
    is raised. A server answers a ``process_request`` or ``process_response``
    that raises it with a 500, so a phrase built from user input can never
    add a header on the wire.
    """

    status_code: int
    reason_phrase: str
    headers: Headers
    body: bytes = b""

    def __init__(self, status_code: int, reason_phrase: str, headers: Headers, body: bytes = b"") -> None:
        # Written by hand rather than generated: one call per response, not one per field.
        if type(status_code) is not int or not 100 <= status_code <= 999:
            _check_start_line_field("status_code", status_code)  # raises, or accepts an int subclass
        if type(reason_phrase) is not str or (
            reason_phrase not in _STANDARD_PHRASES and (not reason_phrase.isascii() or BAD_VALUE_STR_RE.search(reason_phrase))
        ):
            _check_start_line_field("reason_phrase", reason_phrase)  # raises, or accepts ISO-8859-1
        fields = self.__dict__
        fields["status_code"] = status_code
        fields["reason_phrase"] = reason_phrase
        fields["headers"] = headers
        fields["body"] = body

    def __setattr__(self, name: str, value: object) -> None:
        _check_start_line_field(name, value)
        object.__setattr__(self, name, value)

    @property
    def status(self) -> int:
        """Alias of ``status_code``."""
        return self.status_code

    def serialize(self) -> bytes:
        """Return the status line, headers and body as bytes, ready to write."""
        head = f"HTTP/1.1 {self.status_code} {self.reason_phrase}\r\n{self.headers}".encode("iso-8859-1")
        return head + self.body if self.body else head

    @classmethod
    def from_status(
        cls,
        status: int,
        body: str | bytes = b"",
        headers: HeadersLike | None = None,
    ) -> Response:
        """Build a response for ``status`` with an optional text body.

        The reason phrase comes from :class:`http.HTTPStatus`.  ``headers``
        come first.  Then, unless already given: a body adds ``Content-Type:
        text/plain; charset=utf-8`` and ``Content-Length``; a response that may
        have a body but has none gets ``Content-Length: 0`` so the client need
        not wait for EOF; any status except 101 gets ``Connection: close``.
        """
        try:
            reason = http.HTTPStatus(status).phrase
        except ValueError:
            reason = ""
        if isinstance(body, str):
            body = body.encode("utf-8")
        response_headers = Headers(headers) if headers is not None else Headers()
        if body:
            if "Content-Type" not in response_headers:
                response_headers["Content-Type"] = "text/plain; charset=utf-8"
            if "Content-Length" not in response_headers:
                response_headers["Content-Length"] = str(len(body))
        elif _may_have_body(status) and "Content-Length" not in response_headers:
            response_headers["Content-Length"] = "0"
        if status != 101 and "Connection" not in response_headers:
            response_headers["Connection"] = "close"
        return cls(status, reason, response_headers, body)


def _may_have_body(status: int) -> bool:
    # RFC 7230 3.3.3: 1xx, 204 and 304 responses never have a body.
    return not (100 <= status < 200 or status == 204 or status == 304)


@dataclass(frozen=True)
class HandshakeLimits:
    """Hard limits on what the handshake parsers accept.

    They bound the memory and CPU a peer can make us spend before the
    handshake completes; every default fits real browsers and proxies.

    Attributes:
        max_line: longest request line, status line or header line, in bytes
            without CRLF.  Stops a peer that sends one endless line (a too
            long request line is answered with 414, a header line with 431).
        max_headers: most header lines.  Stops floods of tiny headers that
            would make the header map, and per-header work, grow (431).
        max_size: largest head (start line + headers + CRLFs), in bytes.
            Bounds the memory of a request before it is validated (431).
        max_body: largest response body the client reads (error pages).
            Stops a server that streams an endless body.
    """

    max_line: int = 8192
    max_headers: int = 128
    max_size: int = 65536
    max_body: int = 1 << 20


#: The limits when none are given: one frozen instance, shared.
DEFAULT_HANDSHAKE_LIMITS = HandshakeLimits()

# Parser states.  Line states read CRLF-terminated lines; byte states read
# raw bytes into the body.
_START = 0  # request line / status line
_HEADERS = 1
_BODY_LENGTH = 2  # Content-Length body
_BODY_EOF = 3  # body delimited by the end of the connection
_CHUNK_SIZE = 4
_CHUNK_DATA = 5
_CHUNK_END = 6  # CRLF after chunk data
_TRAILERS = 7
_DONE = 8

_LINE_STATES = frozenset({_START, _HEADERS, _CHUNK_SIZE, _CHUNK_END, _TRAILERS})

#: What a parser returns: :class:`Request` or :class:`Response`.
_MessageT = TypeVar("_MessageT", Request, Response)


class _Parser(Generic[_MessageT]):
    """Line splitting with limits, shared by both parsers.

    ``_buf[_start:]`` holds the bytes not parsed yet; ``_scan`` is how far
    ``_buf`` was already searched for LF, so no byte is searched twice.
    Parsed bytes are dropped before each append, and each append is capped
    by what the current state may still need: ``max_line + 2`` bytes while
    reading lines, the rest of a body (itself bounded by ``max_body``) after.
    """

    _what = "message"

    def __init__(self, limits: HandshakeLimits = DEFAULT_HANDSHAKE_LIMITS) -> None:
        self.limits = limits
        #: Bytes received after the message; valid once it is complete.
        self.leftover = b""
        self._buf = bytearray()
        self._start = 0
        self._scan = 0
        self._state = _START
        self._head_size = 0
        self._header_count = 0
        self._headers = Headers()
        self._error: InvalidHandshake | None = None
        self._result: _MessageT | None = None

    @property
    def buffered(self) -> int:
        """How many bytes are buffered and not yet parsed (for tests and stats)."""
        return len(self._buf) - self._start

    def _feed(self, data: bytes | bytearray | memoryview) -> _MessageT | None:
        if self._error is not None:
            raise self._error
        if self._state == _DONE:
            # The message was already returned; whatever follows is the peer's
            # next protocol's data (WebSocket frames).
            self.leftover += bytes(data)
            return None
        view = memoryview(data).cast("B")
        pos, end = 0, len(view)
        try:
            while True:
                self._process()
                if self._state == _DONE:
                    self.leftover = bytes(self._buf[self._start :]) + bytes(view[pos:])
                    self._buf = bytearray()
                    self._start = self._scan = 0
                    return self._result
                if self._start:
                    del self._buf[: self._start]
                    self._scan -= self._start
                    self._start = 0
                if pos >= end:
                    return None
                # Append only as much as the current state may need, so that
                # an endless line or body is rejected before it is buffered.
                take = min(end - pos, self._wanted())
                self._buf += view[pos : pos + take]
                pos += take
        except InvalidHandshake as exc:
            self._error = exc
            self._buf = bytearray()
            self._start = self._scan = 0
            raise

    def _wanted(self) -> int:
        # In line states, the current line may still grow to max_line + CRLF.
        return self.limits.max_line + 2 - len(self._buf)

    def _process(self) -> None:
        while self._state in _LINE_STATES:
            line = self._next_line()
            if line is None:
                return
            self._handle_line(line)

    def _next_line(self) -> bytes | None:
        """Pop one complete line from the buffer (without CRLF), or None."""
        buf = self._buf
        start = self._start
        idx = buf.find(b"\n", self._scan)
        if idx < 0:
            self._scan = len(buf)
            pending = len(buf) - start
            # Without LF yet, the line is at least pending - 1 bytes long
            # (the last byte may be its CR).
            if pending > self.limits.max_line + 1:
                size = pending - 1 if buf[-1] == 0x0D else pending
                self._line_too_long(size, at_least=True)
            self._check_head_size(pending, at_least=True)
            return None
        # RFC 7230 3.5 allows bare LF; we don't: lenient line endings are how
        # request smuggling between disagreeing parsers starts.
        if idx == start or buf[idx - 1] != 0x0D:
            raise InvalidMessage(f"invalid line ending in {self._what}: LF without CR")
        line = bytes(buf[start : idx - 1])
        self._start = self._scan = idx + 1
        if len(line) > self.limits.max_line:  # pragma: no cover - caught above
            self._line_too_long(len(line), at_least=False)
        if b"\r" in line:
            raise InvalidMessage(f"invalid line ending in {self._what}: CR without LF")
        if self._state in (_START, _HEADERS):
            self._head_size += len(line) + 2
            self._check_head_size(0, at_least=False)
        return line

    def _line_too_long(self, size: int, *, at_least: bool) -> None:
        what = {
            _START: self._start_line_name,
            _CHUNK_SIZE: "chunk size line",
            _CHUNK_END: "chunk end line",
            _TRAILERS: "trailer line",
        }.get(self._state, "header line")
        prefix = "at least " if at_least else ""
        status = 414 if self._state == _START and self._what == "request" else 431
        raise SecurityError(
            f"{what} of {prefix}{size} bytes exceeds max_line={self.limits.max_line}",
            status,
        )

    def _check_head_size(self, pending: int, *, at_least: bool) -> None:
        if self._state not in (_START, _HEADERS):
            return
        size = self._head_size + pending
        if size > self.limits.max_size:
            prefix = "at least " if at_least else ""
            raise SecurityError(
                f"{self._what} head of {prefix}{size} bytes exceeds max_size={self.limits.max_size}",
                431,
            )

    _start_line_name = "start line"

    def _handle_line(self, line: bytes) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _parse_header_line(self, line: bytes) -> tuple[str, str]:
        """Parse ``name: value`` (RFC 7230 3.2) with strict checks."""
        if line[:1] in (b" ", b"\t"):
            # RFC 7230 3.2.4: obs-fold must be rejected (or replaced) by a
            # server; a continuation line is also a classic smuggling vector.
            raise InvalidMessage(f"obsolete line folding in {self._what} headers")
        self._header_count += 1
        if self._header_count > self.limits.max_headers:
            raise SecurityError(
                f"more than max_headers={self.limits.max_headers} headers in {self._what}",
                431,
            )
        name, colon, value = line.partition(b":")
        if not colon:
            # Not echoed: without a colon there is no telling name from value.
            raise InvalidMessage(f"invalid header line without colon ({len(line)} bytes) in {self._what}")
        # RFC 7230 3.2.4: no whitespace between name and colon (must be 400).
        if _TOKEN_RE.fullmatch(name) is None:
            raise InvalidMessage(f"invalid header name: {_show(name)}")
        value = value.strip(b" \t")
        bad = _BAD_VALUE_RE.search(value)
        if bad is not None:
            # The value is never echoed (in the log line or the 400 body): it
            # may be a credential (Authorization, Cookie, an API key).
            raise InvalidMessage(
                f"invalid character in {name.decode('ascii')} header value: {_show(bad.group())} at position {bad.start()}"
            )
        return _header_strings(name, value)

    def _add_header(self, line: bytes) -> None:
        name, value = self._parse_header_line(line)
        # Values were checked above; skip Headers.__setitem__'s re-validation.
        self._headers._append(name, value)


# A server keeps every connection's request headers, and most are the same
# from one client to the next: one str per distinct name, and per distinct
# value of the headers below, instead of one per connection (about 600 bytes
# per idle connection). Bounded: once full, nothing is added, so a client
# sending endless distinct values costs each table at most _SHARED_MAX entries.
_SHARED_MAX = 512
_NAMES: dict[bytes, str] = {}
_VALUES: dict[bytes, str] = {}
_LOWER_NAMES: dict[bytes, str] = {}  # the C path's: the index's keys
_SHARED_VALUES = frozenset(
    {
        b"host", b"upgrade", b"connection", b"sec-websocket-version", b"sec-websocket-extensions",
        b"sec-websocket-protocol", b"origin", b"user-agent", b"accept-encoding", b"accept-language",
        b"cache-control", b"pragma", b"server",
    }
)  # fmt: skip


def whole_request(data: bytes, limits: HandshakeLimits) -> tuple[Request, int] | None:
    """The usual request head, whole in ``data``, split by the accelerator in one pass.

    Return the request and the size of its head, or None: without the
    accelerator, for an incomplete head, and for anything but a ``GET ...
    HTTP/1.1`` with valid header lines within ``limits`` and no framing header
    (``Content-Length``, ``Transfer-Encoding``); :class:`RequestParser` then
    parses it, and says exactly what is wrong. A server tries this first, so
    that the usual request needs no parser object (the tests hold both to the
    same outcome).
    """
    if parse_request_head is None:
        return None
    found = parse_request_head(
        data, limits.max_line, limits.max_size, limits.max_headers,
        _NAMES, _VALUES, _LOWER_NAMES, _SHARED_VALUES, _SHARED_MAX,
    )  # fmt: skip
    if found is None:
        return None
    # What _handle_line() and _finish() would have found; C built the lookup index too.
    path, items, index, size = found
    return Request(path, Headers._made(items, index)), size


def _header_strings(name: bytes, value: bytes) -> tuple[str, str]:
    """A checked header line's name and value as the ``str`` the headers keep (shared where they repeat)."""
    return _shared(name, _NAMES) or name.decode("ascii"), (
        _shared(value, _VALUES) if name.lower() in _SHARED_VALUES else None
    ) or value.decode("iso-8859-1")


def _shared(data: bytes, table: dict[bytes, str]) -> str | None:
    """The one str for ``data`` in ``table``, added if there is room; None if full and absent."""
    text = table.get(data)
    if text is None and len(table) < _SHARED_MAX:
        text = table[data] = data.decode("iso-8859-1")
    return text


def _show(data: bytes, limit: int = 80) -> str:
    """Render untrusted bytes for an error message, truncated."""
    text = repr(data[:limit])[2:-1]
    return text + ("..." if len(data) > limit else "")


# A query string in a request line or target, up to the next space.
_QUERY_RE = re.compile(rb"\?[^ ]*")


def _show_redacted(data: bytes) -> str:
    """Like :func:`_show`, with query strings cut: they often carry tokens (``?token=``)."""
    return _show(_QUERY_RE.sub(b"?***", data))


def _content_length(headers: Headers, what: str) -> int | None:
    """Return Content-Length, or None; reject malformed or conflicting values."""
    values = headers.get_all("Content-Length")
    if not values:
        return None
    # RFC 7230 3.3.2: identical repeated values may be merged; anything else
    # is an error (and a request smuggling vector).
    items = {item.strip() for value in values for item in value.split(",")}
    if len(items) != 1:
        raise InvalidMessage(f"conflicting Content-Length values in {what}: {', '.join(values)}")
    (item,) = items
    if _DIGITS_RE.fullmatch(item) is None:
        raise InvalidMessage(f"invalid Content-Length in {what}: {item}")
    return int(item)


class RequestParser(_Parser[Request]):
    """Incremental parser for the client's opening handshake request.

    Call :meth:`feed` with bytes as they arrive.  It returns ``None`` until the
    request head is complete, then the :class:`Request`; :attr:`leftover` then
    holds the bytes that followed the head (the client may send frames right
    away).  Later calls to :meth:`feed` append to :attr:`leftover`.

    Malformed input raises :class:`~wsio.exceptions.InvalidMessage` and an
    exceeded limit raises :class:`~wsio.exceptions.SecurityError`; both carry
    the HTTP ``status`` to answer with.  After an error the parser is dead and
    raises the same error again.
    """

    _what = "request"
    _start_line_name = "request line"

    def __init__(self, limits: HandshakeLimits = DEFAULT_HANDSHAKE_LIMITS) -> None:
        super().__init__(limits)
        self._method = ""
        self._path = ""
        self._version = ""

    def feed(self, data: bytes | bytearray | memoryview) -> Request | None:
        """Parse ``data``; return the :class:`Request` once its head is complete."""
        if self._state == _START and not self._buf and self._error is None:
            request = self._feed_whole_head(bytes(data))
            if request is not None:
                return request
        return self._feed(data)

    def _feed_whole_head(self, data: bytes) -> Request | None:
        """The usual case, the whole head in the first read: split it in one pass.

        The lines go through the same checks as on the incremental path. Anything
        unusual (an incomplete head, a bare CR or LF, a line or a head over its
        limit) returns None and takes the incremental path, which says exactly
        what is wrong and where. With the accelerator, the pass is C's
        ``parse_request_head()``, which also builds the headers' lookup index
        and leaves to the incremental path anything but a plain ``GET`` with
        valid header lines and no ``Content-Length`` or ``Transfer-Encoding``
        (the tests hold both passes to the incremental path's outcome).
        """
        limits = self.limits
        if parse_request_head is not None:
            found = whole_request(data, limits)
            if found is None:
                return None
            request, size = found
            self._headers = request.headers
            self._result = request
            self._state = _DONE
            self.leftover = data[size:]
            return request
        end = data.find(b"\r\n\r\n")
        if end < 0 or end + 4 > limits.max_size:
            return None
        head = data[:end]
        crlf = head.count(b"\r\n")
        if head.count(b"\r") != crlf or head.count(b"\n") != crlf:
            return None
        lines = head.split(b"\r\n")
        if max(map(len, lines)) > limits.max_line:
            return None
        # Every header line valid (one match per line) and not too many: split them in one pass.
        pairs = _HEADER_LINE_RE.findall(data, len(lines[0]) + 2, end + 2) if crlf else []
        if len(pairs) != crlf or crlf > limits.max_headers:
            return None
        try:
            self._handle_line(lines[0])
            self._header_count = crlf
            append = self._headers._append
            for name, value in pairs:
                append(*_header_strings(name, value))
            self._head_size = end + 4
            self._handle_line(b"")  # the empty line that ends the head
        except InvalidHandshake as exc:
            self._error = exc
            raise
        self.leftover = data[end + 4 :]
        return self._result

    def feed_eof(self) -> None:
        """Signal the end of the connection; raise if the request is incomplete."""
        if self._error is not None:
            raise self._error
        if self._state != _DONE:
            self._error = InvalidMessage("connection closed before the request head was complete")
            self._error.__cause__ = EOFError("connection closed")  # as websockets: retryable, see process_exception()
            raise self._error

    def _handle_line(self, line: bytes) -> None:
        if self._state == _START:
            self._parse_request_line(line)
            self._state = _HEADERS
        elif line:
            self._add_header(line)
        else:
            self._finish()

    def _parse_request_line(self, line: bytes) -> None:
        # RFC 7230 3.1.1: method SP request-target SP HTTP-version, single SPs.
        parts = line.split(b" ")
        if len(parts) != 3:
            raise InvalidMessage(f"invalid request line: {_show_redacted(line)}")
        method, target, version = parts
        if _TOKEN_RE.fullmatch(method) is None:
            raise InvalidMessage(f"invalid HTTP method: {_show(method)}")
        if _REQUEST_TARGET_RE.fullmatch(target) is None:
            raise InvalidMessage(f"invalid request target: {_show_redacted(target)}")
        if _HTTP_VERSION_RE.fullmatch(version) is None:
            raise InvalidMessage(f"invalid HTTP version: {_show(version)}")
        if version != b"HTTP/1.1":
            # RFC 6455 4.1: the handshake is an HTTP/1.1 request.
            raise InvalidMessage(f"unsupported HTTP version {version.decode('ascii')}; only HTTP/1.1 is supported")
        if method != b"GET":
            # RFC 6455 4.1: the handshake is a GET; 405 with Allow: GET.
            raise InvalidMessage(f"unsupported HTTP method {method.decode('ascii')}; only GET is allowed", 405)
        # origin-form or absolute-form (RFC 7230 5.3.1-2); nothing else makes
        # sense for a GET to a WebSocket endpoint.
        if not (target.startswith(b"/") or b"://" in target):
            raise InvalidMessage(f"invalid request target: {_show_redacted(target)}")
        # GET and HTTP/1.1, checked above: the constants, not a copy per request.
        self._method = "GET"
        self._path = target.decode("ascii")
        self._version = "HTTP/1.1"

    def _finish(self) -> None:
        headers = self._headers
        # RFC 6455 4.1: the handshake has no body.  Refusing any framing
        # header also closes the door on request smuggling.
        if "Transfer-Encoding" in headers:
            raise InvalidMessage("unsupported Transfer-Encoding in request; a handshake has no body")
        length = _content_length(headers, "request")
        if length:
            raise InvalidMessage(f"request body of {length} bytes not allowed; a handshake has no body")
        self._result = Request(self._path, headers, self._method, self._version)
        self._state = _DONE


class ResponseParser(_Parser[Response]):
    """Incremental parser for the server's answer to the opening handshake.

    Call :meth:`feed` with bytes as they arrive, and :meth:`feed_eof` when the
    connection ends.  Either returns the :class:`Response` once it is complete
    (``None`` before).  :attr:`leftover` then holds the bytes that followed it
    (after a 101, the server's first frames).

    A 101 (and any 1xx, 204, 304) has no body.  Other bodies are read by
    ``Content-Length``, ``Transfer-Encoding: chunked``, or until EOF, and are
    bounded by ``max_body``.
    """

    _what = "response"
    _start_line_name = "status line"

    def __init__(self, limits: HandshakeLimits = DEFAULT_HANDSHAKE_LIMITS) -> None:
        super().__init__(limits)
        self._status_code = 0
        self._reason = ""
        self._body = bytearray()
        self._remaining = 0
        self._received_anything = False

    def feed(self, data: bytes | bytearray | memoryview) -> Response | None:
        """Parse ``data``; return the :class:`Response` once it is complete."""
        if data:
            self._received_anything = True
        return self._feed(data)

    def feed_eof(self) -> Response | None:
        """Signal the end of the connection.

        Returns the :class:`Response` if its body was delimited by EOF, None if
        it was already returned; raises InvalidMessage if it is incomplete.
        """
        if self._error is not None:
            raise self._error
        if self._state == _DONE:
            return None
        if self._state == _BODY_EOF:
            self._complete()
            return self._result
        if self._state == _START and not self._received_anything:
            msg = "connection closed before the HTTP response"
        elif self._state in (_START, _HEADERS):
            msg = "connection closed while reading the HTTP response head"
        elif self._state == _BODY_LENGTH:
            msg = f"connection closed after {len(self._body)} bytes of a {len(self._body) + self._remaining}-byte response body"
        else:
            msg = "connection closed in the middle of a chunked response body"
        self._error = InvalidMessage(msg)
        self._error.__cause__ = EOFError("connection closed")  # as websockets: retryable, see process_exception()
        raise self._error

    def _wanted(self) -> int:
        if self._state in (_BODY_LENGTH, _CHUNK_DATA):
            return self._remaining
        if self._state == _BODY_EOF:
            # One byte more than allowed is enough to know it's too big.
            return self.limits.max_body + 1 - len(self._body)
        return super()._wanted()

    def _process(self) -> None:
        while self._state != _DONE:
            if self._state in _LINE_STATES:
                line = self._next_line()
                if line is None:
                    return
                self._handle_line(line)
            elif self._start == len(self._buf):
                return
            elif self._state == _BODY_EOF:
                # Bytes beyond max_body + 1 are never copied into the body.
                room = self.limits.max_body + 1 - len(self._body)
                self._take_body(room)
                if len(self._body) > self.limits.max_body:
                    self._body_too_big(len(self._body), at_least=True)
            else:  # _BODY_LENGTH or _CHUNK_DATA
                self._remaining -= self._take_body(self._remaining)
                if self._remaining == 0:
                    if self._state == _BODY_LENGTH:
                        self._complete()
                    else:
                        self._state = _CHUNK_END

    def _take_body(self, limit: int) -> int:
        """Move up to ``limit`` buffered bytes into the body; return how many."""
        start = self._start
        chunk = self._buf[start : start + limit]
        self._body += chunk
        self._start = self._scan = start + len(chunk)
        return len(chunk)

    def _body_too_big(self, size: int, *, at_least: bool) -> None:
        prefix = "at least " if at_least else ""
        raise SecurityError(f"response body of {prefix}{size} bytes exceeds max_body={self.limits.max_body}")

    def _handle_line(self, line: bytes) -> None:
        state = self._state
        if state == _START:
            self._parse_status_line(line)
            self._state = _HEADERS
        elif state == _HEADERS:
            if line:
                self._add_header(line)
            else:
                self._end_of_head()
        elif state == _CHUNK_SIZE:
            self._parse_chunk_size(line)
        elif state == _CHUNK_END:
            if line:
                raise InvalidMessage(f"chunk data not followed by CRLF: {_show(line)}")
            self._state = _CHUNK_SIZE
        else:  # _TRAILERS: parsed for validity and limits, then dropped.
            if line:
                self._parse_header_line(line)
            else:
                self._complete()

    def _parse_status_line(self, line: bytes) -> None:
        # RFC 7230 3.1.2: HTTP-version SP status-code SP reason-phrase.  Some
        # servers omit the SP before an empty reason; tolerate that.
        version, _, rest = line.partition(b" ")
        code, _, reason = rest.partition(b" ")
        if _HTTP_VERSION_RE.fullmatch(version) is None:
            raise InvalidMessage(f"invalid status line: {_show(line)}")
        # HTTP/1.0 is accepted so that an old proxy's error page is reported
        # as such; a 101 over HTTP/1.0 is refused below.
        if version not in (b"HTTP/1.1", b"HTTP/1.0"):
            raise InvalidMessage(f"unsupported HTTP version {version.decode('ascii')}; only HTTP/1.1 is supported")
        if _STATUS_CODE_RE.fullmatch(code) is None or not 100 <= int(code) <= 599:
            raise InvalidMessage(f"invalid HTTP status code: {_show(code)}")
        if _REASON_RE.fullmatch(reason) is None:
            raise InvalidMessage(f"invalid HTTP reason phrase: {_show(reason)}")
        self._status_code = int(code)
        if self._status_code == 101 and version != b"HTTP/1.1":
            raise InvalidMessage("101 Switching Protocols over HTTP/1.0")
        self._reason = reason.decode("iso-8859-1")

    def _end_of_head(self) -> None:
        headers = self._headers
        if not _may_have_body(self._status_code):
            self._complete()
            return
        if "Transfer-Encoding" in headers:
            codings = [
                item.strip().lower()
                for value in headers.get_all("Transfer-Encoding")
                for item in value.split(",")
                if item.strip()
            ]
            # Only "chunked" alone: we can't undo other codings and RFC 7230
            # 3.3.3 makes anything not ending in chunked EOF-delimited anyway.
            if codings != ["chunked"]:
                value = ", ".join(headers.get_all("Transfer-Encoding"))
                raise InvalidMessage(f"unsupported Transfer-Encoding: {value}")
            self._state = _CHUNK_SIZE
            self._header_count = 0  # trailers get their own max_headers budget
            return
        length = _content_length(headers, "response")
        if length is None:
            self._state = _BODY_EOF
        elif length > self.limits.max_body:
            self._body_too_big(length, at_least=False)
        elif length == 0:
            self._complete()
        else:
            self._state = _BODY_LENGTH
            self._remaining = length

    def _parse_chunk_size(self, line: bytes) -> None:
        # RFC 7230 4.1: chunk-size [ chunk-ext ]; extensions are ignored.
        size_text = line.split(b";", 1)[0].strip(b" \t")
        if _CHUNK_SIZE_RE.fullmatch(size_text) is None:
            raise InvalidMessage(f"invalid chunk size: {_show(line)}")
        size = int(size_text, 16)
        if len(self._body) + size > self.limits.max_body:
            self._body_too_big(len(self._body) + size, at_least=True)
        if size == 0:
            self._state = _TRAILERS
        else:
            self._state = _CHUNK_DATA
            self._remaining = size

    def _complete(self) -> None:
        self._result = Response(self._status_code, self._reason, self._headers, bytes(self._body))
        self._body = bytearray()
        self._state = _DONE
