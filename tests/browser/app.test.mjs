// The chat app and the dashboard in headless Chromium, as a person uses
// them: run by `cargo test --test browser`, which starts Hearth (with the
// development secret, so the development sign-in exists) and passes its
// address in HEARTH_HTTP, a second Hearth whose assistant is a fake model
// that calls tools on cue in HEARTH_MODEL_HTTP, and a directory for
// screenshots in HEARTH_ARTIFACTS. The page reaches Hearth through a TCP proxy of this
// file's own, which can cut the network and bring it back.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

import { HearthClient } from "../../clients/js/src/index.js";

const hearth = new URL(process.env.HEARTH_HTTP ?? "http://127.0.0.1:8080");
const artifacts = process.env.HEARTH_ARTIFACTS ?? "browser-artifacts";
const WAIT = { timeout: 15000 };
mkdirSync(artifacts, { recursive: true });

/** A TCP proxy to Hearth whose network can be cut: every connection is dropped and new ones refused until `restore`. */
function startProxy() {
  const sockets = new Set();
  let cut = false;
  const server = net.createServer((client) => {
    if (cut) {
      client.destroy();
      return;
    }
    const upstream = net.connect(Number(hearth.port), hearth.hostname);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
      socket.on("error", () => {});
    }
    client.pipe(upstream).pipe(client);
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      resolve({
        url: `http://127.0.0.1:${server.address().port}`,
        cut() {
          cut = true;
          for (const socket of sockets) socket.destroy();
        },
        restore() {
          cut = false;
        },
        close: () => new Promise((done) => server.close(done)),
      });
    });
  });
}

/** A token from the development sign-in, asked of Hearth directly. */
async function devToken(player) {
  const response = await fetch(new URL("/dev/token", hearth), {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ player }),
  });
  assert.equal(response.status, 200);
  return (await response.json()).token;
}

/** Clients of this file's own, closed after the tests however they end. */
const devices = [];

/** Another device of the player: the JavaScript client in Node.js. */
async function device(player) {
  const url = `ws://${hearth.host}/ws/chat`;
  const client = new HearthClient({ url, token: await devToken(player) });
  devices.push(client);
  const connected = new Promise((resolve) => {
    client.addEventListener("state", (event) => event.detail.state === "connected" && resolve());
  });
  client.connect();
  await connected;
  return client;
}

let browser;
let proxy;
const player = `pat-${process.pid}`;

before(async () => {
  proxy = await startProxy();
  browser = await chromium.launch({
    executablePath: process.env.HEARTH_CHROMIUM ?? "/usr/bin/chromium",
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-dev-shm-usage",
      "--disable-background-networking",
      "--disable-component-update",
      "--no-first-run",
      "--disable-sync",
    ],
  });
});

after(async () => {
  for (const client of devices) client.close();
  await browser?.close();
  await proxy?.close();
});

async function shot(page, name) {
  await page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true });
}

/** Sends a message from the composer, as a person does: type, then Enter. */
async function say(page, text) {
  await page.fill("#text", text);
  await page.press("#text", "Enter");
}

