// Uses the client the way an application would; `tsc --noEmit` checks it
// against index.d.ts (run by tests/js_client.rs). Never executed.

import { HearthClient, HearthError, type ConnectionState, type Reply } from "hearth-client";

export async function example(): Promise<string> {
  const client = new HearthClient({ url: "ws://127.0.0.1:8080/ws/chat", getToken: async () => "jwt" });
  client.addEventListener("state", (event) => {
    const state: ConnectionState = event.detail.state;
    const queued: number = event.detail.queued;
    void state;
    void queued;
  });
  client.addEventListener("stopped", (event) => console.log(event.detail.code, event.detail.reason));
  client.connect();
  const sent: boolean = client.send({ type: "ping" });
  void sent;
  const subscription = await client.subscribe("room:lobby", {
    onPublication: (publication) => console.log(publication.offset, publication.data),
    onRecovered: (recovered, position) => console.log(recovered, position.epoch),
  });
  await subscription.unsubscribe();
  const { session } = await client.sessions.create({ title: "Evening" });
  const unwatch: () => void = await client.sessions.watch(session.id, {
    onEvent: (event, data) => console.log(event, data.message_id),
    onRecovered: (recovered) => console.log(recovered),
  });
  unwatch();
  const reply: Reply = await client.messages.send(session.id, "I can't sleep");
  reply.addEventListener("tool", (event) => {
    if (event.detail.event === "tool.approval_required" && event.detail.data.call_id) {
      void reply.approve(event.detail.data.call_id);
    }
  });
  const { agents } = await client.agents.list();
  const { tools } = await client.tools.list();
  void agents[0].instructions;
  void tools[0].requires_approval;
  let text = "";
  for await (const piece of reply.deltas) text += piece;
  try {
    const done = await reply.done;
    return done.text;
  } catch (error) {
    if (error instanceof HearthError) return error.textSoFar ?? error.code;
    throw error;
  } finally {
    client.close();
    void text;
  }
}
