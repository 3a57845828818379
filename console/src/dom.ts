// Building the DOM. Every string from the API goes in as a text node
// (`textContent`), never as markup: nothing here reads or writes innerHTML.

export type Child = Node | string | number | null | undefined | false;
type Handler = (ev: Event) => void;
export interface Attrs {
  [name: string]: string | number | boolean | Handler | null | undefined;
}

function append(el: Node, children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.appendChild(typeof c === "object" ? c : document.createTextNode(String(c)));
  }
}

function setAttrs(el: Element, attrs: Attrs | undefined): void {
  if (!attrs) return;
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (typeof v === "function") {
      el.addEventListener(k.replace(/^on/, ""), v);
    } else if (k === "style" || /^on/i.test(k)) {
      // No inline styles (the CSP forbids them) and no handler markup.
      throw new Error(`attribute ${k} is not allowed`);
    } else {
      el.setAttribute(k, v === true ? "" : String(v));
    }
  }
}

/** An HTML element with attributes (`onclick` etc. as listeners) and children. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs?: Attrs | null,
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  setAttrs(el, attrs ?? undefined);
  append(el, children);
  return el;
}

const SVG_NS = "http://www.w3.org/2000/svg";

/** An SVG element. */
export function s(tag: string, attrs?: Attrs | null, ...children: Child[]): SVGElement {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs ?? undefined);
  append(el, children);
  return el as SVGElement;
}

export function clear(el: Element): void {
  while (el.firstChild) el.removeChild(el.firstChild);
}

export function replace(el: Element, ...children: Child[]): void {
  clear(el);
  append(el, children);
}

/** A timestamp as `YYYY-MM-DD HH:MM:SS UTC`, in a `<time>`; "—" for none. */
export function time(iso: string | null | undefined): HTMLElement {
  if (!iso) return h("span", { class: "muted" }, "—");
  return h("time", { datetime: iso, title: iso }, fmtTime(iso));
}

export function fmtTime(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC").replace(/Z$/, " UTC");
}

/** How long ago, in words ("12 s ago"), for the last heartbeat. */
export function ago(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return "never";
  const secs = Math.round((now - new Date(iso).getTime()) / 1000);
  if (!Number.isFinite(secs)) return iso;
  if (secs < 0) return "just now";
  if (secs < 60) return `${secs} s ago`;
  if (secs < 3600) return `${Math.floor(secs / 60)} min ago`;
  if (secs < 86400) return `${Math.floor(secs / 3600)} h ago`;
  return `${Math.floor(secs / 86400)} d ago`;
}

export function duration(from: string | null | undefined, to: string | null | undefined): string {
  if (!from || !to) return "—";
  const ms = new Date(to).getTime() - new Date(from).getTime();
  if (!Number.isFinite(ms) || ms < 0) return "—";
  if (ms < 1000) return `${ms} ms`;
  const s = ms / 1000;
  if (s < 120) return `${s.toFixed(1)} s`;
  if (s < 7200) return `${(s / 60).toFixed(1)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

export function bytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${Number.isInteger(v) ? v : v.toFixed(1)} ${units[i]}`;
}

/** A status badge: the word itself, colored by a class (never color alone). */
export function badge(status: string): HTMLElement {
  return h("span", { class: `badge badge-${status.replace(/[^a-z]/g, "")}`, "data-status": status }, status);
}

/**
 * A UUID shortened for a table: its first 8 characters and its last 4 (a
 * UUIDv7's first characters are its time, shared by everything made in the
 * same minute; its last are random).
 */
export function shortId(uuid: string): string {
  return uuid.length > 16 ? `${uuid.slice(0, 8)}…${uuid.slice(-4)}` : uuid;
}

/** A key/value list (`<dl>`). */
export function dl(rows: [string, Child][]): HTMLDListElement {
  const list = h("dl", { class: "props" });
  for (const [k, v] of rows) list.append(h("dt", null, k), h("dd", null, v ?? "—"));
  return list;
}

/** A table with a caption (for screen readers), column headers and rows. */
export function table(caption: string, headers: string[], rows: HTMLTableRowElement[], empty = "Nothing here yet."): HTMLElement {
  const thead = h("thead", null, h("tr", null, ...headers.map((t) => h("th", { scope: "col" }, t))));
  const tbody = h("tbody", null, ...rows);
  if (rows.length === 0) tbody.append(h("tr", null, h("td", { colspan: headers.length, class: "empty" }, empty)));
  return h("div", { class: "table-wrap" }, h("table", null, h("caption", { class: "sr-only" }, caption), thead, tbody));
}

export function debounce<A extends unknown[]>(fn: (...args: A) => void, ms: number): (...args: A) => void {
  let t: ReturnType<typeof setTimeout> | undefined;
  return (...args: A) => {
    if (t !== undefined) clearTimeout(t);
    t = setTimeout(() => {
      t = undefined;
      fn(...args);
    }, ms);
  };
}
