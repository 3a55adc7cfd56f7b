"""The wsio command line: servers and the client, scripted through pipes.

Most tests run the installed console script (``wsio`` next to the Python that
runs the tests), from a temporary directory, as a user would; the others run
``python -m wsio``.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Iterator

import pytest

import wsio
from tests.helpers import free_port, self_signed_cert, start_process, wait_for_line
from wsio.__main__ import KEYFILE_PASSWORD_ENV
from wsio.sync.client import connect

WSIO = shutil.which("wsio", path=os.path.dirname(sys.executable))

HANDLERS = '''
import asyncio


async def slow_upper(websocket):
    """Answer every message in upper case, one second later."""
    async for message in websocket:
        await asyncio.sleep(1)
        await websocket.send(message.upper())


async def headers(websocket):
    """Send back the request's X-Tag headers, then close."""
    await websocket.send(", ".join(websocket.request.headers.get_all("X-Tag")))
    await websocket.close()


async def worker_echo(websocket):
    """Echo every message after the number of the worker process: "1:hello"."""
    import os

    async for message in websocket:
        await websocket.send(f"{os.environ.get('WSIO_WORKER')}:{message}")
'''


def console_script() -> str:
    assert WSIO is not None, f"the wsio console script is not installed next to {sys.executable}"
    return WSIO


def run_client(*args: str, stdin: str = "hello\n", timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run the ``wsio`` client with ``stdin`` piped in."""
    return subprocess.run([console_script(), *args], input=stdin, capture_output=True, text=True, timeout=timeout)


class Server:
    """``wsio serve ...`` running in ``cwd``; ``uri`` is the first address it printed.

    It runs in a session of its own: if it doesn't stop on SIGTERM, ``stop()``
    kills its process group, workers included.
    """

    def __init__(
        self, args: list[str], cwd: Path, scheme: str = "ws", stderr: IO[str] | None = None, env: dict[str, str] | None = None
    ) -> None:
        self.process = subprocess.Popen(
            [console_script(), "serve", *args],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            cwd=cwd,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
            start_new_session=True,
        )
        try:
            self.first_line = wait_for_line(self.process, "listening on").strip()
            match = re.fullmatch(rf"listening on ({scheme}://127\.0\.0\.1:(\d+)/)", self.first_line)
            assert match is not None, self.first_line
        except BaseException:
            self.stop()
            raise
        self.uri = match.group(1)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    (tmp_path / "handlers.py").write_text(HANDLERS)
    return tmp_path


@pytest.fixture
def slow_server(app_dir: Path) -> Iterator[Server]:
    server = Server(["handlers:slow_upper", "--port", "0"], cwd=app_dir)
    yield server
    server.stop()


# -- wsio serve --------------------------------------------------------------------------------------


def test_console_script_serves_a_module_of_the_current_directory(slow_server: Server) -> None:
    # The first line says where it listens; the handler runs from handlers.py in the cwd.
    assert slow_server.first_line.startswith("listening on ws://127.0.0.1:")
    result = run_client(slow_server.uri, stdin="ping\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["< PING"]


def test_serve_says_which_module_is_missing_and_what_to_do(tmp_path: Path) -> None:
    result = subprocess.run(
        [console_script(), "serve", "nothere:handler"], capture_output=True, text=True, timeout=30, cwd=tmp_path
    )
    assert result.returncode == 1
    assert "no module named 'nothere'" in result.stderr
    assert "--app-dir" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_app_dir_finds_the_module_elsewhere(app_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    server = Server(["handlers:headers", "--port", "0", "--app-dir", str(app_dir)], cwd=elsewhere)
    try:
        result = run_client(server.uri, "--header", "X-Tag: a", stdin="")
    finally:
        server.stop()
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["< a"]


def test_serve_origin_refuses_other_origins_with_403(tmp_path: Path) -> None:
    origins = ("https://app.example", "https://admin.example")
    server = Server(["--echo", "0", "--origin", origins[0], "--origin", origins[1]], cwd=tmp_path)
    try:
        allowed = [run_client(server.uri, "--origin", origin) for origin in origins]
        foreign = run_client(server.uri, "--origin", "https://evil.example")
        missing = run_client(server.uri)  # non-browser clients send no Origin
    finally:
        server.stop()
    for result in allowed:
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines() == ["< hello"]
    assert foreign.returncode == 1
    assert "HTTP 403" in foreign.stderr
    assert missing.returncode == 1
    assert "HTTP 403" in missing.stderr and "--origin" in missing.stderr  # with a hint


def test_serve_allow_no_origin_accepts_clients_without_origin(tmp_path: Path) -> None:
    server = Server(["--echo", "0", "--origin", "https://app.example", "--allow-no-origin"], cwd=tmp_path)
    try:
        missing = run_client(server.uri)
        foreign = run_client(server.uri, "--origin", "https://evil.example")
    finally:
        server.stop()
    assert missing.returncode == 0, missing.stderr
    assert missing.stdout.splitlines() == ["< hello"]
    assert foreign.returncode == 1 and "HTTP 403" in foreign.stderr


def test_serve_rejects_an_origin_with_a_path() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "wsio", "serve", "--echo", "0", "--origin", "https://app.example/"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "no path" in result.stderr


def test_serve_needs_a_target() -> None:
    result = subprocess.run([sys.executable, "-m", "wsio", "serve"], capture_output=True, text=True, timeout=20)
    assert result.returncode == 2
    assert "--echo PORT or module:handler" in result.stderr


# -- wsio serve: TLS and logs ----------------------------------------------------------------------


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[str, str]:
    """A self-signed certificate for ``localhost``, and its key, made for this test."""
    directory = tmp_path / "tls"
    directory.mkdir()
    return self_signed_cert(str(directory), "localhost")


def client_context(certfile: str) -> ssl.SSLContext:
    """Verifies the server's certificate: it trusts ``certfile`` and nothing else."""
    return ssl.create_default_context(cafile=certfile)


def tls_exchange(uri: str, certfile: str, message: str) -> str:
    """Connect to ``uri`` over TLS (the certificate names localhost, not 127.0.0.1), send, receive."""
    with connect(uri, ssl=client_context(certfile), server_hostname="localhost", open_timeout=10) as websocket:
        websocket.send(message)
        reply = websocket.recv(timeout=10)
    assert isinstance(reply, str)
    return reply


def run_serve(*args: str, cwd: Path, timeout: float = 30) -> tuple[int, str]:
    """Run ``wsio serve ARGS``, which should exit by itself; its exit status and stderr.

    If it is still running after ``timeout``, its process group (its own
    session: workers included) is killed and the test fails.
    """
    process = subprocess.Popen(
        [console_script(), "serve", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        env={name: value for name, value in os.environ.items() if name != KEYFILE_PASSWORD_ENV},
        start_new_session=True,
    )
    try:
        _, stderr = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)
    return process.returncode, stderr


@pytest.mark.timeout(60)
def test_serve_tls_serves_wss(tmp_path: Path, tls_files: tuple[str, str]) -> None:
    certfile, keyfile = tls_files
    server = Server(["--echo", "0", "--ssl-certfile", certfile, "--ssl-keyfile", keyfile], cwd=tmp_path, scheme="wss")
    try:
        assert server.first_line.startswith("listening on wss://127.0.0.1:")
        assert tls_exchange(server.uri, certfile, "hello") == "hello"
    finally:
        server.stop()


@pytest.mark.timeout(90)
def test_serve_tls_with_workers_each_worker_loads_the_certificate(app_dir: Path, tls_files: tuple[str, str]) -> None:
    # --certfile (the alias) with one file that holds the certificate and its
    # key. Every worker must serve TLS: connections go on until both answered.
    certfile, keyfile = tls_files
    combined = app_dir / "combined.pem"
    combined.write_text(Path(certfile).read_text() + Path(keyfile).read_text())
    server = Server(
        ["handlers:worker_echo", "--port", "0", "--workers", "2", "--certfile", str(combined)], cwd=app_dir, scheme="wss"
    )
    try:
        seen: set[str] = set()
        for attempt in range(100):  # the kernel picks a worker by the client's port: 2**-99 to miss one
            worker, _, echoed = tls_exchange(server.uri, certfile, f"hello {attempt}").partition(":")
            assert echoed == f"hello {attempt}"
            seen.add(worker)
            if len(seen) == 2:
                break
        assert seen == {"0", "1"}
    finally:
        server.stop()


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "problem, workers, expected",
    [
        ("missing", 1, "can't read the TLS certificate file {certfile}: No such file or directory"),
        ("missing", 2, "can't read the TLS certificate file {certfile}: No such file or directory"),
        ("not a certificate", 1, "{certfile} is not a PEM certificate: no '-----BEGIN CERTIFICATE-----' line"),
        ("another key", 2, "the private key in {keyfile} doesn't match the certificate in {certfile}"),
    ],
)
def test_serve_tls_bad_files_fail_at_startup_in_one_line(
    tmp_path: Path, tls_files: tuple[str, str], problem: str, workers: int, expected: str
) -> None:
    certfile, keyfile = tls_files
    if problem == "missing":
        certfile = str(tmp_path / "missing-cert.pem")
    elif problem == "not a certificate":
        certfile = str(tmp_path / "notes.txt")
        Path(certfile).write_text("not a certificate\n")
    else:
        other = tmp_path / "other"
        other.mkdir()
        keyfile = self_signed_cert(str(other), "localhost")[1]
    status, stderr = run_serve(
        "--echo", "0", "--ssl-certfile", certfile, "--ssl-keyfile", keyfile, "--workers", str(workers), cwd=tmp_path
    )
    assert status == 1, stderr
    assert stderr.splitlines() == ["wsio serve: " + expected.format(certfile=certfile, keyfile=keyfile)], stderr


def encrypted_copy(keyfile: str, password: str, directory: Path) -> str:
    """``keyfile``'s key in a new PEM file, encrypted with ``password``."""
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(Path(keyfile).read_bytes(), None)
    path = directory / "encrypted-key.pem"
    encryption = serialization.BestAvailableEncryption(password.encode())
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption))
    return str(path)


@pytest.mark.parametrize("given_by", ["flag", "environment"])
def test_serve_tls_with_an_encrypted_key_and_its_password(tmp_path: Path, tls_files: tuple[str, str], given_by: str) -> None:
    certfile, keyfile = tls_files
    args = ["--echo", "0", "--ssl-certfile", certfile, "--ssl-keyfile", encrypted_copy(keyfile, "s3cret", tmp_path)]
    env = {}
    if given_by == "flag":
        args += ["--ssl-keyfile-password", "s3cret"]
    else:
        env[KEYFILE_PASSWORD_ENV] = "s3cret"
    server = Server(args, cwd=tmp_path, scheme="wss", env=env)
    try:
        assert tls_exchange(server.uri, certfile, "hello") == "hello"
    finally:
        server.stop()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("workers", [1, 2])
def test_serve_tls_with_a_wrong_password_fails_in_one_line_that_does_not_show_it(
    tmp_path: Path, tls_files: tuple[str, str], workers: int
) -> None:
    certfile, keyfile = tls_files
    encrypted = encrypted_copy(keyfile, "s3cret", tmp_path)
    status, stderr = run_serve(
        "--echo", "0", "--ssl-certfile", certfile, "--ssl-keyfile", encrypted, "--ssl-keyfile-password", "wrong-guess",
        "--workers", str(workers), cwd=tmp_path,
    )  # fmt: skip
    assert status == 1, stderr
    assert stderr.splitlines() == [f"wsio serve: can't decrypt the private key in {encrypted}: wrong password?"], stderr


def test_serve_password_without_certfile_is_a_usage_error(tmp_path: Path) -> None:
    status, stderr = run_serve("--echo", "0", "--ssl-keyfile-password", "s3cret", cwd=tmp_path)
    assert status == 2
    assert f"--ssl-keyfile-password ({KEYFILE_PASSWORD_ENV}) goes with --ssl-certfile" in stderr
    assert "s3cret" not in stderr


def test_serve_keyfile_without_certfile_is_a_usage_error(tmp_path: Path, tls_files: tuple[str, str]) -> None:
    status, stderr = run_serve("--echo", "0", "--keyfile", tls_files[1], cwd=tmp_path)
    assert status == 2
    assert "--ssl-keyfile goes with --ssl-certfile" in stderr


LOG_LINE = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} %sINFO wsio\.server: 127\.0\.0\.1:\d+ connection open, path /"


def exchange(uri: str, message: str = "hello") -> None:
    with connect(uri, open_timeout=10) as websocket:
        websocket.send(message)
        assert websocket.recv(timeout=10) == message


def wait_for_text(path: Path, pattern: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while re.search(pattern, path.read_text(), re.MULTILINE) is None:
        assert time.monotonic() < deadline, f"no {pattern!r} within {timeout}s in:\n{path.read_text()}"
        time.sleep(0.05)


@pytest.mark.timeout(90)
def test_serve_log_level_info_logs_connections_and_no_flag_logs_none(tmp_path: Path) -> None:
    # Without --log-level: Python's default, nothing below WARNING.
    quiet = tmp_path / "quiet.log"
    with quiet.open("w") as stderr:
        server = Server(["--echo", "0"], cwd=tmp_path, stderr=stderr)
        try:
            exchange(server.uri)
        finally:
            server.stop()
    assert "connection open" not in quiet.read_text()
    # With --log-level info: the INFO lines, with time, level and logger.
    log = tmp_path / "info.log"
    with log.open("w") as stderr:
        server = Server(["--echo", "0", "--log-level", "info"], cwd=tmp_path, stderr=stderr)
        try:
            exchange(server.uri)
            wait_for_text(log, "^" + LOG_LINE % "" + "$")
        finally:
            server.stop()


@pytest.mark.timeout(90)
def test_serve_log_level_reaches_the_workers(tmp_path: Path) -> None:
    log = tmp_path / "info.log"
    with log.open("w") as stderr:
        server = Server(["--echo", "0", "--log-level", "INFO", "--workers", "2"], cwd=tmp_path, stderr=stderr)
        try:
            exchange(server.uri)
            wait_for_text(log, "^" + LOG_LINE % r"worker-[01] " + "$")
        finally:
            server.stop()


# -- the client -------------------------------------------------------------------------------------


def test_client_sends_lines_and_prints_replies() -> None:
    port = free_port()
    server = start_process([sys.executable, "-m", "wsio", "serve", "--echo", str(port)])
    try:
        assert wait_for_line(server, "listening on").strip() == f"listening on ws://127.0.0.1:{port}/"
        result = subprocess.run(
            [sys.executable, "-m", "wsio", f"ws://127.0.0.1:{port}/"],
            input="hello\nsecond line\n",
            capture_output=True,
            text=True,
            timeout=20,
        )
    finally:
        server.terminate()
        server.wait(10)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["< hello", "< second line"]
    assert "Connection closed: code 1000" in result.stderr


def test_piped_input_waits_for_replies_that_come_late(slow_server: Server) -> None:
    # Each reply comes one second after its line: the default --eof-wait (2 s
    # without a message) receives them all.
    result = run_client(slow_server.uri, stdin="one\ntwo\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["< ONE", "< TWO"]


def test_eof_wait_bounds_the_wait_for_replies(slow_server: Server) -> None:
    start = time.monotonic()
    result = run_client(slow_server.uri, "--eof-wait", "0.2", stdin="one\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""  # the reply would have come after 1 s
    assert time.monotonic() - start < 10


def test_client_reports_a_refused_connection() -> None:
    port = free_port()  # nothing listens there
    result = subprocess.run(
        [sys.executable, "-m", "wsio", f"ws://127.0.0.1:{port}/"],
        input="",
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert result.returncode == 1
    assert f"Failed to connect to ws://127.0.0.1:{port}/" in result.stderr


def test_version() -> None:
    for args in (["--version"], ["serve", "--version"]):
        result = subprocess.run([console_script(), *args], capture_output=True, text=True, timeout=20)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(f"wsio {wsio.__version__} (Python ")


def test_header_option_is_sent_and_repeatable(app_dir: Path) -> None:
    server = Server(["handlers:headers", "--port", "0"], cwd=app_dir)
    try:
        result = run_client(server.uri, "--header", "X-Tag: first", "-H", "X-Tag:second", stdin="")
    finally:
        server.stop()
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["< first, second"]


def test_client_rejects_a_bad_header_option() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "wsio", "ws://127.0.0.1:1/", "--header", "no colon here"],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert result.returncode == 2
    assert "expected 'Name: value'" in result.stderr


def test_trace_shows_the_handshake_and_frames_and_no_secret(tmp_path: Path) -> None:
    server = Server(["--echo", "0"], cwd=tmp_path)
    uri = server.uri.replace("ws://", "ws://alice:pa55word@")
    try:
        result = run_client(uri, "--trace", "-H", "Cookie: session=c00kie", "-H", "X-Api-Token: t0ken", stdin="hello\n")
    finally:
        server.stop()
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["< hello"]  # the trace goes to stderr only
    trace = result.stderr.splitlines()
    assert "> GET / HTTP/1.1" in trace
    assert "> Authorization: Basic [redacted]" in trace
    assert "> Cookie: [redacted]" in trace
    assert "> X-Api-Token: [redacted]" in trace
    assert "< HTTP/1.1 101 Switching Protocols" in trace
    assert "> TEXT fin [5 bytes]" in trace and "< TEXT fin [5 bytes]" in trace
    assert ">   'hello'" in trace and "<   'hello'" in trace
    assert f"* connecting to {server.uri.replace('ws://', 'ws://alice:***@')}" in trace
    for secret in ("pa55word", "c00kie", "t0ken", "YWxpY2U6cGE1NXdvcmQ="):  # the last: alice:pa55word in base64
        assert secret not in result.stderr + result.stdout


def test_trace_is_off_by_default(tmp_path: Path) -> None:
    server = Server(["--echo", "0"], cwd=tmp_path)
    try:
        result = run_client(server.uri)
    finally:
        server.stop()
    assert result.returncode == 0, result.stderr
    assert "GET /" not in result.stderr and "TEXT" not in result.stderr


def test_help_documents_the_defaults() -> None:
    result = subprocess.run([console_script(), "--help"], capture_output=True, text=True, timeout=20)
    text = " ".join(result.stdout.split())
    assert "(default: 2)" in text  # --eof-wait
    serve_help = subprocess.run([console_script(), "serve", "--help"], capture_output=True, text=True, timeout=20)
    serve_text = " ".join(serve_help.stdout.split())
    assert "cross-site WebSocket hijacking" in serve_text
    assert "--ssl-certfile PATH, --certfile PATH" in serve_text and "--ssl-keyfile PATH, --keyfile PATH" in serve_text
    assert "(default: no TLS)" in serve_text and "or wss:// with --ssl-certfile" in serve_text
    assert "critical, error, warning, info, debug" in serve_text and "(default: not set up" in serve_text


# -- the documentation ------------------------------------------------------------------------------


def _normalize_trace(text: str) -> list[str]:
    text = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", text)
    text = re.sub(r"(Sec-WebSocket-(?:Key|Accept): )\S+", r"\1KEY", text)
    text = re.sub(r"Python/\S+ wsio/\S+", "USER-AGENT", text)
    return text.splitlines()


def test_documented_trace_is_what_the_client_prints(tmp_path: Path) -> None:
    documented = (Path(__file__).parent.parent / "examples" / "docs" / "cli_trace.output").read_text()
    server = Server(["--echo", "0"], cwd=tmp_path)
    uri = server.uri.replace("ws://", "ws://alice:secret@") + "chat"
    try:
        result = run_client("--trace", "-H", "Cookie: session=abc", uri, stdin="hello\n")
    finally:
        server.stop()
    assert result.returncode == 0, result.stderr
    assert result.stdout == "< hello\n"
    assert _normalize_trace(result.stderr) == _normalize_trace(documented)


def test_documented_shell_script_runs(tmp_path: Path) -> None:
    script = Path(__file__).parent.parent / "examples" / "docs" / "cli.sh"
    env = {**os.environ, "PATH": os.path.dirname(console_script()) + os.pathsep + os.environ.get("PATH", "")}
    result = subprocess.run(["sh", str(script)], capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["< HELLO", "< WORLD", "< HELLO", "< HELLO"]
    assert "> X-Request-Id: 42" in result.stderr and "> Origin: https://example.com" in result.stderr


def test_serve_workers_import_the_module_of_the_current_directory(app_dir: Path) -> None:
    # Spawned worker processes find handlers.py too; the one port is announced once.
    server = Server(["handlers:headers", "--port", "0", "--workers", "2"], cwd=app_dir)
    try:
        results = [run_client(server.uri, "-H", f"X-Tag: {n}", stdin="") for n in range(3)]
    finally:
        server.stop()
    assert [result.stdout for result in results] == ["< 0\n", "< 1\n", "< 2\n"], [r.stderr for r in results]
    assert server.process.stdout is not None
    assert "listening on" not in server.process.stdout.read()


def test_interactive_client_exits_when_the_server_closes(app_dir: Path) -> None:
    # stdin is a terminal: the client must not wait for a line typed after the server closed.
    import pty

    server = Server(["handlers:headers", "--port", "0"], cwd=app_dir)
    primary, secondary = pty.openpty()
    try:
        client = subprocess.Popen(
            [console_script(), server.uri, "-H", "X-Tag: typed"],
            stdin=secondary,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            stdout, stderr = client.communicate(timeout=20)
        finally:
            if client.poll() is None:
                client.kill()
                client.wait()
    finally:
        os.close(primary)
        os.close(secondary)
        server.stop()
    assert client.returncode == 0, stderr
    assert stdout == "< typed\n"
    assert "Type a message" in stderr and "Connection closed: code 1000" in stderr


def test_interactive_client_sends_typed_lines_until_ctrl_d(tmp_path: Path) -> None:
    import pty

    server = Server(["--echo", "0"], cwd=tmp_path)
    primary, secondary = pty.openpty()
    try:
        client = subprocess.Popen(
            [console_script(), server.uri], stdin=secondary, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        try:
            os.write(primary, b"typed line\n")
            assert wait_for_line(client, "< ", timeout=20) == "< typed line\n"
            os.write(primary, b"\x04")  # Ctrl-D: end of input
            _, stderr = client.communicate(timeout=20)
        finally:
            if client.poll() is None:
                client.kill()
                client.wait()
    finally:
        os.close(primary)
        os.close(secondary)
        server.stop()
    assert client.returncode == 0, stderr
    assert "Connection closed: code 1000" in stderr
