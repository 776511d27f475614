// `/projects/{p}/dashboards/{id}`: widgets on a 12-column grid over one time range (in the
// URL as `range`). Widgets: line, area and bar charts, stat (with sparkline, change against
// the previous period and threshold colours), gauge, table of latest values, heartbeat
// strip. Admins add, edit, move, resize, remove; every change is saved. Widgets whose
// metrics change are refetched live.

import { api, enc } from "../api.js";
import { h, clear, notice } from "../dom.js";
import { canWrite, navigate, onLeave } from "../app.js";
import { ago, formatValue } from "../format.js";
import { rangePicker } from "../range.js";
import { timeChart, sparkline, maxPointsFor } from "../chart.js";
import { listen } from "../live.js";

const TYPES = [["line", "Line chart"], ["area", "Area chart"], ["bars", "Bars per bucket"], ["stat", "Stat"], ["gauge", "Gauge"], ["table", "Table of latest values"], ["heartbeat", "Heartbeat strip"]];
const AGGS = ["avg", "min", "max", "sum", "count", "last", "p95"];

export async function dashboardPage(main, project, id) {
  const path = `/api/v1/projects/${enc(project)}/dashboards/${enc(id)}`;
  let dash = await api("GET", path);
  const catalog = (await api("GET", `/api/v1/projects/${enc(project)}/metrics`)).metrics;
  const title = h("h1", { id: "dashboard-title" }, dash.name);
  const grid = h("div", { class: "grid", id: "grid" });
  const err = h("div", {});
  const editor = h("div", {});
  const range = rangePicker("dashboard-range", () => layout());
  const controls = h("div", { class: "controls" }, range.el);
  main.append(title, controls, err, editor, grid);
  const cells = new Map(); // widget id → { widget, el, draw }

  const save = async () => {
    clear(err);
    try {
      dash = await api("PUT", path, dash);
    } catch (ex) {
      err.append(notice(ex.message));
    }
  };
  const layout = () => {
    clear(grid);
    cells.clear();
    const widgets = [...dash.widgets].sort((a, b) => a.y - b.y || a.x - b.x);
    if (widgets.length === 0) grid.append(h("p", { class: "empty" }, canWrite() ? "No widget yet: add one." : "This dashboard has no widget yet."));
    for (const w of widgets) {
      const body = h("div", { class: "widget-body" });
      const tools = h("div", { class: "widget-tools" });
      const el = h("section", { class: `widget widget-${w.type}`, dataset: { widget: w.id, type: w.type } }, h("header", {}, h("h3", {}, w.title || w.metricIds.join(", ")), tools), body);
      el.style.gridColumn = `${w.x + 1} / span ${w.w}`;
      el.style.gridRow = `span ${w.h}`;
      const csv = h("a", { class: "small", href: dataUrl(project, w, range, 500, "csv"), download: `${w.title || w.metricIds[0]}.csv` }, "CSV");
      tools.append(csv);
      if (canWrite()) {
        const tool = (label, name, f) => {
          const b = h("button", { type: "button", class: "tool", title: name, "aria-label": name }, label);
          b.addEventListener("click", async () => {
            f();
            await save();
            layout();
          });
          tools.append(b);
        };
        tool("◀", "Move left", () => (w.x = Math.max(0, w.x - 1)));
        tool("▶", "Move right", () => (w.x = Math.min(12 - w.w, w.x + 1)));
        tool("▲", "Move up", () => (w.y = Math.max(0, w.y - 1)));
        tool("▼", "Move down", () => (w.y += 1));
        tool("−", "Narrower", () => (w.w = Math.max(1, w.w - 1)));
        tool("+", "Wider", () => {
          w.w = Math.min(12, w.w + 1);
          w.x = Math.min(w.x, 12 - w.w);
        });
        const edit = h("button", { type: "button", class: "tool" }, "Edit");
        edit.addEventListener("click", () => openEditor(w));
        const remove = h("button", { type: "button", class: "tool danger" }, "Remove");
        remove.addEventListener("click", async () => {
          dash.widgets = dash.widgets.filter((x) => x.id !== w.id);
          await save();
          layout();
        });
        tools.append(edit, remove);
      }
      grid.append(el);
      const draw = () => drawWidget(body, project, w, range, catalog).catch((ex) => clear(body).append(notice(ex.message)));
      cells.set(w.id, { widget: w, draw });
    }
    requestAnimationFrame(() => Promise.all([...cells.values()].map((c) => c.draw())).then(() => (grid.dataset.drawn = String(performance.now()))));
  };

  const openEditor = (existing) => {
    const w = existing || { type: "line", metricIds: [], agg: "avg", title: "", x: 0, y: 1 + Math.max(0, ...dash.widgets.map((x) => x.y)), w: 6, h: 4 };
    const type = h("select", { id: "widget-type" }, TYPES.map(([v, t]) => h("option", { value: v, selected: v === w.type }, t)));
    const metrics = h("select", { id: "widget-metrics", multiple: true, size: Math.min(8, Math.max(3, catalog.length)) }, catalog.map((m) => h("option", { value: m.metricId, selected: w.metricIds.includes(m.metricId) }, `${m.metricName} (${m.metricId})`)));
    const agg = h("select", { id: "widget-agg" }, AGGS.map((a) => h("option", { value: a, selected: a === w.agg }, a)));
    const wtitle = h("input", { id: "widget-title", value: w.title || "", maxlength: 200 });
    const unit = h("input", { id: "widget-unit", value: w.unit || "", placeholder: "the metric's own" });
    const thresholds = h("input", { id: "widget-thresholds", value: (w.thresholds || []).join(", "), placeholder: "e.g. 80, 95" });
    const max = h("input", { id: "widget-max", type: "number", value: w.max ?? "", placeholder: "gauge full scale" });
    const interval = h("input", { id: "widget-interval", type: "number", min: 1, value: w.expectedIntervalS ?? "", placeholder: "heartbeat: seconds between points" });
    const ferr = h("div", {});
    const form = h(
      "form",
      { class: "card", id: "widget-editor" },
      h("h2", {}, existing ? "Edit widget" : "Add a widget"),
      h("label", {}, "Type", type),
      h("label", {}, "Metrics (pick one or more)", metrics),
      h("label", {}, "Aggregation", agg),
      h("label", {}, "Title", wtitle),
      h("label", {}, "Unit override", unit),
      h("label", {}, "Thresholds", thresholds),
      h("label", {}, "Gauge maximum", max),
      h("label", {}, "Expected interval (s)", interval),
      ferr,
      h("button", { type: "submit", class: "primary", id: "widget-save" }, existing ? "Save widget" : "Add widget"),
    );
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const next = { ...w, type: type.value, metricIds: [...metrics.selectedOptions].map((o) => o.value), agg: agg.value, title: wtitle.value };
      next.unit = unit.value || undefined;
      next.thresholds = thresholds.value.split(",").map((t) => t.trim()).filter(Boolean).map(Number);
      next.max = max.value ? Number(max.value) : undefined;
      next.expectedIntervalS = interval.value ? Number(interval.value) : undefined;
      const before = dash.widgets;
      dash.widgets = existing ? dash.widgets.map((x) => (x.id === w.id ? next : x)) : [...dash.widgets, next];
      clear(ferr);
      try {
        dash = await api("PUT", path, dash);
        clear(editor);
        layout();
      } catch (ex) {
        dash.widgets = before;
        ferr.append(notice(ex.message));
      }
    });
    clear(editor).append(form);
  };

  if (canWrite()) {
    const add = h("button", { type: "button", class: "primary", id: "add-widget" }, "Add widget");
    add.addEventListener("click", () => openEditor(null));
    const rename = h("button", { type: "button", id: "rename" }, "Rename");
    rename.addEventListener("click", async () => {
      const n = prompt("New name", dash.name);
      if (!n) return;
      dash.name = n;
      await save();
      title.textContent = dash.name;
    });
    const dup = h("button", { type: "button", id: "duplicate" }, "Duplicate");
    dup.addEventListener("click", async () => {
      const copy = await api("POST", `/api/v1/projects/${enc(project)}/dashboards`, { ...dash, name: `${dash.name} (copy)` });
      navigate(`/projects/${enc(project)}/dashboards/${enc(copy.id)}`);
    });
    const del = h("button", { type: "button", class: "danger", id: "delete-dashboard" }, "Delete");
    del.addEventListener("click", async () => {
      if (!confirm(`Delete the dashboard "${dash.name}"? Its metrics stay.`)) return;
      await api("DELETE", path);
      navigate(`/projects/${enc(project)}/dashboards`);
    });
    controls.append(add, rename, dup, del);
  }
  const exp = h("button", { type: "button", id: "export" }, "Export JSON");
  exp.addEventListener("click", () => {
    const a = h("a", { href: URL.createObjectURL(new Blob([JSON.stringify(dash, null, 2)], { type: "application/json" })), download: `${dash.name}.json` });
    a.click();
  });
  controls.append(exp);
  layout();
  onLeave(
    listen(project, (ids) => {
      for (const c of cells.values()) if (!ids || c.widget.metricIds.some((m) => ids.has(m))) c.draw();
    }),
  );
}

