"""Helpers shared by the tests that start real processes and servers."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Awaitable, Callable, Iterator

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_process(args: list[str], stderr_to_stdout: bool = False, **kwargs: object) -> subprocess.Popen[str]:
    """Start a child process whose stdout can be read line by line."""
    env = kwargs.pop("env", None) or {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(  # type: ignore[call-overload,no-any-return]
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if stderr_to_stdout else None,
        text=True,
        cwd=ROOT,
        env=env,
        **kwargs,
    )


def wait_for_line(process: subprocess.Popen[str], needle: str, timeout: float = 30) -> str:
    """Read the process's output until a line contains ``needle``; fail after ``timeout``."""
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    stream: IO[str] = process.stdout
    os.set_blocking(stream.fileno(), False)
    buffered = ""
    while time.monotonic() < deadline:
        chunk = stream.readline()
        if chunk:
            buffered += chunk
            if needle in chunk:
                os.set_blocking(stream.fileno(), True)
                return chunk
            continue
        if process.poll() is not None:
            break
        time.sleep(0.02)
    raise AssertionError(f"{needle!r} not seen in {timeout}s (exit {process.poll()}); output: {buffered[-2000:]}")


__all__ = ["free_port", "start_process", "wait_for_line", "ROOT", "sys"]


@contextlib.contextmanager
def logged_server(args: list[str], ready: Callable[[str], str | None], cwd: str | Path, timeout: float = 30) -> Iterator[str]:
    """Run ``python *args`` (a server) with its output in a file until ``ready(output)`` returns
    something, and yield that (its address, say). On the way out the server must still run and
    have logged no traceback; it is then ended (SIGTERM, by its own Popen handle) and waited for.

    A file, not a pipe: a server that logs each connection never blocks on a full pipe.
    """
    log = tempfile.NamedTemporaryFile(prefix="wsio-server-", suffix=".log", delete=False)
    process = subprocess.Popen([sys.executable, *args], stdout=log, stderr=log, cwd=cwd)
    try:
        deadline = time.monotonic() + timeout
        while (found := ready(Path(log.name).read_text())) is None:
            assert process.poll() is None and time.monotonic() < deadline, Path(log.name).read_text()
            time.sleep(0.05)
        yield found
        assert process.poll() is None, "the server died"
        assert "Traceback" not in Path(log.name).read_text(), Path(log.name).read_text()[-3000:]
    finally:
        process.terminate()
        process.wait(15)
        log.close()
        os.unlink(log.name)


def pump(source: socket.socket, target: socket.socket) -> None:
    """Copy ``source`` to ``target`` until EOF, then half-close ``target`` (a relay's one direction).

    The unbound ``socket.socket.shutdown`` sends FIN on a TLS socket too,
    without unwrapping it.
    """
    try:
        while data := source.recv(65536):
            target.sendall(data)
    except OSError:
        pass
    finally:
        try:
            socket.socket.shutdown(target, socket.SHUT_WR)
        except OSError:
            pass


def self_signed_cert(directory: str, hostname: str = "localhost", *more_names: str) -> tuple[str, str]:
    """Write a self-signed certificate for ``hostname`` (and ``more_names``) and its key; return their paths."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    cert_path = os.path.join(directory, "cert.pem")
    key_path = os.path.join(directory, "key.pem")
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
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in (hostname, *more_names)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    with open(cert_path, "wb") as file:
        file.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as file:
        file.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return cert_path, key_path


def _websockets_major() -> int:
    import websockets.version

    return int(websockets.version.version.split(".")[0])


#: The libraries a websockets-compatibility test runs the same program against.
#: It compares with websockets 17's API, which doesn't install on every Python
#: wsio supports (3.10 gets websockets 16): there, wsio's side runs alone.
COMPARED_LIBRARIES = [
    "wsio",
    pytest.param(
        "websockets",
        marks=pytest.mark.skipif(
            _websockets_major() < 17, reason="compares with websockets 17; an older websockets is installed"
        ),
    ),
]


async def eventually(predicate: Callable[[], bool | Awaitable[bool]], timeout: float = 5, what: str = "") -> None:
    """Wait until ``predicate()`` is true, polling; fail after ``timeout`` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = predicate()
        if not isinstance(result, bool):
            result = await result  # type: ignore[misc]
        if result:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not true within {timeout}s: {what or predicate}")
        await asyncio.sleep(0.02)
