'use strict';

// A benchmark peer for Hearth: a small Node.js WebSocket server speaking a
// subset of Hearth's wire protocol with the same JSON shapes. Not a product.

const http = require('http');
const crypto = require('crypto');
const { URL } = require('url');
const { WebSocketServer, WebSocket } = require('ws');

const HOST = '127.0.0.1';
const PORT = parsePort(process.env.PORT);
const SECRET = process.env.HEARTH_JWT_SECRET || 'hearth-dev-secret-change-me';
const EXP_LEEWAY_S = 5;
const MAX_TEXT_CHARS = 4000;
const MAX_ID_CHARS = 64;
const OPEN = WebSocket.OPEN;

const WELCOME_TEXT = "Connected to therapeutic chat. You're safe here.";
const REPLIES = [
  "Thank you for sharing that with me. I'm here to listen.",
  'That sounds like a lot to carry. Would you like to tell me more?',
  "I hear you. Take your time; there's no rush here.",
];
const CRISIS_RE =
  /\b(?:kill myself|killing myself|want to die|end it all|suicide|suicidal|hurt myself)\b/;
const LIFELINE = {
  type: 'resource',
  id: 'lifeline_988',
  label: '988 Suicide & Crisis Lifeline',
  method: 'phone',
  info: '988',
  emergency: true,
};
const NO_CRISIS = { crisis: false, types: [] };
const CRISIS = { crisis: true, types: ['suicidal_ideation'] };
const PLAYER_RE = /^[A-Za-z0-9_.@:-]{1,128}$/;
const CHANNEL_RE = /^[A-Za-z0-9_.@-]+:[A-Za-z0-9_.@:-]+$/;
const MAX_CHANNEL_LEN = 200;
const TEXT_FRAME = { binary: false };

const metrics = { connections: 0, connections_total: 0, messages_in: 0, messages_out: 0 };

// name -> { offset, epoch, members: Set<WebSocket> }
const channels = new Map();

function parsePort(value) {
  if (value === undefined || value === '') return 0;
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    process.stderr.write(`invalid PORT ${JSON.stringify(value)}\n`);
    process.exit(2);
  }
  return port;
}

function hex16() {
  return crypto.randomBytes(16).toString('hex');
}

/** Unicode scalar values in `s`, as Rust's `chars().count()`. */
function charCount(s) {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0xdc00 || c > 0xdfff || i === 0 || (s.charCodeAt(i - 1) & 0xfc00) !== 0xd800) n++;
  }
  return n;
}

function tooLong(s, max) {
  // A UTF-16 length within max is always within max chars; beyond 2*max never.
  if (s.length <= max) return false;
  if (s.length > 2 * max) return true;
  return charCount(s) > max;
}

// ---------------------------------------------------------------- auth

function authError(reason) {
  return { error: reason };
}

/** Verifies an HS256 JWT; returns { sub } or { error: close reason }. */
function verifyToken(token) {
  if (!token) return authError('missing token');
  const first = token.indexOf('.');
  const second = first < 0 ? -1 : token.indexOf('.', first + 1);
  if (first <= 0 || second < 0 || token.indexOf('.', second + 1) >= 0) {
    return authError('invalid token');
  }
  let header;
  let claims;
  try {
    header = JSON.parse(Buffer.from(token.slice(0, first), 'base64url').toString('utf8'));
    claims = JSON.parse(Buffer.from(token.slice(first + 1, second), 'base64url').toString('utf8'));
  } catch {
    return authError('invalid token');
  }
  if (!isObject(header) || header.alg !== 'HS256' || !isObject(claims)) {
    return authError('invalid token');
  }
  const expected = Buffer.from(
    crypto.createHmac('sha256', SECRET).update(token.slice(0, second)).digest('base64url'),
  );
  const given = Buffer.from(token.slice(second + 1));
  if (given.length !== expected.length || !crypto.timingSafeEqual(given, expected)) {
    return authError('invalid token');
  }
  if (typeof claims.sub !== 'string' || !PLAYER_RE.test(claims.sub)) return authError('invalid token');
  if (typeof claims.exp !== 'number' || !Number.isFinite(claims.exp)) {
    return authError('invalid token');
  }
  if (claims.exp < Date.now() / 1000 - EXP_LEEWAY_S) return authError('token expired');
  return { sub: claims.sub };
}

function isObject(v) {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

// ---------------------------------------------------------------- frames

function send(ws, data) {
  metrics.messages_out++;
  ws.send(data);
}

function sendError(ws, code, message, replyTo, refused) {
  const frame = { type: 'error', code, message };
  if (replyTo !== undefined) frame.reply_to = replyTo;
  if (refused !== undefined) frame.refused = refused;
  send(ws, JSON.stringify(frame));
}

function sendResponse(ws, replyTo, result) {
  const frame = replyTo === undefined
    ? { type: 'response', result }
    : { type: 'response', reply_to: replyTo, result };
  send(ws, JSON.stringify(frame));
}

function pickReply(text) {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  }
  return REPLIES[(h >>> 0) % REPLIES.length];
}

// ---------------------------------------------------------------- channels

