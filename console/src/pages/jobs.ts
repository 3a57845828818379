// Jobs: the queue by status (cancel), and one job (config, timings, output
// per iteration).

import { api, ok, totalCount, type Job } from "../client";
import { badge, debounce, dl, duration, h, replace, shortId, table, time, type Child } from "../dom";
import { link, type Ctx } from "../router";
import { button, confirmDialog, errorBox, errorText, field, notify, pageHeader, pager, select } from "../ui";

export const JOB_FILTERS: [string, string][] = [
  ["pending,claimed,running", "Queued and running"],
  ["pending", "pending"],
  ["claimed", "claimed"],
  ["running", "running"],
  ["completed,processed,failed,canceled", "Ended"],
  ["completed", "completed"],
  ["processed", "processed"],
  ["failed", "failed"],
  ["canceled", "canceled"],
  ["all", "All"],
];

const ACTIVE = new Set(["pending", "claimed", "running"]);

export function isActive(status: string): boolean {
  return ACTIVE.has(status);
}

/** Cancels a job after asking; true if it was canceled. */
export async function cancelJob(job: { uuid: string }): Promise<boolean> {
  const yes = await confirmDialog(`Cancel job ${shortId(job.uuid)}?`, "A pending job is dropped at once; a claimed or running job's runner is told to stop it.", "Cancel job");
  if (!yes) return false;
  ok(await api.POST("/v0/jobs/{job}/cancel", { params: { path: { job: job.uuid } } }));
  notify(`Job ${shortId(job.uuid)} canceled.`);
  return true;
}

function image(j: Job): string {
  return j.config.image ?? `${j.config.digest.slice(0, 19)}…`;
}

export function jobsTable(jobs: Job[], changed: () => void, opts: { showRunner: boolean }): HTMLElement {
  const headers = ["Job", "Status", "Image", "Spec", ...(opts.showRunner ? ["Runner"] : []), "Priority", "Created", "Started", "Actions"];
  const rows = jobs.map((j) => {
    const cancel = isActive(j.status)
      ? button(
          "Cancel",
          () => {
            cancelJob(j)
              .then((done) => done && changed())
              .catch((e: unknown) => notify(errorText(e)));
          },
          "btn btn-small btn-danger",
          { "aria-label": `Cancel job ${shortId(j.uuid)}` },
        )
      : null;
    return h(
      "tr",
      { "data-uuid": j.uuid },
      h("td", null, link(`/jobs/${j.uuid}`, shortId(j.uuid), { title: j.uuid, class: "mono" })),
      h("td", { class: "status-cell" }, badge(j.status)),
      h("td", { class: "wrap" }, image(j)),
      h("td", null, j.spec.name),
      opts.showRunner ? h("td", null, j.runner ? link(`/runners/${j.runner}`, shortId(j.runner), { title: j.runner, class: "mono" }) : h("span", { class: "muted" }, "—")) : null,
      h("td", { class: "num" }, j.priority),
      h("td", null, time(j.created)),
      h("td", null, time(j.started)),
      h("td", { class: "actions" }, cancel),
    );
  });
  return table("Jobs", headers, rows, "No job here.");
}

export async function jobsPage(ctx: Ctx): Promise<void> {
  const q = ctx.query;
  const initial = JOB_FILTERS.some(([v]) => v === q.get("status")) ? (q.get("status") as string) : "pending,claimed,running";
  const state = {
    status: initial,
    direction: q.get("direction") === "desc" ? "desc" : "asc",
    page: Math.max(1, Number(q.get("page")) || 1),
    perPage: 20,
    runner: q.get("runner") ?? "",
  };
  const status = select("status", JOB_FILTERS, state.status);
  const order = select(
    "direction",
    [
      ["asc", "Oldest first"],
      ["desc", "Newest first"],
    ],
    state.direction,
  );
  const results = h("div", { class: "results" });
  const count = h("p", { class: "count", role: "status" });

  let seq = 0;
  const load = async (): Promise<void> => {
    const mine = ++seq;
    ctx.setQuery({ status: state.status, direction: state.direction, page: state.page, runner: state.runner }, { status: "pending,claimed,running", direction: "asc", page: "1" });
    try {
      const res = await api.GET("/v0/jobs", {
        params: {
          query: {
            status: state.status === "all" ? undefined : state.status,
            runner: state.runner || undefined,
            direction: state.direction as "asc" | "desc",
            page: state.page,
            per_page: state.perPage,
          },
        },
      });
      if (!ctx.alive() || mine !== seq) return;
      const jobs = ok(res);
      const total = totalCount(res.response);
      replace(count, `${total.toLocaleString("en")} job${total === 1 ? "" : "s"}`);
      replace(
        results,
        jobsTable(jobs, () => void load(), { showRunner: true }),
        pager({ page: state.page, perPage: state.perPage, total }, (p) => {
          state.page = p;
          void load();
        }),
      );
    } catch (e) {
      if (ctx.alive() && mine === seq) replace(results, errorBox(errorText(e)));
    }
  };
  status.addEventListener("change", () => {
    state.status = status.value;
    state.page = 1;
    void load();
  });
  order.addEventListener("change", () => {
    state.direction = order.value === "desc" ? "desc" : "asc";
    state.page = 1;
    void load();
  });

  replace(
    ctx.main,
    pageHeader("Jobs"),
    h("form", { class: "filters", "aria-label": "Filter jobs", onsubmit: (ev: Event) => ev.preventDefault() }, field("Status", status), field("Order", order)),
    state.runner ? h("p", null, "Runner ", link(`/runners/${state.runner}`, state.runner), " only.") : null,
    count,
    results,
  );

  const reload = debounce(() => void load(), 300);
  ctx.live((e) => {
    if (e.kind === "resync") reload();
    if (e.kind !== "job") return;
    const cell = results.querySelector(`tr[data-uuid="${CSS.escape(e.uuid)}"] .status-cell`);
    if (cell) replace(cell, badge(e.status));
    reload();
  });
  await load();
}

