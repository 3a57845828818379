// The console's browser test: Debian's Chromium driven by playwright-core
// through its executable path (nothing downloads a browser).
//
//   RUNNERS_URL=http://127.0.0.1:PORT RUNNERS_TOKEN=<admin API token> \
//   SHOTS_DIR=../target/console-shots [CHROMIUM=/usr/bin/chromium] node test/browser.mjs
//
// It cannot run a runner agent itself: the test that spawns it (Rust) does,
// over a line protocol. When this script needs the other side to act it
// prints one line `STEP <name> <json>` on stdout and reads one line from
// stdin: `OK <json>` (go on) or `ERR <text>` (fail). Steps, in order:
//   create-runner {"name"}        -> OK {"uuid","slug","key"}
//   agent-connect {"runner"}      -> the agent opens its channel, sends ready (idle)
//   submit-job {"runner"}         -> OK {"job"}: a job for that runner's spec
//   agent-claim {}                -> the agent takes the job and starts it (busy, running)
//   agent-complete {"stdout"}     -> the agent completes it with that stdout
//   submit-job, agent-claim       -> a second job; the page cancels it
//   expect-cancel {}              -> OK once the agent got the cancel frame
// Nothing else this script prints on stdout starts with `STEP `; progress
// goes to stderr. Exit 0 when every check passed.

import { chromium } from "playwright-core";
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const here = dirname(fileURLToPath(import.meta.url));
const BASE = (process.env.RUNNERS_URL ?? "").replace(/\/+$/, "");
const TOKEN = process.env.RUNNERS_TOKEN ?? "";
const SHOTS = process.env.SHOTS_DIR ?? join(here, "..", "..", "target", "console-shots");
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const WAIT = Number(process.env.CONSOLE_TEST_WAIT_MS ?? 20000);
const STEP_WAIT = Number(process.env.CONSOLE_STEP_WAIT_MS ?? 120000);
const XSS = "<img src=x onerror=alert(1)>";
const OUTPUT = "hello from the agent";

if (!BASE || !TOKEN) {
  console.error("browser test: set RUNNERS_URL and RUNNERS_TOKEN");
  process.exit(2);
}

const log = (...a) => console.error("browser:", ...a);
let passed = 0;
function pass(what) {
  passed += 1;
  log(`ok ${passed} - ${what}`);
}
function assert(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
  pass(what);
}

// --- the STEP protocol -----------------------------------------------------
const lines = [];
const waiters = [];
let stdinClosed = false;
const rl = createInterface({ input: process.stdin });
rl.on("line", (line) => {
  const w = waiters.shift();
  if (w) w.resolve(line);
  else lines.push(line);
});
rl.on("close", () => {
  stdinClosed = true;
  for (const w of waiters.splice(0)) w.reject(new Error("stdin closed while waiting for a STEP answer"));
});
function nextLine() {
  if (lines.length) return Promise.resolve(lines.shift());
  if (stdinClosed) return Promise.reject(new Error("stdin closed while waiting for a STEP answer"));
  return new Promise((resolve, reject) => {
    const w = { resolve, reject };
    waiters.push(w);
    setTimeout(() => {
      const i = waiters.indexOf(w);
      if (i >= 0) {
        waiters.splice(i, 1);
        reject(new Error(`no answer to the STEP within ${STEP_WAIT} ms`));
      }
    }, STEP_WAIT).unref();
  });
}
async function step(name, payload = {}) {
  process.stdout.write(`STEP ${name} ${JSON.stringify(payload)}\n`);
  const line = (await nextLine()).trim();
  if (line.startsWith("OK")) {
    const rest = line.slice(2).trim();
    const value = rest ? JSON.parse(rest) : {};
    log(`step ${name}: OK`);
    return value;
  }
  if (line.startsWith("ERR")) throw new Error(`step ${name} failed: ${line.slice(3).trim()}`);
  throw new Error(`step ${name}: unexpected answer ${JSON.stringify(line)}`);
}

