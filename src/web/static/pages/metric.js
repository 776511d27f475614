// `/projects/{p}/metrics/{m}`: the last value as text, a chart over a range with an
// aggregation and a metadata filter (all in the URL), the raw points with their metadata,
// CSV and PNG downloads, and delete. New samples appear without a reload.

import { api, enc } from "../api.js";
import { h, clear, link, notice } from "../dom.js";
import { canWrite, navigate, onLeave } from "../app.js";
import { ago, dateTime, formatValue } from "../format.js";
import { rangePicker } from "../range.js";
import { timeChart, downloadPng, maxPointsFor } from "../chart.js";
import { listen } from "../live.js";

const AGGS = ["avg", "min", "max", "sum", "count", "last", "p95"];

export async function metricPage(main, project, metricId) {
  const params = new URLSearchParams(location.search);
  const state = { agg: params.get("agg") || "avg", where: params.get("where") || "" };
  const base = `/api/v1/projects/${enc(project)}/metrics/${enc(metricId)}`;
  const title = h("h1", {}, metricId);
  const last = h("p", { class: "big-value", id: "last-value" }, "—");
  const lastSeen = h("p", { class: "muted", id: "last-seen" });
  const chartBox = h("div", { class: "chart", id: "metric-chart" });
  const points = h("div", { id: "points" });
  const rulesLine = h("p", { class: "muted small", id: "metric-rules" });
  const err = h("div", {});
  const range = rangePicker("range", () => refresh());
  const agg = h("select", { id: "agg", "aria-label": "Aggregation" }, AGGS.map((a) => h("option", { value: a, selected: a === state.agg }, a)));
  const where = h("input", { id: "where", placeholder: "metadata.region:eu", value: state.where, "aria-label": "Metadata filter" });
  const csv = h("a", { class: "button", download: `${metricId}.csv` }, "Download CSV");
  const png = h("button", { type: "button" }, "Save chart as PNG");
  const del = canWrite() ? h("button", { type: "button", class: "danger", id: "delete-metric" }, "Delete metric") : null;
  main.append(
    title,
    h("p", { class: "muted" }, h("code", {}, metricId)),
    last,
    lastSeen,
    h("div", { class: "controls" }, range.el, agg, where, csv, png, del),
    err,
    chartBox,
    rulesLine,
    h("h2", {}, "Points"),
    points,
  );
  let plot = null;
  let span = [0, 0];
  let firing = [];
  const syncUrl = () => {
    const u = new URL(location.href);
    for (const [k, v] of Object.entries(state)) v ? u.searchParams.set(k, v) : u.searchParams.delete(k);
    history.replaceState(null, "", u);
  };
  const filter = () => (state.where ? `&where=${enc(state.where)}` : "");
  const refresh = async () => {
    clear(err);
    try {
      const cat = (await api("GET", `/api/v1/projects/${enc(project)}/metrics`)).metrics.find((m) => m.metricId === metricId);
      if (!cat) {
        clear(main).append(h("h1", {}, metricId), notice(`No metric ${metricId} in project ${project} (yet).`, "info"));
        return;
      }
      title.textContent = cat.metricName;
      last.textContent = formatValue(cat.lastValue, cat.unit);
      lastSeen.textContent = `last seen ${ago(cat.lastTimestamp)} · ${dateTime(cat.lastTimestamp)} · ${cat.sampleCount.toLocaleString()} samples`;
      const [from, to] = range.span();
      span = [from, to];
      csv.href = `${base}/points?from=${from}&to=${to}&limit=all&format=csv${filter()}`;
      const n = maxPointsFor(chartBox.clientWidth || 800);
      const [series, raw] = await Promise.all([
        api("GET", `${base}/points?from=${from}&to=${to}&maxPoints=${n}&agg=${state.agg}${filter()}`),
        api("GET", `${base}/points?from=${from}&to=${to}&limit=1000${filter()}`),
      ]);
      firing = await firingSpans(project, metricId, rulesLine);
      const data = [series.points.map((p) => p.timestamp), series.points.map((p) => p.value)];
      if (plot) plot.setData(data);
      else {
        clear(chartBox);
        plot = timeChart(chartBox, { data, series: [cat.metricName], unit: cat.unit, xRange: () => span, bands: () => firing });
      }
      chartBox.dataset.bands = String(firing.length);
      chartBox.dataset.points = String(series.points.length);
      showPoints(points, raw, cat.unit);
    } catch (ex) {
      err.append(notice(ex.message));
    }
  };
  const change = (key, el) =>
    el.addEventListener("change", () => {
      state[key] = el.value.trim();
      syncUrl();
      refresh();
    });
  change("agg", agg);
  change("where", where);
  png.addEventListener("click", () => plot && downloadPng(plot, metricId));
  if (del)
    del.addEventListener("click", async () => {
      if (!confirm(`Delete ${metricId} and all its samples? This cannot be undone.`)) return;
      try {
        await api("DELETE", base);
        navigate(`/projects/${enc(project)}/metrics`);
      } catch (ex) {
        err.append(notice(ex.message));
      }
    });
  await refresh();
  onLeave(listen(project, (ids) => (!ids || ids.has(metricId)) && refresh()));
}

/**
 * The spans in which this metric's alert rules fired ([from, to] ms, to = now while still
 * firing), from their histories; `line` names the rules and their states.
 */
async function firingSpans(project, metricId, line) {
  const base = `/api/v1/projects/${enc(project)}/alerts`;
  const rules = (await api("GET", base)).alerts.filter((r) => r.metricId === metricId);
  clear(line);
  if (rules.length === 0) return [];
  line.append("Alert rules on this metric (firing times shaded): ");
  rules.forEach((r, i) => line.append(i ? ", " : "", link(`/projects/${enc(project)}/alerts`, r.name), ` (${r.state})`));
  const spans = [];
  for (const r of rules) {
    const { history } = await api("GET", `${base}/${enc(r.id)}`);
    let start = null;
    for (const c of [...history].reverse()) {
      if (c.to === "firing") start = c.at;
      else if (c.from === "firing" && start !== null) {
        spans.push([start, c.at]);
        start = null;
      }
    }
    if (start !== null) spans.push([start, Date.now()]);
  }
  return spans;
}

function showPoints(el, raw, unit) {
  clear(el);
  const pts = raw.points.slice(-100).reverse();
  if (pts.length === 0) {
    el.append(h("p", { class: "empty" }, "No point in this range."));
    return;
  }
  if (raw.truncated) el.append(h("p", { class: "muted small" }, "More than 1,000 points in this range: the newest of the first 1,000 are shown. Narrow the range or download the CSV."));
  el.append(
    h(
      "table",
      { class: "list" },
      h("thead", {}, h("tr", {}, h("th", {}, "Time"), h("th", {}, "Value"), h("th", {}, "Metadata"))),
      h(
        "tbody",
        {},
        pts.map((p) => h("tr", {}, h("td", {}, dateTime(p.timestamp)), h("td", { class: "num" }, formatValue(p.value, unit)), h("td", {}, p.metadata ? h("code", {}, JSON.stringify(p.metadata)) : ""))),
      ),
    ),
  );
}
