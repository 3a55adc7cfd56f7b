"""FAQ: Using Subprotocols.

The client offers subprotocols; the server picks the one it prefers.
"""

from wsio import sync as websocket

from _local_server import start_server

url, _ = start_server(subprotocols=["base64", "binary"])

ws = websocket.create_connection(url + "/websocket", subprotocols=["binary", "base64"])
print("subprotocol chosen by the server:", ws.getsubprotocol())
assert ws.subprotocol == "base64"
ws.close()
