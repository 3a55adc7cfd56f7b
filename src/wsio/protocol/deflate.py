"""The ``permessage-deflate`` extension (RFC 7692): negotiation and compression.

:class:`PerMessageDeflate` turns one message payload into the compressed
payload of frames with RSV1 set, and back. The two factories negotiate its
four parameters during the opening handshake, one for each side.

Sans-I/O: only the stdlib :mod:`zlib`, no sockets, no clock.
"""

from __future__ import annotations

import zlib
from collections.abc import Hashable, Mapping, Sequence
from typing import TYPE_CHECKING

from .errors import (
    DuplicateParameter,
    InvalidParameterName,
    InvalidParameterValue,
    NegotiationError,
    PayloadTooBig,
    ProtocolError,
)

if TYPE_CHECKING:  # pragma: no cover
    from .handshake import ClientExtensionFactory, Extension, ServerExtensionFactory

__all__ = [
    "DEFAULT_COMPRESSION_THRESHOLD",
    "PerMessageDeflate",
    "ClientPerMessageDeflateFactory",
    "ServerPerMessageDeflateFactory",
    "enable_client_permessage_deflate",
    "enable_server_permessage_deflate",
]

# One parsed Sec-WebSocket-Extensions parameter: (name, unquoted value or None).
ExtensionParameter = tuple[str, str | None]

#: Messages shorter than this many bytes are sent uncompressed (RSV1 clear,
#: which RFC 7692 section 6 allows message by message). Deflating a tiny
#: message costs a zlib call per message and rarely saves anything: the
#: block headers and Huffman tables often make the output *larger* than a
#: 20-byte JSON ping. 128 bytes is the point where typical chat / JSON
#: payloads start to shrink.
DEFAULT_COMPRESSION_THRESHOLD = 128

# RFC 7692 section 7.2.1: a Z_SYNC_FLUSH ends with an empty stored block,
# 00 00 ff ff, which the sender strips and the receiver puts back.
_EMPTY_UNCOMPRESSED_BLOCK = b"\x00\x00\xff\xff"

# RFC 7692 section 7.1.2: a window bits value is "8" .. "15", written plainly
# (no sign, no leading zero), so comparing strings is the whole check.
_MAX_WINDOW_BITS_VALUES = {str(bits): bits for bits in range(8, 16)}

# The zlib.compressobj() options a user may set. Others would break the
# format (wbits, method) or can't be agreed on with the peer (zdict).
_COMPRESS_SETTINGS = frozenset({"level", "memLevel", "strategy"})


def _zlib_window_bits(bits: int) -> int:
    """The raw-deflate ``wbits`` to give zlib for a negotiated window of ``bits``.

    zlib >= 1.2.9 refuses a raw deflate window of 8 bits ("Invalid
    initialization option"), so 8 becomes 9. That is still correct on the
    wire: zlib's deflate never looks back farther than the window size minus
    262 bytes (``MAX_DIST`` in deflate.h), i.e. 250 bytes for a 9-bit window,
    which fits in the 256 bytes an 8-bit peer keeps. For inflating, 9 rather
    than 8 costs 256 bytes and tolerates peers that round 8 up the same way.
    """
    return -max(bits, 9)


def _check_window_bits(name: str, bits: object) -> None:
    if isinstance(bits, bool) or not isinstance(bits, int) or not 8 <= bits <= 15:
        raise ValueError(f"{name} must be an integer between 8 and 15, got {bits!r}")


def _check_compress_settings(settings: Mapping[str, object], allowed: frozenset[str]) -> None:
    unknown = sorted(set(settings) - allowed)
    if unknown:
        raise ValueError(f"compress_settings may only contain {', '.join(sorted(allowed))}; got {', '.join(unknown)}")


