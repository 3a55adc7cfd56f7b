"""WebSocket over HTTP/2 (RFC 8441): three WebSockets on one TLS connection.

A throwaway certificate authority from the ``trustme`` package stands in for
a real one.
"""
# requires: h2, trustme

import asyncio
import ssl

import trustme

import wsio


async def echo(websocket):
    async for message in websocket:
        await websocket.send(message)


async def main():
    ca = trustme.CA()
    certificate = ca.issue_cert("localhost")

    def server_context():
        # serve(http2=True) sets the ALPN protocols of the context it gets: one context per server.
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        certificate.configure_cert(context)
        return context

    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    # Your own context: offer h2 in ALPN (wsio does it for the contexts it makes).
    client_context.set_alpn_protocols(["h2", "http/1.1"])

    # http2=True offers h2 in ALPN and accepts extended CONNECT streams.
    async with wsio.serve(echo, "127.0.0.1", 0, ssl=server_context(), http2=True) as server:
        uri = f"wss://localhost:{server.sockets[0].getsockname()[1]}"

        async def client(name):
            async with wsio.connect(f"{uri}/{name}", ssl=client_context, http2=True) as websocket:
                await websocket.send(f"hello from {name}")
                reply = await websocket.recv(timeout=5)
                transport = websocket.transport
                return reply, transport.get_extra_info("http2_stream_id"), transport.get_extra_info("sockname")

        results = await asyncio.gather(*(client(name) for name in ("a", "b", "c")))
        print(f"replies: {sorted(reply for reply, _, _ in results)}")
        print(f"streams: {sorted(stream_id for _, stream_id, _ in results)}")
        print(f"TCP connections: {len({sockname for _, _, sockname in results})}")

    # A server without http2=True: the same client falls back to HTTP/1.1.
    async with wsio.serve(echo, "127.0.0.1", 0, ssl=server_context()) as server:
        uri = f"wss://localhost:{server.sockets[0].getsockname()[1]}"
        async with wsio.connect(uri, ssl=client_context, http2=True) as websocket:
            print(f"fallback: stream {websocket.transport.get_extra_info('http2_stream_id')}")


asyncio.run(main())
