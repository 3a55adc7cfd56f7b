"""FAQ: Why does the server close the connection after one message?"""

import asyncio
import contextlib
import io
import warnings

import wsio as websockets

# The broken handler calls recv() without awaiting it, exactly as the FAQ
# shows; Python then warns "coroutine ... was never awaited". Expected here.
warnings.filterwarnings("ignore", message="coroutine .* was never awaited")


# The FAQ, older versions: handlers take (websocket, path).
async def handler_broken_with_path(websocket, path):
    print(websocket.recv())


async def handler_fixed_with_path(websocket, path):
    async for message in websocket:
        print(message)


# The FAQ, newer versions: handlers take (websocket).
async def handler_broken(websocket):
    print(websocket.recv())


async def handler_fixed(websocket):
    async for message in websocket:
        print(message)


async def run(handler, messages):
    """Serve with handler, send messages; return what the handler printed and how the client ended."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        async with websockets.serve(handler, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            async with websockets.connect(f"ws://127.0.0.1:{port}") as websocket:
                try:
                    for message in messages:
                        await websocket.send(message)
                        await asyncio.sleep(0.05)
                    closed_by_server = False
                except websockets.ConnectionClosed:
                    closed_by_server = True
        # Leaving serve() waited for the handler to return.
    return printed.getvalue().splitlines(), closed_by_server


async def main():
    messages = ["one", "two", "three"]
    for broken, fixed in [
        (handler_broken_with_path, handler_fixed_with_path),
        (handler_broken, handler_fixed),
    ]:
        printed, closed_by_server = await run(broken, messages)
        assert closed_by_server, "the broken handler should have closed the connection"
        assert not any(line in messages for line in printed), printed
        print(f"{broken.__name__}: printed {printed[0][:30]!r}..., then the server closed the connection")

        printed, closed_by_server = await run(fixed, messages)
        assert not closed_by_server
        assert printed == messages, printed
        print(f"{fixed.__name__}: printed all {len(printed)} messages")


asyncio.run(main())
