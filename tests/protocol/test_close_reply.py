"""The core's answer to a close frame, and what it does after failing a connection.

- The reply to the peer's close frame carries its code and its reason back.
- After a failure, what the peer still sends is read and thrown away, frame by
  frame, until its close frame or EOF; :meth:`should_close_transport` tells the
  I/O layer when closing TCP can't reset a connection the peer still writes to.
"""

from __future__ import annotations

import pytest

from tests.protocol.test_machine import (  # noqa: F401  (impl: both parsers, C and Python)
    client,
    close_payload,
    impl,
    parse_out,
    server,
    to_client,
    to_server,
)
from wsio.protocol.machine import State
from wsio.protocol.deflate import PerMessageDeflate
from wsio.protocol.frames import Close


# -- the close reply -----------------------------------------------------------------


@pytest.mark.parametrize("side", ["server", "client"])
def test_close_reply_carries_the_reason_back(side: str) -> None:
    conn = server() if side == "server" else client()
    incoming = to_server if side == "server" else to_client
    reason = "going to lunch, ünicode"
    assert conn.receive_data(incoming(0x88, close_payload(1001, reason.encode()))) == [Close(1001, reason)]
    assert parse_out(conn.data_to_send(), side == "client") == [(0x88, close_payload(1001, reason.encode()))]
    assert conn.close_sent == Close(1001, reason)
    assert conn.close_rcvd_then_sent is True


def test_close_reply_to_a_close_without_code_has_no_payload() -> None:
    # RFC 6455 5.5.1: a close frame may have no body; there is then no code to echo,
    # and 1005 may not be sent: the reply has no body either.
    s = server()
    assert s.receive_data(to_server(0x88)) == [Close(1005, "")]
    assert parse_out(s.data_to_send(), False) == [(0x88, b"")]


def test_close_reply_with_the_longest_reason() -> None:
    s = server()
    reason = "é" * 61 + "x"  # 123 bytes: the most a close frame carries
    s.receive_data(to_server(0x88, close_payload(4000, reason.encode())))
    assert parse_out(s.data_to_send(), False) == [(0x88, close_payload(4000, reason.encode()))]


# -- after a failure: discard until the peer closes ---------------------------------------

BAD_UTF8 = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80"


def failed_with_invalid_utf8() -> object:
    s = server()
    s.receive_data(to_server(0x81, BAD_UTF8))
    assert s.failure is not None and s.failure.code == 1007
    assert parse_out(s.data_to_send(), False)[0][0] == 0x88
    return s


def test_failure_keeps_the_tcp_connection_until_the_peer_closes() -> None:
    s = failed_with_invalid_utf8()
    assert s.state is State.CLOSED and s.discarding
    assert not s.should_close_transport()  # the peer may still be sending
    # What it sends is thrown away: no event, nothing to send back (no pong).
    assert s.receive_data(to_server(0x81, b"more") + to_server(0x89, b"ping?")) == []
    assert s.data_to_send() == b""
    assert not s.should_close_transport()
    # Its close frame (here its answer to ours): the connection can close now.
    assert s.receive_data(to_server(0x88, close_payload(1007))) == []
    assert not s.discarding and s.should_close_transport()
    # The connection's story doesn't change: it failed with 1007.
    assert s.close_sent is not None and s.close_sent.code == 1007 and s.close_rcvd is None


def test_failure_then_eof_closes() -> None:
    s = failed_with_invalid_utf8()
    s.receive_data(to_server(0x82, b"x" * 1000))
    s.receive_eof()
    assert not s.discarding and s.should_close_transport()


def test_close_frame_behind_the_bad_frame_in_the_same_read() -> None:
    s = server()
    s.receive_data(to_server(0x81, BAD_UTF8) + to_server(0x88, close_payload(1000)))
    assert s.failure is not None and s.failure.code == 1007
    assert not s.discarding and s.should_close_transport()


def test_discarding_finds_the_close_frame_across_reads_and_large_frames() -> None:
    s = failed_with_invalid_utf8()
    big = to_server(0x82, b"\x00" * 200_000)  # 64-bit length, skipped by its length
    stream = big + to_server(0x80 | 0x01, b"abc") + to_server(0x88, close_payload(1000, b"bye"))
    # Byte by byte over the headers, in odd pieces over the payload.
    pos = 0
    for size in [1, 1, 1, 7, 3, 65536, 100_000, 9000, 1, 2]:
        s.receive_data(stream[pos : pos + size])
        pos += size
        assert s.discarding
        assert len(s._buf) < 14  # never more than a frame header waits
    s.receive_data(stream[pos:])
    assert not s.discarding and s.should_close_transport()


