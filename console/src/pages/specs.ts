// Specs: list, create, edit (name, slug, fallback, archived).

import { api, ok, totalCount, type Schemas, type Spec } from "../client";
import { bytes, h, replace, table, time } from "../dom";
import type { Ctx } from "../router";
import { forgetSpecs } from "../specnames";
import { button, checkbox, errorBox, errorText, field, modal, notify, pageHeader, searchAs, select, showList } from "../ui";
import { errorMessageOf } from "./runners";

const GIB = 1024 * 1024 * 1024;

function gib(input: HTMLInputElement): number {
  return Math.round(Number(input.value) * GIB);
}

async function newSpec(): Promise<boolean> {
  const name = h("input", { name: "name", required: true, maxlength: "64", autocomplete: "off" });
  const slug = h("input", { name: "slug", maxlength: "64", autocomplete: "off" });
  const cpu = h("input", { name: "cpu", type: "number", min: "1", step: "1", required: true, value: "2" });
  const memory = h("input", { name: "memory", type: "number", min: "0.001", step: "any", required: true, value: "4" });
  const disk = h("input", { name: "disk", type: "number", min: "0.001", step: "any", required: true, value: "32" });
  const os = select("os", [["linux", "linux"], ["macos", "macos"], ["windows", "windows"]], "linux");
  const arch = select("architecture", [["x86_64", "x86_64"], ["aarch64", "aarch64"]], "x86_64");
  const sandbox = select("sandbox", [["", "none"], ["firecracker", "firecracker"]], "");
  const network = h("input", { name: "network" });
  const fallback = h("input", { name: "fallback" });
  const v = await modal(
    "New spec",
    [
      field("Name", name),
      field("Slug (optional)", slug),
      h("div", { class: "row" }, field("CPUs", cpu), field("Memory (GiB)", memory), field("Disk (GiB)", disk)),
      h("div", { class: "row" }, field("OS", os), field("Architecture", arch), field("Sandbox", sandbox)),
      checkbox("Jobs have network access", network),
      checkbox("Make it the fallback spec (for jobs that ask for none)", fallback),
    ],
    [
      { label: "Cancel", value: "cancel" },
      { label: "Create", value: "submit", cls: "btn btn-primary" },
    ],
    {
      async onsubmit() {
        const body: Schemas["JsonNewSpec"] = {
          name: name.value.trim(),
          cpu: Number(cpu.value),
          memory: gib(memory),
          disk: gib(disk),
          os: os.value as Schemas["OperatingSystem"],
          architecture: arch.value as Schemas["Architecture"],
          network: network.checked,
          fallback: fallback.checked,
          sandbox: sandbox.value ? (sandbox.value as Schemas["Sandbox"]) : null,
        };
        if (slug.value.trim()) body.slug = slug.value.trim();
        const res = await api.POST("/v0/specs", { body });
        return res.response.ok ? null : errorMessageOf(res.error, res.response);
      },
    },
  );
  return v === "submit";
}

async function editSpec(s: Spec): Promise<boolean> {
  const name = h("input", { name: "name", value: s.name, required: true, maxlength: "64", autocomplete: "off" });
  const slug = h("input", { name: "slug", value: s.slug, required: true, maxlength: "64", autocomplete: "off" });
  const fallback = h("input", { name: "fallback" });
  fallback.checked = s.fallback != null;
  const archived = h("input", { name: "archived" });
  archived.checked = s.archived != null;
  const v = await modal(
    `Edit ${s.name}`,
    [field("Name", name), field("Slug", slug), checkbox("Fallback spec", fallback), checkbox("Archived", archived)],
    [
      { label: "Cancel", value: "cancel" },
      { label: "Save", value: "submit", cls: "btn btn-primary" },
    ],
    {
      async onsubmit() {
        const body: Schemas["JsonUpdateSpec"] = {};
        if (name.value.trim() !== s.name) body.name = name.value.trim();
        if (slug.value.trim() !== s.slug) body.slug = slug.value.trim();
        if (fallback.checked !== (s.fallback != null)) body.fallback = fallback.checked;
        if (archived.checked !== (s.archived != null)) body.archived = archived.checked;
        if (Object.keys(body).length === 0) return null;
        const res = await api.PATCH("/v0/specs/{spec}", { params: { path: { spec: s.uuid } }, body });
        return res.response.ok ? null : errorMessageOf(res.error, res.response);
      },
    },
  );
  return v === "submit";
}

