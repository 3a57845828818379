// Projects, and a project's reports with a chart of each benchmark's
// measure across reports.

import { api, ok, totalCount, type Report } from "../client";
import { lineChart, type Point } from "../chart";
import { debounce, dl, fmtTime, h, replace, shortId, table, time } from "../dom";
import { link, type Ctx } from "../router";
import { errorBox, errorText, field, pageHeader, pager, searchAs, select, showList } from "../ui";

export async function projectsPage(ctx: Ctx): Promise<void> {
  const state = { search: ctx.query.get("search") ?? "", page: Math.max(1, Number(ctx.query.get("page")) || 1), perPage: 20 };
  const search = h("input", { type: "search", name: "search", value: state.search, autocomplete: "off" });
  const results = h("div", { class: "results" });
  const count = h("p", { class: "count", role: "status" });
  let seq = 0;
  const load = async (): Promise<void> => {
    const mine = ++seq;
    ctx.setQuery({ search: state.search, page: state.page }, { page: "1" });
    try {
      const res = await api.GET("/v0/projects", { params: { query: { search: state.search || undefined, page: state.page, per_page: state.perPage } } });
      if (!ctx.alive() || mine !== seq) return;
      const projects = ok(res);
      const total = totalCount(res.response);
      const rows = projects.map((p) =>
        h(
          "tr",
          { "data-uuid": p.uuid },
          h("td", null, link(`/projects/${p.slug}`, p.name), h("div", { class: "sub" }, p.slug)),
          h("td", null, p.visibility),
          h("td", null, p.url ?? "—"),
          h("td", null, time(p.created)),
        ),
      );
      showList(count, results, {
        noun: "project",
        table: table("Projects", ["Name", "Visibility", "URL", "Created"], rows, "No projects yet: a run (`bencher run`) makes one."),
        total,
        state,
        load: () => void load(),
      });
    } catch (e) {
      if (ctx.alive() && mine === seq) replace(results, errorBox(errorText(e)));
    }
  };
  searchAs(search, state, () => void load());
  replace(ctx.main, pageHeader("Projects"), h("form", { class: "filters", role: "search", "aria-label": "Filter projects", onsubmit: (ev: Event) => ev.preventDefault() }, field("Search", search)), count, results);
  await load();
}

/** Each (benchmark, measure)'s points, one a report (the mean over its iterations). */
export function series(reports: Report[]): Map<string, { benchmark: string; measure: string; units: string; points: Point[] }> {
  const out = new Map<string, { benchmark: string; measure: string; units: string; points: Point[] }>();
  for (const r of reports) {
    const sums = new Map<string, { sum: number; n: number; benchmark: string; measure: string; units: string }>();
    for (const iteration of r.results) {
      for (const result of iteration) {
        for (const m of result.measures) {
          const key = `${result.benchmark.uuid}\u0000${m.measure.uuid}`;
          const acc = sums.get(key) ?? { sum: 0, n: 0, benchmark: result.benchmark.name, measure: m.measure.name, units: m.measure.units };
          acc.sum += m.metric.value;
          acc.n += 1;
          sums.set(key, acc);
        }
      }
    }
    const t = new Date(r.start_time).getTime();
    for (const [key, acc] of sums) {
      const s = out.get(key) ?? { benchmark: acc.benchmark, measure: acc.measure, units: acc.units, points: [] };
      s.points.push({ t, v: acc.sum / acc.n, label: `${fmtTime(r.start_time)} (${r.branch.name}, ${r.testbed.name})` });
      out.set(key, s);
    }
  }
  return out;
}

