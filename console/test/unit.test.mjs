// Unit tests of the console's pure parts (no browser, no server):
//   node --test test/unit.test.mjs
import { build } from "esbuild";
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
async function load(entry) {
  const out = await build({ entryPoints: [join(root, entry)], bundle: true, write: false, format: "esm", platform: "neutral", logLevel: "silent" });
  return import(`data:text/javascript;base64,${Buffer.from(out.outputFiles[0].text).toString("base64")}`);
}
const { SseParser } = await load("src/sse.ts");

function parse(chunks) {
  const got = [];
  const p = new SseParser((m) => got.push(m));
  for (const c of chunks) p.push(c);
  return { got, p };
}

const stream =
  "event: open\ndata: {}\n\n" +
  ": keep-alive\n\n" +
  'id: 7\nevent: runner\ndata: {"uuid": "a", "status": "idle"}\n\n' +
  'event: job\r\ndata: {"uuid": "j",\r\ndata:  "status": "running", "runner": null}\r\n\r\n' +
  "data:no space\rdata: two\r\r" +
  "event: ignored-without-data\n\n" +
  "retry: 2500\nunknown: field\ndata\n\n" +
  "data: unterminated";

const want = [
  { event: "open", data: "{}", id: "" },
  { event: "runner", data: '{"uuid": "a", "status": "idle"}', id: "7" },
  { event: "job", data: '{"uuid": "j",\n "status": "running", "runner": null}', id: "7" },
  { event: "message", data: "no space\ntwo", id: "7" },
  { event: "message", data: "", id: "7" },
];

test("SSE: whole stream", () => {
  const { got, p } = parse([stream]);
  assert.deepEqual(got, want);
  assert.equal(p.lastEventId, "7");
  assert.equal(p.retry, 2500);
});

test("SSE: every split point, and one character at a time", () => {
  for (let i = 0; i <= stream.length; i++) {
    assert.deepEqual(parse([stream.slice(0, i), stream.slice(i)]).got, want, `split at ${i}`);
  }
  assert.deepEqual(parse([...stream]).got, want);
});

test("SSE: a CRLF split between chunks is one line end", () => {
  assert.deepEqual(parse(["data: a\r", "\ndata: b\r", "\n\r", "\n"]).got, [{ event: "message", data: "a\nb", id: "" }]);
});

test("SSE: a leading BOM is dropped; an id with NUL is ignored", () => {
  assert.deepEqual(parse(["\uFEFFid: 1\ndata: x\n\nid: 2\u0000\ndata: y\n\n"]).got, [
    { event: "message", data: "x", id: "1" },
    { event: "message", data: "y", id: "1" },
  ]);
});
