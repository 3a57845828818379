// Runners: the list (server-side filter, search and paging) and one runner
// with its specs and jobs.

import { api, ok, totalCount, type Runner, type RunnerStatus, type Schemas, type Spec } from "../client";
import { ago, badge, debounce, dl, h, replace, shortId, table, time } from "../dom";
import { link, type Ctx } from "../router";
import { specMap, specMapFor } from "../specnames";
import { button, checkbox, confirmDialog, errorBox, errorText, field, modal, notify, pageHeader, pager, select, showSecretOnce } from "../ui";
import { jobsTable, JOB_FILTERS } from "./jobs";

const STATUSES: RunnerStatus[] = ["offline", "idle", "busy"];
const PER_PAGE = ["10", "20", "50", "100", "255"];

function int(v: string | null, dflt: number, max = 4294967295): number {
  const n = Number(v);
  return Number.isInteger(n) && n >= 1 && n <= max ? n : dflt;
}

function platform(r: Runner): string {
  if (!r.os && !r.arch) return "—";
  return `${r.os ?? "?"} / ${r.arch ?? "?"}`;
}

function specList(uuids: string[], specs: Map<string, Spec>): HTMLElement {
  if (uuids.length === 0) return h("span", { class: "muted" }, "none");
  return h("ul", { class: "inline-list" }, ...uuids.map((u) => h("li", null, specs.get(u)?.name ?? shortId(u))));
}

async function newRunner(): Promise<string | null> {
  const name = h("input", { name: "name", required: true, maxlength: "64", autocomplete: "off" });
  const slug = h("input", { name: "slug", maxlength: "64", autocomplete: "off", pattern: "[a-z0-9]+(-[a-z0-9]+)*" });
  let created: Schemas["JsonRunnerKey"] | null = null;
  await modal(
    "New runner",
    [field("Name", name), field("Slug (optional)", slug, "Lowercase letters and digits joined by hyphens; made from the name if empty.")],
    [
      { label: "Cancel", value: "cancel" },
      { label: "Create", value: "submit", cls: "btn btn-primary" },
    ],
    {
      async onsubmit() {
        const body: Schemas["JsonNewRunner"] = { name: name.value.trim() };
        if (slug.value.trim()) body.slug = slug.value.trim();
        const res = await api.POST("/v0/runners", { body });
        if (!res.response.ok) return errorMessageOf(res.error, res.response);
        created = res.data ?? null;
        return null;
      },
    },
  );
  const c = created as Schemas["JsonRunnerKey"] | null;
  if (!c) return null;
  await showSecretOnce("Runner created", "runner key", c.key);
  return c.uuid;
}

export function errorMessageOf(error: unknown, response: Response): string {
  if (error && typeof error === "object" && "message" in error && typeof error.message === "string") return error.message;
  return `${response.status} ${response.statusText}`.trim();
}

async function rotateKey(r: Runner): Promise<boolean> {
  const yes = await confirmDialog(
    `Rotate the key of ${r.name}?`,
    "A new key is made and the old one stops working at once: the runner's agent must be given the new key.",
    "Rotate key",
    "Cancel",
  );
  if (!yes) return false;
  const key = ok(await api.POST("/v0/runners/{runner}/key", { params: { path: { runner: r.uuid } } }));
  await showSecretOnce(`New key for ${r.name}`, "runner key", key.key);
  return true;
}

async function setArchived(r: Runner, archived: boolean): Promise<boolean> {
  if (archived) {
    const yes = await confirmDialog(`Archive ${r.name}?`, "An archived runner takes no jobs and its key stops working. You can unarchive it later.", "Archive", "Cancel");
    if (!yes) return false;
  }
  ok(await api.PATCH("/v0/runners/{runner}", { params: { path: { runner: r.uuid } }, body: { archived } }));
  notify(`${r.name} ${archived ? "archived" : "unarchived"}.`);
  return true;
}

