"""Certificates and contexts for the HTTP/2 tests: a trustme CA, a server and a client context."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest

import h2  # noqa: F401  (the http2 extra, in the test extra: missing, these tests fail)
import trustme


@pytest.fixture(scope="session")
def ca() -> Any:
    return trustme.CA()


@pytest.fixture(scope="session")
def cert_files(ca: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    cert = ca.issue_cert("localhost", "127.0.0.1")
    directory = tmp_path_factory.mktemp("h2tls")
    certfile, keyfile = Path(directory, "cert.pem"), Path(directory, "key.pem")
    cert.private_key_and_cert_chain_pem.write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    return str(certfile), str(keyfile)


@pytest.fixture
def server_ctx(cert_files: tuple[str, str]) -> ssl.SSLContext:
    """A fresh server context per test: serve(http2=True) sets ALPN on the context it gets."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*cert_files)
    return ctx


@pytest.fixture
def client_ctx(ca: Any) -> ssl.SSLContext:
    """A client context that trusts the CA and offers h2 first in ALPN."""
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    return ctx


@pytest.fixture
def http1_client_ctx(ca: Any) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx
