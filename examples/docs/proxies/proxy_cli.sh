#!/bin/sh
# Proxies: the wsio command. Each line sends "hello" and prints the echo.
#
#     sh proxy_cli.sh PROXY_URI SERVER_URI
#     sh proxy_cli.sh http://alice:s3cret@proxy.corp:3128 wss://example.com/feed
set -e
proxy_uri=$1
server_uri=$2

# The proxy given on the command line.
echo hello | wsio "$server_uri" --proxy "$proxy_uri"

# The proxy from the environment: https_proxy for wss://, http_proxy for ws://.
echo hello | https_proxy="$proxy_uri" http_proxy="$proxy_uri" wsio "$server_uri"

# No proxy, whatever the environment says.
echo hello | wsio "$server_uri" --no-proxy
