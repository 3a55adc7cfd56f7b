// The Node `ws` echo server of the interop tests (plan.py's echo_logic): echoes
// every message, in n fragments after "CMD fragments n", closes on
// "CMD close CODE REASON", pings on "CMD ping" (answering "CMD pong" once the
// pong came), and prints one JSON line per event on stdout.
// Usage: node server.js on|off|params   (permessage-deflate: ws's defaults, none,
// or no context takeover and 10/11-bit windows, as plan.py's DEFLATE_PARAMS)
'use strict';
const crypto = require('crypto');
const { WebSocketServer } = require('ws');
const { split, deflateOptions } = require('./payload.js');

const log = (event) => process.stdout.write(JSON.stringify(event) + '\n');
const sha256 = (bytes) => crypto.createHash('sha256').update(bytes).digest('hex');

const server = new WebSocketServer({
  host: '127.0.0.1',
  port: 0,
  maxPayload: 64 * 1024 * 1024,
  perMessageDeflate: deflateOptions(process.argv[2] || 'on'),
  handleProtocols: (protocols) => (protocols.has('wsio-interop') ? 'wsio-interop' : false),
});
let connections = 0;

// ws.extensions lists the extensions' names only: the response header has their parameters.
server.on('headers', (headers, request) => {
  const line = headers.find((h) => h.toLowerCase().startsWith('sec-websocket-extensions:'));
  request.agreed = line ? line.slice(line.indexOf(':') + 1).trim() : '';
});

server.on('connection', (ws, request) => {
  const conn = ++connections;
  let fragments = 1;
  log({ conn, event: 'open', subprotocol: ws.protocol || null, extensions: request.agreed });
  ws.on('message', (data, isBinary) => {
    if (!isBinary && data.length > 4 && data.toString('latin1', 0, 4) === 'CMD ') {
      const [, verb, ...rest] = data.toString().split(' ');
      if (verb === 'fragments') fragments = Number(rest[0]);
      else if (verb === 'close') ws.close(Number(rest[0]), rest.slice(1).join(' '));
      else if (verb === 'ping') {
        ws.once('pong', () => ws.send('CMD pong'));
        ws.ping('wsio-interop');
      }
      return;
    }
    log({ conn, event: 'message', type: isBinary ? 'binary' : 'text', size: data.length, sha256: sha256(data) });
    if (fragments > 1) {
      const pieces = split(data, fragments);
      pieces.forEach((piece, i) => ws.send(piece, { binary: isBinary, fin: i === pieces.length - 1 }));
    } else {
      ws.send(data, { binary: isBinary });
    }
  });
  ws.on('close', (code, reason) => log({ conn, event: 'close', code, reason: reason.toString() }));
  ws.on('error', (err) => log({ conn, event: 'error', message: String(err) }));
});
server.on('listening', () => log({ event: 'listening', port: server.address().port }));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
