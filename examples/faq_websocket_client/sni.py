"""FAQ: How to enable SNI?

It is automatic: the client sends the URL's host name in the TLS handshake.
The local server records the name it receives.
"""

import ssl

from wsio import sync as websocket

from _local_server import make_self_signed_cert, start_server

received = []
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(make_self_signed_cert("localhost"))
context.sni_callback = lambda sslobj, server_name, ctx: received.append(server_name)
url, _ = start_server(ssl_context=context)

ws = websocket.create_connection(url.replace("127.0.0.1", "localhost"), sslopt={"cert_reqs": ssl.CERT_NONE})
ws.close()
print("server received SNI:", received[0])
assert received == ["localhost"]

# An IP address isn't a host name: no SNI then (RFC 6066 section 3); sslopt's
# "server_hostname" sets the name explicitly.
ws = websocket.create_connection(url, sslopt={"cert_reqs": ssl.CERT_NONE, "server_hostname": "localhost"})
ws.close()
print("with server_hostname:", received[1])
