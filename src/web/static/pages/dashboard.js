// `/projects/{p}/dashboards/{id}`: widgets on a 12-column grid over one time range (in the
// URL as `range`). Widgets: line, area and bar charts, stat (with sparkline, change against
// the previous period and threshold colours), gauge, table of latest values, heartbeat
// strip. Admins add, edit, move and resize (by dragging, or with the tool buttons), remove;
// every change is saved. Each widget's data comes from the server (`../widgets.js`);
// widgets whose metrics change are refetched live. Share links in `./share.js`.

import { api, enc } from "../api.js";
import { h, clear, notice } from "../dom.js";
import { canWrite, navigate, onLeave } from "../app.js";
import { rangePicker } from "../range.js";
import { COLUMNS, enableDrag, renderGrid } from "../grid.js";
import { listen } from "../live.js";
import { shareCard } from "./share.js";

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
  main.append(title, controls, err, shareCard(project, id), editor, grid);
  let cells = new Map();
  const base = path;

  const save = async () => {
    clear(err);
    try {
      dash = await api("PUT", path, dash);
    } catch (ex) {
      err.append(notice(ex.message));
    }
  };
  const editTools = (w, tools) => {
    const tool = (label, name, f) => {
      const b = h("button", { type: "button", class: "tool", title: name, "aria-label": name }, label);
      b.addEventListener("click", async () => {
        f(dash.widgets.find((x) => x.id === w.id));
        await save();
        layout();
      });
      tools.append(b);
    };
    // The keyboard's way to do what dragging does.
    tool("◀", "Move left", (x) => (x.x = Math.max(0, x.x - 1)));
    tool("▶", "Move right", (x) => (x.x = Math.min(COLUMNS - x.w, x.x + 1)));
    tool("▲", "Move up", (x) => (x.y = Math.max(0, x.y - 1)));
    tool("▼", "Move down", (x) => (x.y += 1));
    tool("−", "Narrower", (x) => (x.w = Math.max(1, x.w - 1)));
    tool("+", "Wider", (x) => {
      x.w = Math.min(COLUMNS, x.w + 1);
      x.x = Math.min(x.x, COLUMNS - x.w);
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
  };
  const layout = () => {
    cells = renderGrid(grid, dash.widgets, {
      base,
      range,
      tools: canWrite() ? editTools : null,
      empty: canWrite() ? "No widget yet: add one." : "This dashboard has no widget yet.",
    });
    if (canWrite())
      enableDrag(grid, cells, async () => {
        await save();
        layout();
      });
  };

  const openEditor = (existing) => {
    const w = existing || { type: "line", metricIds: [], agg: "avg", title: "", x: 0, y: Math.max(0, ...dash.widgets.map((x) => x.y + x.h)), w: 6, h: 4 };
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
