// Makes the README's screenshots (docs/console/*.png) from a running server:
// seeds demo data through the API (specs, runners, reports, jobs), plays a
// runner agent itself over the runner channel (so runners show idle and
// busy and a job has output), and shoots each page with Debian's Chromium.
//
//   RUNNERS_URL=http://127.0.0.1:61016 RUNNERS_TOKEN=<admin token> node scripts/screenshots.mjs
//
// Use a fresh database: the pages show whatever the server holds.
// OUT_DIR (default ../docs/console) and CHROMIUM (default /usr/bin/chromium).
import { spawnSync } from "node:child_process";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

// Node 20 has WebSocket behind a flag (Node 22 on: always).
if (typeof WebSocket === "undefined") {
  const r = spawnSync(process.execPath, ["--experimental-websocket", fileURLToPath(import.meta.url)], { stdio: "inherit" });
  process.exit(r.status ?? 1);
}
const { chromium } = await import("playwright-core");

const here = dirname(fileURLToPath(import.meta.url));
const BASE = (process.env.RUNNERS_URL ?? "").replace(/\/+$/, "");
const TOKEN = process.env.RUNNERS_TOKEN ?? "";
const OUT = process.env.OUT_DIR ?? join(here, "..", "..", "docs", "console");
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
if (!BASE || !TOKEN) {
  console.error("screenshots: set RUNNERS_URL and RUNNERS_TOKEN");
  process.exit(2);
}

