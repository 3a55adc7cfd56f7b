// A browser client of wsio's hub JSON protocol (wsio.pubsub.json_protocol), no build step.
//
//   const hub = new HubClient(url, {
//     onMessage(topic, data, position) { ... },  // each publication once, in order, per topic
//     onLost(topic) { ... },                     // missed publications couldn't be recovered: reload
//     onEvent(event) { ... },                    // any other message from the server
//     onOpen() { ... },                          // connected: send what comes before subscribing
//     onStatus(text) { ... },                    // "connected", "reconnecting in 1.2 s"...
//   });
//   hub.subscribe("room:1");
//
// It reconnects with backoff (0.5 s doubling up to 10 s, with jitter) and
// subscribes again to every topic with the offset and epoch of the last
// publication it delivered: the server sends what was missed before its
// "subscribed" answer. A publication seen already (same epoch, offset not
// above the last) is dropped; one that skips offsets, or comes in another
// epoch, makes it send "recover" and wait for what fills the gap. When the
// answer says "recovered": false for a topic it had a position in, onLost
// tells the page to reload; delivery goes on from the server's position.
"use strict";

class HubClient {
  constructor(url, handlers = {}) {
    this.url = url;
    this.handlers = handlers;
    this.positions = new Map(); // topic -> {offset, epoch} of the last delivered, or null
    this.known = new Set(); // topics with a position to come back to
    this.waiting = new Map(); // topic -> publications that came before the answer to subscribe/recover
    this.attempts = 0;
    this.ws = null;
    this.closed = false;
    this._connect();
  }

  subscribe(topic, position = null) {
    this.positions.set(topic, position);
    if (position) this.known.add(topic);
    this.waiting.set(topic, []);
    this._subscribe("subscribe", topic, position);
  }

  unsubscribe(topic) {
    this.positions.delete(topic);
    this.known.delete(topic);
    this.waiting.delete(topic);
    this.send({ type: "unsubscribe", topic });
  }

  send(command) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify(command));
      return true;
    }
    return false;
  }

  close() {
    this.closed = true;
    if (this.ws) this.ws.close();
  }

  _call(name, ...args) {
    const handler = this.handlers[name];
    if (handler) handler(...args);
  }

  _subscribe(type, topic, position) {
    const command = { type, topic };
    if (position) Object.assign(command, { offset: position.offset, epoch: position.epoch });
    this.send(command);
  }

  _connect() {
    const ws = (this.ws = new WebSocket(this.url));
    ws.onopen = () => {
      this.attempts = 0;
      this._call("onStatus", "connected");
      this._call("onOpen");
      this.waiting = new Map();
      for (const [topic, position] of this.positions) {
        this.waiting.set(topic, []);
        this._subscribe("subscribe", topic, position);
      }
    };
    ws.onmessage = (event) => this._received(JSON.parse(event.data));
    ws.onclose = (event) => {
      if (this.ws !== ws || this.closed) return;
      const delay = Math.min(10, 0.5 * 2 ** this.attempts++) * (0.5 + Math.random() / 2);
      this._call("onStatus", `disconnected (${event.code}); reconnecting in ${delay.toFixed(1)} s`);
      setTimeout(() => this._connect(), delay * 1000);
    };
  }

  _received(event) {
    const topic = event.topic;
    if (event.type === "pub") {
      if (!this.positions.has(topic)) return; // unsubscribed meanwhile
      const message = {
        topic,
        data: "data" in event ? event.data : Uint8Array.from(atob(event.b64 || ""), (c) => c.charCodeAt(0)),
        position: Number.isInteger(event.offset) && typeof event.epoch === "string" ? { offset: event.offset, epoch: event.epoch } : null,
      };
      const pending = this.waiting.get(topic);
      if (pending) pending.push(message);
      else this._deliver(message);
    } else if (event.type === "subscribed" && this.waiting.has(topic)) {
      const pending = this.waiting.get(topic);
      this.waiting.delete(topic);
      if (!event.recovered) {
        const had = this.known.has(topic);
        if (Number.isInteger(event.offset) && event.epoch) {
          this.positions.set(topic, { offset: event.offset, epoch: event.epoch });
          this.known.add(topic);
        } else {
          this.positions.set(topic, null); // no history: from the next publication on
          this.known.delete(topic);
        }
        if (had) this._call("onLost", topic);
      }
      // Recovered publications, then live ones that came before the answer.
      pending.sort((a, b) => (a.position ? a.position.offset : 0) - (b.position ? b.position.offset : 0));
      for (const message of pending) {
        this._deliver(message);
        if (this.waiting.has(topic)) break; // another gap: the rest comes again after recover
      }
    } else {
      if (event.type === "error" && topic) this.waiting.delete(topic);
      this._call("onEvent", event);
    }
  }

  _deliver(message) {
    const { topic, position } = message;
    const last = this.positions.get(topic);
    if (position && last) {
      if (position.epoch === last.epoch && position.offset <= last.offset) return; // seen already
      if (position.epoch !== last.epoch || position.offset !== last.offset + 1) {
        this.waiting.set(topic, []); // a gap: ask for what follows the last one delivered
        this._subscribe("recover", topic, last);
        return;
      }
    }
    if (position) {
      this.positions.set(topic, position);
      this.known.add(topic);
    }
    this._call("onMessage", topic, message.data, position);
  }
}
