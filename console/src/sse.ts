// A Server-Sent Events parser (the WHATWG "event stream interpretation"),
// fed from a fetch() body so that the request can carry `Authorization`
// (EventSource cannot). Lines end in CRLF, LF or CR; a blank line ends a
// message; `:` starts a comment; fields are event, data, id and retry.

export interface SseMessage {
  event: string;
  data: string;
  id: string;
}

export class SseParser {
  private buf = "";
  private sawCr = false;
  private bom = true;
  private event = "";
  private data: string[] = [];
  private hasData = false;
  /** The last `id:` seen (kept across messages, as EventSource does). */
  lastEventId = "";
  /** The last `retry:` in milliseconds, if any. */
  retry: number | undefined;

  constructor(private readonly onMessage: (m: SseMessage) => void) {}

  /** Feeds decoded text (any chunking). */
  push(text: string): void {
    if (this.bom) {
      if (text.length === 0) return;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
      this.bom = false;
    }
    let start = 0;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c === 10 /* \n */ && this.sawCr && i === start && this.buf === "") {
        // The LF of a CRLF split from its CR.
        this.sawCr = false;
        start = i + 1;
        continue;
      }
      this.sawCr = false;
      if (c === 10 || c === 13) {
        this.line(this.buf + text.slice(start, i));
        this.buf = "";
        if (c === 13) {
          if (i + 1 < text.length) {
            if (text.charCodeAt(i + 1) === 10) i++;
          } else {
            this.sawCr = true;
          }
        }
        start = i + 1;
      }
    }
    this.buf += text.slice(start);
  }

  private line(line: string): void {
    if (line === "") {
      this.dispatch();
      return;
    }
    if (line.startsWith(":")) return; // a comment (keep-alive)
    const colon = line.indexOf(":");
    let field = line;
    let value = "";
    if (colon >= 0) {
      field = line.slice(0, colon);
      value = line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
    }
    switch (field) {
      case "event":
        this.event = value;
        break;
      case "data":
        this.data.push(value);
        this.hasData = true;
        break;
      case "id":
        if (!value.includes("\0")) this.lastEventId = value;
        break;
      case "retry":
        if (/^\d+$/.test(value)) this.retry = Number(value);
        break;
      default:
        break; // ignored, as the standard says
    }
  }

  private dispatch(): void {
    if (!this.hasData) {
      this.event = "";
      return;
    }
    const m = { event: this.event || "message", data: this.data.join("\n"), id: this.lastEventId };
    this.event = "";
    this.data = [];
    this.hasData = false;
    this.onMessage(m);
  }
}
