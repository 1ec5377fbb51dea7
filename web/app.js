// Hearth's built-in chat app: sign in with a token (or, on a server using
// the development secret, with a name), then assistant sessions with
// streamed replies over the JavaScript client (/sdk/).

import { HearthClient } from "/sdk/index.js";

const $ = (id) => document.getElementById(id);
const wsUrl = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws/chat`;

/** The shipped guided exercises (DOMAIN.md); a click starts one. */
const EXERCISES = [
  { id: "ex_breathing", label: "Try 4-7-8 breathing" },
  { id: "ex_grounding", label: "5-4-3-2-1 grounding" },
];

let client = null;
let sessionId = null;
let streaming = null;
let unwatch = null;
/** client_message_ids this page sent: the session's other events are another device's. */
const mine = new Set();
/** Replies to another device's messages (id -> their tool list), shown when they complete. */
const othersReplies = new Map();
let lastUserWasOthers = false;

function newClientMessageId() {
  // crypto.randomUUID needs a secure context; getRandomValues does not.
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function showState({ state, queued }) {
  const words = {
    connecting: "Connecting…",
    connected: "Connected",
    reconnecting: queued ? `Reconnecting… (${queued} waiting to send)` : "Reconnecting…",
    offline: "Offline",
    closed: "Signed out",
    idle: "Not connected",
  };
  $("state").textContent = words[state] ?? state;
  $("state").dataset.state = state;
}

function element(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  Object.assign(node, props);
  for (const child of children) node.append(child);
  return node;
}

/** Crisis resources first and prominent, emergency ones marked. */
function showResources(elements) {
  const resources = elements.filter((e) => e.type === "resource");
  const box = $("resources");
  if (resources.length === 0) return;
  box.replaceChildren(
    element("h2", { textContent: "You don't have to face this alone. Help is available now:" }),
    element(
      "ul",
      {},
      resources.map((r) =>
        element("li", { className: r.emergency ? "emergency" : "" }, [`${r.label}: ${r.info}`]),
      ),
    ),
  );
  box.hidden = false;
}

function addMessage(role, text, elements = []) {
  const item = element("li", { className: role });
  item.append(element("span", { className: "visually-hidden", textContent: role === "user" ? "You: " : "Assistant: " }));
  const body = element("span", { className: "text", textContent: text });
  for (const marker of elements.filter((e) => e.type === "progress")) showMarker(marker);
  const actions = elements.filter((e) => e.type === "button" || e.type === "instruction" || e.type === "progress");
  // A streaming reply starts empty; steps or a marker alone need no empty line.
  if (text || actions.length === 0) item.append(body);
  if (actions.length > 0) {
    const row = element("div", { className: "elements" });
    for (const e of actions) {
      if (e.type === "button") {
        row.append(element("button", { type: "button", textContent: e.label, onclick: () => press(e.id) }));
      } else if (e.type === "progress") {
        row.append(element("span", { className: "marker", textContent: `✓ ${e.label}` }));
      } else {
        row.append(element("p", { textContent: e.label }));
      }
    }
    item.append(row);
  }
  $("messages").append(item);
  item.scrollIntoView({ block: "end" });
  return body;
}

/** What the player reads while a tool runs. */
const TOOL_WORDS = {
  suggest_exercise: "Finding an exercise",
  list_progress: "Reading your progress",
  find_resources: "Looking up support",
  share_summary: "Sharing a note",
};

function toolList() {
  const list = element("ul", { className: "tools" });
  list.setAttribute("aria-live", "polite");
  return list;
}

/**
 * One progress event of a reply in its tool list: a line per call, an
 * approval prompt when the call waits for the player, its outcome.
 * `decide(callId, approve)` answers the prompt.
 */
function showProgress(list, { event, data }, decide) {
  if (!data.call_id) return;
  let line = [...list.children].find((item) => item.dataset.call === data.call_id);
  if (!line) {
    line = element("li", { className: "tool" });
    line.dataset.call = data.call_id;
    line.append(element("span", { className: "what", textContent: `${TOOL_WORDS[data.tool] ?? data.tool}…` }));
    list.append(line);
  }
  const what = line.querySelector(".what");
  if (event === "tool.approval_required") {
    const note = typeof data.arguments?.note === "string" ? `: “${data.arguments.note}”` : "";
    what.textContent = `The assistant asks to ${data.tool === "share_summary" ? "share a note" : `use ${data.tool}`}${note}`;
    const answer = (approve) => async () => {
      for (const button of line.querySelectorAll("button")) button.disabled = true;
      await decide(data.call_id, approve).catch(() => {});
    };
    line.append(
      element("span", { className: "decide" }, [
        element("button", { type: "button", textContent: "Approve", onclick: answer(true) }),
        element("button", { type: "button", className: "secondary", textContent: "Decline", onclick: answer(false) }),
      ]),
    );
  } else if (event === "tool.completed") {
    line.querySelector(".decide")?.remove();
    line.classList.add(data.ok ? "ok" : "failed");
    what.textContent = `${data.ok ? "✓" : "✗"} ${data.summary}`;
  }
}

/** A progress marker earned here, once in the list however often it is shown. */
function showMarker(marker) {
  const list = $("progress");
  if ([...list.children].some((item) => item.dataset.marker === marker.id)) return;
  list.append(element("li", { textContent: `✓ ${marker.label}` }));
  list.lastElementChild.dataset.marker = marker.id;
  $("no-progress").hidden = true;
}

/** An exercise button: the v1 interaction, answered with steps or progress. */
async function press(buttonId) {
  try {
    const frame = { type: "interaction", content: { action: "button_click", id: buttonId } };
    if (sessionId) frame.session_id = sessionId;
    const reply = await client.ask(frame);
    const elements = reply.content.elements ?? [];
    // A completion's marker is listed under the exercise's name.
    const exercise = EXERCISES.find((e) => `${e.id}_complete` === buttonId);
    for (const marker of elements.filter((e) => e.type === "progress")) {
      showMarker(exercise ? { ...marker, label: `${exercise.label}: completed` } : marker);
    }
    addMessage(reply.role, reply.content.text, elements);
  } catch (error) {
    addMessage("assistant", `That did not go through (${error.code ?? error.message}).`);
  }
}

async function refreshSessions() {
  const { sessions } = await client.sessions.list({});
  const list = $("session-list");
  list.replaceChildren(
    ...sessions.map((s) =>
      element("li", {}, [
        element("button", {
          type: "button",
          textContent: s.title || "Untitled session",
          ariaCurrent: s.id === sessionId ? "true" : "false",
          onclick: () => open(s.id),
        }),
      ]),
    ),
  );
}

/** Shows the session as the server has it. */
async function render(id) {
  const { messages } = await client.sessions.get(id, { messages: 50 });
  if (sessionId !== id) return;
  $("messages").replaceChildren();
  $("resources").hidden = true;
  for (const m of messages) {
    showResources(m.elements ?? []);
    addMessage(m.role, m.text, m.elements ?? []);
  }
}

/**
 * The session's events from the player's other devices: their messages
 * and, once complete, the replies to them. This page's own replies stream
 * through `send`.
 */
function onSessionEvent(event, data) {
  if (event === "message.created" && data.role === "user") {
    lastUserWasOthers = !mine.has(data.client_message_id);
    if (lastUserWasOthers) addMessage("user", data.text);
  } else if (event === "message.created" && data.role === "assistant") {
    if (lastUserWasOthers) othersReplies.set(data.id, null);
  } else if (event.startsWith("tool.") && othersReplies.has(data.message_id)) {
    // Another device's reply may ask this one to approve a call.
    let tools = othersReplies.get(data.message_id);
    if (!tools) {
      tools = toolList();
      othersReplies.set(data.message_id, tools);
      $("messages").append(element("li", { className: "assistant" }, [tools]));
    }
    showProgress(tools, { event, data }, (callId, approve) =>
      approve ? client.tools.approve(sessionId, callId) : client.tools.reject(sessionId, callId),
    );
  } else if (event === "message.completed" && othersReplies.has(data.id)) {
    const tools = othersReplies.get(data.id);
    othersReplies.delete(data.id);
    tools?.parentElement.remove();
    showResources(data.elements ?? []);
    const text = addMessage("assistant", data.text, data.elements ?? []);
    if (tools) text.before(tools);
  }
}

async function open(id) {
  sessionId = id;
  $("chat").dataset.sessionId = id;
  unwatch?.();
  unwatch = await client.sessions.watch(id, {
    onEvent: onSessionEvent,
    // What was missed could not be replayed: read the session afresh.
    onRecovered: (recovered) => recovered || render(id).catch(() => {}),
  });
  await render(id);
  await refreshSessions();
  $("text").focus();
}

async function newSession() {
  const { session } = await client.sessions.create({ title: new Date().toLocaleString() });
  await open(session.id);
}

async function send(text) {
  if (!sessionId) await newSession();
  addMessage("user", text);
  const clientMessageId = newClientMessageId();
  mine.add(clientMessageId);
  const reply = await client.messages.send(sessionId, text, { clientMessageId });
  streaming = reply;
  $("stop").hidden = false;
  $("typing").hidden = false;
  const body = addMessage("assistant", "");
  const tools = toolList();
  body.before(tools);
  const decide = (callId, approve) => (approve ? reply.approve(callId) : reply.reject(callId));
  for (const progress of reply.progress) showProgress(tools, progress, decide);
  reply.addEventListener("tool", (event) => showProgress(tools, event.detail, decide));
  for await (const piece of reply.deltas) body.textContent += piece;
  try {
    const done = await reply.done;
    body.parentElement.remove();
    showResources(done.elements ?? []);
    const text = addMessage("assistant", done.text, done.elements ?? []);
    if (tools.children.length > 0) text.before(tools);
  } catch (error) {
    body.textContent = `${error.textSoFar ?? ""} (${error.code === "cancelled" ? "stopped" : "the reply failed"})`;
  } finally {
    streaming = null;
    $("stop").hidden = true;
    $("typing").hidden = true;
  }
}

function start(token) {
  client = new HearthClient({ url: wsUrl, token });
  client.addEventListener("state", (event) => showState(event.detail));
  client.addEventListener("stopped", (event) => {
    $("signin-error").textContent = `Signed out: ${event.detail.reason || event.detail.code}`;
    $("chat").hidden = true;
    $("signin").hidden = false;
  });
  client.addEventListener("welcome", () => {
    $("signin").hidden = true;
    $("chat").hidden = false;
    refreshSessions().catch(() => {});
  });
  client.connect();
}

$("token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  start($("token").value.trim());
});

$("dev-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const response = await fetch("/dev/token", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ player: $("dev-player").value }),
  });
  const body = await response.json();
  if (!response.ok) {
    $("signin-error").textContent = body.message ?? "Sign-in failed";
    return;
  }
  start(body.token);
});

$("composer").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = $("text").value.trim();
  if (!text || streaming) return;
  $("text").value = "";
  send(text).catch((error) => addMessage("assistant", `Not sent: ${error.code ?? error.message}`));
});

$("text").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) {
    event.preventDefault();
    $("composer").requestSubmit();
  }
});

for (const exercise of EXERCISES) {
  $("exercises").append(
    element("button", { type: "button", className: "secondary", textContent: exercise.label, onclick: () => press(exercise.id) }),
  );
}

$("stop").addEventListener("click", () => streaming?.cancel());
$("new-session").addEventListener("click", () => newSession());

for (let rating = 1; rating <= 5; rating++) {
  $("rating").append(
    element("button", {
      type: "button",
      className: "secondary",
      textContent: String(rating),
      ariaLabel: `Rate ${rating} of 5`,
      onclick: async () => {
        const frame = { type: "feedback", content: { rating } };
        if (sessionId) frame.session_id = sessionId;
        await client.ask(frame).catch(() => {});
        $("rating").dataset.rated = String(rating);
      },
    }),
  );
}

fetch("/dev/token")
  .then((response) => {
    if (response.ok) $("dev-form").hidden = false;
  })
  .catch(() => {});
