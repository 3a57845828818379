// The hash router: `#/section/id?query`. A page renders into <main> and
// may subscribe to live events for as long as it is shown.

import { onLive, type LiveEvent } from "./live";

export interface Ctx {
  main: HTMLElement;
  query: URLSearchParams;
  /** False once the user has left this page (drop late results). */
  alive(): boolean;
  /** Live events for as long as the page is shown. */
  live(fn: (e: LiveEvent) => void): void;
  /** Rewrites the page's query in the address bar without re-rendering. */
  setQuery(q: Record<string, string | number | boolean | null | undefined>, defaults?: Record<string, string>): void;
}

export type Page = (ctx: Ctx, ...args: string[]) => Promise<void>;

let generation = 0;
let unsubs: (() => void)[] = [];

export function parseHash(hash: string): { path: string[]; query: URLSearchParams } {
  const raw = hash.replace(/^#/, "");
  const q = raw.indexOf("?");
  const pathPart = q >= 0 ? raw.slice(0, q) : raw;
  const query = new URLSearchParams(q >= 0 ? raw.slice(q + 1) : "");
  const path = pathPart
    .split("/")
    .filter((p) => p !== "")
    .map((p) => {
      try {
        return decodeURIComponent(p);
      } catch {
        return p;
      }
    });
  return { path, query };
}

export function startPage(main: HTMLElement, query: URLSearchParams, basePath: string): Ctx {
  generation++;
  for (const u of unsubs) u();
  unsubs = [];
  const gen = generation;
  return {
    main,
    query,
    alive: () => gen === generation,
    live(fn) {
      if (gen === generation) unsubs.push(onLive(fn));
    },
    setQuery(q, defaults = {}) {
      // Not once the user has left: neither for a later page, nor while the
      // address already names another page whose hashchange is yet to come
      // (this would put the old page's address back over it).
      if (gen !== generation) return;
      const shown = parseHash(location.hash).path.map(encodeURIComponent).join("/");
      if (`/${shown}` !== basePath) return;
      const params = new URLSearchParams();
      for (const [k, v] of Object.entries(q)) {
        if (v === null || v === undefined || v === "" || v === false) continue;
        const s = String(v);
        if (defaults[k] === s) continue;
        params.set(k, s);
      }
      const qs = params.toString();
      history.replaceState(null, "", `#${basePath}${qs ? `?${qs}` : ""}`);
    },
  };
}

export function link(path: string, text: string, attrs: Record<string, string> = {}): HTMLAnchorElement {
  const a = document.createElement("a");
  a.href = `#${path}`;
  a.textContent = text;
  for (const [k, v] of Object.entries(attrs)) a.setAttribute(k, v);
  return a;
}