function channelFor(name) {
  let channel = channels.get(name);
  if (channel === undefined) {
    channel = { offset: 0, epoch: crypto.randomBytes(8).toString('hex'), members: new Set() };
    channels.set(name, channel);
  }
  return channel;
}

function leave(ws, name) {
  const channel = channels.get(name);
  if (channel === undefined) return;
  channel.members.delete(ws);
  if (channel.members.size === 0) channels.delete(name);
}

function validChannel(name) {
  return name.length <= MAX_CHANNEL_LEN && CHANNEL_RE.test(name);
}

function namespaceOf(name) {
  return name.slice(0, name.indexOf(':'));
}

// ---------------------------------------------------------------- connection

class Peer {
  constructor(ws, sub) {
    this.ws = ws;
    this.sub = sub;
    this.personal = 'user:' + sub;
    this.joined = new Set();
    this.sessionId = null;
  }

  open() {
    const now = new Date().toISOString();
    send(this.ws, JSON.stringify({
      type: 'message',
      id: 'msg_' + hex16(),
      role: 'system',
      session_id: null,
      content: { text: WELCOME_TEXT, elements: [] },
      timestamp: now,
      metadata: {
        event: 'connected',
        player_id: this.sub,
        connection_id: 'conn_' + hex16(),
        server_time: now,
        heartbeat_interval_s: 10,
        features: ['chat', 'channels'],
        safety: { crisis: false },
      },
    }));
    channelFor(this.personal).members.add(this.ws);
    this.joined.add(this.personal);
  }

  closed() {
    for (const name of this.joined) leave(this.ws, name);
    this.joined.clear();
  }

  onFrame(data, isBinary) {
    metrics.messages_in++;
    const ws = this.ws;
    if (isBinary) {
      sendError(ws, 'unsupported_frame', 'binary frames are not supported; send JSON text frames');
      return;
    }
    let msg;
    try {
      msg = JSON.parse(data.toString('utf8'));
    } catch {
      sendError(ws, 'bad_request', 'frame is not valid JSON');
      return;
    }
    if (!isObject(msg)) {
      sendError(ws, 'bad_request', 'frame must be a JSON object');
      return;
    }
    let replyTo = msg.id;
    if (replyTo === null) replyTo = undefined;
    if (replyTo !== undefined && (typeof replyTo !== 'string' || tooLong(replyTo, MAX_ID_CHARS))) {
      sendError(ws, 'bad_request', `id must be a string of at most ${MAX_ID_CHARS} characters`);
      return;
    }
    switch (msg.type) {
      case 'ping':
        send(ws, replyTo === undefined ? '{"type":"pong"}' : JSON.stringify({ type: 'pong', reply_to: replyTo }));
        return;
      case 'user_message':
        this.chat(msg, replyTo);
        return;
      case 'subscribe':
        this.subscribe(msg, replyTo);
        return;
      case 'unsubscribe':
        this.unsubscribe(msg, replyTo);
        return;
      case 'publish':
        this.publish(msg, replyTo);
        return;
      case 'presence':
        sendError(ws, 'not_available', 'presence is not available on this server', replyTo);
        return;
      default:
        sendError(ws, 'unknown_type', typeof msg.type === 'string'
          ? `unknown message type ${JSON.stringify(msg.type.slice(0, 64))}`
          : 'message type is missing', replyTo);
    }
  }

  chat(msg, replyTo) {
    const content = msg.content;
    const text = isObject(content) ? content.text : undefined;
    if (typeof text !== 'string' || text.length === 0) {
      sendError(this.ws, 'bad_request', 'content.text must be a non-empty string', replyTo);
      return;
    }
    if (tooLong(text, MAX_TEXT_CHARS)) {
      sendError(this.ws, 'too_large', `content.text is over ${MAX_TEXT_CHARS} characters`, replyTo);
      return;
    }
    if (this.sessionId === null) this.sessionId = 'sess_' + hex16();
    const crisis = CRISIS_RE.test(text.toLowerCase());
    const frame = {
      type: 'message',
      id: 'msg_' + hex16(),
      role: 'assistant',
      session_id: this.sessionId,
      reply_to: replyTo,
      content: { text: pickReply(text), elements: crisis ? [LIFELINE] : [] },
      timestamp: new Date().toISOString(),
      metadata: { recommendations: [], safety: crisis ? CRISIS : NO_CRISIS },
    };
    // JSON.stringify drops an undefined reply_to.
    send(this.ws, JSON.stringify(frame));
  }