test("the chat app: sign in, a streamed reply, an exercise, crisis resources, a dropped network", async () => {
  const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  const problems = [];
  page.on("pageerror", (error) => problems.push(error.message));
  // The browser's own report of a WebSocket failing while the network is cut is expected.
  page.on("console", (message) => {
    if (message.type() === "error" && !message.text().startsWith("WebSocket connection to")) problems.push(message.text());
  });
  await page.goto(`${proxy.url}/`);

  // Sign in: the development sign-in is offered because the server uses the development secret.
  await page.waitForSelector("#dev-form:not([hidden])", WAIT);
  await shot(page, "1-sign-in");
  await page.fill("#dev-player", player);
  await page.click("#dev-form button[type=submit]");
  await page.waitForSelector("#chat:not([hidden])", WAIT);
  await page.waitForSelector('#state[data-state="connected"]', WAIT);

  // A message, and its reply streaming in: the reply's text is seen growing before it completes.
  await page.evaluate(() => {
    window.replyLengths = [];
    new MutationObserver(() => {
      const replies = document.querySelectorAll("#messages li.assistant .text");
      const last = replies[replies.length - 1];
      if (last) window.replyLengths.push(last.textContent.length);
    }).observe(document.getElementById("messages"), { subtree: true, childList: true, characterData: true });
  });
  await say(page, "I feel anxious about my exam tomorrow");
  await page.waitForFunction(() => document.querySelector("#chat").dataset.sessionId, null, WAIT);
  await page.waitForSelector("#messages li.assistant .elements button", WAIT);
  await page.waitForSelector("#stop", { state: "hidden", ...WAIT });
  // The built-in engine offered the exercise through a tool, shown as it ran.
  await page.waitForSelector("#messages .tool.ok >> text=offered Try 4-7-8 breathing", WAIT);
  const lengths = await page.evaluate(() => window.replyLengths);
  const final = lengths[lengths.length - 1];
  assert.ok(
    lengths.some((n) => n > 0 && n < final),
    `part of the reply was shown before all of it: lengths seen ${lengths.join(",")}`,
  );
  await shot(page, "2-streamed-reply");

  // An exercise from the panel: its steps, then Complete, then the progress marker.
  await page.click("#exercises button >> text=Try 4-7-8 breathing");
  await page.waitForSelector("#messages li >> text=/hold your breath for 7 seconds/", WAIT);
  await page.locator("#messages li .elements button", { hasText: "Complete" }).last().click();
  await page.waitForSelector("#progress li", WAIT);
  const marker = await page.textContent("#progress li");
  assert.match(marker, /ex_breathing|breathing/i);
  assert.equal(await page.isVisible("#no-progress"), false);
  await shot(page, "3-exercise-progress");

  // A crisis message: the resources, prominent and above the conversation, emergency ones first.
  await say(page, "I don't want to live anymore, I want to end it all");
  await page.waitForSelector("#resources:not([hidden])", WAIT);
  const resources = await page.$$eval("#resources li", (items) =>
    items.map((item) => ({ text: item.textContent, emergency: item.classList.contains("emergency") })),
  );
  assert.ok(resources.some((r) => r.text.includes("988")), JSON.stringify(resources));
  assert.ok(resources[0].emergency, "an emergency resource first");
  const above = await page.evaluate(() => {
    const box = document.getElementById("resources").getBoundingClientRect();
    const messages = document.getElementById("messages").getBoundingClientRect();
    return box.bottom <= messages.top + 1 && box.top >= 0 && box.top < window.innerHeight;
  });
  assert.ok(above, "the resources are on screen, above the conversation");
  await page.waitForSelector("#stop", { state: "hidden", ...WAIT });
  await shot(page, "4-crisis-resources");

  // The network drops. The app says so, keeps what is written meanwhile,
  // and after the network is back it sends it and recovers what the
  // player's phone said in the same session while this page was away.
  const sessionId = await page.evaluate(() => document.querySelector("#chat").dataset.sessionId);
  const assistantCount = () => page.$$eval("#messages li.assistant", (items) => items.length);
  const before = await assistantCount();
  proxy.cut();
  await page.waitForSelector('#state[data-state="reconnecting"]', WAIT);
  await say(page, "Are you still there?");
  await page.waitForFunction(() => /1 waiting to send/.test(document.getElementById("state").textContent), null, WAIT);
  await shot(page, "5-reconnecting");
  const phone = await device(player);
  const fromPhone = await phone.messages.send(sessionId, "Writing from my phone: the walk helped");
  await fromPhone.done;
  proxy.restore();
  await page.waitForSelector('#state[data-state="connected"]', { timeout: 45000 });
  await page.waitForSelector("#messages li.user >> text=Writing from my phone", WAIT);
  await page.waitForFunction((count) => document.querySelectorAll("#messages li.assistant").length >= count + 2, before, WAIT);
  await page.waitForSelector("#stop", { state: "hidden", ...WAIT });
  const userTexts = await page.$$eval("#messages li.user .text", (items) => items.map((item) => item.textContent));
  assert.equal(userTexts.filter((text) => text === "Are you still there?").length, 1, "sent once");
  assert.equal(userTexts.filter((text) => text.startsWith("Writing from my phone")).length, 1, "recovered once");
  await shot(page, "6-recovered");
  phone.close();

  // Accessible: every control visible has a name, and the composer keeps
  // the keyboard focus; with reduced motion asked for, nothing pulses.
  const unnamed = await page.evaluate(() =>
    [...document.querySelectorAll("button, input, textarea")]
      .filter((control) => control.offsetParent !== null)
      .filter((control) => {
        const name = control.labels?.[0]?.textContent || control.getAttribute("aria-label") || control.textContent;
        return !name.trim();
      })
      .map((control) => control.outerHTML),
  );
  assert.deepEqual(unnamed, []);
  assert.equal(await page.evaluate(() => document.activeElement?.id), "text");
  await page.emulateMedia({ reducedMotion: "reduce" });
  const pulse = await page.evaluate(() => getComputedStyle(document.getElementById("typing"), "::after").animationName);
  assert.equal(pulse, "none");

  // A rating.
  await page.click('#rating button[aria-label="Rate 4 of 5"]');
  await page.waitForSelector('#rating[data-rated="4"]', WAIT);

  assert.deepEqual(problems, []);
  await page.close();
});