function args(list: string[] | null | undefined): Child {
  if (!list || list.length === 0) return h("span", { class: "muted" }, "—");
  return h("code", null, JSON.stringify(list));
}

function yesNo(v: boolean | null | undefined): string {
  return v == null ? "—" : v ? "yes" : "no";
}

function pre(text: string | null | undefined, label: string): HTMLElement {
  if (!text) return h("p", { class: "muted" }, `No ${label}.`);
  return h("pre", { class: "output", tabindex: "0", "aria-label": label }, text);
}

export async function jobPage(ctx: Ctx, id: string): Promise<void> {
  const load = async (): Promise<void> => {
    const j = ok(await api.GET("/v0/jobs/{job}", { params: { path: { job: id } } }));
    if (!ctx.alive()) return;
    document.title = `Job ${shortId(j.uuid)} · Runners console`;
    const c = j.config;
    const cancel = isActive(j.status)
      ? button(
          "Cancel job",
          () => {
            cancelJob(j)
              .then((done) => (done ? load() : undefined))
              .catch((e: unknown) => notify(errorText(e)));
          },
          "btn btn-danger",
        )
      : null;
    const header = pageHeader(`Job ${shortId(j.uuid)}`, cancel);
    header.querySelector("h1")?.append(" ", h("span", { class: "status-cell", id: "job-status" }, badge(j.status)));

    const env = c.env ? Object.entries(c.env) : [];
    const config = dl([
      ["Project", h("code", null, c.project)],
      ["Image", c.image ?? "—"],
      ["Digest", h("code", { class: "wrap" }, c.digest)],
      ["Registry", c.registry],
      ["Spec", j.spec.name],
      ["Runner", j.runner ? link(`/runners/${j.runner}`, j.runner, { class: "mono" }) : "none yet"],
      ["Priority", String(j.priority)],
      ["Timeout", `${c.timeout} s`],
      ["Iterations", c.iter == null ? "—" : String(c.iter)],
      ["Entrypoint", args(c.entrypoint)],
      ["Command", args(c.cmd)],
      ["Environment", env.length ? h("ul", { class: "plain" }, ...env.map(([k, v]) => h("li", null, h("code", null, `${k}=${v}`)))) : "—"],
      ["File paths", args(c.file_paths)],
      ["File size", yesNo(c.file_size)],
      ["Build time", yesNo(c.build_time)],
      ["Allow failure", yesNo(c.allow_failure)],
      ["Backdate", time(c.backdate)],
    ]);
    const timings = dl([
      ["Created", time(j.created)],
      ["Claimed", time(j.claimed)],
      ["Started", time(j.started)],
      ["Completed", time(j.completed)],
      ["Last heartbeat", time(j.last_heartbeat)],
      ["Waited", duration(j.created, j.claimed)],
      ["Ran", duration(j.started, j.completed)],
    ]);

    const output = h("section", { "aria-labelledby": "out-h", id: "job-output" }, h("h2", { id: "out-h" }, "Output"));
    if (!j.output) {
      output.append(h("p", { class: "muted" }, isActive(j.status) ? "No output yet: the job has not ended." : "No output."));
    } else {
      if (j.output.error) output.append(h("div", { class: "error" }, h("strong", null, "Error: "), j.output.error));
      if (j.output.results.length === 0) output.append(h("p", { class: "muted" }, "No iteration reported."));
      j.output.results.forEach((it, i) => {
        const files = it.output ? Object.entries(it.output) : [];
        output.append(
          h(
            "section",
            { class: "iteration", "aria-label": `Iteration ${i + 1}` },
            h("h3", null, `Iteration ${i + 1}`, " ", h("span", { class: it.exit_code === 0 ? "tag tag-ok" : "tag tag-bad" }, `exit code ${it.exit_code}`)),
            h("h4", null, "stdout"),
            pre(it.stdout, "stdout"),
            h("h4", null, "stderr"),
            pre(it.stderr, "stderr"),
            ...files.flatMap(([path, text]) => [h("h4", null, h("code", null, path)), pre(text, path)]),
          ),
        );
      });
    }

    replace(
      ctx.main,
      h("p", { class: "crumbs" }, link("/jobs", "Jobs"), " / ", h("span", { class: "mono" }, j.uuid)),
      header,
      h("div", { class: "two-col" }, h("section", { "aria-labelledby": "time-h" }, h("h2", { id: "time-h" }, "Timings"), timings), h("section", { "aria-labelledby": "cfg-h" }, h("h2", { id: "cfg-h" }, "Config"), config)),
      output,
    );
  };
  await load();
  const reload = debounce(() => void load().catch((e: unknown) => notify(errorText(e))), 150);
  ctx.live((e) => {
    if (e.kind === "resync" || (e.kind === "job" && e.uuid === id)) reload();
  });
}
