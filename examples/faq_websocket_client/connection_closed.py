"""FAQ: How to solve the "connection is already closed" error?

WebSocketConnectionClosedException ("Connection is already closed.") is
raised by send() or recv() once the connection is closed. Catch it, then
reconnect with connect() or create_connection().
"""

from wsio import sync as websocket

from _local_server import start_server


def close_after_one(ws):
    ws.send(ws.recv())
    ws.close(1000, "one message per connection")


url, _ = start_server(close_after_one)

ws = websocket.create_connection(url)
for attempt in range(3):
    try:
        ws.send(f"message {attempt}")
        print("received:", ws.recv())
        print("received:", repr(ws.recv()))  # "" is the server's close frame
        ws.recv()
    except websocket.WebSocketConnectionClosedException as exc:
        print("error:", exc, f"(code {exc.code}: {exc.reason})")
        ws = websocket.create_connection(url)  # reconnect
ws.close()

# The wsio exception works too: WebSocketConnectionClosedException is a ConnectionClosed.
import wsio

try:
    ws.send("after close")
except wsio.ConnectionClosed as exc:
    print("also a wsio.ConnectionClosed:", exc)
