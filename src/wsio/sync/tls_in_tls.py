"""TLS inside TLS for the thread client: a TLS session carried by an :class:`ssl.SSLSocket`.

For wss:// through an https:// proxy, the TLS session with the server runs
inside the TLS session with the proxy. An ``SSLSocket`` can't carry a second
TLS session, so :class:`TLSInTLSSocket` runs the inner one in memory: an
:class:`ssl.SSLObject` between two :class:`ssl.MemoryBIO`, whose records go
out with the outer socket's ``sendall()`` and come in with its ``recv()``.
It offers what :class:`wsio.sync.connection.Connection` uses of a socket.

Threads: one thread reads (``recv()``) while any number write (``sendall()``).

- ``_state_lock`` guards the ``SSLObject`` and both BIOs, which OpenSSL
  doesn't let two threads use at once. It is held for memory operations
  only, never while blocking on the outer socket.
- ``_send_lock`` is held by a writer from ``SSLObject.write()`` through the
  outer ``sendall()`` of the records that made, so records leave in the
  order of their sequence numbers.
- Lock order: the send lock, then the state lock.

The reader may have records to send too (TLS 1.3 post-handshake messages,
such as the answer to a ``KeyUpdate``). It only tries the send lock: if a
writer holds it, that writer sends them after releasing it, so the reader
never waits for a writer stuck on a peer that doesn't read.

The outer socket is an ``SSLSocket`` read by one thread and written by others,
as a direct wss:// connection's is: that needs blocking mode (timeout
``None``), which the connection sets after its handshake. With a timeout,
OpenSSL's retry state is shared by both directions and a read can fail with
an EOF that isn't one.
"""

from __future__ import annotations

import socket
import ssl
import threading
from typing import Any, Callable

__all__ = ["TLSInTLSSocket"]

#: Bytes asked of the outer socket per read; it returns one outer TLS record (16 KiB at most).
_OUTER_READ_SIZE = 65536
#: Plaintext encrypted per round of sendall(): bounds the outgoing BIO for large messages.
_WRITE_CHUNK = 131072