class PerMessageDeflate:
    """``permessage-deflate`` as negotiated for one connection.

    ``local_*`` applies to messages this endpoint sends (compress), ``remote_*``
    to messages it receives (decompress).

    The zlib objects are created on first use, and with ``*_no_context_takeover``
    dropped after every message: an idle connection then holds no zlib memory
    at all, which matters with thousands of connections per process. With
    context takeover the object must live as long as the connection, because
    the next message may refer back to this one.

    Args:
        remote_no_context_takeover: the peer resets its compressor after each
            message, so our decompressor can be dropped after each message.
        local_no_context_takeover: reset our compressor after each message.
        remote_max_window_bits: the window the peer compresses with, 8..15.
        local_max_window_bits: the window we compress with, 8..15.
        compress_settings: extra :func:`zlib.compressobj` options; only
            ``level``, ``memLevel`` and ``strategy``.
    """

    __slots__ = (
        "remote_no_context_takeover",
        "local_no_context_takeover",
        "remote_max_window_bits",
        "local_max_window_bits",
        "compress_settings",
        "_compressor",
        "_decompressor",
    )

    name = "permessage-deflate"

    def __init__(
        self,
        remote_no_context_takeover: bool,
        local_no_context_takeover: bool,
        remote_max_window_bits: int,
        local_max_window_bits: int,
        compress_settings: Mapping[str, int] | None = None,
    ) -> None:
        _check_window_bits("remote_max_window_bits", remote_max_window_bits)
        _check_window_bits("local_max_window_bits", local_max_window_bits)
        settings = dict(compress_settings or {})
        _check_compress_settings(settings, _COMPRESS_SETTINGS)
        self.remote_no_context_takeover = remote_no_context_takeover
        self.local_no_context_takeover = local_no_context_takeover
        self.remote_max_window_bits = remote_max_window_bits
        self.local_max_window_bits = local_max_window_bits
        self.compress_settings = settings
        self._compressor: zlib._Compress | None = None  # created lazily
        self._decompressor: zlib._Decompress | None = None  # created lazily

    def __repr__(self) -> str:
        return (
            f"PerMessageDeflate(remote_no_context_takeover={self.remote_no_context_takeover}, "
            f"local_no_context_takeover={self.local_no_context_takeover}, "
            f"remote_max_window_bits={self.remote_max_window_bits}, "
            f"local_max_window_bits={self.local_max_window_bits}, "
            f"compress_settings={self.compress_settings!r})"
        )

    @property
    def key(self) -> Hashable:
        """What decides the compressed bytes of a message, or ``None``.

        Two instances with equal non-``None`` keys turn the same message into
        the same bytes, so a broadcast can compress once per key. ``None``
        when local context takeover is on: the output then depends on the
        messages sent before, so it can't be shared.
        """
        if not self.local_no_context_takeover:
            return None
        settings = self.compress_settings
        level = settings.get("level", zlib.Z_DEFAULT_COMPRESSION)
        if level == zlib.Z_DEFAULT_COMPRESSION:
            level = 6  # what zlib means by "default"; {} and {"level": 6} are the same
        return (
            self.name,
            _zlib_window_bits(self.local_max_window_bits),
            level,
            settings.get("memLevel", zlib.DEF_MEM_LEVEL),
            settings.get("strategy", zlib.Z_DEFAULT_STRATEGY),
        )

    def compress(self, data: bytes | bytearray | memoryview) -> bytes:
        """Compress one whole message payload (RFC 7692 section 7.2.1).

        Returns the payload to send in frames with RSV1 set on the first one.
        An empty message gives ``b"\\x00"`` (section 7.2.3.6).
        """
        compressor = self._compressor
        if compressor is None:
            # The settings' keys are checked (level, memLevel, strategy: ints), so
            # none lands on zdict, which mypy can't tell from dict[str, int].
            compressor = zlib.compressobj(
                wbits=_zlib_window_bits(self.local_max_window_bits),
                **self.compress_settings,  # type: ignore[arg-type]
            )
        compressed = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
        if self.local_no_context_takeover:
            self._compressor = None  # a fresh one per message; nothing held while idle
        else:
            self._compressor = compressor
        # Z_SYNC_FLUSH always ends with the empty stored block; strip it.
        return compressed[:-4] if compressed.endswith(_EMPTY_UNCOMPRESSED_BLOCK) else compressed

    def decompress(self, data: bytes | bytearray | memoryview, fin: bool, max_length: int | None) -> bytes:
        """Decompress one frame's payload of a compressed message (RFC 7692 7.2.2).

        Call once per frame of the message, in order, with ``fin=True`` on the
        last one.

        Args:
            data: the frame payload.
            fin: whether this frame ends the message.
            max_length: how many more bytes this message may decompress to,
                ``None`` for no limit.

        Raises:
            PayloadTooBig: the output would exceed ``max_length``. At most
                ``max_length + 1`` bytes are ever inflated, so a compression
                bomb (a few KB inflating to GB) costs no more memory than an
                honest message at the limit.
            ProtocolError: the data isn't valid DEFLATE. Close code 1002:
                RFC 7692 names no code and Autobahn does not test this case;
                it breaks the negotiated extension, i.e. the protocol
                (python-websockets agrees; Node ws and wsproto use 1007).
        """
        if max_length is not None and max_length < 0:
            raise ValueError(f"max_length must be >= 0 or None, got {max_length}")
        decompressor = self._decompressor
        if decompressor is None:
            decompressor = zlib.decompressobj(_zlib_window_bits(self.remote_max_window_bits))
        self._decompressor = decompressor
        try:
            # Inflate the tail separately rather than copy the payload to append it.
            output = self._inflate(decompressor, data, max_length)
            if fin:
                remaining = None if max_length is None else max_length - len(output)
                tail = self._inflate(decompressor, _EMPTY_UNCOMPRESSED_BLOCK, remaining)
                if tail:
                    output += tail
        except zlib.error as exc:
            self._decompressor = None
            raise ProtocolError(f"invalid compressed data: {exc}", 1002) from exc
        except ProtocolError:
            self._decompressor = None  # the connection is failing; free the memory now
            raise
        # A peer may end a message with a BFINAL block (RFC 7692 section
        # 7.2.3.4); that ends the DEFLATE stream, so the next message starts
        # a new one whatever the context takeover setting.
        if fin and (self.remote_no_context_takeover or decompressor.eof):
            self._decompressor = None
        return output

    @staticmethod
    def _inflate(decompressor: zlib._Decompress, data: bytes | bytearray | memoryview, max_length: int | None) -> bytes:
        if max_length is None:
            output: bytes = decompressor.decompress(data)
        else:
            # max_length + 1 tells "exactly at the limit" from "over it", and
            # is never 0, which zlib would read as "no limit".
            output = decompressor.decompress(data, max_length + 1)
            if len(output) > max_length or decompressor.unconsumed_tail:
                # The traceback keeps this frame alive (until the connection is
                # collected, with threads a cycle away): not the bomb's output.
                del output
                raise PayloadTooBig(f"decompressed message exceeds the remaining limit of {max_length:_} bytes")
        if decompressor.eof and decompressor.unused_data not in (b"", _EMPTY_UNCOMPRESSED_BLOCK):
            raise ProtocolError("data after the end of the compressed stream", 1002)
        return output