  subscribe(msg, replyTo) {
    const names = msg.channels;
    if (!Array.isArray(names) || !names.every((n) => typeof n === 'string')) {
      sendError(this.ws, 'bad_request', 'channels must be an array of strings', replyTo);
      return;
    }
    const granted = Object.create(null);
    const refused = Object.create(null);
    let anyGranted = false;
    let firstRefusal = null;
    for (const name of names) {
      if (name in granted || name in refused) continue;
      let refusal = null;
      if (!validChannel(name)) {
        refusal = { code: 'bad_channel', message: 'channel name must be namespace:rest of A-Z a-z 0-9 _ . @ : - (at most 200)' };
      } else if (name !== this.personal && name.startsWith('user:')) {
        refusal = { code: 'forbidden', message: "another player's user channel" };
      }
      if (refusal !== null) {
        refused[name] = refusal;
        if (firstRefusal === null) firstRefusal = refusal;
        continue;
      }
      const channel = channelFor(name);
      channel.members.add(this.ws);
      this.joined.add(name);
      granted[name] = { offset: channel.offset, epoch: channel.epoch, recovered: false, missed: 0 };
      anyGranted = true;
    }
    if (!anyGranted) {
      if (firstRefusal === null) {
        sendError(this.ws, 'bad_request', 'channels must not be empty', replyTo);
      } else {
        sendError(this.ws, firstRefusal.code, firstRefusal.message, replyTo, refused);
      }
      return;
    }
    sendResponse(this.ws, replyTo, { channels: granted, refused });
  }

  unsubscribe(msg, replyTo) {
    const names = msg.channels;
    if (!Array.isArray(names) || !names.every((n) => typeof n === 'string')) {
      sendError(this.ws, 'bad_request', 'channels must be an array of strings', replyTo);
      return;
    }
    const left = [];
    for (const name of names) {
      // The personal channel is never left.
      if (name === this.personal || !this.joined.delete(name)) continue;
      leave(this.ws, name);
      left.push(name);
    }
    sendResponse(this.ws, replyTo, { channels: left });
  }

  publish(msg, replyTo) {
    const name = msg.channel;
    if (typeof name !== 'string') {
      sendError(this.ws, 'bad_request', 'channel must be a string', replyTo);
      return;
    }
    if (msg.data === undefined) {
      sendError(this.ws, 'bad_request', 'missing field `data`', replyTo);
      return;
    }
    if (!validChannel(name)) {
      sendError(this.ws, 'bad_channel', 'channel name must be namespace:rest of A-Z a-z 0-9 _ . @ : - (at most 200)', replyTo);
      return;
    }
    const namespace = namespaceOf(name);
    if (namespace === 'user' || namespace === 'news') {
      sendError(this.ws, 'forbidden', `only the server publishes into ${namespace}: channels`, replyTo);
      return;
    }
    const channel = this.joined.has(name) ? channels.get(name) : undefined;
    if (channel === undefined) {
      sendError(this.ws, 'forbidden', 'subscribe to the channel before publishing', replyTo);
      return;
    }
    const offset = ++channel.offset;
    const event = JSON.stringify({
      type: 'event',
      channel: name,
      event: 'publication',
      offset,
      epoch: channel.epoch,
      publisher: this.sub,
      data: msg.data,
      timestamp: new Date().toISOString(),
    });
    // Encode once; every member gets the same bytes as a text frame.
    const bytes = Buffer.from(event, 'utf8');
    for (const member of channel.members) {
      if (member.readyState !== OPEN) continue;
      metrics.messages_out++;
      member.send(bytes, TEXT_FRAME);
    }
    send(this.ws, replyTo === undefined
      ? `{"type":"response","result":{"offset":${offset}}}`
      : JSON.stringify({ type: 'response', reply_to: replyTo, result: { offset } }));
  }
}

// ---------------------------------------------------------------- http

const HEALTHZ = '{"status":"ok"}';
const NOT_FOUND = '{"error":"not_found","message":"no such route"}';

function reply(res, status, body) {
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
}

function pathOf(rawUrl) {
  const q = rawUrl.indexOf('?');
  return q < 0 ? rawUrl : rawUrl.slice(0, q);
}

const server = http.createServer((req, res) => {
  const path = pathOf(req.url || '/');
  if (req.method === 'GET' && path === '/healthz') return reply(res, 200, HEALTHZ);
  if (req.method === 'GET' && path === '/api/metrics') return reply(res, 200, JSON.stringify(metrics));
  return reply(res, 404, NOT_FOUND);
});

const wss = new WebSocketServer({
  noServer: true,
  clientTracking: false,
  perMessageDeflate: false,
  maxPayload: 65536,
});

function ignore() {}

server.on('upgrade', (req, socket, head) => {
  let url;
  try {
    url = new URL(req.url || '/', 'http://127.0.0.1');
  } catch {
    url = null;
  }
  if (url === null || url.pathname !== '/ws/chat') {
    socket.on('error', ignore);
    socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    return;
  }
  const auth = verifyToken(url.searchParams.get('token'));
  wss.handleUpgrade(req, socket, head, (ws) => {
    ws.on('error', ignore);
    if (auth.error !== undefined) {
      ws.close(1008, auth.error);
      return;
    }
    const peer = new Peer(ws, auth.sub);
    metrics.connections++;
    metrics.connections_total++;
    ws.on('message', (data, isBinary) => peer.onFrame(data, isBinary));
    ws.on('close', () => {
      metrics.connections--;
      peer.closed();
    });
    peer.open();
  });
});

server.on('clientError', (err, socket) => {
  if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
  else socket.destroy();
});

server.listen(PORT, HOST, () => {
  process.stderr.write(`listening addr=${HOST}:${server.address().port}\n`);
});

function shutdown() {
  process.exit(0);
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
