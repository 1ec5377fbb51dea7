// Assistant sessions over a HearthClient (docs/protocol.md, section 10):
// the `sessions.*` and `messages.*` requests, and a reply as it streams on
// the session's channel: its deltas as an async iterator, its end as a
// promise. The channel is a subscription like any other, so a reply that
// is streaming during a reconnect goes on where it stopped.

import { HearthError } from "./errors.js";

/** Events of replies not yet known by id are kept this many per session. */
const EARLY_LIMIT = 256;

/** A reply's progress events (docs/protocol.md, section 10.4). */
const TOOL_EVENTS = new Set(["assistant.status", "tool.started", "tool.completed", "tool.approval_required"]);

/**
 * One assistant reply as it streams.
 * `for await (const text of reply.deltas)` yields each piece in order;
 * `await reply.done` is the completed message, or rejects with a
 * HearthError (`cancelled`, or the failure's code) keeping `textSoFar`.
 */
export class Reply extends EventTarget {
  constructor(sessionId, messageId, replyId, assistant) {
    super();
    this.sessionId = sessionId;
    this.messageId = messageId;
    this.replyId = replyId;
    this.assistant = assistant;
    this.text = "";
    /** The reply's progress events so far, in order. */
    this.progress = [];
    this.status = "streaming";
    this.nextIndex = 0;
    this.pieces = [];
    this.waiting = null;
    this.ended = false;
    this.done = new Promise((resolve, reject) => {
      this.resolveDone = resolve;
      this.rejectDone = reject;
    });
    // An unobserved end is not an unhandled rejection.
    this.done.catch(() => {});
    const reply = this;
    this.deltas = {
      [Symbol.asyncIterator]() {
        return {
          next: () => reply.#next(),
          return: async () => ({ value: undefined, done: true }),
        };
      },
    };
  }

  /** Stops the reply (`messages.cancel`). */
  cancel() {
    return this.assistant.messages.cancel(this.sessionId, this.replyId);
  }

  #next() {
    if (this.pieces.length > 0) return Promise.resolve({ value: this.pieces.shift(), done: false });
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => (this.waiting = resolve));
  }

  #wake() {
    if (!this.waiting) return;
    const resolve = this.waiting;
    this.waiting = null;
    if (this.pieces.length > 0) resolve({ value: this.pieces.shift(), done: false });
    else if (this.ended) resolve({ value: undefined, done: true });
    else this.waiting = resolve;
  }

  /**
   * Approves a tool call of this reply that waits for the player
   * (`tool.approval_required`); `reject` declines it.
   * @param {string} callId
   */
  approve(callId) {
    return this.assistant.tools.approve(this.sessionId, callId);
  }

  /** @param {string} callId */
  reject(callId) {
    return this.assistant.tools.reject(this.sessionId, callId);
  }

  /** One event of the session's channel about this reply. */
  handle(event, data) {
    if (this.ended) return;
    if (TOOL_EVENTS.has(event)) {
      // Progress while the reply runs: kept in order (events that came
      // before the reply was handed out are there too) and dispatched as
      // `tool` events.
      const progress = { event, data };
      if (this.progress.length < EARLY_LIMIT) this.progress.push(progress);
      this.dispatchEvent(new CustomEvent("tool", { detail: progress }));
      return;
    }
    if (event === "message.delta") {
      // Recovery never repeats a delta, but a second subscriber path
      // might: the index keeps the text exact.
      if (data.index !== this.nextIndex) return;
      this.nextIndex += 1;
      this.text += data.text;
      this.pieces.push(data.text);
    } else if (event === "message.completed") {
      this.status = "complete";
      this.ended = true;
      this.resolveDone(data);
    } else if (event === "message.cancelled" || event === "message.failed") {
      this.status = event === "message.cancelled" ? "cancelled" : "failed";
      this.ended = true;
      const error = new HearthError(data.code ?? this.status, data.message ?? this.status, data);
      error.textSoFar = data.text_so_far ?? this.text;
      this.rejectDone(error);
    } else {
      return;
    }
    this.#wake();
  }
}