def _parse_params(params: Sequence[ExtensionParameter], *, is_request: bool) -> tuple[bool, bool, int | None, int | bool | None]:
    """Check ``permessage-deflate`` parameters (RFC 7692 section 7.1).

    Returns server_no_context_takeover, client_no_context_takeover,
    server_max_window_bits and client_max_window_bits, where the last is
    ``True`` when a request has it without a value, and ``None`` means absent.
    """
    server_no_context_takeover = False
    client_no_context_takeover = False
    server_max_window_bits: int | None = None
    client_max_window_bits: int | bool | None = None
    seen: set[str] = set()

    for name, value in params:
        # Section 7: a parameter may appear once at most in an offer or answer.
        if name in seen:
            raise DuplicateParameter(name)
        seen.add(name)

        if name == "server_no_context_takeover":
            if value is not None:
                raise InvalidParameterValue(name, value)
            server_no_context_takeover = True
        elif name == "client_no_context_takeover":
            if value is not None:
                raise InvalidParameterValue(name, value)
            client_no_context_takeover = True
        elif name == "server_max_window_bits":
            if value not in _MAX_WINDOW_BITS_VALUES:
                raise InvalidParameterValue(name, value)
            server_max_window_bits = _MAX_WINDOW_BITS_VALUES[value]
        elif name == "client_max_window_bits":
            # Section 7.1.2.2: only the offer may leave the value out.
            if value is None and is_request:
                client_max_window_bits = True
            elif value not in _MAX_WINDOW_BITS_VALUES:
                raise InvalidParameterValue(name, value)
            else:
                client_max_window_bits = _MAX_WINDOW_BITS_VALUES[value]
        else:
            raise InvalidParameterName(name)

    return (
        server_no_context_takeover,
        client_no_context_takeover,
        server_max_window_bits,
        client_max_window_bits,
    )


def _split_settings(compress_settings: Mapping[str, int] | None) -> tuple[dict[str, int], int]:
    """Validate a factory's ``compress_settings``; return (zlib options, preferred window).

    Factories also accept ``wbits``: the largest window this endpoint wants to
    compress with (8..15, sign ignored), below what negotiation allows. A
    compressor may always use a smaller window than negotiated; it is how a
    client saves memory when the server leaves ``client_max_window_bits`` free.
    """
    settings = dict(compress_settings or {})
    _check_compress_settings(settings, _COMPRESS_SETTINGS | {"wbits"})
    wbits = settings.pop("wbits", 15)
    if isinstance(wbits, int) and not isinstance(wbits, bool):
        wbits = abs(wbits)
    _check_window_bits("compress_settings['wbits']", wbits)
    return settings, wbits


