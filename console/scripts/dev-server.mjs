// A development aid only (the real server embeds dist/ itself): serves
// dist/ under /console/ with the production Content-Security-Policy, and
// proxies /v0/ (streaming, so an event stream passes) to UPSTREAM.
//
//   UPSTREAM=http://127.0.0.1:61016 PORT=8080 node scripts/dev-server.mjs
import { execFile } from "node:child_process";
import http from "node:http";
import net from "node:net";
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const dist = join(dirname(fileURLToPath(import.meta.url)), "..", "dist");
const upstream = new URL(process.env.UPSTREAM ?? "http://127.0.0.1:61016");
const port = Number(process.env.PORT ?? 8080);
const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";
const TYPES = { "app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8", "index.html": "text/html; charset=utf-8" };

// FAKE_EVENTS=1: answer GET /v0/events here, from polling the upstream's
// lists (for a server that has no event stream yet). Not the real thing.
async function fakeEvents(req, res) {
  const auth = req.headers.authorization ?? "";
  const get = async (path) => {
    const r = await fetch(new URL(path, upstream), { headers: { authorization: auth } });
    return { status: r.status, body: await r.json() };
  };
  const check = await get("/v0/runners?per_page=1");
  if (check.status !== 200) {
    res.writeHead(check.status, { "content-type": "application/json" });
    res.end(JSON.stringify(check.body));
    return;
  }
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-store" });
  res.write("event: open\r\ndata: {}\r\n\r\n");
  const runners = new Map();
  const jobs = new Map();
  let first = true;
  let id = 0;
  const tick = async () => {
    try {
      const rs = await get("/v0/runners?per_page=255&sort=created&direction=desc&archived=true");
      const js = await get("/v0/jobs?per_page=255&direction=desc");
      for (const r of rs.body) {
        if (!first && runners.get(r.uuid) !== r.status) res.write(`id: ${++id}\nevent: runner\ndata: ${JSON.stringify({ uuid: r.uuid, status: r.status })}\n\n`);
        runners.set(r.uuid, r.status);
      }
      for (const j of js.body) {
        if (!first && jobs.get(j.uuid) !== j.status) res.write(`id: ${++id}\nevent: job\ndata: ${JSON.stringify({ uuid: j.uuid, status: j.status, runner: j.runner ?? null })}\n\n`);
        jobs.set(j.uuid, j.status);
      }
      first = false;
    } catch {
      // the next tick tries again
    }
  };
  const poll = setInterval(tick, 300);
  const keep = setInterval(() => res.write(": keep-alive\n\n"), 15000);
  void tick();
  res.on("close", () => {
    clearInterval(poll);
    clearInterval(keep);
  });
}

// FAKE_AUDIT_DB=<sqlite file> (with RUNNERS_SERVER=<binary>): answer
// GET /v0/audit here from `runners-server audit --json` (no auth check).
function fakeAudit(url, res) {
  const args = ["audit", "--json", "--db", process.env.FAKE_AUDIT_DB];
  for (const k of ["since", "runner"]) if (url.searchParams.get(k)) args.push(`--${k}`, url.searchParams.get(k));
  execFile(process.env.RUNNERS_SERVER ?? "runners-server", args, { maxBuffer: 1 << 26 }, (err, stdout) => {
    if (err) {
      res.writeHead(500, { "content-type": "application/json" });
      res.end(JSON.stringify({ message: String(err), request_id: "" }));
      return;
    }
    const action = url.searchParams.get("action");
    const all = stdout
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l))
      .filter((e) => !action || e.action === action)
      .reverse()
      .map((e) => ({ created: e.time, user: e.user, token: e.token, action: e.action, target: e.target_slug ?? e.target_uuid, detail: e.changes }));
    const page = Number(url.searchParams.get("page") ?? 1);
    const per = Number(url.searchParams.get("per_page") ?? 50);
    res.writeHead(200, { "content-type": "application/json", "x-total-count": String(all.length) });
    res.end(JSON.stringify(all.slice((page - 1) * per, page * per)));
  });
}

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url ?? "/", "http://x");
  if (url.pathname === "/v0/audit" && process.env.FAKE_AUDIT_DB) {
    fakeAudit(url, res);
    return;
  }
  if (url.pathname === "/v0/events" && process.env.FAKE_EVENTS === "1") {
    await fakeEvents(req, res);
    return;
  }
  if (url.pathname.startsWith("/v0/")) {
    const headers = { ...req.headers, host: upstream.host };
    const up = http.request({ host: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers }, (ur) => {
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      ur.pipe(res);
    });
    up.on("error", (e) => {
      if (!res.headersSent) res.writeHead(502, { "content-type": "application/json" });
      res.end(JSON.stringify({ message: `proxy: ${e.message}`, request_id: "" }));
    });
    res.on("close", () => up.destroy());
    req.pipe(up);
    return;
  }
  if (url.pathname === "/" || url.pathname === "/console") {
    res.writeHead(302, { location: "/console/" });
    res.end();
    return;
  }
  const name = url.pathname === "/console/" ? "index.html" : url.pathname.replace(/^\/console\//, "");
  const type = TYPES[name];
  if (!url.pathname.startsWith("/console/") || !type) {
    res.writeHead(404, { "content-type": "text/plain" });
    res.end("not found");
    return;
  }
  const body = await readFile(join(dist, name));
  res.writeHead(200, {
    "content-type": type,
    "content-security-policy": CSP,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-cache",
  });
  res.end(body);
});
// WebSocket upgrades (a runner's channel) pass through as raw bytes.
server.on("upgrade", (req, socket, head) => {
  const up = net.connect(Number(upstream.port), upstream.hostname, () => {
    const lines = [`${req.method} ${req.url} HTTP/1.1`];
    for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
    up.write(`${lines.join("\r\n")}\r\n\r\n`);
    up.write(head);
    up.pipe(socket);
    socket.pipe(up);
  });
  up.on("error", () => socket.destroy());
  socket.on("error", () => up.destroy());
});
server.listen(port, "127.0.0.1", () => {
  console.error(`console on http://127.0.0.1:${server.address().port}/console/ (API: ${upstream.origin})`);
});
