// The Node `ws` client of the interop tests: reads {"sessions": [...]} (plan.py's
// Session.as_json) as JSON on stdin, runs them with driver.js, and prints one JSON
// line per event. Exits 0 when every session ran, 1 otherwise.
'use strict';
const crypto = require('crypto');
const WebSocket = require('ws');
const { runSessions } = require('./driver.js');
const { deflateOptions } = require('./payload.js');

const env = {
  open(url, subprotocols, compression) {
    const options = { perMessageDeflate: deflateOptions(compression), maxPayload: 64 * 1024 * 1024 };
    const ws = new WebSocket(url, subprotocols, options);
    ws.on('upgrade', (response) => { ws.agreed = response.headers['sec-websocket-extensions'] || ''; });
    return ws;
  },
  ping: (ws, ms) =>
    new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), ms);
      ws.once('pong', () => { clearTimeout(timer); resolve(true); });
      ws.ping('wsio-interop');
    }),
  // ws.extensions lists the extensions' names only: the response header has their parameters.
  extensions: (ws) => ws.agreed,
  sha256: async (bytes) => crypto.createHash('sha256').update(bytes).digest('hex'),
  // ws sends a message in several frames with {fin: false} on all but the last.
  sendFragments(ws, pieces, isText) {
    pieces.forEach((piece, i) => ws.send(piece, { binary: !isText, fin: i === pieces.length - 1 }));
  },
};

let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => { input += chunk; });
process.stdin.on('end', async () => {
  const { sessions } = JSON.parse(input);
  const ok = await runSessions(sessions, env, (event) => process.stdout.write(JSON.stringify(event) + '\n'));
  process.exitCode = ok ? 0 : 1;
});