def _check_not_accepted(accepted_extensions: Sequence[Extension]) -> None:
    # Two permessage-deflate would both use RSV1: the second can't be told apart.
    if any(getattr(extension, "name", None) == PerMessageDeflate.name for extension in accepted_extensions):
        raise NegotiationError("permessage-deflate is already negotiated")


class ClientPerMessageDeflateFactory:
    """Offers ``permessage-deflate`` from a client and checks the server's answer.

    Args:
        server_no_context_takeover: ask the server to reset its compressor
            after each message (saves our memory, costs compression ratio).
        client_no_context_takeover: promise to reset ours after each message.
        server_max_window_bits: ask the server for at most this window, 8..15.
        client_max_window_bits: ``True`` offers the parameter without a value
            (the server may pick our window), an int 8..15 limits our window,
            ``None`` (or ``False``) leaves it out.
        compress_settings: :func:`zlib.compressobj` options (``level``,
            ``memLevel``, ``strategy``) and ``wbits``, the largest window we
            compress with even if the server allows more.

    Raises:
        ValueError: a window bits value is out of 8..15, or a setting is unknown.
    """

    name = "permessage-deflate"

    def __init__(
        self,
        server_no_context_takeover: bool = False,
        client_no_context_takeover: bool = False,
        server_max_window_bits: int | None = None,
        client_max_window_bits: int | bool | None = True,
        compress_settings: Mapping[str, int] | None = None,
    ) -> None:
        if server_max_window_bits is not None:
            _check_window_bits("server_max_window_bits", server_max_window_bits)
        if client_max_window_bits is False:
            client_max_window_bits = None
        if client_max_window_bits is not None and client_max_window_bits is not True:
            _check_window_bits("client_max_window_bits", client_max_window_bits)
        self.server_no_context_takeover = server_no_context_takeover
        self.client_no_context_takeover = client_no_context_takeover
        self.server_max_window_bits = server_max_window_bits
        self.client_max_window_bits = client_max_window_bits
        self.compress_settings, self._preferred_window_bits = _split_settings(compress_settings)

    def __repr__(self) -> str:
        return (
            f"ClientPerMessageDeflateFactory(server_no_context_takeover={self.server_no_context_takeover}, "
            f"client_no_context_takeover={self.client_no_context_takeover}, "
            f"server_max_window_bits={self.server_max_window_bits}, "
            f"client_max_window_bits={self.client_max_window_bits}, "
            f"compress_settings={self.compress_settings!r})"
        )

    def get_request_params(self) -> list[ExtensionParameter]:
        """The parameters of the offer, for the ``Sec-WebSocket-Extensions`` header."""
        params: list[ExtensionParameter] = []
        if self.server_no_context_takeover:
            params.append(("server_no_context_takeover", None))
        if self.client_no_context_takeover:
            params.append(("client_no_context_takeover", None))
        if self.server_max_window_bits is not None:
            params.append(("server_max_window_bits", str(self.server_max_window_bits)))
        if self.client_max_window_bits is True:
            params.append(("client_max_window_bits", None))
        elif self.client_max_window_bits is not None:
            params.append(("client_max_window_bits", str(self.client_max_window_bits)))
        return params

    def process_response_params(
        self, params: Sequence[ExtensionParameter], accepted_extensions: Sequence[Extension]
    ) -> PerMessageDeflate:
        """Check the server's answer to our offer and build the extension.

        Raises:
            NegotiationError: the answer breaks RFC 7692 section 7.1 or does
                not fit the offer (the client must then fail the connection).
        """
        _check_not_accepted(accepted_extensions)
        (
            server_no_context_takeover,
            client_no_context_takeover,
            server_max_window_bits,
            client_max_window_bits,
        ) = _parse_params(params, is_request=False)

        # 7.1.1.1: the server accepts server_no_context_takeover by echoing it;
        # it may also add it unasked.
        if self.server_no_context_takeover and not server_no_context_takeover:
            raise NegotiationError("server did not accept server_no_context_takeover")

        # 7.1.1.2: the server may add client_no_context_takeover unasked, and
        # we keep our own promise whether it echoes it or not.
        client_no_context_takeover = client_no_context_takeover or self.client_no_context_takeover

        # 7.1.2.1: if asked, the server must answer with a window no larger.
        if self.server_max_window_bits is not None:
            if server_max_window_bits is None:
                raise NegotiationError(f"server did not answer server_max_window_bits={self.server_max_window_bits}")
            if server_max_window_bits > self.server_max_window_bits:
                raise NegotiationError(
                    f"server_max_window_bits={server_max_window_bits} exceeds the offered {self.server_max_window_bits}"
                )

        # 7.1.2.2: the server may only limit our window if we offered the
        # parameter, and not above a value we gave. Without an answer, a value
        # we gave still binds us.
        if self.client_max_window_bits is None:
            if client_max_window_bits is not None:
                raise NegotiationError("server sent client_max_window_bits, which was not offered")
            client_window_bits = 15
        elif self.client_max_window_bits is True:
            client_window_bits = 15 if client_max_window_bits is None else int(client_max_window_bits)
        else:
            if client_max_window_bits is None:
                client_window_bits = self.client_max_window_bits
            elif client_max_window_bits > self.client_max_window_bits:
                raise NegotiationError(
                    f"client_max_window_bits={client_max_window_bits} exceeds the offered {self.client_max_window_bits}"
                )
            else:
                client_window_bits = int(client_max_window_bits)

        return PerMessageDeflate(
            remote_no_context_takeover=server_no_context_takeover,
            local_no_context_takeover=client_no_context_takeover,
            remote_max_window_bits=server_max_window_bits or 15,
            local_max_window_bits=min(client_window_bits, self._preferred_window_bits),
            compress_settings=self.compress_settings,
        )