// --- the API, from here (for what a person would do elsewhere) -------------
async function apiCall(method, path, body, token = TOKEN) {
  const res = await fetch(`${BASE}${path}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, ...(body ? { "Content-Type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  return { status: res.status, json, headers: res.headers };
}

// --- the browser -------------------------------------------------------------
const profile = await mkdtemp(join(tmpdir(), "console-chromium-"));
await mkdir(SHOTS, { recursive: true });
const context = await chromium.launchPersistentContext(profile, {
  executablePath: CHROMIUM,
  headless: true,
  viewport: { width: 1280, height: 860 },
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const page = context.pages()[0] ?? (await context.newPage());
const dialogs = [];
const pageErrors = [];
const requestUrls = [];
page.on("dialog", (d) => {
  dialogs.push(`${d.type()}: ${d.message()}`);
  void d.dismiss();
});
page.on("pageerror", (e) => pageErrors.push(String(e)));
page.on("console", (m) => {
  if (m.type() === "error") log(`console error: ${m.text()}`);
});
page.on("request", (r) => requestUrls.push(r.url()));
// Count CSP violations from the first script on (CDP's evaluation is not subject to CSP).
await context.addInitScript(() => {
  window.__cspViolations = [];
  document.addEventListener("securitypolicyviolation", (e) => {
    window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`);
  });
});

const axeSource = await readFile(join(here, "..", "node_modules", "axe-core", "axe.min.js"), "utf8");
const shots = [];

async function shot(name) {
  const path = join(SHOTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  shots.push(path);
}

async function axe(name) {
  // Injected through DevTools' evaluation, which the page's CSP does not
  // govern (an inline <script> tag would be refused: script-src 'self').
  const has = await page.evaluate(() => typeof window.axe === "object");
  if (!has) await page.evaluate(axeSource);
  const result = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ["violations"] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" ")) }));
  });
  const bad = result.filter((v) => v.impact === "serious" || v.impact === "critical");
  for (const v of result) if (!bad.includes(v)) log(`axe (${name}, ${v.impact}): ${v.id} ${v.help}`);
  assert(bad.length === 0, `axe: no serious or critical violation on ${name}${bad.length ? `: ${JSON.stringify(bad)}` : ""}`);
}

async function page_(name) {
  await shot(name);
  await axe(name);
}

const q = (sel, opts) => page.locator(sel, opts);
async function visible(locator, what, timeout = WAIT) {
  await locator.first().waitFor({ state: "visible", timeout });
  pass(what);
}
async function waitText(locator, text, what, timeout = WAIT) {
  const deadline = Date.now() + timeout;
  let last = "";
  while (Date.now() < deadline) {
    last = (await locator.first().textContent({ timeout: 1000 }).catch(() => "")) ?? "";
    if (typeof text === "string" ? last.includes(text) : text.test(last)) {
      pass(what);
      return last;
    }
    await page.waitForTimeout(100);
  }
  throw new Error(`check failed: ${what} (last seen: ${JSON.stringify(last.slice(0, 300))})`);
}
async function noReload(what) {
  const marker = await page.evaluate(() => window.__noReloadMarker);
  assert(marker === "set", `${what}, without a reload`);
}
async function go(hash) {
  // In-app navigation, as a link click would do (no reload).
  await page.evaluate((h) => {
    location.hash = h;
  }, hash);
}

