// Reconnect policy: how long to wait before the next attempt, and what a
// close code asks of the client (docs/protocol.md, section 6).

/**
 * Exponential backoff with full jitter: a random wait between 0 and
 * min(max, initial * 2^attempt), so that clients dropped together do not
 * come back together.
 * @param {number} attempt 0 for the first retry
 * @param {{initialMs: number, maxMs: number}} options
 * @param {() => number} [random] a number in [0, 1)
 * @returns {number} milliseconds
 */
export function backoffDelay(attempt, { initialMs, maxMs }, random = Math.random) {
  const ceiling = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}

/**
 * What to do after the server (or the network) closed the connection.
 * - "retry": reconnect after a backoff (going away, abnormal end, server
 *   error or overload, slow consumer, idle timeout, rate limit).
 * - "renew": get a new token first, then reconnect (4001, and 1008
 *   `token expired`).
 * - "stop": do not reconnect; the application must act (a refused token,
 *   too many connections, or a protocol violation that would repeat).
 * @param {number} code
 * @param {string} reason
 * @returns {"retry" | "renew" | "stop"}
 */
export function closePolicy(code, reason) {
  if (code === 4001) return "renew";
  if (code === 1008) {
    if (reason === "token expired") return "renew";
    if (reason === "missing token" || reason === "invalid token") return "stop";
    if (reason === "too many connections") return "stop";
    return "retry";
  }
  if (code === 1002 || code === 1007 || code === 1009) return "stop";
  return "retry";
}
