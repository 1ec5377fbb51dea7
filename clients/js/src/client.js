// The connection to a Hearth server: one WebSocket, reconnected with
// backoff as the close code asks, frames queued while it is down, requests
// matched to their replies, subscriptions recovered after a reconnect, and
// the token refreshed on the live connection before it expires.

import { Assistant } from "./assistant.js";
import { backoffDelay, closePolicy } from "./backoff.js";
import { HearthError } from "./errors.js";

export { HearthError };

/** @typedef {"idle" | "connecting" | "connected" | "reconnecting" | "offline" | "closed"} ConnectionState */

/**
 * @typedef {object} ClientOptions
 * @property {string} url The server's WebSocket URL, e.g. `ws://127.0.0.1:8080/ws/chat`.
 * @property {string} [token] A JWT, when there is no `getToken`.
 * @property {() => string | Promise<string>} [getToken] Gives a fresh token: called to connect, to refresh, and after 4001.
 * @property {typeof WebSocket} [WebSocket] A WebSocket class (the global one by default).
 * @property {number} [queueLimit] Frames kept while disconnected (100).
 * @property {number} [requestTimeoutMs] How long a request waits for its answer (10000).
 * @property {number} [initialBackoffMs] First reconnect ceiling (500).
 * @property {number} [maxBackoffMs] Largest reconnect ceiling (30000).
 * @property {number} [refreshBeforeMs] Refresh this long before the token's `exp` (60000).
 * @property {number} [connectTimeoutMs] Give up a connection that has not been welcomed after this long, and retry (10000).
 * @property {boolean} [typing] Ask for typing indicators.
 * @property {boolean} [stream] Ask for streamed chunks of v1 replies.
 */

/** The `exp` of a JWT, in ms since the epoch; undefined when unreadable. */
export function tokenExpiry(token) {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const json = typeof atob === "function" ? atob(payload) : Buffer.from(payload, "base64").toString();
    const exp = JSON.parse(json).exp;
    return typeof exp === "number" ? exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}

export class HearthClient extends EventTarget {
  /** @param {ClientOptions} options */
  constructor(options) {
    super();
    if (!options || !options.url) throw new TypeError("HearthClient needs a url");
    if (!options.token && !options.getToken) throw new TypeError("HearthClient needs a token or getToken");
    this.options = {
      queueLimit: 100,
      requestTimeoutMs: 10000,
      initialBackoffMs: 500,
      maxBackoffMs: 30000,
      refreshBeforeMs: 60000,
      connectTimeoutMs: 10000,
      ...options,
    };
    this.WebSocket = options.WebSocket ?? globalThis.WebSocket;
    if (!this.WebSocket) throw new TypeError("no WebSocket implementation: pass options.WebSocket");
    /** @type {ConnectionState} */
    this.state = "idle";
    this.token = options.token;
    this.socket = null;
    this.attempt = 0;
    this.nextId = 1;
    /** Frames waiting for a connection, oldest first. @type {string[]} */
    this.queue = [];
    /** @type {Map<string, {resolve: Function, reject: Function, timer: any}>} */
    this.pending = new Map();
    /** channel -> {offset, epoch, handlers} @type {Map<string, any>} */
    this.subscriptions = new Map();
    this.timers = { reconnect: null, refresh: null, connect: null };
    this.welcome = null;
    const assistant = new Assistant(this);
    /** Assistant sessions: `create`, `list`, `get`, `archive`. */
    this.sessions = assistant.sessions;
    /** Messages: `send` (a streamed reply), `cancel`, `retry`, `list`. */
    this.messages = assistant.messages;
    /** Tools: `list`, and `approve` / `reject` of a call that waits for the player. */
    this.tools = assistant.tools;
    /** Agents: `list`, `get`. */
    this.agents = assistant.agents;
  }

  /** Frames queued while disconnected. */
  get queued() {
    return this.queue.length;
  }

  /** Opens the connection (and keeps it open until `close`). */
  connect() {
    if (this.state === "connecting" || this.state === "connected") return;
    this.#open();
  }

  /** Closes for good: no reconnect; pending requests fail. */
  close() {
    this.#setState("closed");
    clearTimeout(this.timers.reconnect);
    clearTimeout(this.timers.refresh);
    clearTimeout(this.timers.connect);
    if (this.socket) this.socket.close(1000, "bye");
    this.#failPending(new HearthError("closed", "the client was closed"));
  }

  /**
   * Sends a frame now, or queues it while disconnected. Returns false when
   * the queue is full (nothing is dropped silently).
   * @param {object} frame
   */
  send(frame) {
    const text = JSON.stringify(frame);
    if (this.state === "connected" && this.socket) {
      this.socket.send(text);
      return true;
    }
    if (this.state === "closed") return false;
    if (this.queue.length >= this.options.queueLimit) {
      this.#emit("queue_full", { frame });
      return false;
    }
    this.queue.push(text);
    this.#emit("state", { state: this.state, queued: this.queue.length });
    return true;
  }

