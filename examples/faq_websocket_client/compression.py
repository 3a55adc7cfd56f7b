"""FAQ: Is WebSocket Compression using the permessage-deflate extension supported?

websocket-client: no. wsio: yes, and it is offered by default; the server
below accepts it, and the handshake response shows it was negotiated.
"""

from wsio import sync as websocket

from _local_server import start_server

url, _ = start_server()

ws = websocket.create_connection(url)
print("Sec-WebSocket-Extensions:", ws.getheaders()["sec-websocket-extensions"])
message = "compressible " * 10_000
ws.send(message)
assert ws.recv() == message
ws.close()

# compression=None turns it off.
ws = websocket.create_connection(url, compression=None)
print("with compression=None:", ws.getheaders().get("sec-websocket-extensions"))
ws.close()
