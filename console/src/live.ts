// Live updates: `GET /v0/events` (admin only, `text/event-stream`) read
// through fetch() with the Authorization header, reconnecting with backoff.

import { authHeaders, errorMessage } from "./client";
import { SseParser } from "./sse";

export interface RunnerEvent {
  kind: "runner";
  uuid: string;
  status: string;
}
export interface JobEvent {
  kind: "job";
  uuid: string;
  status: string;
  runner: string | null;
}
/** Sent on every (re)connection: whatever was missed meanwhile, refetch. */
export interface ResyncEvent {
  kind: "resync";
}
export type LiveEvent = RunnerEvent | JobEvent | ResyncEvent;

export type LiveState = "off" | "connecting" | "live" | "retrying";

type Listener = (e: LiveEvent) => void;
const listeners = new Set<Listener>();
let stateListener: (state: LiveState, detail: string) => void = () => {};

export function onLive(fn: Listener): () => void {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

export function onLiveState(fn: (state: LiveState, detail: string) => void): void {
  stateListener = fn;
}

function emit(e: LiveEvent): void {
  for (const fn of [...listeners]) {
    try {
      fn(e);
    } catch (err) {
      console.error("live listener failed", err);
    }
  }
}

const MIN_DELAY = 1000;
const MAX_DELAY = 30000;
/** Keep-alives come every 15 s: silence for this long means a dead connection. */
const SILENCE = 45000;

let controller: AbortController | null = null;
let generation = 0;

export function stopLive(): void {
  generation++;
  controller?.abort();
  controller = null;
  stateListener("off", "");
}

function str(v: unknown): string | null {
  return typeof v === "string" ? v : null;
}

function handle(event: string, data: string): void {
  let body: unknown;
  try {
    body = JSON.parse(data);
  } catch {
    return;
  }
  if (!body || typeof body !== "object") return;
  const o = body as Record<string, unknown>;
  const uuid = str(o.uuid);
  const status = str(o.status);
  if (event === "runner" && uuid && status) emit({ kind: "runner", uuid, status });
  else if (event === "job" && uuid && status) emit({ kind: "job", uuid, status, runner: str(o.runner) });
  else if (event === "resync") emit({ kind: "resync" });
}

export function startLive(): void {
  stopLive();
  const gen = generation;
  let delay = MIN_DELAY;
  let lastEventId = "";

  const loop = async (): Promise<void> => {
    while (gen === generation) {
      const ctl = new AbortController();
      controller = ctl;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const arm = () => {
        if (timer !== undefined) clearTimeout(timer);
        timer = setTimeout(() => ctl.abort(), SILENCE);
      };
      let detail = "the event stream ended";
      let parser: SseParser | null = null;
      stateListener("connecting", "");
      try {
        const headers = authHeaders({ Accept: "text/event-stream" });
        if (lastEventId) headers.set("Last-Event-ID", lastEventId);
        arm();
        const response = await fetch("/v0/events", { headers, signal: ctl.signal, cache: "no-store" });
        if (!response.ok || !response.body) {
          detail = response.ok ? "no body" : await errorMessage(response);
          // Not allowed or not there: no point hammering it.
          if (response.status === 401 || response.status === 403 || response.status === 404) delay = MAX_DELAY;
        } else {
          // Connected: whatever happened while we were not, refetch.
          delay = MIN_DELAY;
          stateListener("live", "");
          emit({ kind: "resync" });
          parser = new SseParser((m) => {
            if (m.event !== "open") handle(m.event, m.data);
          });
          const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
          for (;;) {
            const { value, done } = await reader.read();
            if (done || gen !== generation) break;
            arm();
            parser.push(value);
          }
        }
      } catch (err) {
        if (gen !== generation) return;
        detail = err instanceof Error ? err.message : String(err);
      } finally {
        if (timer !== undefined) clearTimeout(timer);
        if (parser) {
          lastEventId = parser.lastEventId;
          if (parser.retry !== undefined) delay = Math.max(parser.retry, MIN_DELAY);
        }
      }
      if (gen !== generation) return;
      stateListener("retrying", detail);
      // Full jitter keeps replicas' consoles from reconnecting in step.
      const wait = delay / 2 + Math.random() * (delay / 2);
      await new Promise((r) => setTimeout(r, wait));
      delay = Math.min(delay * 2, MAX_DELAY);
    }
  };
  void loop();
}