test("the dashboard shows the server live", async () => {
  const page = await browser.newPage({ viewport: { width: 1100, height: 800 } });
  await page.goto(`${proxy.url}/dashboard`);
  await page.waitForFunction(() => /^\d+$/.test(document.getElementById("connections").textContent), null, WAIT);
  const before = Number(await page.textContent("#connections"));
  const visitor = await device(`dash-${process.pid}`);
  await page.waitForFunction((n) => Number(document.getElementById("connections").textContent) === n + 1, before, WAIT);
  const completed = () => Number(/(\d+) completed/.exec(document.getElementById("assistant").textContent)?.[1]);
  await page.waitForFunction(`!Number.isNaN((${completed})())`, null, WAIT);
  const repliesBefore = await page.evaluate(completed);
  const { session } = await visitor.sessions.create({ title: "seen on the dashboard" });
  const reply = await visitor.messages.send(session.id, "hello there");
  await reply.done;
  await page.waitForFunction(() => Number(document.getElementById("in-rate").textContent) > 0, null, WAIT);
  await page.waitForFunction(`(${completed})() === ${repliesBefore + 1}`, null, WAIT);
  await page.waitForSelector("#actors tr >> text=chat_processor", WAIT);
  await shot(page, "7-dashboard");
  visitor.close();
  await page.close();
});

test("a tool call that needs approval waits for the player's answer", {
  skip: !process.env.HEARTH_MODEL_HTTP && "no HEARTH_MODEL_HTTP",
}, async () => {
  const page = await browser.newPage({ viewport: { width: 1100, height: 800 } });
  await page.goto(`${process.env.HEARTH_MODEL_HTTP}/`);
  await page.waitForSelector("#dev-form:not([hidden])", WAIT);
  await page.fill("#dev-player", `ida-${process.pid}`);
  await page.click("#dev-form button[type=submit]");
  await page.waitForSelector('#state[data-state="connected"]', WAIT);
  // The fake model calls share_summary for a message that asks it to.
  await say(page, "Please share how my week went [call:share_summary]");
  await page.waitForSelector("#messages .tool button >> text=Approve", WAIT);
  assert.match(await page.textContent("#messages .tool"), /share a note: “A calmer week\.”/);
  await shot(page, "8-approval-asked");
  await page.click("#messages .tool button >> text=Approve");
  await page.waitForSelector("#messages .tool.ok >> text=shared a note", WAIT);
  await page.waitForSelector("#messages li.assistant .text >> text=Used 1 tools.", WAIT);
  await page.waitForSelector("#stop", { state: "hidden", ...WAIT });
  assert.equal(await page.$$eval("#messages .tool button", (buttons) => buttons.length), 0);
  await shot(page, "9-approval-granted");
  await page.close();
});
