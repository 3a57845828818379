// A development aid only (the real server embeds dist/ itself): serves
// dist/ under /console/ with the production Content-Security-Policy, and
// proxies /v0/ (streaming, so an event stream passes) to UPSTREAM.
//
//   UPSTREAM=http://127.0.0.1:61016 PORT=8080 node scripts/dev-server.mjs
import http from "node:http";
import net from "node:net";
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const dist = join(dirname(fileURLToPath(import.meta.url)), "..", "dist");
const upstream = new URL(process.env.UPSTREAM ?? "http://127.0.0.1:61016");
const port = Number(process.env.PORT ?? 8080);
// The server's (server/src/console.rs).
const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";
const TYPES = { "app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8", "index.html": "text/html; charset=utf-8" };

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url ?? "/", "http://x");
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
