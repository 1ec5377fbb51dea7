// Hearth's JavaScript client: `HearthClient` keeps one WebSocket to a
// Hearth server open (docs/protocol.md). No dependencies: a browser's
// WebSocket, or any class with the same shape passed in (Node.js).

export { HearthClient, HearthError, tokenExpiry } from "./client.js";
export { Reply } from "./assistant.js";
export { backoffDelay, closePolicy } from "./backoff.js";
