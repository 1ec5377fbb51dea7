// The client against a real Hearth, started by `tests/js_client.rs`, which
// passes its address and tokens in HEARTH_URL and HEARTH_TOKENS. Skipped
// when run without them (`npm test` alone runs the unit tests).

import { test } from "node:test";
import assert from "node:assert/strict";

import { HearthClient } from "../src/index.js";

const url = process.env.HEARTH_URL;
const tokens = url ? JSON.parse(process.env.HEARTH_TOKENS ?? "{}") : {};
const skip = url ? false : "no HEARTH_URL: run through cargo test --test js_client";

function open(player, options = {}) {
  const client = new HearthClient({ url, token: tokens[player], initialBackoffMs: 10, maxBackoffMs: 50, ...options });
  return client;
}

function once(target, type, check = () => true) {
  return new Promise((resolve) => {
    const listener = (event) => {
      if (check(event.detail)) {
        target.removeEventListener(type, listener);
        resolve(event.detail);
      }
    };
    target.addEventListener(type, listener);
  });
}

test("connects, chats and is told its state", { skip }, async () => {
  const client = open("alice");
  const connected = once(client, "state", (detail) => detail.state === "connected");
  client.connect();
  await connected;
  const reply = await client.say("I feel a bit anxious today");
  assert.equal(reply.type, "message");
  assert.equal(reply.role, "assistant");
  client.close();
});

test("a dropped connection comes back and recovers without loss or duplicates", { skip }, async () => {
  const reader = open("bob");
  const writer = open("carol");
  reader.connect();
  writer.connect();
  await Promise.all([
    once(reader, "state", (d) => d.state === "connected"),
    once(writer, "state", (d) => d.state === "connected"),
  ]);
  const seen = [];
  const recovered = [];
  await reader.subscribe("room:js-recovery", {
    onPublication: (frame) => seen.push(frame.data.n),
    onRecovered: (ok) => recovered.push(ok),
  });
  await writer.subscribe("room:js-recovery", {});
  await writer.publish("room:js-recovery", { n: 1 });
  await waitFor(() => seen.length === 1, "the first publication");

  // The reader's connection drops; the writer goes on meanwhile.
  const back = once(reader, "state", (d) => d.state === "connected");
  reader.socket.close(4000, "test drop");
  for (const n of [2, 3, 4]) await writer.publish("room:js-recovery", { n });
  await back;
  await waitFor(() => recovered.length === 1, "the recovery");
  assert.deepEqual(recovered, [true]);
  await writer.publish("room:js-recovery", { n: 5 });
  await waitFor(() => seen.length === 5, "every publication");
  assert.deepEqual(seen, [1, 2, 3, 4, 5]);
  reader.close();
  writer.close();
});

test("frames sent while offline go out after the reconnect", { skip }, async () => {
  const client = open("dana");
  client.connect();
  await once(client, "state", (d) => d.state === "connected");
  client.socket.close(4000, "test drop");
  await once(client, "state", (d) => d.state === "reconnecting");
  const answer = client.say("hello again");
  assert.ok(client.queued >= 1, "queued while reconnecting");
  const reply = await answer;
  assert.equal(reply.role, "assistant");
  client.close();
});

test("an assistant reply streams in as deltas and completes", { skip }, async () => {
  const client = open("erin");
  client.connect();
  await once(client, "state", (d) => d.state === "connected");
  const { session } = await client.sessions.create({ title: "from the sdk" });
  const reply = await client.messages.send(session.id, "I feel anxious about tomorrow");
  const pieces = [];
  for await (const piece of reply.deltas) pieces.push(piece);
  const completed = await reply.done;
  assert.ok(pieces.length > 1, `streamed in ${pieces.length} pieces`);
  assert.equal(pieces.join(""), completed.text);
  const { messages } = await client.sessions.get(session.id);
  assert.equal(messages.at(-1).text, completed.text);
  client.close();
});

test("a refused token stops the client instead of retrying", { skip }, async () => {
  const client = new HearthClient({ url, token: "not-a-token", initialBackoffMs: 10, maxBackoffMs: 50 });
  const stopped = once(client, "stopped");
  client.connect();
  const detail = await stopped;
  assert.equal(detail.code, 1008);
  assert.equal(detail.reason, "invalid token");
  assert.equal(client.state, "offline");
  client.close();
});

async function waitFor(check, what, limitMs = 5000) {
  const started = Date.now();
  while (!check()) {
    if (Date.now() - started > limitMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
