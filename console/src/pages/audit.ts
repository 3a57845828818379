// The audit trail of admin writes: `GET /v0/audit` (admin; newest first;
// paged; filtered by since, runner and action).

import { api, ok, totalCount, type Schemas } from "../client";
import { debounce, h, replace, shortId, table, time } from "../dom";
import type { Ctx } from "../router";
import { errorBox, errorText, field, pageHeader, pager } from "../ui";

export type AuditEntry = Schemas["JsonAuditEntry"];

/** `2026-12-08T10:00` (a datetime-local value, local time) to RFC 3339 (UTC). */
function rfc3339(local: string): string {
  if (!local) return "";
  const d = new Date(local);
  return Number.isNaN(d.getTime()) ? "" : d.toISOString();
}

function detail(d: unknown): HTMLElement {
  if (!d || typeof d !== "object" || Object.keys(d).length === 0) return h("span", { class: "muted" }, "—");
  const text = JSON.stringify(d);
  if (text.length <= 120) return h("code", null, text);
  return h("details", null, h("summary", null, h("code", null, `${text.slice(0, 100)}…`)), h("pre", { class: "json" }, JSON.stringify(d, null, 2)));
}

export async function auditPage(ctx: Ctx): Promise<void> {
  const q = ctx.query;
  const state = {
    since: q.get("since") ?? "",
    runner: q.get("runner") ?? "",
    action: q.get("action") ?? "",
    page: Math.max(1, Number(q.get("page")) || 1),
    perPage: 50,
  };
  const since = h("input", { type: "datetime-local", name: "since", step: "1" });
  if (state.since) {
    const d = new Date(state.since);
    if (!Number.isNaN(d.getTime())) {
      // datetime-local shows local time without a zone.
      const local = new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 19);
      since.value = local;
    }
  }
  const runner = h("input", { name: "runner", value: state.runner, autocomplete: "off", placeholder: "UUID or slug" });
  const action = h("input", { name: "action", value: state.action, autocomplete: "off", placeholder: "e.g. runner.create" });
  const results = h("div", { class: "results" });
  const count = h("p", { class: "count", role: "status" });

  let seq = 0;
  const load = async (): Promise<void> => {
    const mine = ++seq;
    ctx.setQuery({ since: state.since, runner: state.runner, action: state.action, page: state.page }, { page: "1" });
    try {
      const res = await api.GET("/v0/audit", {
        params: {
          query: {
            since: state.since || undefined,
            runner: state.runner || undefined,
            action: state.action || undefined,
            page: state.page,
            per_page: state.perPage,
          },
        },
      });
      if (!ctx.alive() || mine !== seq) return;
      const data: AuditEntry[] = ok(res);
      const total = totalCount(res.response);
      const known = total;
      const rows = data.map((e) =>
        h(
          "tr",
          null,
          h("td", null, time(e.time)),
          h("td", null, e.user ?? h("span", { class: "muted" }, "—")),
          h("td", null, e.token ? h("span", { class: "mono", title: e.token }, shortId(e.token)) : h("span", { class: "muted" }, "—")),
          h("td", null, h("code", null, e.action)),
          h("td", { class: "wrap" }, e.target_slug ?? (e.target_uuid ? shortId(e.target_uuid) : "—")),
          h("td", { class: "wrap detail" }, detail(e.changes)),
        ),
      );
      replace(count, `${total.toLocaleString("en")} entr${total === 1 ? "y" : "ies"}`);
      replace(
        results,
        table("Audit trail", ["When", "User", "Token", "Action", "Target", "Detail"], rows, "No entry matches."),
        pager({ page: state.page, perPage: state.perPage, total: known }, (p) => {
          state.page = p;
          void load();
        }),
      );
    } catch (e) {
      if (ctx.alive() && mine === seq) replace(results, errorBox(`The audit trail could not be read: ${errorText(e)}`));
    }
  };
  const refilter = debounce(() => {
    state.since = rfc3339(since.value);
    state.runner = runner.value.trim();
    state.action = action.value.trim();
    state.page = 1;
    void load();
  }, 300);
  for (const input of [since, runner, action]) input.addEventListener("input", refilter);
  since.addEventListener("change", refilter);

  replace(
    ctx.main,
    pageHeader("Audit trail"),
    h("p", { class: "muted" }, "Every admin write: who did what to which, newest first."),
    h("form", { class: "filters", role: "search", "aria-label": "Filter the audit trail", onsubmit: (ev: Event) => ev.preventDefault() }, field("Since", since), field("Runner", runner), field("Action", action)),
    count,
    results,
  );
  await load();
}