function dataUrl(project, w, range, maxPoints, format = "json") {
  const [from, to] = range.span();
  const agg = w.agg === "last" && ["line", "area", "bars"].includes(w.type) ? "avg" : w.agg;
  return `/api/v1/projects/${enc(project)}/query?metricIds=${enc(w.metricIds.join(","))}&from=${from}&to=${to}&maxPoints=${maxPoints}&agg=${agg}&format=${format}`;
}

function level(v, thresholds) {
  if (!thresholds || thresholds.length === 0 || v === null) return "";
  if (v >= thresholds[thresholds.length - 1]) return "bad";
  if (v >= thresholds[0]) return "warn";
  return "good";
}

async function drawWidget(body, project, w, range, catalog) {
  const meta = (id) => catalog.find((m) => m.metricId === id) || { metricId: id, metricName: id, unit: null };
  const unit = w.unit || meta(w.metricIds[0]).unit;
  const [from, to] = range.span();
  if (["line", "area", "bars"].includes(w.type)) {
    const q = await api("GET", dataUrl(project, w, range, maxPointsFor(body.clientWidth || 500)));
    clear(body);
    timeChart(body, { data: [q.timestamps, ...q.series.map((s) => s.values)], series: q.series.map((s) => s.metricName), unit, kind: w.type, height: 40 * w.h, xRange: () => [from, to] });
  } else if (w.type === "stat" || w.type === "gauge") {
    const id = w.metricIds[0];
    const base = `/api/v1/projects/${enc(project)}/metrics/${enc(id)}/points`;
    const [now, before, spark, cat] = await Promise.all([
      api("GET", `${base}?from=${from}&to=${to}&agg=${w.agg}`),
      api("GET", `${base}?from=${from - (to - from)}&to=${from - 1}&agg=${w.agg}`),
      api("GET", `${base}?from=${from}&to=${to}&maxPoints=60&agg=avg`),
      api("GET", `/api/v1/projects/${enc(project)}/metrics`),
    ]);
    const v = w.agg === "last" ? (cat.metrics.find((m) => m.metricId === id) || {}).lastValue ?? null : now.points[0]?.value ?? null;
    const prev = before.points[0]?.value ?? null;
    clear(body);
    const value = h("p", { class: `stat-value ${level(v, w.thresholds)}` }, formatValue(v, unit));
    body.append(value);
    if (w.type === "gauge") {
      const max = w.max ?? (w.thresholds?.length ? w.thresholds[w.thresholds.length - 1] * 1.25 : Math.max(1, v || 1) * 1.5);
      const m = h("meter", { min: 0, max, value: v ?? 0, class: "gauge" });
      if (w.thresholds?.length) {
        m.low = w.thresholds[0];
        m.high = w.thresholds[w.thresholds.length - 1];
        m.optimum = 0;
      }
      body.append(m, h("p", { class: "muted small" }, `of ${formatValue(max, unit)}`));
    } else {
      if (prev !== null && v !== null && prev !== 0) {
        const pct = ((v - prev) / Math.abs(prev)) * 100;
        body.append(h("p", { class: `change ${pct >= 0 ? "up" : "down"}` }, `${pct >= 0 ? "▲" : "▼"} ${Math.abs(pct).toFixed(1)} % vs previous ${range.label()}`));
      }
      const s = h("div", { class: "stat-spark" });
      body.append(s);
      if (spark.points.length > 1) sparkline(s, spark.points.map((p) => p.timestamp), spark.points.map((p) => p.value), Math.max(120, body.clientWidth - 10), 40);
    }
  } else if (w.type === "table") {
    const cat = (await api("GET", `/api/v1/projects/${enc(project)}/metrics`)).metrics;
    clear(body).append(
      h(
        "table",
        { class: "list compact" },
        h("tbody", {}, w.metricIds.map((id) => {
          const m = cat.find((x) => x.metricId === id);
          return h("tr", {}, h("td", {}, m ? m.metricName : id), h("td", { class: "num" }, m ? formatValue(m.lastValue, w.unit || m.unit) : "no data"), h("td", { class: "muted" }, m ? ago(m.lastTimestamp) : ""));
        })),
      ),
    );
  } else if (w.type === "heartbeat") {
    const id = w.metricIds[0];
    const expected = w.expectedIntervalS * 1000;
    const slots = Math.min(120, Math.max(1, Math.round((to - from) / expected)));
    const width = (to - from) / slots;
    const q = await api("GET", `/api/v1/projects/${enc(project)}/metrics/${enc(id)}/points?from=${from}&to=${to}&step=${Math.max(1, Math.round(width))}&agg=count`);
    const hit = new Set(q.points.map((p) => Math.floor((p.timestamp - from) / width)));
    const cat = (await api("GET", `/api/v1/projects/${enc(project)}/metrics`)).metrics.find((m) => m.metricId === id);
    const late = cat ? Date.now() - cat.lastTimestamp : Infinity;
    const strip = h("div", { class: "strip" });
    for (let i = 0; i < slots; i++) strip.append(h("span", { class: hit.has(i) ? "beat" : "gap", title: new Date(from + i * width).toLocaleString() }));
    clear(body).append(
      h("p", { class: `stat-value ${late > 2 * expected ? "bad" : late > expected ? "warn" : "good"}` }, cat ? `last ${ago(cat.lastTimestamp)}` : "never reported"),
      h("p", { class: "muted small" }, `expected every ${w.expectedIntervalS} s`),
      strip,
    );
  }
}
