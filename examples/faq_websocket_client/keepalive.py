"""FAQ: Why don't I receive all the server's message(s)?

Idle connections get dropped by proxies and NATs. Ping the server to keep the
connection alive: run_forever(ping_interval=..., ping_timeout=...) sends a
ping every ping_interval seconds and treats a missing pong as a lost connection.
"""

import time

from wsio import sync as websocket

from _local_server import start_server


def slow_server(ws):
    time.sleep(1.6)  # quiet for a while, then talks
    ws.send("a message after a quiet period")
    ws.recv()


url, _ = start_server(slow_server)
pongs = []

app = websocket.WebSocketApp(
    url,
    on_pong=lambda ws, data: pongs.append(time.monotonic()),
    on_message=lambda ws, message: (print("on_message:", message), ws.close()),
)
app.run_forever(ping_interval=0.5, ping_timeout=0.45)
print(f"{len(pongs)} keepalive pongs received while the server was quiet")
assert pongs

# wsio also keeps create_connection() connections alive by itself: a reader
# thread answers pings and sends keepalive pings every 20 s (ping_interval).
ws = websocket.create_connection(url, ping_interval=0.3)
time.sleep(1)
print("latency measured by keepalive pings:", f"{ws.connection.latency * 1000:.2f} ms")
ws.close()
