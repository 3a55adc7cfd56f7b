"""Run every program in examples/docs/ (the documentation includes them) and check what it prints.

Self-contained programs start their own server and clients; the getting-started
servers are started on a free port and each client is run against each server;
the Redis deployment example runs on two worker processes with a real
redis-server. The nginx snippet of examples/deployment/ can't run here: its
essential directives are checked.
"""

from __future__ import annotations

import asyncio
import os
import pathlib
import re
import subprocess
import sys

import pytest

from tests.helpers import free_port, start_process, wait_for_line

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS_EXAMPLES = ROOT / "examples" / "docs"
NGINX_CONF = ROOT / "examples" / "deployment" / "nginx.conf"
TIMEOUT = 30

# Programs that run on their own, and lines (regular expressions) their output must have.
SELF_CONTAINED = {
    "compression.py": [
        r"^negotiated: permessage-deflate; server_max_window_bits=12; client_max_window_bits=12$",
        r"^with compression=None: None$",
        r"^over max_size: closed with 1009$",
        r"^frugal server: permessage-deflate; server_no_context_takeover; client_no_context_takeover",
    ],
    "keepalive.py": [
        r"^pong after [\d.]+ ms$",
        r"^no message within 0.1 s; connection still open: OPEN$",
        r"^silent peer: sent 1011, received 1006: no pong within ping_timeout=0.5s$",
    ],
    "broadcast.py": [
        r"^broadcast reached 3 connections$",
        r"^bob got 'hi room 42'$",
        r"^carol \(room 7\) got nothing$",
        r"^publish reached 3 connections$",
    ],
    "tls.py": [
        r"^asyncio client: 'over TLS'$",
        r"^sync client: 'over TLS'$",
        r"^default context: refused \(self-signed certificate\)$",
    ],
    "http2.py": [
        r"^replies: \['hello from a', 'hello from b', 'hello from c'\]$",
        r"^streams: \[1, 3, 5\]$",
        r"^TCP connections: 1$",
        r"^fallback: stream None$",
    ],
    "http2_h2c.py": [
        r"^replies: \['subscribe news', 'subscribe orders', 'subscribe prices'\]$",
        r"^TCP connections: 1$",
        r"^HTTP/1.1 client: 'over HTTP/1.1'$",
    ],
    "logging_setup.py": [
        r"^wsio\.server INFO 127\.0\.0\.1:\d+ connection open, path /$",
        r"^wsio\.client INFO 127\.0\.0\.1:\d+ connection open$",
        r"^wsio\.client DEBUG > TEXT fin \[5 bytes\]$",
        r"^wsio\.server INFO 127\.0\.0\.1:\d+ connection closed: received code = 1000",
        r"^wsio\.client INFO 127\.0\.0\.1:\d+ connection closed: sent code = 1000",
    ],
}
SERVERS = ["asyncio_server.py", "sync_server.py", "listener_server.py"]
CLIENTS = ["asyncio_client.py", "sync_client.py", "listener_client.py"]
CLIENT_OUTPUT = {
    # The documentation shows this output: it is in a file of its own.
    "asyncio_client.py": (DOCS_EXAMPLES / "asyncio_client.output").read_text(),
    "sync_client.py": "received 'hello'\nclosed with 1000\n",
    "listener_client.py": "received 'hello'\nclosed with 1000\n",
}
OTHERS = ["redis_app.py"]


def run_program(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, *args],
        cwd=DOCS_EXAMPLES,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert result.returncode == 0, f"exit code {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return result.stdout


def normalized(output: str) -> list[str]:
    return sorted(re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", output).splitlines())


def stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def test_every_program_is_tested() -> None:
    programs = {path.name for path in DOCS_EXAMPLES.glob("*.py")}
    assert programs == set(SELF_CONTAINED) | set(SERVERS) | set(CLIENTS) | set(OTHERS)


@pytest.mark.parametrize("program", sorted(SELF_CONTAINED))
def test_self_contained(program: str) -> None:
    output = run_program(program)
    shown = DOCS_EXAMPLES / program.replace(".py", ".output")
    if shown.exists():  # the documentation shows this output (ports and line order may differ)
        assert normalized(output) == normalized(shown.read_text())
    for pattern in SELF_CONTAINED[program]:
        assert re.search(pattern, output, re.MULTILINE), f"{pattern!r} not in output:\n{output}"


@pytest.mark.parametrize("server", SERVERS)
def test_getting_started(server: str) -> None:
    port = free_port()
    process = start_process([sys.executable, str(DOCS_EXAMPLES / server), "--port", str(port)])
    try:
        wait_for_line(process, f"listening on ws://127.0.0.1:{port}")
        for client in CLIENTS:
            output = run_program(client, f"ws://127.0.0.1:{port}")
            assert output == CLIENT_OUTPUT[client], f"{client} against {server}:\n{output}"
    finally:
        stop(process)
    if server == "listener_server.py":
        rest = process.stdout.read() if process.stdout else ""
        assert "closed: 1000" in rest


async def _chat_across_workers(port: int) -> None:
    import wsio

    uri = f"ws://127.0.0.1:{port}"
    clients: dict[str, wsio.ClientConnection] = {}
    extra = []
    # The kernel spreads connections over the workers: connect until two differ.
    for _ in range(40):
        websocket = await wsio.connect(uri)
        worker = await websocket.recv(timeout=5)
        if worker in clients:
            extra.append(websocket)
        else:
            clients[worker] = websocket
        if len(clients) == 2:
            break
    assert len(clients) == 2, f"all connections went to {list(clients)}"
    (first, sender), (second, receiver) = clients.items()
    await asyncio.sleep(0.2)  # the subscriptions reach Redis
    await sender.send(f"hello from {first}")
    assert await receiver.recv(timeout=5) == f"hello from {first}"
    assert await sender.recv(timeout=5) == f"hello from {first}"
    for websocket in [*clients.values(), *extra]:
        await websocket.close()


def test_redis_workers() -> None:
    from tests.pubsub.redis_server import RedisServer

    redis = RedisServer()
    redis.start()
    try:
        port = free_port()
        program = str(DOCS_EXAMPLES / "redis_app.py")
        process = start_process([sys.executable, program, "--port", str(port), "--workers", "2", "--redis", redis.url])
        try:
            wait_for_line(process, "with 2 workers", timeout=60)
            asyncio.run(_chat_across_workers(port))
        finally:
            stop(process)
    finally:
        redis.kill()
    assert process.returncode == 0, process.returncode


def test_nginx_snippet() -> None:
    conf = NGINX_CONF.read_text()
    directives = [line.split("#")[0].strip() for line in conf.splitlines()]
    for needed in [
        "proxy_http_version 1.1;",
        "proxy_set_header Upgrade $http_upgrade;",
        "proxy_set_header Connection $connection_upgrade;",
        "proxy_read_timeout 120s;",
        "proxy_send_timeout 120s;",
        "proxy_pass http://wsio;",
    ]:
        assert needed in directives, f"{needed!r} missing from {NGINX_CONF}"
    # Longer than ping_interval + ping_timeout (20 s + 20 s), or nginx drops idle connections.
    assert int(re.search(r"proxy_read_timeout (\d+)s;", conf).group(1)) > 40
    assert conf.count("{") == conf.count("}")
