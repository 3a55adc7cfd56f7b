"""FAQ: Why is this library slow?

websocket-client validates UTF-8 and masks frames in pure Python. wsio does
both in C (or in fast pure-Python fallbacks), so skip_utf8_validation is
accepted for compatibility but not needed: UTF-8 is always validated.
"""

import time

from wsio import sync as websocket

from _local_server import start_server

url, _ = start_server()

ws = websocket.create_connection(url, skip_utf8_validation=True)
start = time.perf_counter()
count = 2000
for i in range(count):
    ws.send("é" * 1000)
    assert ws.recv() == "é" * 1000
elapsed = time.perf_counter() - start
print(f"{count} round trips of 2 KB text in {elapsed:.2f} s ({count / elapsed:.0f}/s), skip_utf8_validation accepted")
ws.close()