let failed = false;
try {
  const rand = Math.random().toString(36).slice(2, 8);

  // -- the files: CSP, size ----------------------------------------------------
  const index = await fetch(`${BASE}/console/`);
  const csp = index.headers.get("content-security-policy") ?? "";
  assert(index.status === 200, "GET /console/ serves the console");
  assert(/script-src 'self'/.test(csp) && /frame-ancestors 'none'/.test(csp) && !/unsafe-inline|unsafe-eval/.test(csp), `a strict Content-Security-Policy (${csp})`);
  const js = Buffer.from(await (await fetch(`${BASE}/console/app.js`)).arrayBuffer());
  const gz = gzipSync(js, { level: 9 }).length;
  assert(gz < 150 * 1024, `the first page's JavaScript is ${gz} bytes gzipped (< 150 KiB)`);

  // -- sign in: a wrong token, then the right one ----------------------------
  await page.goto(`${BASE}/console/`);
  await visible(q("form.signin"), "the sign-in page shows");
  const bad = await apiCall("GET", "/v0/runners?per_page=1", null, "not-a-valid-token");
  const badMessage = bad.json?.message ?? "";
  assert(bad.status === 401 && badMessage.length > 0, "the API refuses a wrong token with a message");
  await q("form.signin input").fill("not-a-valid-token");
  await q("form.signin button[type=submit]").click();
  await waitText(q("form.signin [role=alert]"), badMessage, "a wrong token shows the API's message");
  await page_("signin");

  await q("form.signin input").fill(TOKEN);
  await q("form.signin button[type=submit]").click();
  await visible(q("main h1:has-text('Runners')"), "signing in shows the runners");
  await page.evaluate(() => {
    window.__noReloadMarker = "set";
  });
  const storage = await page.evaluate(() => ({
    session: Object.keys(sessionStorage).map((k) => sessionStorage.getItem(k)),
    local: localStorage.length,
    cookie: document.cookie,
    url: location.href,
  }));
  assert(storage.session.includes(TOKEN), "the token is in session storage");
  assert(storage.local === 0 && storage.cookie === "", "nothing in local storage or cookies");
  assert(!storage.url.includes(TOKEN), "the token is not in the URL");
  await waitText(q("#live"), "live", "the live indicator turns live");

  // -- a runner created through the API appears, offline ----------------------
  const name = `browser-${rand}`;
  const created = await step("create-runner", { name });
  assert(typeof created.uuid === "string", "create-runner answered a UUID");
  await q("input[name=search]").fill(name);
  const row = q(`tr[data-uuid="${created.uuid}"]`);
  await visible(row, "the new runner's row appears");
  await waitText(row.locator(".status-cell"), "offline", "the new runner is offline");
  assert((await row.locator("a.runner-name").textContent()) === name, "the row shows the runner's name");

  // -- the agent connects: idle; takes a job: busy ---------------------------
  await step("agent-connect", { runner: created.uuid });
  await waitText(row.locator(".status-cell"), "idle", "the agent connected: the row shows idle");
  await noReload("idle shows");
  await page_("runners");

  const job1 = (await step("submit-job", { runner: created.uuid })).job;
  assert(typeof job1 === "string", "submit-job answered a job");
  await step("agent-claim", {});
  await waitText(row.locator(".status-cell"), "busy", "the agent took the job: the row shows busy");
  await noReload("busy shows");

  // -- the runner's page, then the job's page --------------------------------
  await row.locator("a.runner-name").click();
  await visible(q(`main h1:has-text("${name}")`), "the runner's page opens");
  const jobRow = q(`tr[data-uuid="${job1}"]`);
  await visible(jobRow, "the runner's page lists its job");
  await page_("runner");
  await jobRow.locator("a").first().click();
  await visible(q("#job-status"), "the job's page opens");
  await waitText(q("#job-status"), /claimed|running/, "the job is running");
  await step("agent-complete", { stdout: OUTPUT });
  await waitText(q("#job-status"), "completed", "the job shows completed");
  await waitText(q("#job-output"), OUTPUT, "the job shows its output");
  await noReload("the completed job and its output show");
  await page_("job");

  // -- cancel from the page reaches the agent -------------------------------
  const job2 = (await step("submit-job", { runner: created.uuid })).job;
  await step("agent-claim", {});
  await q("nav a[data-section=jobs]").click();
  const row2 = q(`tr[data-uuid="${job2}"]`);
  await visible(row2, "the queue lists the second job");
  await waitText(row2.locator(".status-cell"), /claimed|running/, "the second job is claimed or running");
  await page_("jobs");
  // Two jobs made within a minute: their short ids still differ.
  const shown = await page.locator("tr[data-uuid] td:first-child a.mono").allTextContents();
  assert(new Set(shown).size === shown.length, `each job's short id differs (${shown.join(", ")})`);
  // A question left open is closed when the page changes, and answers no.
  await row2.locator("button", { hasText: "Cancel" }).click();
  await visible(q("dialog[open]"), "cancel asks first");
  await page.evaluate(() => {
    location.hash = "#/specs";
  });
  await page.waitForFunction(() => document.querySelector("dialog[open]") === null);
  pass("leaving the page closes the question");
  await q("nav a[data-section=jobs]").click();
  await visible(row2, "the queue lists the second job again");
  await row2.locator("button", { hasText: "Cancel" }).click();
  await visible(q("dialog[open]"), "cancel asks again");
  await q("dialog[open] button", { hasText: "Cancel job" }).click();
  await step("expect-cancel", {});
  pass("the cancel reached the agent");
  await go(`#/jobs/${job2}`);
  await waitText(q("#job-status"), "canceled", "the second job shows canceled");

  // -- the XSS name renders as text ------------------------------------------
  const xss = await apiCall("POST", "/v0/runners", { name: XSS });
  assert(xss.status === 201, "a runner named like markup is created through the API");
  await go("#/runners");
  await visible(q("main h1:has-text('Runners')"), "back on the runners");
  await q("input[name=search]").fill("onerror");
  const xssRow = q(`tr[data-uuid="${xss.json.uuid}"]`);
  await visible(xssRow, "the markup-named runner is listed");
  assert((await xssRow.locator("a.runner-name").textContent()) === XSS, "its name shows as those characters");
  await xssRow.locator("a.runner-name").click();
  await waitText(q("main h1"), XSS, "its page's heading shows the characters");
  assert((await page.locator("img").count()) === 0, "no <img> element appeared");
  await page.waitForTimeout(300);
  assert(dialogs.length === 0, `no dialog fired${dialogs.length ? `: ${dialogs.join("; ")}` : ""}`);

  // -- create, rotate, archive a runner from the page ------------------------
  await go("#/runners");
  await visible(q("main h1:has-text('Runners')"), "the runners again");
  const uiName = `console-made-${rand}`;
  await q("button", { hasText: "New runner" }).click();
  await q("dialog[open] input[name=name]").fill(uiName);
  await q("dialog[open] button[type=submit]").click();
  const keyInput = q("dialog[open] input.secret");
  await visible(keyInput, "a created runner's key is shown");
  assert(/^bencher_runner_[0-9A-Za-z]{30}$/.test(await keyInput.inputValue()), "the key shown is a runner key");
  await page_("runner-key");
  await q("dialog[open] button", { hasText: "Done" }).click();
  await q("input[name=search]").fill(uiName);
  const uiRow = q("tr", { hasText: uiName });
  await visible(uiRow, "the runner made on the page is listed");
  await uiRow.locator("button", { hasText: "Rotate key" }).click();
  await q("dialog[open] button", { hasText: "Rotate key" }).click();
  await visible(q("dialog[open] input.secret"), "rotating shows the new key");
  const rotated = await q("dialog[open] input.secret").inputValue();
  assert(/^bencher_runner_/.test(rotated), "the rotated key is a runner key");
  await q("dialog[open] button", { hasText: "Done" }).click();
  await uiRow.locator("button", { hasText: "Archive" }).click();
  await q("dialog[open] button", { hasText: "Archive" }).click();
  await waitText(q("main .results"), "No runner matches.", "archiving hides the runner from the active list");

  // -- specs: create, edit, fallback -----------------------------------------
  await q("nav a[data-section=specs]").click();
  await visible(q("main h1:has-text('Specs')"), "the specs page opens");
  const specName = `console-spec-${rand}`;
  await q("button", { hasText: "New spec" }).click();
  await q("dialog[open] input[name=name]").fill(specName);
  await q("dialog[open] button[type=submit]").click();
  await q("dialog[open]").waitFor({ state: "detached", timeout: WAIT });
  await q("input[name=search]").fill(specName);
  const specRow = q("tr", { hasText: specName });
  await visible(specRow, "the new spec is listed");
  await specRow.locator("button", { hasText: "Edit" }).click();
  await q("dialog[open] input[name=name]").fill(`${specName}-x`);
  await q("dialog[open] input[name=fallback]").check();
  await q("dialog[open] button[type=submit]").click();
  await waitText(q("tr", { hasText: `${specName}-x` }), "fallback", "the edited spec is renamed and is the fallback");
  await q("input[name=search]").fill("");
  await page.waitForTimeout(400);
  await page_("specs");

  // -- projects: reports and their charts ------------------------------------
  const project = `console-${rand}`;
  for (let i = 0; i < 4; i++) {
    const bmf = {
      "bench::parse": { latency: { value: 100 + i * 7 + (i % 2) * 5 }, throughput: { value: 900 - i * 11 } },
      "bench::render": { latency: { value: 40 + i * 3 } },
    };
    const t0 = new Date(Date.UTC(2026, 0, 1 + i, 12)).toISOString();
    const t1 = new Date(Date.UTC(2026, 0, 1 + i, 12, 1)).toISOString();
    const r = await apiCall("POST", "/v0/run", { project, start_time: t0, end_time: t1, results: [JSON.stringify(bmf), JSON.stringify(bmf)] });
    if (r.status !== 201) throw new Error(`POST /v0/run: ${r.status} ${JSON.stringify(r.json)}`);
  }
  pass("four reports recorded through the API");
  await q("nav a[data-section=projects]").click();
  await visible(q("main h1:has-text('Projects')"), "the projects page opens");
  await q("input[name=search]").fill(project);
  await visible(q(`a:has-text("${project}")`), "the project is listed");
  await page_("projects");
  await q(`a:has-text("${project}")`).first().click();
  await visible(q("svg.chart"), "the project's charts show");
  assert((await q("svg.chart").count()) === 3, "one chart per benchmark and measure (3)");
  assert((await q("svg.chart polyline").count()) === 3, "each chart draws its line");
  assert((await q("svg.chart").first().locator("circle").count()) === 4, "a point per report");
  await page_("project");

  // -- audit -----------------------------------------------------------------
  await q("nav a[data-section=audit]").click();
  await visible(q("main h1:has-text('Audit trail')"), "the audit page opens");
  await visible(q("main table tbody tr td time"), "the audit trail lists entries");
  await page_("audit");

  // -- the whole session: no reload, no CSP violation, token only in headers --
  await noReload("the whole session ran");
  const violations = await page.evaluate(() => window.__cspViolations);
  assert(violations.length === 0, `no Content-Security-Policy violation${violations.length ? `: ${violations.join("; ")}` : ""}`);
  assert(pageErrors.length === 0, `no script error${pageErrors.length ? `: ${pageErrors.join("; ")}` : ""}`);
  assert(!requestUrls.some((u) => u.includes(TOKEN)), "no request URL carries the token");
  assert((await context.cookies()).length === 0, "no cookie was set");

  // -- sign out ---------------------------------------------------------------
  await q("#signout").click();
  await visible(q("form.signin"), "signing out shows the sign-in page");
  assert((await page.evaluate(() => sessionStorage.length)) === 0, "signing out clears the session storage");
} catch (e) {
  failed = true;
  console.error(`browser test FAILED: ${e instanceof Error ? e.message : String(e)}`);
  await page.screenshot({ path: join(SHOTS, "failure.png"), fullPage: true }).catch(() => {});
  console.error(`browser: the page at failure: ${join(SHOTS, "failure.png")} (${page.url()})`);
} finally {
  await context.close().catch(() => {});
  await rm(profile, { recursive: true, force: true }).catch(() => {});
  rl.close();
}
console.error(`browser: screenshots: ${shots.join(", ")}`);
console.log(`browser: ${passed} passed, ${failed ? 1 : 0} failed`);
process.exit(failed ? 1 : 0);
