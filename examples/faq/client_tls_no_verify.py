"""FAQ: How do I disable TLS/SSL certificate verification?"""

# requires: cryptography (to make a self-signed certificate)

import asyncio
import datetime
import os
import ssl
import tempfile

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import wsio as websockets


def self_signed_certificate(directory):
    """Write a self-signed certificate and its key for 127.0.0.1; return their paths."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "wsio faq")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path = os.path.join(directory, "cert.pem")
    key_path = os.path.join(directory, "key.pem")
    with open(cert_path, "wb") as file:
        file.write(certificate.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as file:
        file.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return cert_path, key_path


async def echo(websocket):
    async for message in websocket:
        await websocket.send(message)


async def main():
    with tempfile.TemporaryDirectory() as directory:
        cert_path, key_path = self_signed_certificate(directory)
        server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_context.load_cert_chain(cert_path, key_path)

    async with websockets.serve(echo, "127.0.0.1", 0, ssl=server_context) as server:
        port = server.sockets[0].getsockname()[1]
        uri = f"wss://127.0.0.1:{port}"

        # With verification (the default), the self-signed certificate is refused.
        try:
            await websockets.connect(uri)
        except ssl.SSLCertVerificationError as exc:
            print(f"default ssl context: {exc.verify_message}")
        else:
            raise AssertionError("a self-signed certificate shouldn't verify")

        # The FAQ: the ssl argument, here a context that doesn't verify.
        ssl_context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ssl_context.check_hostname = False
        ssl_context.verify_mode = ssl.CERT_NONE
        async with websockets.connect(uri, ssl=ssl_context) as websocket:
            await websocket.send("hello")
            reply = await websocket.recv()
    assert reply == "hello", reply
    print(f"ssl context with CERT_NONE: connected over TLS and echoed {reply!r}")


asyncio.run(main())