export class Assistant {
  /** @param {import("./client.js").HearthClient} client */
  constructor(client) {
    this.client = client;
    /** session id -> {replies: Map<replyId, Reply>, early: Map<replyId, Array>} */
    this.channels = new Map();
    const request = (method) => (params) => client.request(method, params);
    this.sessions = {
      create: (params = {}) => request("sessions.create")(params),
      list: (params = {}) => request("sessions.list")(params),
      get: (sessionId, params = {}) => request("sessions.get")({ session_id: sessionId, ...params }),
      archive: (sessionId) => request("sessions.archive")({ session_id: sessionId }),
      watch: (sessionId, handlers) => this.#addWatcher(sessionId, handlers),
    };
    this.tools = {
      list: () => request("tools.list")({}),
      approve: (sessionId, callId) => request("tools.approve")({ session_id: sessionId, call_id: callId }),
      reject: (sessionId, callId) => request("tools.reject")({ session_id: sessionId, call_id: callId }),
    };
    this.agents = {
      list: () => request("agents.list")({}),
      get: (agentId) => request("agents.get")({ agent_id: agentId }),
    };
    this.messages = {
      send: (sessionId, text, options = {}) => this.#send(sessionId, text, options),
      cancel: (sessionId, messageId) => request("messages.cancel")({ session_id: sessionId, message_id: messageId }),
      retry: (sessionId, messageId) => this.#retry(sessionId, messageId),
      list: (sessionId, params = {}) => request("messages.list")({ session_id: sessionId, ...params }),
    };
  }

  /** Subscribes to the session's channel once, before the first send. */
  async #watch(sessionId) {
    if (this.channels.has(sessionId)) return this.channels.get(sessionId);
    const watched = { replies: new Map(), early: new Map(), watchers: new Set() };
    this.channels.set(sessionId, watched);
    try {
      await this.client.subscribe(`session:${sessionId}`, {
        onPublication: (frame) => this.#onPublication(watched, frame),
        onRecovered: (recovered) => {
          for (const watcher of watched.watchers) watcher.onRecovered?.(recovered);
        },
      });
    } catch (error) {
      this.channels.delete(sessionId);
      throw error;
    }
    return watched;
  }

  /**
   * Every event of the session, from any of the player's devices, to
   * `onEvent(event, data)`; `onRecovered(false)` after a reconnect that
   * could not recover what was missed. Resolves with a function that stops
   * the reports (the channel stays subscribed for the session's replies).
   */
  async #addWatcher(sessionId, handlers) {
    const watched = await this.#watch(sessionId);
    watched.watchers.add(handlers);
    return () => watched.watchers.delete(handlers);
  }

  #onPublication(watched, frame) {
    const event = frame.data?.event;
    const data = frame.data?.data ?? {};
    for (const watcher of watched.watchers) watcher.onEvent?.(event, data);
    const replyId = data.message_id ?? (data.role === "assistant" ? data.id : undefined);
    if (!replyId) return;
    const reply = watched.replies.get(replyId);
    if (reply) {
      reply.handle(event, data);
      if (reply.ended) watched.replies.delete(replyId);
      return;
    }
    // Published before the request's answer named the reply: kept for it.
    const early = watched.early.get(replyId) ?? [];
    if (early.length < EARLY_LIMIT) early.push([event, data]);
    watched.early.set(replyId, early);
    if (watched.early.size > EARLY_LIMIT) watched.early.delete(watched.early.keys().next().value);
  }

  #track(watched, sessionId, messageId, replyId) {
    const reply = new Reply(sessionId, messageId, replyId, this);
    for (const [event, data] of watched.early.get(replyId) ?? []) reply.handle(event, data);
    watched.early.delete(replyId);
    if (!reply.ended) watched.replies.set(replyId, reply);
    return reply;
  }

  async #send(sessionId, text, options) {
    const watched = await this.#watch(sessionId);
    const params = { session_id: sessionId, text };
    if (options.clientMessageId) params.client_message_id = options.clientMessageId;
    const result = await this.client.request("messages.send", params);
    return this.#track(watched, sessionId, result.message_id, result.reply_id);
  }

  async #retry(sessionId, messageId) {
    const watched = await this.#watch(sessionId);
    const result = await this.client.request("messages.retry", { session_id: sessionId, message_id: messageId });
    return this.#track(watched, sessionId, undefined, result.reply_id);
  }
}
