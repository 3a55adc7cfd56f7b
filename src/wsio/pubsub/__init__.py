"""Publish / subscribe for WebSocket connections, in memory or across processes through Redis.

::

    hub = wsio.Hub()                              # or wsio.Hub("redis://localhost:6379/0")
    await hub.subscribe(websocket, "room:42")     # a topic, by its exact name
    await hub.subscribe_prefix(websocket, "room:")  # every topic starting with room:
    await hub.publish("room:42", "hello")         # -> how many local connections it reached

See :class:`Hub` for slow subscribers, Redis outages and the delivery guarantee
(at most once live; with ``Hub(history_size=...)``, clients that come back get
what they missed: ``await hub.subscribe(websocket, "room:42", recover=(offset, epoch))``).
:mod:`wsio.pubsub.json_protocol` serves subscriptions to browsers in JSON.
"""

from .errors import HubUnavailable
from .hub import SLOW_CLOSE_CODE, Hub, Position, Recovery
from .redact import redact_url

__all__ = ["Hub", "HubUnavailable", "Position", "Recovery", "SLOW_CLOSE_CODE", "redact_url"]