export async function runnersPage(ctx: Ctx): Promise<void> {
  const q = ctx.query;
  const state = {
    search: q.get("search") ?? "",
    status: (STATUSES.includes(q.get("status") as RunnerStatus) ? q.get("status") : "") as RunnerStatus | "",
    archived: q.get("archived") === "true",
    sort: q.get("sort") === "created" ? "created" : "name",
    direction: q.get("direction") === "desc" ? "desc" : "asc",
    page: int(q.get("page"), 1),
    perPage: int(q.get("per_page"), 20, 255),
  };

  const search = h("input", { type: "search", name: "search", value: state.search, autocomplete: "off", placeholder: "name, slug or UUID" });
  const status = select("status", [["", "Any"], ...STATUSES.map((s): [string, string] => [s, s])], state.status);
  const archived = h("input", { name: "archived" });
  archived.checked = state.archived;
  const sort = select(
    "sort",
    [
      ["name:asc", "Name, A to Z"],
      ["name:desc", "Name, Z to A"],
      ["created:desc", "Newest first"],
      ["created:asc", "Oldest first"],
    ],
    `${state.sort}:${state.direction}`,
  );
  const perPage = select("per_page", PER_PAGE.map((n): [string, string] => [n, n]), String(state.perPage));
  const results = h("div", { class: "results", "aria-live": "off" });
  const count = h("p", { class: "count", role: "status" });

  let seq = 0;
  const load = async (): Promise<void> => {
    const mine = ++seq;
    ctx.setQuery(
      { search: state.search, status: state.status, archived: state.archived, sort: state.sort, direction: state.direction, page: state.page, per_page: state.perPage },
      { sort: "name", direction: "asc", page: "1", per_page: "20" },
    );
    try {
      const [res] = await Promise.all([
        api.GET("/v0/runners", {
          params: {
            query: {
              search: state.search || undefined,
              status: state.status || undefined,
              archived: state.archived || undefined,
              sort: state.sort as Schemas["RunnersSort"],
              direction: state.direction as Schemas["JsonDirection"],
              page: state.page,
              per_page: state.perPage,
            },
          },
        }),
        specMap().catch(() => new Map<string, Spec>()),
      ]);
      if (!ctx.alive() || mine !== seq) return;
      const runners = ok(res);
      const specs = await specMapFor(runners.flatMap((r) => r.specs)).catch(() => new Map<string, Spec>());
      if (!ctx.alive() || mine !== seq) return;
      const total = totalCount(res.response);
      const pages = Math.max(1, Math.ceil(total / state.perPage));
      if (state.page > pages && total > 0) {
        state.page = pages;
        void load();
        return;
      }
      const rows = runners.map((r) => runnerRow(r, specs, () => void load()));
      replace(count, `${total.toLocaleString("en")} runner${total === 1 ? "" : "s"}`);
      replace(
        results,
        table("Runners", ["Name", "Status", "Last heartbeat", "OS / arch", "Version", "Specs", "Actions"], rows, state.search || state.status ? "No runner matches." : "No runners yet."),
        pager({ page: state.page, perPage: state.perPage, total }, (p) => {
          state.page = p;
          void load();
        }),
      );
    } catch (e) {
      if (ctx.alive() && mine === seq) replace(results, errorBox(errorText(e)));
    }
  };

  const refilter = () => {
    state.page = 1;
    void load();
  };
  search.addEventListener("input", debounce(() => {
    state.search = search.value.trim();
    refilter();
  }, 250));
  status.addEventListener("change", () => {
    state.status = status.value as RunnerStatus | "";
    refilter();
  });
  archived.addEventListener("change", () => {
    state.archived = archived.checked;
    refilter();
  });
  sort.addEventListener("change", () => {
    const [s, d] = sort.value.split(":");
    state.sort = s === "created" ? "created" : "name";
    state.direction = d === "desc" ? "desc" : "asc";
    refilter();
  });
  perPage.addEventListener("change", () => {
    state.perPage = int(perPage.value, 20, 255);
    refilter();
  });

  const filters = h(
    "form",
    { class: "filters", role: "search", "aria-label": "Filter runners", onsubmit: (ev: Event) => ev.preventDefault() },
    field("Search", search),
    field("Status", status),
    field("Sort", sort),
    field("Per page", perPage),
    checkbox("Include archived", archived),
  );

  const create = button(
    "New runner",
    () => {
      newRunner()
        .then((uuid) => {
          if (uuid) void load();
        })
        .catch((e: unknown) => notify(errorText(e)));
    },
    "btn btn-primary",
  );

  replace(ctx.main, pageHeader("Runners", create), filters, count, results);

  const reload = debounce(() => void load(), 400);
  ctx.live((e) => {
    if (e.kind === "resync") reload();
    if (e.kind !== "runner") return;
    // Show the new status at once; then refetch the page (filters, heartbeat, order).
    const row = results.querySelector<HTMLTableRowElement>(`tr[data-uuid="${CSS.escape(e.uuid)}"]`);
    const cell = row?.querySelector(".status-cell");
    if (cell) replace(cell, badge(e.status));
    if (row || state.status) reload();
  });

  await load();
}