export async function specsPage(ctx: Ctx): Promise<void> {
  const state = {
    search: ctx.query.get("search") ?? "",
    archived: ctx.query.get("archived") === "true",
    page: Math.max(1, Number(ctx.query.get("page")) || 1),
    perPage: 20,
  };
  const search = h("input", { type: "search", name: "search", value: state.search, autocomplete: "off" });
  const archived = h("input", { name: "archived" });
  archived.checked = state.archived;
  const results = h("div", { class: "results" });
  const count = h("p", { class: "count", role: "status" });

  let seq = 0;
  const load = async (): Promise<void> => {
    const mine = ++seq;
    ctx.setQuery({ search: state.search, archived: state.archived, page: state.page }, { page: "1" });
    try {
      const res = await api.GET("/v0/specs", { params: { query: { search: state.search || undefined, archived: state.archived || undefined, page: state.page, per_page: state.perPage } } });
      if (!ctx.alive() || mine !== seq) return;
      const specs = ok(res);
      const total = totalCount(res.response);
      const rows = specs.map((s) =>
        h(
          "tr",
          { "data-uuid": s.uuid },
          h("td", null, h("span", { class: "spec-name" }, s.name), h("div", { class: "sub" }, s.slug), s.archived ? h("span", { class: "tag" }, "archived") : null),
          h("td", { class: "num" }, s.cpu),
          h("td", { class: "num" }, bytes(s.memory)),
          h("td", { class: "num" }, bytes(s.disk)),
          h("td", null, `${s.os} / ${s.architecture}`),
          h("td", null, s.network ? "yes" : "no"),
          h("td", null, s.sandbox ?? "none"),
          h("td", null, s.fallback ? h("span", { class: "tag tag-ok" }, "fallback") : h("span", { class: "muted" }, "—")),
          h("td", null, time(s.created)),
          h(
            "td",
            { class: "actions" },
            button(
              "Edit",
              () => {
                editSpec(s)
                  .then((done) => {
                    if (done) {
                      forgetSpecs();
                      notify(`${s.name} saved.`);
                      void load();
                    }
                  })
                  .catch((e: unknown) => notify(errorText(e)));
              },
              "btn btn-small",
              { "aria-label": `Edit ${s.name}` },
            ),
          ),
        ),
      );
      showList(count, results, {
        noun: "spec",
        table: table("Specs", ["Name", "CPUs", "Memory", "Disk", "OS / arch", "Network", "Sandbox", "Fallback", "Created", "Actions"], rows, "No specs yet."),
        total,
        state,
        load: () => void load(),
      });
    } catch (e) {
      if (ctx.alive() && mine === seq) replace(results, errorBox(errorText(e)));
    }
  };
  searchAs(search, state, () => void load());
  archived.addEventListener("change", () => {
    state.archived = archived.checked;
    state.page = 1;
    void load();
  });
  const create = button(
    "New spec",
    () => {
      newSpec()
        .then((done) => {
          if (done) {
            forgetSpecs();
            notify("Spec created.");
            void load();
          }
        })
        .catch((e: unknown) => notify(errorText(e)));
    },
    "btn btn-primary",
  );
  replace(
    ctx.main,
    pageHeader("Specs", create),
    h("form", { class: "filters", role: "search", "aria-label": "Filter specs", onsubmit: (ev: Event) => ev.preventDefault() }, field("Search", search), checkbox("Include archived", archived)),
    count,
    results,
  );
  await load();
}
