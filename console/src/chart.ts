// A small hand-made SVG line chart: one series of (time, value) points.

import { fmtTime, h, s } from "./dom";
import { uid } from "./ui";

export interface Point {
  t: number; // ms since the epoch
  v: number;
  label: string; // what the point is (a report)
}

const W = 640;
const H = 220;
const PAD = { l: 64, r: 16, t: 14, b: 36 };

export function fmtNum(v: number): string {
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1e6 || a < 1e-3) return v.toExponential(2);
  return Number(v.toPrecision(4)).toLocaleString("en");
}

/** A "nice" step (1, 2 or 5 times a power of ten) for about n intervals. */
function niceStep(span: number, n: number): number {
  const raw = span / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const f = raw / mag;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
}

export function lineChart(title: string, units: string, points: Point[]): HTMLElement {
  const titleId = uid("chart");
  const descId = uid("chart-desc");
  const pts = [...points].sort((a, b) => a.t - b.t);
  const vs = pts.map((p) => p.v);
  let lo = Math.min(...vs);
  let hi = Math.max(...vs);
  if (lo === hi) {
    const pad = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  // The y axis spans whole "nice" steps around the values.
  const step = niceStep(hi - lo, 4);
  lo = Math.floor(lo / step) * step;
  hi = Math.ceil(hi / step) * step;
  const yTicks: number[] = [];
  for (let t = lo; t <= hi + step / 2; t += step) yTicks.push(Number(t.toPrecision(12)));
  const n = pts.length;
  // Points are spaced evenly by report order (reports are irregular in time).
  const x = (i: number) => (n === 1 ? PAD.l + (W - PAD.l - PAD.r) / 2 : PAD.l + ((W - PAD.l - PAD.r) * i) / (n - 1));
  const y = (v: number) => PAD.t + (H - PAD.t - PAD.b) * (1 - (v - lo) / (hi - lo));

  const svg = s(
    "svg",
    { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-labelledby": `${titleId} ${descId}`, preserveAspectRatio: "xMidYMid meet" },
    s("title", { id: titleId }, title),
    s("desc", { id: descId }, `${n} report${n === 1 ? "" : "s"}, from ${fmtNum(Math.min(...vs))} to ${fmtNum(Math.max(...vs))} ${units}.`),
  );
  for (const t of yTicks) {
    svg.append(
      s("line", { x1: PAD.l, x2: W - PAD.r, y1: y(t), y2: y(t), class: "grid" }),
      s("text", { x: PAD.l - 6, y: y(t) + 4, class: "tick", "text-anchor": "end" }, fmtNum(t)),
    );
  }
  svg.append(s("line", { x1: PAD.l, x2: PAD.l, y1: PAD.t, y2: H - PAD.b, class: "axis" }), s("line", { x1: PAD.l, x2: W - PAD.r, y1: H - PAD.b, y2: H - PAD.b, class: "axis" }));
  const first = pts[0];
  const last = pts[n - 1];
  if (first) svg.append(s("text", { x: x(0), y: H - PAD.b + 18, class: "tick", "text-anchor": n === 1 ? "middle" : "start" }, fmtTime(new Date(first.t).toISOString()).slice(0, 16)));
  if (last && n > 1) svg.append(s("text", { x: x(n - 1), y: H - PAD.b + 18, class: "tick", "text-anchor": "end" }, fmtTime(new Date(last.t).toISOString()).slice(0, 16)));
  svg.append(s("text", { x: 12, y: PAD.t + (H - PAD.t - PAD.b) / 2, class: "tick", transform: `rotate(-90 12 ${PAD.t + (H - PAD.t - PAD.b) / 2})`, "text-anchor": "middle" }, units));
  if (n > 1) svg.append(s("polyline", { points: pts.map((p, i) => `${x(i).toFixed(1)},${y(p.v).toFixed(1)}`).join(" "), class: "line" }));
  pts.forEach((p, i) => {
    svg.append(s("circle", { cx: x(i).toFixed(1), cy: y(p.v).toFixed(1), r: 3.5, class: "dot" }, s("title", null, `${fmtNum(p.v)} ${units} · ${p.label}`)));
  });

  // The same numbers as a table, for screen readers and copying.
  const details = h(
    "details",
    null,
    h("summary", null, "Values"),
    h(
      "table",
      { class: "compact" },
      h("caption", { class: "sr-only" }, title),
      h("thead", null, h("tr", null, h("th", { scope: "col" }, "Report"), h("th", { scope: "col" }, `Value (${units})`))),
      h("tbody", null, ...pts.map((p) => h("tr", null, h("td", null, p.label), h("td", { class: "num" }, fmtNum(p.v))))),
    ),
  );
  return h("figure", { class: "chart-box" }, h("figcaption", null, title), svg, details);
}
