"""FAQ: How to disable ssl cert verification?

Set the sslopt to {"cert_reqs": ssl.CERT_NONE}: with WebSocketApp,
create_connection and WebSocket, against a local wss:// server whose
certificate is self-signed (so verification would fail otherwise).
"""

import ssl

from wsio import sync as websocket

from _local_server import start_server

url, _ = start_server(tls=True)

# Without the option, the self-signed certificate is refused.
try:
    websocket.create_connection(url)
except ssl.SSLCertVerificationError as exc:
    print("verification on:", exc.reason)

# WebSocketApp example
ws = websocket.WebSocketApp(
    url, on_open=lambda ws: ws.send("app"), on_message=lambda ws, msg: (print("WebSocketApp:", msg), ws.close())
)
ws.run_forever(sslopt={"cert_reqs": ssl.CERT_NONE})

# create_connection example
ws = websocket.create_connection(url, sslopt={"cert_reqs": ssl.CERT_NONE})
ws.send("create_connection")
print("create_connection:", ws.recv())
ws.close()

# WebSocket example
ws = websocket.WebSocket(sslopt={"cert_reqs": ssl.CERT_NONE})
ws.connect(url)
ws.send("WebSocket")
print("WebSocket:", ws.recv())
ws.close()