export async function projectPage(ctx: Ctx, slug: string): Promise<void> {
  const project = ok(await api.GET("/v0/projects/{project}", { params: { path: { project: slug } } }));
  if (!ctx.alive()) return;
  document.title = `${project.name} · Runners console`;
  const state = {
    count: ["10", "30", "100"].includes(ctx.query.get("reports") ?? "") ? Number(ctx.query.get("reports")) : 30,
    branch: ctx.query.get("branch") ?? "",
    testbed: ctx.query.get("testbed") ?? "",
    page: Math.max(1, Number(ctx.query.get("page")) || 1),
  };
  const howMany = select("reports", [["10", "10"], ["30", "30"], ["100", "100"]], String(state.count));
  const branch = h("input", { name: "branch", value: state.branch, autocomplete: "off" });
  const testbed = h("input", { name: "testbed", value: state.testbed, autocomplete: "off" });
  const charts = h("div", { class: "charts" });
  const reportsBox = h("div");

  let seq = 0;
  const load = async (): Promise<void> => {
    const mine = ++seq;
    ctx.setQuery({ reports: state.count, branch: state.branch, testbed: state.testbed, page: state.page }, { reports: "30", page: "1" });
    try {
      const res = await api.GET("/v0/projects/{project}/reports", {
        params: {
          path: { project: project.uuid },
          query: { expand: true, per_page: state.count, page: state.page, direction: "desc", branch: state.branch || undefined, testbed: state.testbed || undefined },
        },
      });
      if (!ctx.alive() || mine !== seq) return;
      const reports = ok(res);
      const total = totalCount(res.response);
      const all = series(reports);
      const figs = [...all.values()]
        .sort((a, b) => a.benchmark.localeCompare(b.benchmark) || a.measure.localeCompare(b.measure))
        .map((s) => lineChart(`${s.benchmark} · ${s.measure}`, s.units, s.points));
      replace(charts, ...(figs.length ? figs : [h("p", { class: "muted" }, "No results to plot in these reports.")]));
      const rows = reports.map((r) =>
        h(
          "tr",
          { "data-uuid": r.uuid },
          h("td", null, time(r.start_time)),
          h("td", null, r.branch.name),
          h("td", null, r.testbed.name),
          h("td", { class: "num" }, r.results.length),
          h("td", { class: "num" }, r.counts.results.reduce((a, c) => a + c.benchmarks, 0)),
          h("td", null, r.user?.name ?? "project key"),
          h("td", null, r.job ? link(`/jobs/${r.job}`, shortId(r.job), { title: r.job, class: "mono" }) : "—"),
        ),
      );
      replace(
        reportsBox,
        table("Reports", ["Started", "Branch", "Testbed", "Iterations", "Benchmarks", "By", "Job"], rows, "No reports yet."),
        pager({ page: state.page, perPage: state.count, total }, (p) => {
          state.page = p;
          void load();
        }),
      );
    } catch (e) {
      if (ctx.alive() && mine === seq) replace(charts, errorBox(errorText(e)));
    }
  };
  howMany.addEventListener("change", () => {
    state.count = Number(howMany.value);
    state.page = 1;
    void load();
  });
  const refilter = debounce(() => {
    state.branch = branch.value.trim();
    state.testbed = testbed.value.trim();
    state.page = 1;
    void load();
  }, 300);
  branch.addEventListener("input", refilter);
  testbed.addEventListener("input", refilter);

  replace(
    ctx.main,
    h("p", { class: "crumbs" }, link("/projects", "Projects"), " / "),
    pageHeader(project.name),
    dl([
      ["Slug", project.slug],
      ["UUID", h("code", null, project.uuid)],
      ["Visibility", project.visibility],
      ["Created", time(project.created)],
    ]),
    h("form", { class: "filters", "aria-label": "Filter reports", onsubmit: (ev: Event) => ev.preventDefault() }, field("Reports per page", howMany), field("Branch", branch), field("Testbed", testbed)),
    h("section", { "aria-labelledby": "plots-h" }, h("h2", { id: "plots-h" }, "Results across reports"), h("p", { class: "muted" }, "Each point is one report: the mean of its iterations."), charts),
    h("section", { "aria-labelledby": "reports-h" }, h("h2", { id: "reports-h" }, "Reports"), reportsBox),
  );
  await load();
}
