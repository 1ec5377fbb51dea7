// The error a request rejects with.

/** A request that ended in an `error` frame. */
export class HearthError extends Error {
  /**
   * @param {string} code
   * @param {string} message
   * @param {object} [frame]
   */
  constructor(code, message, frame) {
    super(message);
    this.name = "HearthError";
    this.code = code;
    this.frame = frame;
  }
}
