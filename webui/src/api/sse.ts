// Server-Sent Events over fetch (EventSource cannot send the bearer token), parsed by eventsource-parser.
import { createParser, type EventSourceMessage } from "eventsource-parser";
import { authHeaders, toApiError } from "./client";

/** Read the event stream at `path` until it ends or `signal` aborts; each event goes to `onEvent`. */
export async function readEvents(path: string, onEvent: (event: EventSourceMessage) => void,
                                 signal: AbortSignal): Promise<void> {
  const reply = await fetch(path, { headers: { Accept: "text/event-stream", ...authHeaders() }, signal });
  if (!reply.ok || !reply.body) {
    let body: unknown = null;
    try {
      body = await reply.json();
    } catch {
      body = null;
    }
    throw toApiError(reply.status, body);
  }
  const parser = createParser({ onEvent });
  const reader = reply.body.pipeThrough(new TextDecoderStream()).getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    parser.feed(value);
  }
}