  /**
   * Sends a frame with an id and resolves with the frame that answers it
   * (a `response`, a chat `message`, a `pong`), or rejects with a
   * HearthError for an `error` frame or a timeout.
   * @param {object} frame
   * @param {{timeoutMs?: number}} [options]
   * @returns {Promise<any>}
   */
  ask(frame, options = {}) {
    const id = `c${this.nextId++}`;
    const timeoutMs = options.timeoutMs ?? this.options.requestTimeoutMs;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new HearthError("timeout", `no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      if (!this.send({ ...frame, id })) {
        clearTimeout(timer);
        this.pending.delete(id);
        reject(new HearthError("queue_full", "the offline queue is full"));
      }
    });
  }

  /**
   * A v1.1 request: resolves with its `result`.
   * @param {string} method
   * @param {object} [params]
   */
  async request(method, params = {}, options = {}) {
    const reply = await this.ask({ type: "request", method, params }, options);
    return reply.result;
  }

  /**
   * Subscribes to a channel and keeps it subscribed across reconnects,
   * recovering what was missed. `onRecovered(false)` tells the application
   * that publications may have been missed and state should be read afresh.
   * @param {string} channel
   * @param {{onPublication?: Function, onJoin?: Function, onLeave?: Function, onRecovered?: Function, onUnsubscribed?: Function}} handlers
   * @returns {Promise<{offset: number, epoch: string, unsubscribe: () => Promise<void>}>}
   */
  async subscribe(channel, handlers = {}) {
    const entry = this.subscriptions.get(channel) ?? { offset: undefined, epoch: undefined, handlers };
    entry.handlers = handlers;
    this.subscriptions.set(channel, entry);
    const reply = await this.ask({ type: "subscribe", channels: [channel] });
    const position = reply.result.channels[channel];
    entry.offset = position.offset;
    entry.epoch = position.epoch;
    return {
      offset: position.offset,
      epoch: position.epoch,
      unsubscribe: async () => {
        this.subscriptions.delete(channel);
        await this.ask({ type: "unsubscribe", channels: [channel] });
      },
    };
  }

  /** @param {string} channel @param {any} data */
  async publish(channel, data) {
    const reply = await this.ask({ type: "publish", channel, data });
    return reply.result;
  }

  /** @param {string} channel */
  async presence(channel) {
    const reply = await this.ask({ type: "presence", channel });
    return reply.result;
  }

  /**
   * A v1 chat message; resolves with the assistant's reply message.
   * @param {string} text
   * @param {{sessionId?: string}} [options]
   */
  say(text, options = {}) {
    const frame = { type: "user_message", content: { text } };
    if (options.sessionId) frame.session_id = options.sessionId;
    return this.ask(frame);
  }

  // --- the connection --------------------------------------------------

  async #open() {
    this.#setState(this.attempt === 0 && !this.welcome ? "connecting" : "reconnecting");
    let token;
    try {
      token = this.options.getToken ? await this.options.getToken() : this.token;
    } catch (error) {
      this.#emit("error", { error });
      this.#scheduleReconnect();
      return;
    }
    if (this.state === "closed") return;
    this.token = token;
    const url = new URL(this.options.url);
    url.searchParams.set("token", token);
    if (this.options.typing) url.searchParams.set("typing", "1");
    if (this.options.stream) url.searchParams.set("stream", "1");
    let socket;
    try {
      socket = new this.WebSocket(url.toString());
    } catch (error) {
      this.#emit("error", { error });
      this.#scheduleReconnect();
      return;
    }
    this.socket = socket;
    socket.onmessage = (event) => this.#onText(event.data);
    socket.onclose = (event) => this.#lost(socket, event.code ?? 1006, event.reason ?? "");
    // Browsers follow an error with a close; some implementations (Node.js
    // 20's) leave a refused connection without one.
    socket.onerror = () => {
      if (socket.readyState !== 1) this.#lost(socket, 1006, "");
    };
    // A handshake or a welcome that never comes (a server stopping, a
    // proxy holding the connection) is given up and tried again.
    clearTimeout(this.timers.connect);
    this.timers.connect = setTimeout(() => {
      if (this.socket !== socket || this.welcome) return;
      socket.close(4000, "no welcome");
      this.#lost(socket, 1006, "no welcome");
    }, this.options.connectTimeoutMs);
  }

  /** The socket is gone (once per socket, whichever event says it first). */
  #lost(socket, code, reason) {
    if (this.socket !== socket) return;
    this.socket = null;
    clearTimeout(this.timers.connect);
    this.#onClose(code, reason);
  }

  #onText(text) {
    let frame;
    try {
      frame = JSON.parse(text);
    } catch {
      return;
    }
    if (!this.welcome || this.state !== "connected") {
      if (frame.type === "message" && frame.metadata?.event === "connected") {
        this.#onWelcome(frame);
      }
      return;
    }
    if (frame.type === "event") {
      this.#onEvent(frame);
      return;
    }
    const waiting = frame.reply_to ? this.pending.get(frame.reply_to) : undefined;
    // A chat reply's typing and chunk frames carry the id too: only the
    // whole answer settles the request.
    const partial = frame.type === "message" && (frame.metadata?.event === "typing" || frame.metadata?.chunk !== undefined);
    if (waiting && !partial) {
      this.pending.delete(frame.reply_to);
      clearTimeout(waiting.timer);
      if (frame.type === "error") {
        waiting.reject(new HearthError(frame.code, frame.message, frame));
      } else {
        waiting.resolve(frame);
      }
      return;
    }
    this.#emit("frame", { frame });
  }

  #onWelcome(frame) {
    this.welcome = frame;
    this.attempt = 0;
    this.#setState("connected");
    this.#emit("welcome", { frame });
    this.#resubscribe();
    const queued = this.queue.splice(0);
    for (const text of queued) this.socket.send(text);
    this.#scheduleRefresh();
  }

  #onEvent(frame) {
    const entry = this.subscriptions.get(frame.channel);
    if (frame.event === "publication" && entry) {
      if (entry.epoch === frame.epoch && entry.offset !== undefined && frame.offset <= entry.offset) {
        return; // seen already
      }
      entry.offset = frame.offset;
      entry.epoch = frame.epoch;
      entry.handlers.onPublication?.(frame);
    } else if (frame.event === "join") {
      entry?.handlers.onJoin?.(frame.data);
    } else if (frame.event === "leave") {
      entry?.handlers.onLeave?.(frame.data);
    } else if (frame.event === "unsubscribe" && entry) {
      this.subscriptions.delete(frame.channel);
      entry.handlers.onUnsubscribed?.(frame.data);
    }
    this.#emit("event", { frame });
  }

  /** After a reconnect: every channel again, from where it stood. */
  async #resubscribe() {
    const channels = [...this.subscriptions.keys()];
    for (let start = 0; start < channels.length; start += 128) {
      const batch = channels.slice(start, start + 128);
      const recover = {};
      for (const channel of batch) {
        const { offset, epoch } = this.subscriptions.get(channel);
        if (offset !== undefined && epoch !== undefined) recover[channel] = { offset, epoch };
      }
      try {
        const reply = await this.ask({ type: "subscribe", channels: batch, recover });
        for (const [channel, position] of Object.entries(reply.result.channels)) {
          const entry = this.subscriptions.get(channel);
          if (!entry) continue;
          if (!position.recovered) {
            entry.offset = position.offset;
            entry.epoch = position.epoch;
          }
          entry.handlers.onRecovered?.(position.recovered, position);
        }
      } catch (error) {
        this.#emit("error", { error });
      }
    }
  }

  #onClose(code, reason) {
    clearTimeout(this.timers.refresh);
    if (this.state === "closed") return;
    this.welcome = null;
    this.#emit("disconnect", { code, reason });
    const policy = closePolicy(code, reason);
    if (policy === "stop") {
      this.#setState("offline");
      this.#failPending(new HearthError("offline", `closed ${code} ${reason}`));
      this.#emit("stopped", { code, reason });
      return;
    }
    if (policy === "renew" && !this.options.getToken) {
      this.#setState("offline");
      this.#emit("stopped", { code, reason });
      return;
    }
    this.#scheduleReconnect();
  }

  #scheduleReconnect() {
    this.#setState("reconnecting");
    const delay = backoffDelay(this.attempt++, {
      initialMs: this.options.initialBackoffMs,
      maxMs: this.options.maxBackoffMs,
    });
    clearTimeout(this.timers.reconnect);
    this.timers.reconnect = setTimeout(() => this.#open(), delay);
  }

  #scheduleRefresh() {
    clearTimeout(this.timers.refresh);
    if (!this.options.getToken) return;
    const expiry = tokenExpiry(this.token);
    if (expiry === undefined) return;
    const wait = Math.max(0, expiry - Date.now() - this.options.refreshBeforeMs);
    this.timers.refresh = setTimeout(async () => {
      try {
        const token = await this.options.getToken();
        await this.ask({ type: "refresh", token });
        this.token = token;
        this.#scheduleRefresh();
      } catch (error) {
        this.#emit("error", { error });
      }
    }, wait);
  }

  #failPending(error) {
    for (const [id, waiting] of this.pending) {
      clearTimeout(waiting.timer);
      waiting.reject(error);
      this.pending.delete(id);
    }
  }

  #setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.#emit("state", { state, queued: this.queue.length });
  }

  #emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}
