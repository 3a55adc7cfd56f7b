#!/bin/sh
# The wsio command: a quick server, then the client, scripted.
#
#     sh cli.sh
set -e

# A server: handler() in app.py, in the current directory, on a free port.
cat > app.py <<'PY'
async def handler(websocket):
    async for message in websocket:
        await websocket.send(message.upper())
PY
wsio serve app:handler --port 0 > listening.txt &
server=$!
trap 'kill "$server"' EXIT                                       # stop it when the script ends
tries=0
until grep -q "listening on" listening.txt; do                  # wait for it, 10 s at most
    tries=$((tries + 1)); [ "$tries" -le 100 ] || exit 1; sleep 0.1
done
uri=$(sed -n 's/^listening on //p' listening.txt | head -n 1)    # ws://127.0.0.1:PORT/

# The client: send two lines, print the replies, close.
printf 'hello\nworld\n' | wsio "$uri"                            # < HELLO, < WORLD

# With a header, the Origin a browser would send, and a trace on stderr.
echo hello | wsio "$uri" --header "X-Request-Id: 42" --origin https://example.com --trace

# Once the input ends, close after 0.5 s without a reply (default: 2 s).
echo hello | wsio "$uri" --eof-wait 0.5
