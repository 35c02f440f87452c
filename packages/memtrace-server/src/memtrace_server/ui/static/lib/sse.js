// Server-Sent Events over fetch(): EventSource cannot send the X-API-Key header, so the live
// timeline reads GET /api/v1/memories/stream as a ReadableStream and parses the event stream
// itself (the WHATWG "event stream interpretation": fields, comments, CR/LF/CRLF line ends,
// multi-line data, id and retry), reconnecting with Last-Event-ID and a growing delay.

/** An incremental text/event-stream parser; feed() it decoded text as it arrives. */
export class EventStreamParser {
  constructor({ onEvent, onRetry, onComment } = {}) {
    this.onEvent = onEvent || (() => {});
    this.onRetry = onRetry || (() => {});
    this.onComment = onComment || (() => {});
    this.buffer = "";
    this.first = true;
    this.lastEventId = "";
    this.reset();
  }

  reset() {
    this.type = "";
    this.data = [];
  }

  feed(chunk) {
    let text = this.buffer + chunk;
    if (this.first && text.length) {
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
      this.first = false;
    }
    let start = 0;
    for (let i = 0; i < text.length; i++) {
      const ch = text[i];
      if (ch !== "\n" && ch !== "\r") continue;
      if (ch === "\r" && i === text.length - 1) break; // may be the first half of CRLF
      this.line(text.slice(start, i));
      if (ch === "\r" && text[i + 1] === "\n") i++;
      start = i + 1;
    }
    this.buffer = text.slice(start);
  }

  line(line) {
    if (line === "") {
      this.dispatch();
      return;
    }
    if (line[0] === ":") {
      this.onComment(line.slice(1).trimStart());
      return;
    }
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value[0] === " ") value = value.slice(1);
    if (field === "event") this.type = value;
    else if (field === "data") this.data.push(value);
    else if (field === "id") {
      if (!value.includes("\0")) this.lastEventId = value;
    } else if (field === "retry") {
      if (/^[0-9]+$/.test(value)) this.onRetry(Number(value));
    }
  }

  dispatch() {
    if (this.data.length === 0) {
      this.reset();
      return;
    }
    const event = { type: this.type || "message", data: this.data.join("\n"), id: this.lastEventId };
    this.reset();
    this.onEvent(event);
  }
}

const MAX_DELAY_MS = 30000;
// the server sends a heartbeat every ~15 s: no byte for this long means a dead connection
const SILENCE_MS = 45000;

/**
 * A live subscription: start() connects and keeps reconnecting until stop(); ``opened`` resolves
 * (true) at the first event of the first connection (the server's "ready": from then on no
 * memory is missed), or false if the stream stopped or failed before.
 *   url()      the stream URL (called at each connection)
 *   headers()  request headers (the API key)
 *   onMemory(memory, id)   each "memory" event
 *   onState(state, info)   "connecting" | "open" | "reconnecting" (info.delay ms) |
 *                          "failed" (info.status, info.message, info.refused: the key
 *                          is no longer valid; not retried) | "stopped"
 */
export class LiveStream {
  constructor({ url, headers, onMemory, onState, lastEventId = "" }) {
    this.url = url;
    this.headers = headers;
    this.onMemory = onMemory;
    this.onState = onState || (() => {});
    this.lastEventId = lastEventId;
    this.retryMs = 2000;
    this.stopped = true;
    this.controller = null;
    this.wake = null;
  }

  start() {
    if (!this.stopped) return;
    this.stopped = false;
    this.opened = new Promise((resolve) => {
      this.resolveOpened = resolve;
    });
    this.run();
  }

  stop() {
    if (this.stopped) return;
    this.stopped = true;
    this.controller?.abort();
    this.wake?.();
    this.resolveOpened?.(false);
    this.onState("stopped", {});
  }

  async run() {
    let failures = 0;
    while (!this.stopped) {
      this.onState(failures ? "reconnecting" : "connecting", {});
      const outcome = await this.connect();
      if (this.stopped) return;
      if (outcome.fatal) {
        this.stopped = true;
        this.resolveOpened?.(false);
        this.onState("failed", outcome);
        return;
      }
      failures = outcome.received ? 1 : failures + 1;
      const base = Math.min(this.retryMs * 2 ** (failures - 1), MAX_DELAY_MS);
      const delay = Math.round(base * (0.75 + Math.random() * 0.5));
      this.onState("reconnecting", { delay, message: outcome.message });
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, delay);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = null;
    }
  }

  /** One connection; resolves when it ends: {received, fatal?, status?, message?}. */
  async connect() {
    const controller = new AbortController();
    this.controller = controller;
    let received = false;
    let fatal = null;
    let timer = 0;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => controller.abort(), SILENCE_MS);
    };
    try {
      const headers = { ...this.headers(), Accept: "text/event-stream" };
      if (this.lastEventId) headers["Last-Event-ID"] = this.lastEventId;
      arm();
      const response = await fetch(this.url(), {
        headers,
        signal: controller.signal,
        cache: "no-store",
        credentials: "omit",
        referrerPolicy: "no-referrer",
        redirect: "error",
      });
      if (!response.ok) {
        let message = `HTTP ${response.status}`;
        try {
          const body = await response.json();
          if (body && typeof body.error === "string") message = body.error;
        } catch {
          /* not JSON */
        }
        // a refused key, a bad filter, no such endpoint: retrying would not help
        const fatal = response.status >= 400 && response.status < 500 && ![408, 429].includes(response.status);
        return { received, fatal, status: response.status, message };
      }
      const type = response.headers.get("content-type") || "";
      if (!type.startsWith("text/event-stream")) {
        return { received, fatal: true, status: response.status, message: `not an event stream (${type})` };
      }
      this.onState("open", {});
      const parser = new EventStreamParser({
        onRetry: (ms) => {
          this.retryMs = Math.max(500, Math.min(ms, MAX_DELAY_MS));
        },
        onEvent: (event) => {
          // every event's id is a position (the first, "ready", is where the stream starts):
          // a reconnection resumes just past the last one seen
          if (event.id) this.lastEventId = event.id;
          this.resolveOpened?.(true);
          if (event.type === "memory") {
            let memory;
            try {
              memory = JSON.parse(event.data);
            } catch {
              return; // a malformed event: skipped (its id still moves the cursor)
            }
            this.onMemory(memory, event.id);
          } else if (event.type === "error") {
            let message = "the server ended the stream";
            try {
              message = JSON.parse(event.data).error || message;
            } catch {
              /* keep the default */
            }
            // the server ends the stream so when the key stopped being valid
            fatal = { received: true, fatal: true, status: 0, message, refused: true };
            controller.abort();
          }
        },
      });
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        received = true;
        arm();
        parser.feed(value);
        if (fatal) break;
      }
      return fatal || { received, message: "the stream ended" };
    } catch (error) {
      if (fatal) return fatal;
      return { received, message: error && error.name === "AbortError" ? "no heartbeat" : String(error) };
    } finally {
      clearTimeout(timer);
    }
  }
}
