// Drives examples/chat/hub-client.js with a fake WebSocket, in Node: what it sends and delivers.
// Prints one JSON object; tests/pubsub/test_hub_client_js.py checks it.
"use strict";
const fs = require("fs");
const path = require("path");
const vm = require("vm");

const sockets = [];
class FakeWebSocket {
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.sent = [];
    sockets.push(this);
  }
  send(text) { this.sent.push(JSON.parse(text)); }
  close() { this.readyState = 3; }
  open() { this.readyState = 1; this.onopen(); }
  receive(event) { this.onmessage({ data: JSON.stringify(event) }); }
  drop(code) { this.readyState = 3; this.onclose({ code }); }
}
FakeWebSocket.OPEN = 1;

const timers = [];
const context = vm.createContext({ WebSocket: FakeWebSocket, setTimeout: (f, ms) => timers.push(ms), atob, Uint8Array, Math, JSON, Number, Map, Set, Object });
const source = fs.readFileSync(path.join(__dirname, "..", "..", "examples", "chat", "hub-client.js"), "utf-8");
vm.runInContext(source + "\nthis.HubClient = HubClient;", context);

const delivered = [];
const lost = [];
const events = [];
const statuses = [];
const hub = new context.HubClient("ws://chat.test/chat", {
  onMessage: (topic, data, position) => delivered.push([topic, typeof data === "string" ? data : Array.from(data), position && position.offset]),
  onLost: (topic) => lost.push(topic),
  onEvent: (event) => events.push(event.type),
  onOpen: () => sockets[sockets.length - 1].send(JSON.stringify({ type: "join" })),
  onStatus: (text) => statuses.push(text),
});
const T = "room:1";
const pub = (offset, epoch = "e1") => ({ type: "pub", topic: T, data: `m${offset}`, offset, epoch });
const answer = (recovered, offset, epoch = "e1") => ({ type: "subscribed", topic: T, recovered, offset, epoch });

let ws = sockets[0];
ws.open();
hub.subscribe(T);
for (const event of [pub(1), answer(false, 1), pub(2), pub(2), pub(4)]) ws.receive(event);  // 4: a gap
for (const event of [pub(5), pub(3), pub(4), answer(true, 4)]) ws.receive(event);
const first = ws.sent;
// Dropped: reconnect after a backoff, join, subscribe again from offset 5.
ws.drop(1006);
const delay = timers[0];
hub._connect();  // what the timer does
ws = sockets[1];
ws.open();
for (const event of [pub(5), pub(6), pub(7), answer(true, 6), pub(7), pub(8)]) ws.receive(event);
const second = ws.sent;
// Again, and the history was lost: a new epoch.
ws.drop(1001);
hub._connect();
ws = sockets[2];
ws.open();
for (const event of [pub(3, "e2"), answer(false, 2, "e2"), pub(3, "e2"), { type: "pub", topic: T, b64: "AP8=" }, { type: "join", topic: T }, { type: "pub", topic: "other", data: "x" }]) ws.receive(event);
console.log(JSON.stringify({ first, second, third: ws.sent, delivered, lost, events, statuses, delay, positions: Array.from(hub.positions) }));
