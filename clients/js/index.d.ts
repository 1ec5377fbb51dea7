// Types of hearth-client (src/index.js), checked by the TypeScript compiler
// against a program that uses them (test/types.ts).

export type ConnectionState = "idle" | "connecting" | "connected" | "reconnecting" | "offline" | "closed";

export interface ClientOptions {
  /** The server's WebSocket URL, e.g. `ws://127.0.0.1:8080/ws/chat`. */
  url: string;
  /** A JWT, when there is no `getToken`. */
  token?: string;
  /** Gives a fresh token: called to connect, to refresh, and after 4001. */
  getToken?: () => string | Promise<string>;
  /** A WebSocket class (the global one by default). */
  WebSocket?: { new (url: string): WebSocketLike };
  /** Frames kept while disconnected (100). */
  queueLimit?: number;
  /** How long a request waits for its answer (10000 ms). */
  requestTimeoutMs?: number;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** Refresh this long before the token's `exp` (60000 ms). */
  refreshBeforeMs?: number;
  typing?: boolean;
  stream?: boolean;
}

/** What the client needs of a WebSocket. */
export interface WebSocketLike {
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onmessage: ((event: { data: any }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
}

export class HearthError extends Error {
  constructor(code: string, message: string, frame?: object);
  /** The server's error code (`forbidden`, `not_found`, ...), or `timeout`, `queue_full`, `offline`, `closed`. */
  code: string;
  frame?: any;
  /** On a failed or cancelled reply: the text that had streamed. */
  textSoFar?: string;
}

export interface ChannelPosition {
  offset: number;
  epoch: string;
  recovered: boolean;
  missed: number;
}

export interface Publication {
  type: "event";
  event: "publication";
  channel: string;
  offset: number;
  epoch: string;
  publisher: string;
  data: any;
  timestamp: string;
}

export interface SubscriptionHandlers {
  onPublication?: (publication: Publication) => void;
  onJoin?: (data: { player_id: string }) => void;
  onLeave?: (data: { player_id: string }) => void;
  /** After a reconnect: false when publications may have been missed. */
  onRecovered?: (recovered: boolean, position: ChannelPosition) => void;
  /** The server left the channel for the client (a refreshed token no longer grants it). */
  onUnsubscribed?: (data: { code: string; reason: string }) => void;
}

export interface Subscription {
  offset: number;
  epoch: string;
  unsubscribe(): Promise<void>;
}

export interface Session {
  id: string;
  title: string | null;
  agent: string;
  pillar: string | null;
  created_at: string;
  updated_at: string;
  archived: boolean;
  message_count: number;
}

export interface StoredMessage {
  id: string;
  role: "user" | "assistant";
  text: string;
  status: "streaming" | "complete" | "cancelled" | "failed";
  created_at: string;
  completed_at?: string;
  elements: any[];
  safety: any;
  usage?: any;
  fallback?: boolean;
}

/** A reply's progress: `assistant.status`, `tool.started`, `tool.completed`, `tool.approval_required`. */
export interface ToolProgress {
  event: "assistant.status" | "tool.started" | "tool.completed" | "tool.approval_required";
  data: { message_id: string; call_id?: string; tool?: string; arguments?: any; ok?: boolean; summary?: string; status?: string; activity?: string };
}

export class Reply extends EventTarget {
  sessionId: string;
  messageId?: string;
  replyId: string;
  /** The text streamed so far. */
  text: string;
  /** Its progress events so far, in order (also dispatched as `tool` events). */
  progress: ToolProgress[];
  status: "streaming" | "complete" | "cancelled" | "failed";
  /** Each piece of text, in order, until the reply ends. */
  deltas: AsyncIterable<string>;
  /** The completed message; rejects with a HearthError when cancelled or failed. */
  done: Promise<StoredMessage>;
  cancel(): Promise<{ cancelled: true }>;
  /** Approves a call of this reply that waits for the player. */
  approve(callId: string): Promise<{ call_id: string; approved: boolean }>;
  reject(callId: string): Promise<{ call_id: string; approved: boolean }>;
  addEventListener(type: "tool", listener: (event: CustomEvent<ToolProgress>) => void, options?: boolean | AddEventListenerOptions): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | AddEventListenerOptions): void;
}

export interface Tools {
  list(): Promise<{ tools: { name: string; description: string; requires_approval: boolean }[] }>;
  approve(sessionId: string, callId: string): Promise<{ call_id: string; approved: boolean }>;
  reject(sessionId: string, callId: string): Promise<{ call_id: string; approved: boolean }>;
}

export interface Agent {
  id: string;
  name: string;
  description: string;
  pillar?: string;
  instructions: string;
  tools: string[];
}

export interface Agents {
  list(): Promise<{ agents: Agent[] }>;
  get(agentId: string): Promise<{ agent: Agent }>;
}

export interface Sessions {
  create(params?: { title?: string; agent?: string; pillar?: string }): Promise<{ session: Session }>;
  list(params?: { include_archived?: boolean; limit?: number; before?: string }): Promise<{ sessions: Session[]; next?: string }>;
  get(sessionId: string, params?: { messages?: number }): Promise<{ session: Session; messages: StoredMessage[] }>;
  archive(sessionId: string): Promise<{ session: Session }>;
  /**
   * Every event of the session's channel, from any of the player's devices;
   * `onRecovered(false)` when a reconnect could not recover what was missed.
   * Resolves with a function that stops the reports.
   */
  watch(
    sessionId: string,
    handlers: { onEvent?: (event: string, data: any) => void; onRecovered?: (recovered: boolean) => void },
  ): Promise<() => void>;
}

export interface Messages {
  send(sessionId: string, text: string, options?: { clientMessageId?: string }): Promise<Reply>;
  cancel(sessionId: string, messageId: string): Promise<{ cancelled: true }>;
  retry(sessionId: string, messageId: string): Promise<Reply>;
  list(sessionId: string, params?: { before?: string; limit?: number }): Promise<{ messages: StoredMessage[]; next?: string }>;
}

export interface ClientEvents {
  state: { state: ConnectionState; queued: number };
  welcome: { frame: any };
  event: { frame: any };
  frame: { frame: any };
  disconnect: { code: number; reason: string };
  stopped: { code: number; reason: string };
  queue_full: { frame: object };
  error: { error: unknown };
}

export class HearthClient extends EventTarget {
  constructor(options: ClientOptions);
  readonly state: ConnectionState;
  /** Frames waiting for a connection. */
  readonly queued: number;
  readonly sessions: Sessions;
  readonly messages: Messages;
  readonly tools: Tools;
  readonly agents: Agents;
  addEventListener<K extends keyof ClientEvents>(
    type: K,
    listener: (event: CustomEvent<ClientEvents[K]>) => void,
    options?: boolean | AddEventListenerOptions,
  ): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | AddEventListenerOptions): void;
  connect(): void;
  close(): void;
  /** Sends now, or queues while disconnected; false when the queue is full. */
  send(frame: object): boolean;
  /** Sends with an id; the frame that answers it. */
  ask(frame: object, options?: { timeoutMs?: number }): Promise<any>;
  request<T = any>(method: string, params?: object, options?: { timeoutMs?: number }): Promise<T>;
  subscribe(channel: string, handlers?: SubscriptionHandlers): Promise<Subscription>;
  publish(channel: string, data: unknown): Promise<{ offset: number }>;
  presence(channel: string): Promise<{ count: number; players: { player_id: string; name?: string; connections: number }[] }>;
  /** A v1 chat message; the assistant's reply message. */
  say(text: string, options?: { sessionId?: string }): Promise<any>;
}

export function tokenExpiry(token: string): number | undefined;
export function backoffDelay(attempt: number, options: { initialMs: number; maxMs: number }, random?: () => number): number;
export function closePolicy(code: number, reason: string): "retry" | "renew" | "stop";