function runnerRow(r: Runner, specs: Map<string, Spec>, changed: () => void): HTMLTableRowElement {
  const archiveBtn = button(
    r.archived ? "Unarchive" : "Archive",
    () => {
      setArchived(r, !r.archived)
        .then((done) => done && changed())
        .catch((e: unknown) => notify(errorText(e)));
    },
    "btn btn-small",
    { "aria-label": `${r.archived ? "Unarchive" : "Archive"} ${r.name}` },
  );
  const rotate = button(
    "Rotate key",
    () => {
      rotateKey(r).catch((e: unknown) => notify(errorText(e)));
    },
    "btn btn-small",
    { "aria-label": `Rotate key of ${r.name}` },
  );
  rotate.disabled = r.archived != null;
  return h(
    "tr",
    { "data-uuid": r.uuid },
    h("td", null, link(`/runners/${r.uuid}`, r.name, { class: "runner-name" }), h("div", { class: "sub" }, r.slug), r.archived ? h("span", { class: "tag" }, "archived") : null),
    h("td", { class: "status-cell" }, badge(r.status)),
    h("td", null, h("span", { title: r.last_heartbeat ?? "" }, ago(r.last_heartbeat))),
    h("td", null, platform(r)),
    h("td", null, r.version ?? "—"),
    h("td", null, specList(r.specs, specs)),
    h("td", { class: "actions" }, archiveBtn, rotate),
  );
}

