// The client's behaviour against a fake socket: backoff, the close-code
// policy, the offline queue, request matching, recovery and refresh.

import { test, beforeEach } from "node:test";
import assert from "node:assert/strict";

import { HearthClient, HearthError, backoffDelay, closePolicy } from "../src/index.js";
import { FakeSocket, until } from "./fake_socket.js";

/** A JWT-shaped token whose payload has `exp` (seconds); unsigned. */
function tokenExpiring(expSeconds) {
  const payload = Buffer.from(JSON.stringify({ sub: "alice", exp: expSeconds })).toString("base64url");
  return `e30.${payload}.sig`;
}

function client(options = {}) {
  return new HearthClient({
    url: "ws://hearth.test/ws/chat",
    token: "t",
    WebSocket: FakeSocket,
    initialBackoffMs: 1,
    maxBackoffMs: 2,
    requestTimeoutMs: 200,
    ...options,
  });
}

async function connected(c) {
  c.connect();
  await until(() => FakeSocket.all.length > 0, "a socket");
  FakeSocket.last().welcome();
  await until(() => c.state === "connected", "connected");
  return FakeSocket.last();
}

beforeEach(() => FakeSocket.reset());

test("backoff is full jitter under a growing, capped ceiling", () => {
  const options = { initialMs: 100, maxMs: 1000 };
  assert.equal(backoffDelay(0, options, () => 0), 0);
  assert.equal(backoffDelay(0, options, () => 0.999), 99);
  assert.equal(backoffDelay(2, options, () => 0.999), 399);
  assert.equal(backoffDelay(10, options, () => 0.999), 999, "capped");
  for (let attempt = 0; attempt < 8; attempt++) {
    const delay = backoffDelay(attempt, options);
    assert.ok(delay >= 0 && delay < Math.min(1000, 100 * 2 ** attempt));
  }
});

test("the close code decides: retry, renew the token, or stop", () => {
  for (const code of [1000, 1001, 1006, 1011, 1013, 4002]) {
    assert.equal(closePolicy(code, ""), "retry", String(code));
  }
  assert.equal(closePolicy(4001, "token expired"), "renew");
  assert.equal(closePolicy(1008, "token expired"), "renew");
  assert.equal(closePolicy(1008, "invalid token"), "stop");
  assert.equal(closePolicy(1008, "missing token"), "stop");
  assert.equal(closePolicy(1008, "rate limit exceeded"), "retry");
  assert.equal(closePolicy(1007, ""), "stop");
});

test("frames sent while disconnected wait in order, up to the limit", async () => {
  const c = client({ queueLimit: 2 });
  const full = [];
  c.addEventListener("queue_full", (event) => full.push(event.detail.frame));
  assert.equal(c.send({ type: "ping", id: "a" }), true);
  assert.equal(c.send({ type: "ping", id: "b" }), true);
  assert.equal(c.send({ type: "ping", id: "c" }), false, "past the limit");
  assert.deepEqual(full, [{ type: "ping", id: "c" }]);
  assert.equal(c.queued, 2);
  const socket = await connected(c);
  assert.deepEqual(socket.sent.map((f) => f.id), ["a", "b"]);
  assert.equal(c.queued, 0);
  c.close();
});

test("a request settles with its own answer, an error, or a timeout", async () => {
  const c = client();
  const socket = await connected(c);
  const first = c.request("sessions.list", {});
  const second = c.ask({ type: "publish", channel: "room:a", data: 1 });
  const third = c.ask({ type: "ping" }, { timeoutMs: 20 });
  const [one, two] = socket.sent;
  socket.receive({ type: "error", reply_to: two.id, code: "forbidden", message: "no" });
  socket.receive({ type: "response", reply_to: one.id, result: { sessions: [] } });
  assert.deepEqual(await first, { sessions: [] });
  await assert.rejects(second, (error) => error instanceof HearthError && error.code === "forbidden");
  await assert.rejects(third, (error) => error.code === "timeout");
  c.close();
});

test("an abnormal end reconnects; a refused token stops", async () => {
  const c = client();
  const states = [];
  c.addEventListener("state", (event) => states.push(event.detail.state));
  const socket = await connected(c);
  socket.drop(1006);
  await until(() => FakeSocket.all.length === 2, "a second socket");
  FakeSocket.last().welcome();
  await until(() => c.state === "connected", "connected again");
  assert.ok(states.includes("reconnecting"), states.join());

  let stopped = null;
  c.addEventListener("stopped", (event) => (stopped = event.detail));
  FakeSocket.last().drop(1008, "invalid token");
  await until(() => stopped !== null, "stopped");
  assert.equal(c.state, "offline");
  assert.equal(FakeSocket.all.length, 2, "no third attempt");
  c.close();
});

test("a refused connection, or one never welcomed, is tried again", async () => {
  const c = client({ connectTimeoutMs: 20 });
  c.connect();
  await until(() => FakeSocket.all.length === 1, "a socket");
  FakeSocket.last().refuse();
  await until(() => FakeSocket.all.length === 2, "a retry after an error without a close");
  // The second one opens but no welcome comes: given up, then tried again.
  await until(() => FakeSocket.all.length === 3, "a retry after no welcome");
  assert.deepEqual(FakeSocket.all[1].closed, { code: 4000, reason: "no welcome" });
  FakeSocket.last().welcome();
  await until(() => c.state === "connected", "connected");
  c.close();
});

