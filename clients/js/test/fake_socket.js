// A WebSocket stand-in the unit tests drive by hand: what the client sent,
// and the server's side of the conversation.

export class FakeSocket {
  static all = [];

  constructor(url) {
    this.url = url;
    this.sent = [];
    this.closed = null;
    this.readyState = 0;
    FakeSocket.all.push(this);
  }

  static reset() {
    FakeSocket.all = [];
  }

  static last() {
    return FakeSocket.all[FakeSocket.all.length - 1];
  }

  send(text) {
    this.sent.push(JSON.parse(text));
  }

  close(code, reason) {
    this.closed = { code, reason };
  }

  /** The server sends a frame. */
  receive(frame) {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }

  welcome() {
    this.readyState = 1;
    this.receive({ type: "message", role: "system", metadata: { event: "connected" } });
  }

  /** The connection fails with an error event and no close (as Node.js 20's does when refused). */
  refuse() {
    this.onerror?.({});
  }

  /** The server (or the network) ends the connection. */
  drop(code, reason = "") {
    this.onclose?.({ code, reason });
  }
}

/** Resolves once `check` holds, polling the event loop (fake sockets answer at once). */
export async function until(check, what = "condition", limitMs = 2000) {
  const started = Date.now();
  while (!check()) {
    if (Date.now() - started > limitMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}
