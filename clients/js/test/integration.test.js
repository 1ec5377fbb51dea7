// The client against a real Hearth, started by `tests/js_client.rs`, which
// passes its address and tokens in HEARTH_URL and HEARTH_TOKENS, the
// signing secret in HEARTH_SECRET (for tokens that expire soon), and the
// binary and a config in HEARTH_BIN and HEARTH_CONFIG (for a server this
// file stops and starts again). Skipped when run without them (`npm test`
// alone runs the unit tests).

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHmac } from "node:crypto";

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

test("another device of the player watches the session's events", { skip }, async () => {
  const phone = open("ivy", { token: mint("ivy", 3600) });
  const laptop = open("ivy", { token: mint("ivy", 3600) });
  phone.connect();
  laptop.connect();
  await Promise.all([
    once(phone, "state", (d) => d.state === "connected"),
    once(laptop, "state", (d) => d.state === "connected"),
  ]);
  const { session } = await phone.sessions.create({ title: "two devices" });
  const events = [];
  const unwatch = await laptop.sessions.watch(session.id, { onEvent: (event, data) => events.push([event, data]) });
  const reply = await phone.messages.send(session.id, "I had a calm walk today");
  const completed = await reply.done;
  await waitFor(() => events.some(([event]) => event === "message.completed"), "the completed reply on the laptop");
  const laptopText = events
    .filter(([event, data]) => event === "message.delta" && data.message_id === completed.id)
    .map(([, data]) => data.text)
    .join("");
  assert.equal(laptopText, completed.text, "the laptop saw every delta once");
  assert.equal(events[0][0], "message.created");
  assert.equal(events[0][1].role, "user");
  unwatch();
  phone.close();
  laptop.close();
});

test("a reply shows its tool calls, and the agents and tools are listed", { skip }, async () => {
  const client = open("jo", { token: mint("jo", 3600) });
  client.connect();
  await once(client, "state", (d) => d.state === "connected");
  const { agents } = await client.agents.list();
  assert.deepEqual(agents.map((a) => a.id), ["guide", "mindfulness", "sleep", "mood"]);
  const { tools } = await client.tools.list();
  assert.ok(tools.find((t) => t.name === "share_summary").requires_approval);
  const { session } = await client.sessions.create({ agent: "mindfulness" });
  assert.equal(session.agent, "mindfulness");
  const reply = await client.messages.send(session.id, "I am so anxious about tomorrow");
  await reply.done;
  const names = reply.progress.map((p) => p.event);
  assert.deepEqual(names, ["assistant.status", "tool.started", "tool.completed"]);
  assert.equal(reply.progress[2].data.tool, "suggest_exercise");
  assert.equal(reply.progress[2].data.ok, true);
  const nothing = await client.tools.approve(session.id, "call_none").catch((error) => error);
  assert.equal(nothing.code, "not_found");
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

/** An HS256 token for `player`, valid `seconds` from now. */
function mint(player, seconds) {
  const encode = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const body = `${encode({ alg: "HS256", typ: "JWT" })}.${encode({ sub: player, exp: Math.floor(Date.now() / 1000) + seconds })}`;
  const signature = createHmac("sha256", process.env.HEARTH_SECRET).update(body).digest("base64url");
  return `${body}.${signature}`;
}

test("an expired token closes 4001; the client gets a new one and is back", { skip }, async () => {
  const issued = [];
  const client = open("frank", {
    getToken: () => {
      // The first token expires in a second; the next ones last an hour.
      const token = mint("frank", issued.length === 0 ? 1 : 3600);
      issued.push(token);
      return token;
    },
    // Refresh only after the expiry, that is never: the server closes first.
    refreshBeforeMs: -60000,
  });
  client.connect();
  await once(client, "state", (d) => d.state === "connected");
  const closed = await once(client, "disconnect");
  assert.equal(closed.code, 4001);
  await once(client, "state", (d) => d.state === "connected");
  assert.equal(issued.length, 2, "a new token before reconnecting");
  assert.equal((await client.say("still here")).role, "assistant");
  client.close();
});

test("the token is refreshed on the live connection before it expires", { skip }, async () => {
  let issued = 0;
  const client = open("gina", {
    getToken: () => mint("gina", issued++ === 0 ? 2 : 3600),
    refreshBeforeMs: 1500,
  });
  const disconnects = [];
  client.addEventListener("disconnect", (event) => disconnects.push(event.detail.code));
  client.connect();
  await once(client, "state", (d) => d.state === "connected");
  const firstExpiry = Date.now() + 2000;
  await waitFor(() => issued === 2, "the refresh");
  // The first token's expiry passes with the connection still open.
  await waitFor(() => Date.now() > firstExpiry + 500, "the first token's expiry", 4000);
  assert.equal((await client.say("after the expiry")).role, "assistant");
  assert.deepEqual(disconnects, []);
  client.close();
});

/** Starts the hearth binary on `bind`; resolves once it listens. */
function startHearth(bind) {
  const child = spawn(process.env.HEARTH_BIN, ["--config", process.env.HEARTH_CONFIG], {
    env: { ...process.env, HEARTH_BIND: bind, RUST_LOG: "info" },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let log = "";
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`hearth did not start:\n${log}`)), 10000);
    child.stderr.on("data", (chunk) => {
      log += chunk;
      const listening = log.match(/listening addr=(\S+)/);
      if (listening) {
        clearTimeout(timer);
        resolve({ child, addr: listening[1] });
      }
    });
    child.on("exit", (code) => reject(new Error(`hearth exited (${code}):\n${log}`)));
  });
}

function stopHearth(child) {
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  return exited;
}

test("the client comes back after the server restarts", { skip: skip || (!process.env.HEARTH_BIN && "no HEARTH_BIN") }, async () => {
  const first = await startHearth("127.0.0.1:0");
  const client = new HearthClient({
    url: `ws://${first.addr}/ws/chat`,
    getToken: () => mint("hank", 3600),
    initialBackoffMs: 10,
    maxBackoffMs: 100,
  });
  const seen = [];
  const recovered = [];
  const disconnects = [];
  client.addEventListener("disconnect", (event) => disconnects.push(event.detail.code));
  client.connect();
  await once(client, "state", (d) => d.state === "connected");
  await client.subscribe("room:js-restart", {
    onPublication: (frame) => seen.push(frame.data.n),
    onRecovered: (ok) => recovered.push(ok),
  });
  await client.publish("room:js-restart", { n: 1 });
  await waitFor(() => seen.length === 1, "the first publication");

  await stopHearth(first.child);
  assert.equal(disconnects[0], 1001, "the server said it was going away");
  // Sent while the server is down: queued, then sent to the new one.
  const published = client.publish("room:js-restart", { n: 2 });
  assert.equal(client.state, "reconnecting");
  assert.ok(client.queued >= 1);

  const second = await startHearth(first.addr);
  try {
    await published;
    await waitFor(() => seen.length === 2, "the publication sent while down");
    assert.deepEqual(seen, [1, 2]);
    // The new server has none of the old history: the application is told.
    assert.deepEqual(recovered, [false]);
    client.close();
  } finally {
    await stopHearth(second.child);
  }
});

async function waitFor(check, what, limitMs = 5000) {
  const started = Date.now();
  while (!check()) {
    if (Date.now() - started > limitMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
