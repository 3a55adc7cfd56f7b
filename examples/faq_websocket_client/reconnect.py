"""FAQ: If a connection is re-established after getting disconnected, does it continue where it dropped off?

No: a reconnection is a new TCP connection and a new WebSocket connection.
run_forever(reconnect=...) reconnects after the connection is lost; the
server sees a new client (another port), and on_reconnect runs instead of
on_open. Messages sent meanwhile are not replayed.
"""

from wsio import sync as websocket

from _local_server import start_server

seen_ports = []


def handler(ws):
    seen_ports.append(ws.remote_address[1])
    for message in ws:
        if message == "drop":
            ws._abort()  # simulate a network failure: no close frame
            return
        if message == "done":
            ws.close(1000, "done")
            return
        ws.send(f"echo from connection {len(seen_ports)}: {message}")


url, _ = start_server(handler)


def on_open(ws):
    print("on_open")
    ws.send("hello")
    ws.send("drop")


def on_reconnect(ws):
    print("on_reconnect")
    ws.send("hello again")
    ws.send("done")


app = websocket.WebSocketApp(
    url,
    on_open=on_open,
    on_reconnect=on_reconnect,
    on_message=lambda ws, message: print("on_message:", message),
    on_error=lambda ws, error: print("on_error:", type(error).__name__, error),
    on_close=lambda ws, code, reason: print("on_close:", code, reason),
)
app.run_forever(reconnect=1)
print("client ports seen by the server:", seen_ports)
assert len(seen_ports) == 2 and seen_ports[0] != seen_ports[1]
