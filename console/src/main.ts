// The console's entry point: the shell (nav, live indicator, sign-out),
// sign-in, and the routes.

import { clearToken, errorMessage, getToken, setToken, setUnauthorizedHandler } from "./client";
import { h, replace } from "./dom";
import { onLiveState, startLive, stopLive } from "./live";
import { parseHash, startPage, type Page } from "./router";
import { errorBox, field, notify } from "./ui";
import { runnerPage, runnersPage } from "./pages/runners";
import { jobPage, jobsPage } from "./pages/jobs";
import { specsPage } from "./pages/specs";
import { projectPage, projectsPage } from "./pages/projects";
import { auditPage } from "./pages/audit";

const main = document.getElementById("main") as HTMLElement;
const nav = document.getElementById("nav") as HTMLElement;
const liveEl = document.getElementById("live") as HTMLElement;
const who = document.getElementById("who") as HTMLElement;
const signout = document.getElementById("signout") as HTMLButtonElement;

const routes: Record<string, { list?: Page; item?: Page; title: string }> = {
  runners: { list: runnersPage, item: runnerPage, title: "Runners" },
  jobs: { list: jobsPage, item: jobPage, title: "Jobs" },
  specs: { list: specsPage, title: "Specs" },
  projects: { list: projectsPage, item: projectPage, title: "Projects" },
  audit: { list: auditPage, title: "Audit trail" },
};

/** A message to show on the sign-in page (why the user is there). */
let signInReason = "";

function credentialKind(token: string): string {
  return token.startsWith("bencher_user_") ? "a user key" : "an API token";
}

function setShell(signedIn: boolean): void {
  nav.hidden = !signedIn;
  signout.hidden = !signedIn;
  liveEl.hidden = !signedIn;
  const token = getToken();
  replace(who, signedIn && token ? `Signed in with ${credentialKind(token)}` : "");
}

onLiveState((state, detail) => {
  liveEl.className = `live live-${state}`;
  const words: Record<string, string> = {
    off: "offline",
    connecting: "connecting…",
    live: "live",
    retrying: "reconnecting…",
  };
  replace(liveEl, words[state] ?? state);
  liveEl.title = state === "live" ? "Runner and job status update as they change" : detail ? `Live updates: ${detail}` : "Live updates are off";
});

function signOut(reason: string): void {
  clearToken();
  stopLive();
  signInReason = reason;
  if (location.hash.startsWith("#/signin")) void route();
  else location.hash = "#/signin";
}

setUnauthorizedHandler((message) => signOut(`Signed out: ${message}`));
signout.addEventListener("click", () => {
  signOut("");
  notify("Signed out.");
});

function signInPage(): void {
  const ctx = startPage(main, new URLSearchParams(), "/signin");
  setShell(false);
  document.title = "Sign in · Runners console";
  const input = h("input", {
    type: "password",
    name: "token",
    autocomplete: "off",
    spellcheck: "false",
    required: true,
  });
  const msg = h("div", { class: "signin-msg" });
  if (signInReason) replace(msg, errorBox(signInReason));
  const submit = h("button", { type: "submit", class: "btn btn-primary" }, "Sign in");
  const form = h(
    "form",
    { class: "signin", "aria-labelledby": "signin-title" },
    h("h1", { id: "signin-title" }, "Sign in"),
    h("p", null, "Use an admin's API token (from the server's first start, or `runners-server token create --admin`) or a user key (`bencher_user_…`). It is kept in this tab's session storage only, until you sign out or close the tab."),
    field("API token or user key", input),
    msg,
    submit,
  );
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const token = input.value.trim();
    if (!token) {
      replace(msg, errorBox("Enter an API token or a user key."));
      return;
    }
    if (token.startsWith("bencher_runner_") || token.startsWith("bencher_run_")) {
      replace(msg, errorBox("That is a runner or project key: sign in with an admin's API token or a user key."));
      return;
    }
    submit.disabled = true;
    replace(msg, h("p", { class: "muted" }, "Checking…"));
    fetch("/v0/runners?per_page=1", { headers: { Authorization: `Bearer ${token}`, Accept: "application/json" } })
      .then(async (response) => {
        if (!ctx.alive()) return;
        if (response.ok) {
          setToken(token);
          signInReason = "";
          input.value = "";
          startLive();
          location.hash = "#/runners";
        } else {
          replace(msg, errorBox(`Sign-in failed: ${await errorMessage(response)}`));
        }
      })
      .catch((e: unknown) => replace(msg, errorBox(`Sign-in failed: ${e instanceof Error ? e.message : String(e)}`)))
      .finally(() => {
        submit.disabled = false;
      });
  });
  replace(main, form);
  input.focus();
}

async function route(): Promise<void> {
  const { path, query } = parseHash(location.hash);
  const section = path[0] ?? "";
  if (!getToken()) {
    signInPage();
    return;
  }
  if (section === "signin" || section === "") {
    location.replace("#/runners");
    return;
  }
  const r = routes[section];
  setShell(true);
  for (const a of nav.querySelectorAll("a")) {
    if (a.dataset.section === section) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  const id = path[1];
  const page = id !== undefined ? r?.item : r?.list;
  const base = `/${path.map(encodeURIComponent).join("/")}`;
  const ctx = startPage(main, query, base);
  if (!r || !page) {
    document.title = "Not found · Runners console";
    replace(main, h("h1", null, "Not found"), h("p", null, "No such page."));
    return;
  }
  document.title = `${r.title} · Runners console`;
  replace(main, h("p", { class: "muted" }, "Loading…"));
  try {
    await (id !== undefined ? page(ctx, id) : page(ctx));
  } catch (e) {
    if (ctx.alive()) replace(main, h("h1", null, r.title), errorBox(e instanceof Error ? e.message : String(e)));
  }
}

let lastSection = "";
window.addEventListener("hashchange", () => {
  for (const d of document.querySelectorAll<HTMLDialogElement>("dialog[data-close-on-navigate]")) d.close();
  const section = parseHash(location.hash).path.join("/");
  void route().then(() => {
    // Move focus to the new page's heading, for screen readers and keyboards.
    if (section !== lastSection) main.querySelector<HTMLElement>("h1")?.focus({ preventScroll: true });
    lastSection = section;
  });
});

if (getToken()) startLive();
void route();