async function api(method, path, body) {
  const res = await fetch(`${BASE}${path}`, {
    method,
    headers: { Authorization: `Bearer ${TOKEN}`, ...(body ? { "Content-Type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A runner agent on the channel, enough for pictures. */
class Agent {
  constructor(runner) {
    this.runner = runner;
    this.inbox = [];
    this.waiting = [];
  }
  connect() {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`${BASE.replace(/^http/, "ws")}/v0/runners/${this.runner.uuid}/channel`, { headers: { Authorization: `Bearer ${this.runner.key}` } });
      this.ws = ws;
      ws.onerror = () => reject(new Error("channel failed"));
      ws.onmessage = (m) => {
        const msg = JSON.parse(m.data);
        const i = this.waiting.findIndex((w) => w.event === msg.event);
        if (i >= 0) this.waiting.splice(i, 1)[0].resolve(msg);
        else this.inbox.push(msg);
      };
      ws.onopen = () => {
        ws.send(JSON.stringify({ event: "ready", poll_timeout: 900, runner: { os: "linux", arch: this.runner.arch, version: "0.6.12" } }));
        setTimeout(resolve, 200);
      };
    });
  }
  next(event) {
    const i = this.inbox.findIndex((m) => m.event === event);
    if (i >= 0) return Promise.resolve(this.inbox.splice(i, 1)[0]);
    return new Promise((resolve) => this.waiting.push({ event, resolve }));
  }
  async take() {
    console.error(`screenshots: ${this.runner.name} waits for a job`);
    const job = await this.next("job");
    this.job = job.uuid;
    this.ws.send(JSON.stringify({ event: "running" }));
    this.beat = setInterval(() => this.ws.readyState === 1 && this.ws.send(JSON.stringify({ event: "heartbeat" })), 1000);
    return job.uuid;
  }
  async complete(results) {
    clearInterval(this.beat);
    this.ws.send(JSON.stringify({ event: "completed", job: this.job, results }));
    await sleep(500);
  }
  close() {
    clearInterval(this.beat);
    this.ws?.close();
  }
}

// -- seed ---------------------------------------------------------------------
const x86 = await api("POST", "/v0/specs", { name: "x86-64 8 CPU 32 GiB", cpu: 8, memory: 32 * 2 ** 30, disk: 500 * 2 ** 30, os: "linux", architecture: "x86_64", fallback: true });
const arm = await api("POST", "/v0/specs", { name: "Graviton 16 CPU", cpu: 16, memory: 64 * 2 ** 30, disk: 250 * 2 ** 30, os: "linux", architecture: "aarch64", network: true });
await api("POST", "/v0/specs", { name: "Firecracker 2 CPU", cpu: 2, memory: 4 * 2 ** 30, disk: 20 * 2 ** 30, os: "linux", architecture: "x86_64", sandbox: "firecracker" });

const runners = {};
for (const [name, spec, arch] of [
  ["bare-metal-1", x86, "x86_64"],
  ["bare-metal-2", x86, "x86_64"],
  ["bare-metal-3", x86, "x86_64"],
  ["graviton-1", arm, "aarch64"],
  ["graviton-2", arm, "aarch64"],
  ["rack-7", x86, "x86_64"],
]) {
  const r = await api("POST", "/v0/runners", { name });
  await api("POST", `/v0/runners/${r.uuid}/specs`, { spec: spec.uuid });
  runners[name] = { ...r, arch, name };
}

// Reports: two benchmarks over ten days.
let projectUuid = null;
for (let i = 0; i < 10; i++) {
  const wobble = Math.sin(i * 1.3) * 4;
  const bmf = {
    "parse::json_small": { latency: { value: 1200 + wobble * 20 - i * 15 }, throughput: { value: 81000 + i * 900 - wobble * 300 } },
    "render::page": { latency: { value: 5400 + (i > 6 ? 900 : 0) + wobble * 40 } },
  };
  const day = (d, m) => new Date(Date.UTC(2026, 10, 20 + d, 9, m)).toISOString();
  const report = await api("POST", "/v0/run", { project: "parser", start_time: day(i, 0), end_time: day(i, 3), results: [JSON.stringify(bmf)] });
  projectUuid = report.project.uuid;
}

const job = (spec, image) => api("POST", "/v0/jobs", { spec: spec.uuid, project: projectUuid, registry: "http://127.0.0.1:5000", digest: `sha256:${"3f9c".repeat(16)}`, image, iter: 2 });

console.error("screenshots: seeded");
const a1 = new Agent(runners["bare-metal-1"]);
const a2 = new Agent(runners["bare-metal-2"]);
const g1 = new Agent(runners["graviton-1"]);
await a1.connect();
const done = await job(x86, "registry.local/parser:v1.4.0");
await a1.take();
await a1.complete([
  { exit_code: 0, stdout: "parse::json_small  1,182 ns/iter (+/- 41)\nrender::page       5,431 ns/iter (+/- 120)\n", stderr: "" },
  { exit_code: 0, stdout: "parse::json_small  1,175 ns/iter (+/- 38)\nrender::page       5,402 ns/iter (+/- 97)\n", stderr: "warning: 1 benchmark was noisy\n" },
]);
await a1.connect();
await job(x86, "registry.local/parser:v1.4.1");
await a1.take(); // bare-metal-1 busy
await a2.connect(); // bare-metal-2 idle
await g1.connect(); // graviton-1 idle
await job(arm, "registry.local/parser:arm-v1.4.1");
await g1.take(); // graviton-1 busy
await job(arm, "registry.local/parser:arm-v1.4.2"); // queued: graviton-1 is busy
await api("PATCH", `/v0/runners/${runners["rack-7"].uuid}`, { archived: true });
await sleep(500);

// -- shoot ----------------------------------------------------------------------
await mkdir(OUT, { recursive: true });
const profile = await mkdtemp(join(tmpdir(), "console-shots-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: CHROMIUM,
  headless: true,
  viewport: { width: 1280, height: 800 },
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const page = context.pages()[0] ?? (await context.newPage());
  const shot = async (name, fullPage = false) => {
    await page.waitForTimeout(600);
    await page.screenshot({ path: join(OUT, `${name}.png`), fullPage });
    console.error(`screenshots: ${join(OUT, `${name}.png`)}`);
  };
  await page.goto(`${BASE}/console/`);
  await page.locator("form.signin").waitFor();
  await shot("signin");
  await page.locator("form.signin input").fill(TOKEN);
  await page.locator("form.signin button[type=submit]").click();
  await page.locator("main table tbody tr").first().waitFor();
  await page.locator("#live.live-live").waitFor({ timeout: 10000 }).catch(() => {});
  await shot("runners");
  await page.locator("a.runner-name", { hasText: "bare-metal-1" }).click();
  await page.locator("main h2", { hasText: "Jobs" }).waitFor();
  await shot("runner");
  await page.evaluate(() => (location.hash = "#/jobs"));
  await page.locator("main table tbody tr").first().waitFor();
  await shot("jobs");
  await page.evaluate((j) => (location.hash = `#/jobs/${j}`), done.uuid);
  await page.locator("#job-output").waitFor();
  await shot("job");
  await page.evaluate(() => (location.hash = "#/specs"));
  await page.locator("main table tbody tr").first().waitFor();
  await shot("specs");
  await page.evaluate(() => (location.hash = "#/projects/parser"));
  await page.locator("svg.chart").first().waitFor();
  await shot("project", true);
  await page.evaluate(() => (location.hash = "#/audit"));
  await page.locator("main .results > *").first().waitFor();
  await shot("audit");
} finally {
  await context.close();
  await rm(profile, { recursive: true, force: true });
  for (const a of [a1, a2, g1]) a.close();
}
