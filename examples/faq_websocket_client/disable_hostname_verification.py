"""FAQ: How to disable hostname verification?

Set sslopt to {"check_hostname": False}. The certificate is still verified:
here the server's self-signed certificate is trusted through
$WEBSOCKET_CLIENT_CA_BUNDLE, as websocket-client supports, but it is made out
to "localhost" while the URL says 127.0.0.1, so only the hostname check fails.
"""

import os
import ssl

from wsio import sync as websocket

from _local_server import start_server

url, cert = start_server(tls=True)
os.environ["WEBSOCKET_CLIENT_CA_BUNDLE"] = cert  # trust the self-signed certificate

# With the hostname check, 127.0.0.1 doesn't match "localhost".
try:
    websocket.create_connection(url)
except ssl.SSLCertVerificationError as exc:
    print("hostname check on:", exc.verify_message)

# WebSocketApp example
ws = websocket.WebSocketApp(
    url, on_open=lambda ws: ws.send("app"), on_message=lambda ws, msg: (print("WebSocketApp:", msg), ws.close())
)
ws.run_forever(sslopt={"check_hostname": False})

# create_connection example
ws = websocket.create_connection(url, sslopt={"check_hostname": False})
ws.send("create_connection")
print("create_connection:", ws.recv())
ws.close()

# WebSocket example
ws = websocket.WebSocket(sslopt={"check_hostname": False})
ws.connect(url)
ws.send("WebSocket")
print("WebSocket:", ws.recv())
ws.close()
