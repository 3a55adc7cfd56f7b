"""TLS: a wss:// server and clients that verify its certificate.

Makes a throwaway self-signed certificate for "localhost" with the
``cryptography`` package; in production, load the certificate chain and key
your certificate authority gave you.
"""
# requires: cryptography

import asyncio
import datetime
import pathlib
import ssl
import tempfile

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import wsio
from wsio import sync


def self_signed_certificate(directory):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


async def echo(websocket):
    async for message in websocket:
        await websocket.send(message)


async def main(directory):
    cert_file, key_file = self_signed_certificate(directory)

    # Server: an SSLContext with the certificate chain and its private key.
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert_file, key_file)

    # Client: trust this certificate (a private CA works the same way).
    client_context = ssl.create_default_context(cafile=str(cert_file))

    async with wsio.serve(echo, "127.0.0.1", 0, ssl=server_context) as server:
        uri = f"wss://localhost:{server.sockets[0].getsockname()[1]}"

        async with wsio.connect(uri, ssl=client_context) as websocket:
            await websocket.send("over TLS")
            print(f"asyncio client: {await websocket.recv(timeout=5)!r}")

        def thread_client():
            with sync.connect(uri, ssl=client_context) as websocket:
                websocket.send("over TLS")
                return websocket.recv(timeout=5)

        print(f"sync client: {await asyncio.to_thread(thread_client)!r}")

        # wss:// verifies certificates by default: an unknown CA is refused.
        try:
            await wsio.connect(uri)
        except ssl.SSLCertVerificationError as exc:
            print(f"default context: refused ({exc.verify_message})")
        else:
            raise AssertionError("an untrusted certificate was accepted")


with tempfile.TemporaryDirectory() as tmp:
    asyncio.run(main(pathlib.Path(tmp)))