export async function runnerPage(ctx: Ctx, id: string): Promise<void> {
  const head = h("div");
  const props = h("div");
  const specsBox = h("section", { "aria-labelledby": "specs-h" });
  const jobsBox = h("div");
  const jobStatus = select("status", JOB_FILTERS.map(([v, l]): [string, string] => [v, l]), ctx.query.get("status") ?? "all");
  const jobState = { page: int(ctx.query.get("page"), 1), perPage: 20, status: jobStatus.value };
  let runner: Runner | null = null;

  const loadRunner = async (): Promise<void> => {
    const r = ok(await api.GET("/v0/runners/{runner}", { params: { path: { runner: id } } }));
    const specs = await specMapFor(r.specs).catch(() => new Map<string, Spec>());
    if (!ctx.alive()) return;
    runner = r;
    document.title = `${r.name} · Runners console`;
    const rotate = button("Rotate key", () => void rotateKey(r).catch((e: unknown) => notify(errorText(e))));
    rotate.disabled = r.archived != null;
    const edit = button("Rename", () => void rename(r).then((d) => (d ? loadRunner() : undefined)).catch((e: unknown) => notify(errorText(e))));
    const archive = button(r.archived ? "Unarchive" : "Archive", () => void setArchived(r, !r.archived).then((d) => (d ? loadRunner() : undefined)).catch((e: unknown) => notify(errorText(e))));
    replace(head, h("p", { class: "crumbs" }, link("/runners", "Runners"), " / "), pageHeader(r.name, edit, rotate, archive));
    const heading = head.querySelector("h1");
    heading?.append(" ", h("span", { class: "status-cell" }, badge(r.status)));
    replace(
      props,
      dl([
        ["UUID", h("code", null, r.uuid)],
        ["Slug", r.slug],
        ["Status", badge(r.status)],
        ["Last heartbeat", h("span", null, time(r.last_heartbeat), ` (${ago(r.last_heartbeat)})`)],
        ["OS / arch", platform(r)],
        ["Agent version", r.version ?? "—"],
        ["Created", time(r.created)],
        ["Modified", time(r.modified)],
        ["Archived", time(r.archived)],
      ]),
    );
    renderSpecs(r, specs);
  };

  const renderSpecs = (r: Runner, specs: Map<string, Spec>): void => {
    const items = r.specs.map((u) =>
      h(
        "li",
        null,
        specs.get(u)?.name ?? u,
        " ",
        button(
          "Remove",
          () => {
            api
              .DELETE("/v0/runners/{runner}/specs/{spec}", { params: { path: { runner: r.uuid, spec: u } } })
              .then((res) => {
                ok(res);
                notify("Spec removed.");
                return loadRunner();
              })
              .catch((e: unknown) => notify(errorText(e)));
          },
          "btn btn-small",
          { "aria-label": `Remove spec ${specs.get(u)?.name ?? u}` },
        ),
      ),
    );
    const candidates = [...specs.values()].filter((s) => !s.archived && !r.specs.includes(s.uuid));
    const pick = select("spec", candidates.map((s): [string, string] => [s.uuid, s.name]), "");
    const add = h(
      "form",
      {
        class: "inline-form",
        onsubmit: (ev: Event) => {
          ev.preventDefault();
          if (!pick.value) return;
          api
            .POST("/v0/runners/{runner}/specs", { params: { path: { runner: r.uuid } }, body: { spec: pick.value } })
            .then((res) => {
              ok(res);
              notify("Spec added.");
              return loadRunner();
            })
            .catch((e: unknown) => notify(errorText(e)));
        },
      },
      field("Add a spec", pick),
      h("button", { type: "submit", class: "btn" }, "Add"),
    );
    if (candidates.length === 0) add.hidden = true;
    replace(specsBox, h("h2", { id: "specs-h" }, "Specs"), items.length ? h("ul", { class: "spec-list" }, ...items) : h("p", { class: "muted" }, "This runner offers no spec yet: it takes no job."), add);
  };

  let jobSeq = 0;
  const loadJobs = async (): Promise<void> => {
    const mine = ++jobSeq;
    ctx.setQuery({ status: jobState.status, page: jobState.page }, { status: "all", page: "1" });
    try {
      const res = await api.GET("/v0/runners/{runner}/jobs", {
        params: {
          path: { runner: id },
          query: { status: jobState.status === "all" ? undefined : jobState.status, page: jobState.page, per_page: jobState.perPage, direction: "desc" },
        },
      });
      if (!ctx.alive() || mine !== jobSeq) return;
      const jobs = ok(res);
      const total = totalCount(res.response);
      replace(
        jobsBox,
        jobsTable(jobs, () => void loadJobs(), { showRunner: false }),
        pager({ page: jobState.page, perPage: jobState.perPage, total }, (p) => {
          jobState.page = p;
          void loadJobs();
        }),
      );
    } catch (e) {
      if (ctx.alive() && mine === jobSeq) replace(jobsBox, errorBox(errorText(e)));
    }
  };
  jobStatus.addEventListener("change", () => {
    jobState.status = jobStatus.value;
    jobState.page = 1;
    void loadJobs();
  });

  await loadRunner();
  replace(
    ctx.main,
    head,
    props,
    specsBox,
    h("section", { "aria-labelledby": "jobs-h" }, h("h2", { id: "jobs-h" }, "Jobs"), h("form", { class: "filters", onsubmit: (ev: Event) => ev.preventDefault() }, field("Status", jobStatus)), jobsBox),
  );

  const reloadRunner = debounce(() => void loadRunner().catch(() => {}), 250);
  const reloadJobs = debounce(() => void loadJobs(), 250);
  ctx.live((e) => {
    if (e.kind === "resync") {
      reloadRunner();
      reloadJobs();
    } else if (e.kind === "runner" && runner && e.uuid === runner.uuid) {
      for (const cell of ctx.main.querySelectorAll(".status-cell")) replace(cell, badge(e.status));
      reloadRunner();
    } else if (e.kind === "job" && ((runner && e.runner === runner.uuid) || jobsBox.querySelector(`tr[data-uuid="${CSS.escape(e.uuid)}"]`))) {
      const cell = jobsBox.querySelector(`tr[data-uuid="${CSS.escape(e.uuid)}"] .status-cell`);
      if (cell) replace(cell, badge(e.status));
      reloadJobs();
    }
  });
  await loadJobs();
}

async function rename(r: Runner): Promise<boolean> {
  const name = h("input", { name: "name", value: r.name, required: true, maxlength: "64", autocomplete: "off" });
  const slug = h("input", { name: "slug", value: r.slug, required: true, maxlength: "64", autocomplete: "off" });
  const v = await modal(
    `Rename ${r.name}`,
    [field("Name", name), field("Slug", slug)],
    [
      { label: "Cancel", value: "cancel" },
      { label: "Save", value: "submit", cls: "btn btn-primary" },
    ],
    {
      async onsubmit() {
        const body: Schemas["JsonUpdateRunner"] = {};
        if (name.value.trim() !== r.name) body.name = name.value.trim();
        if (slug.value.trim() !== r.slug) body.slug = slug.value.trim();
        if (!body.name && !body.slug) return null;
        const res = await api.PATCH("/v0/runners/{runner}", { params: { path: { runner: r.uuid } }, body });
        return res.response.ok ? null : errorMessageOf(res.error, res.response);
      },
    },
  );
  return v === "submit";
}
