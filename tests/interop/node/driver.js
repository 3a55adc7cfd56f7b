// One interop session, as tests/interop/plan.py describes it (client_logic), run
// with the browser's WebSocket API: by Node's `ws` (client.js) and by Chromium
// (the page test_interop.py serves). `env` holds what differs between the two:
//   env.open(url, subprotocols, compression) -> a WebSocket
//   env.sha256(Uint8Array) -> Promise<hex string>
//   env.sendFragments(ws, pieces, isText) or null when the API can't fragment
//   env.ping(ws, ms) -> Promise<whether the pong came>, or null when the API can't ping
//   env.extensions(ws): the agreed Sec-WebSocket-Extensions, when ws.extensions isn't it
(function (root) {
  'use strict';
  const P = root.wsioPayload || require('./payload.js');
  const encoder = new TextEncoder();
  const decoder = new TextDecoder('utf-8', { fatal: true });

  function asBytes(data) {
    if (typeof data === 'string') return encoder.encode(data);
    if (data instanceof ArrayBuffer) return new Uint8Array(data);
    return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  }

  async function runSession(session, env, emit) {
    const timeoutMs = session.timeout * 1000;
    const inbox = [];
    let closed = null;
    let wake = null;
    const ws = env.open(session.url, session.subprotocols, session.compression);
    ws.binaryType = 'arraybuffer';
    const notify = () => { if (wake) { const w = wake; wake = null; w(); } };
    ws.onmessage = (event) => { inbox.push(event.data); notify(); };
    ws.onclose = (event) => { closed = { code: event.code, reason: event.reason }; notify(); };
    ws.onerror = () => {};

    // Wait until `ready()` holds (re-checked on every event), or fail after the step timeout.
    async function until(ready, what) {
      const deadline = Date.now() + timeoutMs;
      while (!ready()) {
        const left = deadline - Date.now();
        if (left <= 0) throw new Error('timed out waiting for ' + what);
        await new Promise((resolve) => {
          const timer = setTimeout(() => { wake = null; resolve(); }, left);
          wake = () => { clearTimeout(timer); resolve(); };
        });
      }
    }

    let opened = false;
    ws.onopen = () => { opened = true; notify(); };
    await until(() => opened || closed, 'the opening handshake');
    if (!opened) throw new Error('connection failed: ' + JSON.stringify(closed));
    const extensions = env.extensions ? env.extensions(ws) : ws.extensions;
    emit({ event: 'open', subprotocol: ws.protocol || null, extensions });

    let fragments = 1;
    for (const c of session.messages) {
      if (c.fragments !== fragments) {
        fragments = c.fragments;
        ws.send('CMD fragments ' + fragments);
      }
      const bytes = P.makePayload(c.kind, c.size, c.seed);
      const isText = c.kind === 'text';
      if (c.fragments > 1 && env.sendFragments) {
        env.sendFragments(ws, P.split(bytes, c.fragments), isText);
      } else {
        ws.send(isText ? decoder.decode(bytes) : bytes);
      }
      await until(() => inbox.length || closed, 'the echo of ' + c.kind + ' ' + c.size);
      if (!inbox.length) throw new Error('closed before the echo of ' + c.kind + ' ' + c.size + ': ' + JSON.stringify(closed));
      const data = inbox.shift();
      const got = asBytes(data);
      emit({
        event: 'message',
        type: typeof data === 'string' ? 'text' : 'binary',
        size: got.length,
        sha256: await env.sha256(got),
        sent_sha256: await env.sha256(bytes),
      });
    }
    // Keepalive both ways: the server pings us, then we ping it (null: this API can't).
    ws.send('CMD ping');
    await until(() => inbox.length || closed, 'the answer to CMD ping');
    emit({ event: 'ping', by: 'server', ok: inbox.shift() === 'CMD pong' });
    emit({ event: 'ping', by: 'client', ok: env.ping ? await env.ping(ws, timeoutMs) : null });
    if (session.close.by === 'client') {
      ws.close(session.close.code, session.close.reason);
    } else {
      ws.send('CMD close ' + session.close.code + ' ' + session.close.reason);
    }
    await until(() => closed, 'the closing handshake');
    if (inbox.length) throw new Error(inbox.length + ' message(s) after the last echo');
    emit({ event: 'close', code: closed.code, reason: closed.reason });
  }

  // Run the sessions one after the other; an error ends them, reported as an event.
  async function runSessions(sessions, env, emit) {
    for (let i = 0; i < sessions.length; i++) {
      const tagged = (event) => emit(Object.assign({ session: i }, event));
      try {
        await runSession(sessions[i], env, tagged);
      } catch (err) {
        tagged({ event: 'error', message: String((err && err.stack) || err) });
        return false;
      }
    }
    return true;
  }

  const api = { runSession, runSessions };
  root.wsioDriver = api;
  if (typeof module !== 'undefined' && module.exports) module.exports = api;
})(typeof globalThis !== 'undefined' ? globalThis : this);
