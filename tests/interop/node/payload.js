// The interop test payloads, byte for byte the same as tests/interop/plan.py makes
// them: a 64 KiB block from a xorshift32 generator, repeated to the size asked.
// Text blocks mix ASCII letters with 2- and 3-byte UTF-8 characters; binary blocks
// are mostly small values (deflate has something to do) and some full-range bytes.
// Loaded by Node (require) and by the page Chromium runs (a plain <script>).
(function (root) {
  'use strict';
  const BLOCK = 65536;
  const blocks = new Map();

  // Replace a character cut in two by the end of the buffer with 'z's.
  function fixTail(buf) {
    let i = buf.length - 1;
    while (i >= 0 && (buf[i] & 0xc0) === 0x80) i--;
    if (i < 0) return buf;
    const lead = buf[i];
    const need = lead < 0x80 ? 1 : lead < 0xe0 ? 2 : 3;
    if (buf.length - i < need) buf.fill(0x7a, i);
    return buf;
  }

  function block(kind, seed) {
    const key = kind + ':' + seed;
    if (blocks.has(key)) return blocks.get(key);
    let x = (Math.imul(seed, 2654435761 | 0) + 1) >>> 0 || 1;
    const out = new Uint8Array(BLOCK + 3);
    let n = 0;
    while (n < BLOCK) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      x >>>= 0;
      const r = x >>> 8;
      if (kind === 'binary') {
        out[n++] = ((r >>> 16) & 7) === 0 ? r & 0xff : r & 0x1f;
      } else {
        const v = r % 40;
        if (v < 32) out[n++] = 0x61 + (v & 15);
        else if (v < 36) { out[n++] = 0xc3; out[n++] = 0xa9; } // é
        else if (v < 38) { out[n++] = 0xe2; out[n++] = 0x9c; out[n++] = 0x93; } // ✓
        else out[n++] = 0x20;
      }
    }
    let result = out.slice(0, BLOCK);
    if (kind === 'text') result = fixTail(result);
    blocks.set(key, result);
    return result;
  }

  // The message of a test case, as bytes (UTF-8 for text).
  function makePayload(kind, size, seed) {
    const b = block(kind, seed);
    const out = new Uint8Array(size);
    for (let pos = 0; pos < size; pos += BLOCK) out.set(b.subarray(0, Math.min(BLOCK, size - pos)), pos);
    return kind === 'text' ? fixTail(out) : out;
  }

  // Cut bytes into n pieces of nearly equal length (text may be cut inside a character:
  // a fragment boundary needn't be a character boundary).
  function split(bytes, n) {
    n = Math.max(1, Math.min(n, bytes.length));
    const pieces = [];
    for (let i = 0; i < n; i++) {
      pieces.push(bytes.subarray(Math.floor((i * bytes.length) / n), Math.floor(((i + 1) * bytes.length) / n)));
    }
    return pieces;
  }

  // ws's perMessageDeflate option for "on", "off" or "params" (plan.py's DEFLATE_PARAMS).
  // threshold 0: ws compresses every message, even the empty one.
  function deflateOptions(setting) {
    if (setting === 'off') return false;
    if (setting !== 'params') return { threshold: 0 };
    return {
      threshold: 0,
      serverNoContextTakeover: true,
      clientNoContextTakeover: true,
      serverMaxWindowBits: 10,
      clientMaxWindowBits: 11,
    };
  }

  const api = { BLOCK, makePayload, split, deflateOptions };
  root.wsioPayload = api;
  if (typeof module !== 'undefined' && module.exports) module.exports = api;
})(typeof globalThis !== 'undefined' ? globalThis : this);
