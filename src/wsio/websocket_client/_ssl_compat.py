"""websocket-client's ``_ssl_compat``: the ``ssl`` names it uses, and ``sslopt`` turned into an :class:`ssl.SSLContext`."""

from __future__ import annotations

import contextlib
import os
from typing import Any, Iterator, Mapping

try:
    import ssl
    from ssl import SSLEOFError, SSLError, SSLWantReadError, SSLWantWriteError

    #: Whether this Python has the ``ssl`` module (``wss://`` needs it).
    HAVE_SSL = True
except ImportError:  # a Python built without OpenSSL: ws:// still works
    HAVE_SSL = False
    ssl = None  # type: ignore[assignment]

    class SSLError(Exception):  # type: ignore[no-redef]
        """Stands for :class:`ssl.SSLError` on a Python without ``ssl``."""

    class SSLEOFError(SSLError):  # type: ignore[no-redef]
        """Stands for :class:`ssl.SSLEOFError` on a Python without ``ssl``."""

    class SSLWantReadError(SSLError):  # type: ignore[no-redef]
        """Stands for :class:`ssl.SSLWantReadError` on a Python without ``ssl``."""

    class SSLWantWriteError(SSLError):  # type: ignore[no-redef]
        """Stands for :class:`ssl.SSLWantWriteError` on a Python without ``ssl``."""


__all__ = [
    "HAVE_SSL",
    "ssl",
    "SSLError",
    "SSLEOFError",
    "SSLWantReadError",
    "SSLWantWriteError",
    "ssl_context_from_sslopt",
]


@contextlib.contextmanager
def _failure(what: str, *errors: type[BaseException]) -> Iterator[None]:
    """Turn ``errors`` into a :class:`WebSocketException` saying which TLS option failed."""
    from ._exceptions import WebSocketException

    try:
        yield
    except errors as exc:
        raise WebSocketException(f"{what}: {exc}") from exc


def ssl_context_from_sslopt(sslopt: Mapping[str, Any] | None) -> tuple[ssl.SSLContext, str | None]:
    """Build the client TLS context that ``sslopt`` describes; return it and the ``server_hostname`` override.

    Keys, as websocket-client defines them: ``context`` (used as is),
    ``cert_reqs`` (``ssl.CERT_REQUIRED`` by default; ``ssl.CERT_NONE``
    disables certificate *and* hostname verification), ``check_hostname``
    (default: on unless ``cert_reqs`` is ``CERT_NONE``), ``ca_certs``,
    ``ca_cert_path``, ``certfile``, ``keyfile``, ``password``, ``cert_chain``
    (a ``(certfile, keyfile, password)`` tuple), ``server_hostname`` (for SNI
    and the hostname check), ``ssl_version``, ``ciphers``, ``ecdh_curve``.
    ``$WEBSOCKET_CLIENT_CA_BUNDLE`` names a CA file or directory when
    ``ca_certs`` / ``ca_cert_path`` don't. A file that can't be loaded, or
    a cipher or curve OpenSSL rejects, raises a
    :class:`~wsio.sync.WebSocketException` naming the option.
    """
    if ssl is None:
        raise RuntimeError("this Python has no ssl module: wss:// needs a Python built with OpenSSL")
    opts = dict(sslopt or {})
    server_hostname = opts.get("server_hostname") or None
    context = opts.get("context")
    if context is not None:
        return context, server_hostname
    cert_reqs = opts.get("cert_reqs", ssl.CERT_REQUIRED)
    check_hostname = opts.get("check_hostname", cert_reqs != ssl.CERT_NONE)
    context = ssl.SSLContext(opts.get("ssl_version", ssl.PROTOCOL_TLS_CLIENT))
    # check_hostname first: verify_mode can't be CERT_NONE while it is on.
    context.check_hostname = False
    context.verify_mode = cert_reqs
    context.check_hostname = bool(check_hostname) and cert_reqs != ssl.CERT_NONE
    if cert_reqs != ssl.CERT_NONE:
        cafile = opts.get("ca_certs")
        capath = opts.get("ca_cert_path")
        bundle = os.environ.get("WEBSOCKET_CLIENT_CA_BUNDLE")
        if bundle and cafile is None and capath is None:
            if os.path.isfile(bundle):
                cafile = bundle
            elif os.path.isdir(bundle):
                capath = bundle
        if cafile or capath:
            with _failure("SSL CA certificate loading failed", OSError, ssl.SSLError, ValueError):
                context.load_verify_locations(cafile=cafile, capath=capath)
        else:
            with _failure("SSL default certificate loading failed", ssl.SSLError):
                context.load_default_certs(ssl.Purpose.SERVER_AUTH)
    if opts.get("certfile"):
        with _failure("SSL client certificate loading failed", OSError, ssl.SSLError, ValueError):
            context.load_cert_chain(opts["certfile"], opts.get("keyfile"), opts.get("password"))
    if opts.get("cert_chain"):
        chain = opts["cert_chain"]
        if not isinstance(chain, (tuple, list)) or len(chain) != 3:
            raise ValueError("cert_chain must be a tuple/list of (certfile, keyfile, password)")
        with _failure("SSL client certificate configuration failed", OSError, ssl.SSLError):
            context.load_cert_chain(*chain)
    if opts.get("ciphers"):
        with _failure("SSL cipher configuration failed", ssl.SSLError):
            context.set_ciphers(opts["ciphers"])
    if opts.get("ecdh_curve"):
        with _failure("SSL ECDH curve configuration failed", ValueError):
            context.set_ecdh_curve(opts["ecdh_curve"])
    return context, server_hostname
