"""A local WebSocket server for the FAQ examples, so that they run without a network.

Each example starts one with :func:`start_server` (a wsio.sync server in a
daemon thread on 127.0.0.1) instead of using wss://echo.websocket.org.
"""

from __future__ import annotations

import datetime
import os
import ssl
import tempfile
import threading
from typing import Any, Callable

from wsio.sync import serve


def echo(websocket: Any) -> None:
    for message in websocket:
        websocket.send(message)


def make_self_signed_cert(hostname: str = "localhost") -> str:
    """Generate a self-signed certificate for ``hostname`` with ``cryptography``; return a PEM file with cert and key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path = os.path.join(tempfile.mkdtemp(prefix="wsio-faq-"), "localhost.pem")
    with open(path, "wb") as file:
        file.write(cert.public_bytes(serialization.Encoding.PEM))
        file.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return path


def start_server(
    handler: Callable[[Any], None] = echo,
    tls: bool = False,
    ssl_context: ssl.SSLContext | None = None,
    **options: Any,
) -> tuple[str, str | None]:
    """Serve ``handler`` on 127.0.0.1 in a daemon thread; return its URL and, with ``tls``, the certificate file.

    With ``tls``, the server uses a self-signed certificate for "localhost",
    which clients don't trust unless told to.
    """
    cert = None
    if tls and ssl_context is None:
        cert = make_self_signed_cert()
        ssl_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ssl_context.load_cert_chain(cert)
    server = serve(handler, "127.0.0.1", 0, ssl=ssl_context, **options)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.socket.getsockname()[1]
    scheme = "wss" if ssl_context is not None else "ws"
    return f"{scheme}://127.0.0.1:{port}", cert
