// One widget drawn from its data endpoint, `${base}/widgets/{id}/data`, where the server runs
// the widget's stored queries (one request per widget). `base` is a dashboard's API path or
// a share link's, so the dashboard page and the share page draw alike.

import { api, enc } from "./api.js";
import { h, clear } from "./dom.js";
import { ago, formatValue } from "./format.js";
import { timeChart, sparkline, maxPointsFor } from "./chart.js";

export const CHART_TYPES = ["line", "area", "bars"];

/** The widget's data over the picked range; `format` "csv" for the download link. */
export function dataUrl(base, w, range, maxPoints, format = "json") {
  const [from, to] = range.span().map(Math.round);
  const csv = format === "csv" ? "&format=csv" : "";
  return `${base}/widgets/${enc(w.id)}/data?from=${from}&to=${to}&maxPoints=${maxPoints}${csv}`;
}

/** "good", "warn" or "bad" against ascending thresholds; "" without any. */
function level(v, thresholds) {
  if (!thresholds || thresholds.length === 0 || v === null) return "";
  if (v >= thresholds[thresholds.length - 1]) return "bad";
  if (v >= thresholds[0]) return "warn";
  return "good";
}

/**
 * Fetches and draws `w` into `body` (`range.label()` names the period a stat compares with).
 * Returns the uPlot chart when the widget is one (its canvas is the PNG source), else null.
 */
export async function drawWidget(body, base, w, range) {
  const d = await api("GET", dataUrl(base, w, range, maxPointsFor(body.clientWidth || 500)));
  clear(body);
  if (CHART_TYPES.includes(w.type)) return chart(body, w, d);
  if (w.type === "stat" || w.type === "gauge") stat(body, w, d, range.label());
  else if (w.type === "table") table(body, w, d);
  else if (w.type === "heartbeat") heartbeat(body, d);
  return null;
}

function chart(body, w, d) {
  const unit = w.unit || d.series[0]?.unit;
  return timeChart(body, {
    data: [d.timestamps, ...d.series.map((s) => s.values)],
    series: d.series.map((s) => s.metricName),
    unit,
    kind: w.type,
    // The room the widget's body has under its header (uPlot's height is the canvas's).
    height: Math.max(60, body.clientHeight || 40 * w.h - 30),
    xRange: () => [d.from, d.to],
  });
}

function stat(body, w, d, rangeLabel) {
  const unit = w.unit || d.unit;
  const v = d.value;
  body.append(h("p", { class: `stat-value ${level(v, w.thresholds)}` }, formatValue(v, unit)));
  if (w.type === "gauge") {
    const max = w.max ?? (w.thresholds?.length ? w.thresholds[w.thresholds.length - 1] * 1.25 : Math.max(1, v || 1) * 1.5);
    const m = h("meter", { min: 0, max, value: v ?? 0, class: "gauge" });
    if (w.thresholds?.length) {
      m.low = w.thresholds[0];
      m.high = w.thresholds[w.thresholds.length - 1];
      m.optimum = 0;
    }
    body.append(m, h("p", { class: "muted small" }, `of ${formatValue(max, unit)}`));
    return;
  }
  const prev = d.previous;
  if (prev !== null && v !== null && prev !== 0) {
    const pct = ((v - prev) / Math.abs(prev)) * 100;
    body.append(h("p", { class: `change ${pct >= 0 ? "up" : "down"}` }, `${pct >= 0 ? "▲" : "▼"} ${Math.abs(pct).toFixed(1)} % vs previous ${rangeLabel}`));
  } else if (v === null) {
    body.append(h("p", { class: "muted small" }, d.lastTimestamp ? `no data in this range; last ${ago(d.lastTimestamp)}` : "no data yet"));
  }
  const s = h("div", { class: "stat-spark" });
  body.append(s);
  if (d.spark.values.length > 1) sparkline(s, d.spark.timestamps, d.spark.values, Math.max(120, body.clientWidth - 10), 40);
}

function table(body, w, d) {
  body.append(
    h(
      "table",
      { class: "list compact" },
      h(
        "tbody",
        {},
        d.rows.map((r) =>
          h(
            "tr",
            {},
            h("td", {}, r.metricName),
            h("td", { class: "num" }, r.lastValue === null ? "no data" : formatValue(r.lastValue, w.unit || r.unit)),
            h("td", { class: "muted" }, r.lastTimestamp ? ago(r.lastTimestamp) : ""),
          ),
        ),
      ),
    ),
  );
}

function heartbeat(body, d) {
  const expected = d.expectedIntervalS * 1000;
  const late = d.lastTimestamp ? Date.now() - d.lastTimestamp : Infinity;
  const beats = new Set(d.beats);
  const strip = h("div", { class: "strip", role: "img", "aria-label": `${d.beats.length} of the slots hold a sample` });
  for (let t = Math.floor(d.from / d.step) * d.step; t <= d.to; t += d.step) {
    strip.append(h("span", { class: beats.has(t) ? "beat" : "gap", title: new Date(t).toLocaleString() }));
  }
  body.append(
    h("p", { class: `stat-value ${late > 2 * expected ? "bad" : late > expected ? "warn" : "good"}` }, d.lastTimestamp ? `last ${ago(d.lastTimestamp)}` : "never reported"),
    h("p", { class: "muted small" }, `expected every ${d.expectedIntervalS} s`),
    strip,
  );
}