class ServerPerMessageDeflateFactory:
    """Answers a client's ``permessage-deflate`` offer.

    Args:
        server_no_context_takeover: reset our compressor after each message.
        client_no_context_takeover: require the client to reset its compressor
            after each message (then our decompressor is dropped between
            messages: no memory held by idle connections).
        server_max_window_bits: the largest window we compress with, 8..15;
            sent to the client so that it inflates with no more.
        client_max_window_bits: the largest window we let the client use,
            8..15, when its offer allows us to choose.
        require_client_max_window_bits: decline offers that don't let us
            limit the client's window (needs ``client_max_window_bits``).
        compress_settings: :func:`zlib.compressobj` options (``level``,
            ``memLevel``, ``strategy``) and ``wbits``, the largest window we
            compress with without telling the client.

    Raises:
        ValueError: a window bits value is out of 8..15, a setting is unknown,
            or ``require_client_max_window_bits`` is set without a value.
    """

    name = "permessage-deflate"

    def __init__(
        self,
        server_no_context_takeover: bool = False,
        client_no_context_takeover: bool = False,
        server_max_window_bits: int | None = None,
        client_max_window_bits: int | None = None,
        require_client_max_window_bits: bool = False,
        compress_settings: Mapping[str, int] | None = None,
    ) -> None:
        if server_max_window_bits is not None:
            _check_window_bits("server_max_window_bits", server_max_window_bits)
        if client_max_window_bits is not None:
            _check_window_bits("client_max_window_bits", client_max_window_bits)
        if require_client_max_window_bits and client_max_window_bits is None:
            raise ValueError("require_client_max_window_bits needs client_max_window_bits")
        self.server_no_context_takeover = server_no_context_takeover
        self.client_no_context_takeover = client_no_context_takeover
        self.server_max_window_bits = server_max_window_bits
        self.client_max_window_bits = client_max_window_bits
        self.require_client_max_window_bits = require_client_max_window_bits
        self.compress_settings, self._preferred_window_bits = _split_settings(compress_settings)

    def __repr__(self) -> str:
        return (
            f"ServerPerMessageDeflateFactory(server_no_context_takeover={self.server_no_context_takeover}, "
            f"client_no_context_takeover={self.client_no_context_takeover}, "
            f"server_max_window_bits={self.server_max_window_bits}, "
            f"client_max_window_bits={self.client_max_window_bits}, "
            f"require_client_max_window_bits={self.require_client_max_window_bits}, "
            f"compress_settings={self.compress_settings!r})"
        )

    def process_request_params(
        self, params: Sequence[ExtensionParameter], accepted_extensions: Sequence[Extension]
    ) -> tuple[list[ExtensionParameter], PerMessageDeflate]:
        """Negotiate one offer (RFC 7692 section 7.1); return the answer and the extension.

        Raises:
            NegotiationError: the offer is invalid or can't be accepted; the
                caller declines it and may try the client's next offer.
        """
        _check_not_accepted(accepted_extensions)
        (
            server_no_context_takeover,
            client_no_context_takeover,
            server_max_window_bits,
            client_max_window_bits,
        ) = _parse_params(params, is_request=True)

        # 7.1.1.1: asked for, we accept (zlib can always reset); or we impose it.
        server_no_context_takeover = server_no_context_takeover or self.server_no_context_takeover

        # 7.1.1.2: echo the client's hint so both sides agree, or impose it.
        client_no_context_takeover = client_no_context_takeover or self.client_no_context_takeover

        # 7.1.2.1: answer with no more than asked; we may also limit ourselves unasked.
        if server_max_window_bits is None:
            server_max_window_bits = self.server_max_window_bits
        elif self.server_max_window_bits is not None:
            server_max_window_bits = min(server_max_window_bits, self.server_max_window_bits)

        # 7.1.2.2: we may only answer client_max_window_bits if offered, no
        # higher than its value. Echoing a given value keeps clients that
        # expect it back happy; it binds the client either way.
        if client_max_window_bits is None:
            if self.require_client_max_window_bits:
                raise NegotiationError("client_max_window_bits is required but was not offered")
        elif client_max_window_bits is True:
            client_max_window_bits = self.client_max_window_bits
        elif self.client_max_window_bits is not None:
            client_max_window_bits = min(client_max_window_bits, self.client_max_window_bits)

        response: list[ExtensionParameter] = []
        if server_no_context_takeover:
            response.append(("server_no_context_takeover", None))
        if client_no_context_takeover:
            response.append(("client_no_context_takeover", None))
        if server_max_window_bits is not None:
            response.append(("server_max_window_bits", str(server_max_window_bits)))
        if client_max_window_bits is not None:
            response.append(("client_max_window_bits", str(client_max_window_bits)))

        extension = PerMessageDeflate(
            remote_no_context_takeover=client_no_context_takeover,
            local_no_context_takeover=server_no_context_takeover,
            remote_max_window_bits=int(client_max_window_bits or 15),
            local_max_window_bits=min(server_max_window_bits or 15, self._preferred_window_bits),
            compress_settings=self.compress_settings,
        )
        return response, extension