test("4001 asks for a new token before reconnecting", async () => {
  let issued = 0;
  const c = client({ token: undefined, getToken: () => `token-${++issued}` });
  const socket = await connected(c);
  assert.match(socket.url, /token=token-1/);
  socket.drop(4001, "token expired");
  await until(() => FakeSocket.all.length === 2, "a second socket");
  assert.match(FakeSocket.last().url, /token=token-2/);
  c.close();
});

test("subscriptions come back after a reconnect, recovering from where they stood", async () => {
  const c = client();
  let socket = await connected(c);
  const seen = [];
  const recovered = [];
  const subscribing = c.subscribe("room:a", {
    onPublication: (frame) => seen.push(frame.offset),
    onRecovered: (ok) => recovered.push(ok),
  });
  const ask = socket.sent.at(-1);
  socket.receive({
    type: "response",
    reply_to: ask.id,
    result: { channels: { "room:a": { offset: 4, epoch: "e1", recovered: false, missed: 0 } }, refused: {} },
  });
  await subscribing;
  const publication = (offset) => ({ type: "event", event: "publication", channel: "room:a", offset, epoch: "e1", data: {} });
  socket.receive(publication(5));
  socket.receive(publication(5)); // a repeat is dropped
  socket.receive(publication(6));
  assert.deepEqual(seen, [5, 6]);

  socket.drop(1001, "server shutting down");
  await until(() => FakeSocket.all.length === 2, "a second socket");
  socket = FakeSocket.last();
  socket.welcome();
  await until(() => socket.sent.some((f) => f.type === "subscribe"), "a resubscribe");
  const again = socket.sent.find((f) => f.type === "subscribe");
  assert.deepEqual(again.recover, { "room:a": { offset: 6, epoch: "e1" } });
  socket.receive({
    type: "response",
    reply_to: again.id,
    result: { channels: { "room:a": { offset: 9, epoch: "e2", recovered: false, missed: 0 } }, refused: {} },
  });
  await until(() => recovered.length === 1, "the recovery verdict");
  assert.deepEqual(recovered, [false], "the application is told to read afresh");
  c.close();
});

test("the token is refreshed on the live connection before it expires", async () => {
  const soon = Math.floor(Date.now() / 1000) + 61; // one second past the refresh margin
  let issued = 0;
  const c = client({
    token: undefined,
    getToken: () => (++issued === 1 ? tokenExpiring(soon) : tokenExpiring(soon + 3600)),
  });
  const socket = await connected(c);
  await until(() => socket.sent.some((f) => f.type === "refresh"), "a refresh", 3000);
  const refresh = socket.sent.find((f) => f.type === "refresh");
  assert.equal(refresh.token, tokenExpiring(soon + 3600));
  assert.equal(FakeSocket.all.length, 1, "no reconnect");
  c.close();
});

test("a streamed reply: deltas in order, early ones kept, the end as a promise", async () => {
  const c = client();
  const socket = await connected(c);
  const sending = c.messages.send("sess_1", "hello");
  await until(() => socket.sent.some((f) => f.type === "subscribe"), "the session's channel");
  const subscribe = socket.sent.find((f) => f.type === "subscribe");
  assert.deepEqual(subscribe.channels, ["session:sess_1"]);
  socket.receive({
    type: "response",
    reply_to: subscribe.id,
    result: { channels: { "session:sess_1": { offset: 0, epoch: "e", recovered: false, missed: 0 } }, refused: {} },
  });
  await until(() => socket.sent.some((f) => f.type === "request"), "messages.send");
  const send = socket.sent.find((f) => f.type === "request");
  assert.equal(send.method, "messages.send");
  let offset = 0;
  const publish = (event, data) =>
    socket.receive({ type: "event", event: "publication", channel: "session:sess_1", offset: ++offset, epoch: "e", data: { event, data } });
  // Published before the answer names the reply.
  publish("message.created", { id: "m_user", role: "user" });
  publish("message.created", { id: "m_reply", role: "assistant", status: "streaming" });
  publish("message.delta", { message_id: "m_reply", index: 0, text: "Hel" });
  socket.receive({ type: "response", reply_to: send.id, result: { message_id: "m_user", reply_id: "m_reply" } });
  const reply = await sending;
  publish("message.delta", { message_id: "m_reply", index: 1, text: "lo" });
  publish("message.delta", { message_id: "m_reply", index: 1, text: "lo" }); // a repeat
  publish("message.completed", { id: "m_reply", message_id: "m_reply", text: "Hello" });
  const pieces = [];
  for await (const piece of reply.deltas) pieces.push(piece);
  assert.deepEqual(pieces, ["Hel", "lo"]);
  assert.equal((await reply.done).text, "Hello");
  assert.equal(reply.text, "Hello");

  const second = c.messages.send("sess_1", "again");
  await until(() => socket.sent.filter((f) => f.type === "request").length === 2, "a second send");
  const again = socket.sent.filter((f) => f.type === "request")[1];
  socket.receive({ type: "response", reply_to: again.id, result: { message_id: "m2", reply_id: "r2" } });
  const failing = await second;
  publish("message.failed", { message_id: "r2", text_so_far: "Par", code: "unavailable", message: "model down" });
  await assert.rejects(failing.done, (error) => error.code === "unavailable" && error.textSoFar === "Par");
  assert.equal(socket.sent.filter((f) => f.type === "subscribe").length, 1, "the channel is subscribed once");
  c.close();
});
