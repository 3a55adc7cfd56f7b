"""A raw HTTP/2 client for the tests: h2 over a TLS stream, driven by hand."""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import h2.config
import h2.connection
import h2.events


def port_of(server: Any) -> int:
    return int(server.sockets[0].getsockname()[1])


class RawH2:
    """One HTTP/2 connection whose frames the test writes (hostile or plain requests)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding=None))
        self.events: list[h2.events.Event] = []

    @classmethod
    async def open(cls, port: int, ctx: ssl.SSLContext | None) -> RawH2:
        """Over TLS with ALPN h2; ``ctx`` None: cleartext, with prior knowledge (h2c)."""
        if ctx is None:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        else:
            reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname="localhost")
            assert writer.get_extra_info("ssl_object").selected_alpn_protocol() == "h2"
        raw = cls(reader, writer)
        raw.conn.initiate_connection()
        raw.flush()
        await raw.until(lambda e: isinstance(e, h2.events.RemoteSettingsChanged))
        return raw

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.writer.write(data)

    async def until(self, predicate: Any, timeout: float = 5) -> h2.events.Event | None:
        """Read until an event matches; None at EOF."""

        async def read() -> h2.events.Event | None:
            while True:
                for event in self.events:
                    if predicate(event):
                        self.events.remove(event)
                        return event
                data = await self.reader.read(65536)
                if not data:
                    return None
                self.events.extend(self.conn.receive_data(data))
                self.flush()

        return await asyncio.wait_for(read(), timeout)

    async def request(self, headers: list[tuple[str, str]], end_stream: bool = True) -> tuple[int, dict[bytes, bytes], bytes]:
        """Send a request; return its status, headers and body."""
        stream_id = self.conn.get_next_available_stream_id()
        self.conn.send_headers(stream_id, headers, end_stream=end_stream)
        self.flush()
        response = await self.until(lambda e: isinstance(e, h2.events.ResponseReceived) and e.stream_id == stream_id)
        assert isinstance(response, h2.events.ResponseReceived)
        fields = dict(response.headers or ())
        body = b""
        if response.stream_ended is None:
            while True:
                event = await self.until(
                    lambda e: isinstance(e, (h2.events.DataReceived, h2.events.StreamEnded)) and e.stream_id == stream_id
                )
                if isinstance(event, h2.events.DataReceived):
                    body += event.data
                    self.conn.acknowledge_received_data(event.flow_controlled_length, stream_id)
                else:
                    break
        return int(fields[b":status"]), fields, body

    def close(self) -> None:
        self.writer.close()


def client_frame(text: str) -> bytes:
    """A short masked text frame (mask key zero: the payload reads as it is)."""
    payload = text.encode()
    assert len(payload) < 126
    return bytes([0x81, 0x80 | len(payload)]) + b"\0\0\0\0" + payload


def server_frames(data: bytes) -> list[str]:
    """The short unmasked text frames in ``data``."""
    texts = []
    while data:
        assert data[0] == 0x81 and data[1] < 126, data
        length = data[1]
        texts.append(data[2 : 2 + length].decode())
        data = data[2 + length :]
    return texts


async def open_websocket(raw: RawH2, path: str = "/", scheme: str = "https") -> tuple[int, int]:
    """An extended CONNECT on ``raw``: its stream id and the status it got (0 if reset)."""
    stream_id = raw.conn.get_next_available_stream_id()
    headers = [(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", scheme), (":authority", "localhost")]
    raw.conn.send_headers(stream_id, [*headers, (":path", path), ("sec-websocket-version", "13")])
    raw.flush()
    event = await raw.until(
        lambda e: isinstance(e, (h2.events.ResponseReceived, h2.events.StreamReset)) and e.stream_id == stream_id
    )
    if isinstance(event, h2.events.StreamReset):
        return stream_id, 0
    assert isinstance(event, h2.events.ResponseReceived)
    return stream_id, int(dict(event.headers or ())[b":status"])


async def echo_over(raw: RawH2, stream_id: int, text: str) -> str:
    """Send a text message on a WebSocket stream of ``raw``; return the message that comes back."""
    raw.conn.send_data(stream_id, client_frame(text))
    raw.flush()
    event = await raw.until(lambda e: isinstance(e, h2.events.DataReceived) and e.stream_id == stream_id)
    assert isinstance(event, h2.events.DataReceived)
    raw.conn.acknowledge_received_data(event.flow_controlled_length, stream_id)
    raw.flush()
    (message,) = server_frames(event.data)
    return message