# Memory-frugal defaults, as python-websockets chose them. zlib's own
# formulas (zconf.h): deflate needs 2**(wbits+2) + 2**(memLevel+9) bytes,
# inflate 2**wbits + ~7 KiB. With wbits=12, memLevel=5 that is 32 KiB and
# 11 KiB per connection instead of 256 KiB and 39 KiB with zlib's defaults
# (15, 8), for a ratio that stays close on messages of a few KB, which is what
# most WebSocket traffic is.
_DEFAULT_WINDOW_BITS = 12
_DEFAULT_MEM_LEVEL = 5


def enable_client_permessage_deflate(extensions: Sequence[ClientExtensionFactory] | None) -> list[ClientExtensionFactory]:
    """Return ``extensions`` with a default client ``permessage-deflate`` factory added.

    Nothing is added when one is already there, so an explicit configuration wins.
    The default offers ``client_max_window_bits`` without a value (the server
    may pick) and compresses with a 12-bit window and memLevel 5 when the
    server leaves the window free.
    """
    extensions = list(extensions or [])
    if not any(getattr(factory, "name", None) == PerMessageDeflate.name for factory in extensions):
        extensions.append(
            ClientPerMessageDeflateFactory(
                client_max_window_bits=True,
                compress_settings={"memLevel": _DEFAULT_MEM_LEVEL, "wbits": _DEFAULT_WINDOW_BITS},
            )
        )
    return extensions


def enable_server_permessage_deflate(extensions: Sequence[ServerExtensionFactory] | None) -> list[ServerExtensionFactory]:
    """Return ``extensions`` with a default server ``permessage-deflate`` factory added.

    Nothing is added when one is already there, so an explicit configuration wins.
    The default compresses with a 12-bit window and memLevel 5, and limits
    the client to a 12-bit window when its offer allows.
    """
    extensions = list(extensions or [])
    if not any(getattr(factory, "name", None) == PerMessageDeflate.name for factory in extensions):
        extensions.append(
            ServerPerMessageDeflateFactory(
                server_max_window_bits=_DEFAULT_WINDOW_BITS,
                client_max_window_bits=_DEFAULT_WINDOW_BITS,
                compress_settings={"memLevel": _DEFAULT_MEM_LEVEL},
            )
        )
    return extensions
