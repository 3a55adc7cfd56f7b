"""websocket-client's ``_ssl_compat``: the ``ssl`` names it uses, and ``sslopt`` turned into an :class:`ssl.SSLContext`."""

from __future__ import annotations

import os
import ssl
from ssl import SSLEOFError, SSLError, SSLWantReadError, SSLWantWriteError
from typing import Any, Mapping

__all__ = [
    "HAVE_SSL",
    "ssl",
    "SSLError",
    "SSLEOFError",
    "SSLWantReadError",
    "SSLWantWriteError",
    "ssl_context_from_sslopt",
]

#: wsio needs the ``ssl`` module, so it is always there.
HAVE_SSL = True


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
    ``ca_certs`` / ``ca_cert_path`` don't.
    """
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
            context.load_verify_locations(cafile=cafile, capath=capath)
        else:
            context.load_default_certs(ssl.Purpose.SERVER_AUTH)
    if opts.get("certfile"):
        context.load_cert_chain(opts["certfile"], opts.get("keyfile"), opts.get("password"))
    if opts.get("cert_chain"):
        certfile, keyfile, password = opts["cert_chain"]
        context.load_cert_chain(certfile, keyfile, password)
    if opts.get("ciphers"):
        context.set_ciphers(opts["ciphers"])
    if opts.get("ecdh_curve"):
        context.set_ecdh_curve(opts["ecdh_curve"])
    return context, server_hostname
