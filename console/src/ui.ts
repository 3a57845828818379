// Shared pieces of the pages: fields, dialogs, the pager, messages.

import { debounce, h, replace, type Child } from "./dom";

let ids = 0;
export function uid(prefix: string): string {
  ids += 1;
  return `${prefix}-${ids}`;
}

/** A labelled input. */
export function field(
  label: string,
  input: HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement,
  hint?: string,
): HTMLElement {
  if (!input.id) input.id = uid("f");
  const wrap = h("div", { class: "field" }, h("label", { for: input.id }, label), input);
  if (hint) {
    const hintId = uid("hint");
    input.setAttribute("aria-describedby", hintId);
    wrap.append(h("small", { id: hintId, class: "hint" }, hint));
  }
  return wrap;
}

export function checkbox(label: string, input: HTMLInputElement): HTMLElement {
  if (!input.id) input.id = uid("f");
  input.type = "checkbox";
  return h("div", { class: "field field-check" }, input, h("label", { for: input.id }, label));
}

export function select(name: string, options: [string, string][], value: string): HTMLSelectElement {
  const sel = h("select", { name });
  for (const [v, label] of options) {
    const o = h("option", { value: v }, label);
    if (v === value) o.selected = true;
    sel.append(o);
  }
  return sel;
}

export function button(label: string, onclick: (ev: Event) => void, cls = "btn", attrs: Record<string, string> = {}): HTMLButtonElement {
  return h("button", { type: "button", class: cls, onclick, ...attrs }, label);
}

/** An error message box (announced). */
export function errorBox(message: string): HTMLElement {
  return h("div", { class: "error", role: "alert" }, message);
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The polite live region in the header for short confirmations. */
export function notify(message: string): void {
  const region = document.getElementById("notice");
  if (!region) return;
  replace(region, message);
  const stamp = message;
  setTimeout(() => {
    if (region.textContent === stamp) replace(region);
  }, 6000);
}

/**
 * A modal dialog; resolves with the value of the button that closed it ("" for
 * Escape, or for leaving the page when `closeOnNavigate`: a question about what
 * the page showed is not left open over another page).
 */
export function modal(
  title: string,
  body: Child[],
  actions: { label: string; value: string; cls?: string }[],
  form?: { onsubmit: (data: FormData) => Promise<string | null> },
  closeOnNavigate = false,
): Promise<string> {
  const titleId = uid("dlg");
  const dialog = h("dialog", { "aria-labelledby": titleId, class: "dialog" });
  if (closeOnNavigate) dialog.dataset.closeOnNavigate = "";
  const err = h("div", { class: "dialog-error" });
  const buttons = actions.map((a) =>
    h("button", { type: a.value === "submit" ? "submit" : "button", class: a.cls ?? "btn", value: a.value }, a.label),
  );
  const content = h("form", { method: "dialog", class: "dialog-form" }, h("h2", { id: titleId }, title), ...body, err, h("div", { class: "dialog-actions" }, ...buttons));
  dialog.append(content);
  document.body.append(dialog);
  return new Promise((resolve) => {
    let result = "";
    const finish = (value: string) => {
      result = value;
      dialog.close();
    };
    for (const b of buttons) {
      if (b.type !== "submit") b.addEventListener("click", () => finish(b.value));
    }
    content.addEventListener("submit", (ev) => {
      ev.preventDefault();
      if (!form) {
        finish("submit");
        return;
      }
      for (const b of buttons) b.disabled = true;
      form
        .onsubmit(new FormData(content))
        .then((problem) => {
          if (problem === null) finish("submit");
          else replace(err, errorBox(problem));
        })
        .catch((e: unknown) => replace(err, errorBox(errorText(e))))
        .finally(() => {
          for (const b of buttons) b.disabled = false;
        });
    });
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve(result);
    });
    dialog.showModal();
  });
}

export async function confirmDialog(title: string, message: string, yes: string, no = "Keep"): Promise<boolean> {
  const v = await modal(
    title,
    [h("p", null, message)],
    [
      { label: no, value: "no" },
      { label: yes, value: "yes", cls: "btn btn-danger" },
    ],
    undefined,
    true,
  );
  return v === "yes";
}

/** Shows a secret (a runner key) once, with a copy button. */
export async function showSecretOnce(title: string, what: string, secret: string): Promise<void> {
  const input = h("input", { type: "text", readonly: true, value: secret, class: "secret", spellcheck: "false", autocomplete: "off" });
  const status = h("span", { class: "copy-status", role: "status" });
  const copy = button("Copy", () => {
    const done = () => replace(status, "Copied.");
    if (navigator.clipboard) {
      navigator.clipboard.writeText(secret).then(done, () => {
        input.select();
        replace(status, "Select and copy it by hand.");
      });
    } else {
      input.select();
      replace(status, "Select and copy it by hand.");
    }
  });
  await modal(
    title,
    [
      h("p", null, `This is the only time the ${what} is shown: the server keeps only its hash. Copy it now.`),
      field(what[0]?.toUpperCase() + what.slice(1), input),
      h("div", { class: "copy-row" }, copy, status),
    ],
    [{ label: "Done", value: "done", cls: "btn btn-primary" }],
  );
}

export interface PageState {
  page: number;
  perPage: number;
  total: number;
}

/** "1–20 of 100,000" with Previous / Next. */
export function pager(state: PageState, go: (page: number) => void): HTMLElement {
  const pages = Math.max(1, Math.ceil(state.total / state.perPage));
  const first = state.total === 0 ? 0 : (state.page - 1) * state.perPage + 1;
  const last = Math.min(state.total, state.page * state.perPage);
  const prev = button("Previous", () => go(state.page - 1), "btn", { "aria-label": "Previous page" });
  const next = button("Next", () => go(state.page + 1), "btn", { "aria-label": "Next page" });
  prev.disabled = state.page <= 1;
  next.disabled = state.page >= pages;
  return h(
    "nav",
    { class: "pager", "aria-label": "Pages" },
    prev,
    h("span", { class: "pager-text" }, `${first.toLocaleString("en")}–${last.toLocaleString("en")} of ${state.total.toLocaleString("en")} · page ${state.page.toLocaleString("en")} of ${pages.toLocaleString("en")}`),
    next,
  );
}

export function pageHeader(title: string, ...actions: Child[]): HTMLElement {
  return h("div", { class: "page-header" }, h("h1", { tabindex: "-1" }, title), h("div", { class: "page-actions" }, ...actions));
}

/** A list's page: "N nouns" in `count`, the table and its pager in `results`; the pager turns `state.page` and loads. */
export function showList(
  count: HTMLElement,
  results: HTMLElement,
  list: { noun: string; table: HTMLElement; total: number; state: { page: number; perPage: number }; load: () => void },
): void {
  const { total, state } = list;
  replace(count, `${total.toLocaleString("en")} ${list.noun}${total === 1 ? "" : "s"}`);
  const go = (page: number) => {
    state.page = page;
    list.load();
  };
  replace(results, list.table, pager({ page: state.page, perPage: state.perPage, total }, go));
}

/** A search box that reloads from page 1 as one types. */
export function searchAs(input: HTMLInputElement, state: { search: string; page: number }, load: () => void): void {
  input.addEventListener(
    "input",
    debounce(() => {
      state.search = input.value.trim();
      state.page = 1;
      load();
    }, 250),
  );
}