def test_discarding_skips_the_rest_of_a_frame_that_failed_midway() -> None:
    # A text frame arriving in pieces fails on its first piece: the rest of its
    # payload, even bytes that look like a close frame, is skipped by length.
    s = server()
    payload = BAD_UTF8 + to_server(0x88, close_payload(1000)) + b"x" * 5000
    data = to_server(0x81, payload)
    s.receive_data(data[:40])
    assert s.failure is not None and s.failure.code == 1007 and s.discarding
    s.receive_data(data[40:])
    assert s.discarding  # the close frame look-alike was payload
    s.receive_data(to_server(0x88, close_payload(1000)))
    assert not s.discarding


def test_discarding_after_an_oversized_message() -> None:
    s = server(max_size=1000)
    data = to_server(0x82, b"y" * 100_000)
    s.receive_data(data[:2000])  # the header says 100 000 bytes: 1009 at once
    assert s.failure is not None and s.failure.code == 1009
    assert parse_out(s.data_to_send(), False) == [
        (0x88, close_payload(1009, b"message of at least 100000 bytes exceeds max_size=1000"))
    ]
    s.receive_data(data[2000:])
    assert s.discarding
    s.receive_data(to_server(0x88, close_payload(1009)))
    assert s.should_close_transport()


def test_discarding_after_a_bad_header_skips_the_bad_frame() -> None:
    # Reserved opcode 3: the frame is skipped by its length, the close frame behind it found.
    s = server()
    s.receive_data(to_server(0x83, b"\x88\x80" * 10))
    assert s.failure is not None and s.failure.code == 1002 and s.discarding
    s.receive_data(to_server(0x88))
    assert not s.discarding


def test_discarding_without_frame_boundaries_waits_for_eof() -> None:
    s = failed_with_invalid_utf8()
    s.receive_data(b"\x82\xff" + b"\xff" * 8)  # a 64-bit length with its top bit set
    s.receive_data(to_server(0x88))
    assert s.discarding and not s.should_close_transport()
    s.receive_eof()
    assert s.should_close_transport()


def test_discarding_a_flood_keeps_memory_flat() -> None:
    s = failed_with_invalid_utf8()
    chunk = to_server(0x82, b"z" * 60_000) * 20
    for _ in range(50):  # 60 MB
        assert s.receive_data(chunk) == []
        assert len(s._buf) < 14
    assert s.discarding


def test_deferred_failure_discards_meanwhile() -> None:
    # A message, then a bad frame in the same read: the I/O layer lets the
    # application see the message first. What arrives meanwhile is discarded,
    # and the peer's close frame among it is noticed.
    s = server()
    events = s.receive_data(to_server(0x81, b"hello") + to_server(0x81, BAD_UTF8))
    assert events == ["hello"] and s.failure_pending and s.state is State.OPEN
    assert s.receive_data(to_server(0x88, close_payload(1007))) == []
    s.apply_deferred_failure()  # the I/O layer says when
    assert s.failure is not None and s.failure.code == 1007
    assert parse_out(s.data_to_send(), False)[0][0] == 0x88
    assert s.should_close_transport()


def test_client_failure_discards_too() -> None:
    c = client()
    c.receive_data(to_client(0x81, BAD_UTF8))
    assert c.failure is not None and c.discarding and not c.should_close_transport()
    c.receive_data(to_client(0x88, close_payload(1007)))
    assert c.should_close_transport()


def test_clean_close_client_waits_for_the_server() -> None:
    c = client()
    c.receive_data(to_client(0x88, close_payload(1000)))
    assert not c.should_close_transport()  # RFC 6455 7.1.1: the server closes TCP first
    c.receive_eof()
    assert c.should_close_transport()
    s = server()
    s.receive_data(to_server(0x88, close_payload(1000)))
    assert s.should_close_transport()


def test_local_fail_closes_at_once_unless_asked_to_discard() -> None:
    s = server()
    s.fail(1011, "no pong")
    assert s.should_close_transport()
    s = server()
    s.fail(1011, "internal error", discard=True)
    assert not s.should_close_transport()
    s.receive_data(to_server(0x88, close_payload(1011)))
    assert s.should_close_transport()


def test_compressed_size_error_names_max_size() -> None:
    s = server(max_size=1000)
    s._set_extensions([PerMessageDeflate(False, False, 15, 15)])
    sender = PerMessageDeflate(False, False, 15, 15)
    s.receive_data(to_server(0xC2, sender.compress(b"a" * 50_000)))
    assert s.failure is not None and s.failure.code == 1009
    assert str(s.failure) == "compressed message of more than 1000 bytes once decompressed exceeds max_size=1000"
    # In pieces too: a fragmented compressed message.
    s = server(max_size=1000)
    s._set_extensions([PerMessageDeflate(False, False, 15, 15)])
    data = sender.compress(b"b" * 50_000)
    s.receive_data(to_server(0x42, data[:20]) + to_server(0x80, data[20:]))
    assert s.failure is not None and s.failure.code == 1009
    assert "exceeds max_size=1000" in str(s.failure)
