"""FAQ: Why does the server close the connection prematurely?"""

import asyncio

import wsio as websockets

WORK_RESULTS = []  # what the work sent, or why it couldn't


def make_handlers():
    # The FAQ's two handlers; do_some_work() needs the connection, so it's a closure.
    async def handler_broken(websocket):
        async def do_some_work():
            await asyncio.sleep(0.2)
            try:
                await websocket.send("work done")
                WORK_RESULTS.append("sent")
            except websockets.ConnectionClosed:
                WORK_RESULTS.append("too late: connection already closed")

        asyncio.create_task(do_some_work())

    async def handler_fixed(websocket):
        async def do_some_work():
            await asyncio.sleep(0.2)
            await websocket.send("work done")

        await do_some_work()

    return handler_broken, handler_fixed


async def run(handler):
    async with websockets.serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        async with websockets.connect(f"ws://127.0.0.1:{port}") as websocket:
            try:
                return await websocket.recv()
            except websockets.ConnectionClosed as exc:
                return exc


async def main():
    handler_broken, handler_fixed = make_handlers()

    # The handler returns at once: the connection closes (normally, 1000)
    # before the background task has anything to send.
    outcome = await run(handler_broken)
    assert isinstance(outcome, websockets.ConnectionClosedOK), outcome
    assert outcome.code == 1000, outcome
    await asyncio.sleep(0.3)  # let the orphaned task find out
    assert WORK_RESULTS == ["too late: connection already closed"], WORK_RESULTS
    print(f"create_task() then return: connection closed first ({outcome})")

    # The handler waits for the work: the client gets the result.
    reply = await run(handler_fixed)
    assert reply == "work done", reply
    print(f"await do_some_work(): client received {reply!r}")


asyncio.run(main())