class TLSInTLSSocket:
    """A client TLS session over ``outer``, a connected :class:`ssl.SSLSocket`, with a socket's methods.

    Create it, then call :meth:`do_handshake`. ``fileno()``, timeouts,
    addresses and socket options are the outer socket's; ``getpeercert()``,
    ``version()``, ``cipher()``, ``selected_alpn_protocol()`` and the like
    describe the inner session.

    Args:
        outer: the socket that carries the session (the tunnel through the proxy).
        context: the :class:`ssl.SSLContext` of the inner session.
        server_hostname: the name checked in the certificate and sent in SNI.
    """

    def __init__(self, outer: ssl.SSLSocket, context: ssl.SSLContext, server_hostname: str | None = None) -> None:
        #: The socket that carries the session; ``_shutdown()`` in the connection shuts this one down.
        self.outer_socket = outer
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._sslobj = context.wrap_bio(self._incoming, self._outgoing, server_side=False, server_hostname=server_hostname)
        self._state_lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._eof = False  # close_notify or the end of the tunnel was read

    # -- the handshake ---------------------------------------------------------------------

    def do_handshake(self, remaining: Callable[[], float | None] | None = None) -> None:
        """Run the TLS handshake with the server, through the outer socket.

        ``remaining()`` gives the seconds left for each read and write
        (``None``: no limit) and may raise :class:`TimeoutError` itself;
        without it, the outer socket's timeout applies. Raises
        :class:`socket.timeout` when the server doesn't answer in time and
        the same :class:`ssl.SSLError` (e.g. :class:`ssl.SSLCertVerificationError`)
        as :meth:`ssl.SSLSocket.do_handshake` when TLS fails.
        """
        outer = self.outer_socket
        with self._send_lock:  # nothing else runs yet; held for the lock discipline
            while True:
                error: ssl.SSLError | None = None
                done = True
                with self._state_lock:
                    try:
                        self._sslobj.do_handshake()
                    except ssl.SSLWantReadError:
                        done = False
                    except ssl.SSLError as exc:
                        error = exc
                    records = self._outgoing.read()
                if error is not None:
                    # Send the alert OpenSSL wrote, as SSLSocket does; the error is what counts.
                    if records:
                        try:
                            outer.sendall(records)
                        except OSError:
                            pass
                    raise error
                if records:
                    if remaining is not None:
                        outer.settimeout(remaining())
                    outer.sendall(records)
                if done:
                    return
                if remaining is not None:
                    outer.settimeout(remaining())
                data = outer.recv(_OUTER_READ_SIZE)
                with self._state_lock:
                    if data:
                        self._incoming.write(data)
                    else:
                        self._incoming.write_eof()  # do_handshake() raises SSLEOFError next

    # -- reading ---------------------------------------------------------------------------------

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        """Return up to ``bufsize`` decrypted bytes, blocking until some come; ``b""`` at the end.

        The end is the server's close_notify, or the tunnel closing without
        one (as :class:`ssl.SSLSocket` with ``suppress_ragged_eofs``). The
        outer socket's timeout applies: :class:`socket.timeout` propagates.
        """
        if flags:
            raise ValueError("non-zero flags not allowed in calls to recv() on TLSInTLSSocket")
        if bufsize <= 0:
            return b""
        outer = self.outer_socket
        while True:
            with self._state_lock:
                data = self._read_decrypted(bufsize)
                if self._eof:
                    # An alert OpenSSL may write about the end: the tunnel is closing, don't send it.
                    self._outgoing.read()
                flush = self._outgoing.pending
            if flush:
                self._flush()
            if data or self._eof:
                return data
            # Not a whole record yet: wait for more, without holding the state lock.
            raw = outer.recv(_OUTER_READ_SIZE)
            with self._state_lock:
                if raw:
                    self._incoming.write(raw)
                else:
                    self._incoming.write_eof()

    def _read_decrypted(self, bufsize: int) -> bytes:
        """Decrypt what the incoming BIO holds, up to ``bufsize`` bytes (under _state_lock).

        Reads until the BIO runs dry (SSLWantReadError), so that what is left
        is at most part of a record, which OpenSSL keeps: then only
        :meth:`pending` bytes are ready without reading the descriptor.
        """
        if self._eof:
            return b""
        chunks: list[bytes] = []
        size = 0
        while size < bufsize:
            try:
                chunk = self._sslobj.read(bufsize - size)
            except ssl.SSLWantReadError:
                break
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                self._eof = True
                break
            if not chunk:  # close_notify
                self._eof = True
                break
            chunks.append(chunk)
            size += len(chunk)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def pending(self) -> int:
        """Bytes ready for :meth:`recv` without reading the descriptor (so ``poll()`` wouldn't see them).

        The inner session's decrypted bytes, the bytes of the incoming BIO not
        decrypted yet, and the outer socket's decrypted bytes; 1 once the end
        has been read, so that the next ``recv()`` returns ``b""`` at once.
        """
        with self._state_lock:
            ready = self._sslobj.pending() + self._incoming.pending + int(self._eof)
        return ready + self.outer_socket.pending()

    # -- writing ----------------------------------------------------------------------------------

    def sendall(self, data: Any, flags: int = 0) -> None:
        """Encrypt ``data`` (bytes-like) and send all of it; any number of threads may call this at once."""
        if flags:
            raise ValueError("non-zero flags not allowed in calls to sendall() on TLSInTLSSocket")
        view = memoryview(data).cast("B")
        outer = self.outer_socket
        with self._send_lock:
            for start in range(0, view.nbytes, _WRITE_CHUNK):
                with self._state_lock:
                    self._sslobj.write(view[start : start + _WRITE_CHUNK])
                    records = self._outgoing.read()
                outer.sendall(records)
        with self._state_lock:
            left = self._outgoing.pending
        if left:  # made by the reader while we held the send lock
            self._flush()

    def send(self, data: Any, flags: int = 0) -> int:
        """Like :meth:`sendall`; return the number of bytes sent (all of them)."""
        self.sendall(data, flags)
        return memoryview(data).nbytes

    def _flush(self) -> None:
        """Send the records waiting in the outgoing BIO, unless a writer holds the send lock.

        That writer looks for records again after releasing the lock, so none
        is left behind.
        """
        while True:
            if not self._send_lock.acquire(blocking=False):
                return
            try:
                with self._state_lock:
                    records = self._outgoing.read()
                if records:
                    self.outer_socket.sendall(records)
            finally:
                self._send_lock.release()
            with self._state_lock:
                if not self._outgoing.pending:
                    return

    # -- the outer socket -----------------------------------------------------------------------------

    def fileno(self) -> int:
        return self.outer_socket.fileno()

    def settimeout(self, timeout: float | None) -> None:
        self.outer_socket.settimeout(timeout)

    def gettimeout(self) -> float | None:
        return self.outer_socket.gettimeout()

    def getpeername(self) -> Any:
        return self.outer_socket.getpeername()

    def getsockname(self) -> Any:
        return self.outer_socket.getsockname()

    def setsockopt(self, *args: Any) -> None:
        self.outer_socket.setsockopt(*args)

    def getsockopt(self, *args: Any) -> Any:
        return self.outer_socket.getsockopt(*args)

    @property
    def family(self) -> int:
        return self.outer_socket.family

    @property
    def type(self) -> int:
        return self.outer_socket.type

    @property
    def proto(self) -> int:
        return self.outer_socket.proto

    def shutdown(self, how: int) -> None:
        """Shut the outer TCP connection down (not its TLS session: a racing write must stay encrypted)."""
        socket.socket.shutdown(self.outer_socket, how)

    def close(self) -> None:
        """Close the outer socket, like :meth:`ssl.SSLSocket.close` without close_notify."""
        self.outer_socket.close()

    def __enter__(self) -> TLSInTLSSocket:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<TLSInTLSSocket server_hostname={self.server_hostname!r} over {self.outer_socket!r}>"

    # -- the inner session, as ssl.SSLSocket describes its own ------------------------------------------------

    @property
    def context(self) -> ssl.SSLContext:
        return self._sslobj.context

    @property
    def server_hostname(self) -> str | None:
        return self._sslobj.server_hostname

    @property
    def server_side(self) -> bool:
        return False

    @property
    def session(self) -> ssl.SSLSession | None:
        return self._sslobj.session

    def getpeercert(self, binary_form: bool = False) -> Any:
        with self._state_lock:
            return self._sslobj.getpeercert(binary_form)

    def selected_alpn_protocol(self) -> str | None:
        with self._state_lock:
            return self._sslobj.selected_alpn_protocol()

    def version(self) -> str | None:
        with self._state_lock:
            return self._sslobj.version()

    def cipher(self) -> tuple[str, str, int] | None:
        with self._state_lock:
            return self._sslobj.cipher()

    def shared_ciphers(self) -> list[tuple[str, str, int]] | None:
        with self._state_lock:
            return self._sslobj.shared_ciphers()

    def compression(self) -> str | None:
        with self._state_lock:
            return self._sslobj.compression()

    def get_channel_binding(self, cb_type: str = "tls-unique") -> bytes | None:
        with self._state_lock:
            return self._sslobj.get_channel_binding(cb_type)
