"""wsio's benchmark suite: wsio beside websockets, picows, aiohttp, websocket-client and plain TCP.

``python -m bench`` (``make bench``) runs it; see bench/README.md.
"""
