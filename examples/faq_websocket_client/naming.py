"""FAQ: What's going on with the naming of this library?

websocket-client installs as "websocket-client" and imports as "websocket".
With wsio, one import line brings the same names: `from wsio import sync as websocket`.
"""

from wsio import sync as websocket

from _local_server import start_server

url, _ = start_server()
for name in ("create_connection", "WebSocket", "WebSocketApp", "ABNF", "WebSocketException", "enableTrace"):
    assert hasattr(websocket, name), name
ws = websocket.create_connection(url)
ws.send("same API, one changed import")
print(ws.recv())
ws.close()
