// The dashboard grid: 12 columns, rows of 40 px. A widget sits at its stored place (`x`, `y`
// in columns and rows, `w` × `h`); where two would overlap, the later one (by row, then
// column) is pushed down. When editable, a widget is moved by dragging its title bar and
// resized by dragging its corner; the page saves when the pointer is let go.

import { h, clear, notice } from "./dom.js";
import { downloadPng } from "./chart.js";
import { CHART_TYPES, dataUrl, drawWidget } from "./widgets.js";

export const COLUMNS = 12;
const ROW_PX = 40;
const GAP_PX = 12;
const MAX_ROWS_HIGH = 24;

function overlaps(a, b) {
  return a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
}

/**
 * Moves widgets down until none overlaps, in order of (y, x); `fixed` (the one being
 * dragged) keeps its place and the others make room for it.
 */
export function settle(widgets, fixed = null) {
  const order = [...widgets].sort((a, b) => (a === fixed ? -1 : b === fixed ? 1 : a.y - b.y || a.x - b.x));
  const placed = [];
  for (const w of order) {
    for (let hit = placed.find((p) => overlaps(p, w)); hit; hit = placed.find((p) => overlaps(p, w))) w.y = hit.y + hit.h;
    placed.push(w);
  }
}

/** Puts a widget's element where its `x`, `y`, `w`, `h` say. */
export function place(el, w) {
  el.style.gridColumn = `${w.x + 1} / span ${w.w}`;
  el.style.gridRow = `${w.y + 1} / span ${w.h}`;
}

/**
 * Fills `grid` with `widgets` drawn from `base`'s data endpoints over `range`. Each gets a
 * CSV link (and PNG for a chart); `tools(w, toolsEl)` may add more. Returns the cells
 * (widget id → { widget, el, draw }); `grid.dataset.drawn` is set (to `performance.now()`)
 * once every widget has drawn, for tests and the browser bench.
 */
export function renderGrid(grid, widgets, { base, range, tools = null, empty }) {
  clear(grid);
  delete grid.dataset.drawn;
  const cells = new Map();
  if (widgets.length === 0) grid.append(h("p", { class: "empty" }, empty));
  settle(widgets);
  for (const w of [...widgets].sort((a, b) => a.y - b.y || a.x - b.x)) {
    const body = h("div", { class: "widget-body" });
    const toolsEl = h("div", { class: "widget-tools" });
    const name = w.title || w.metricIds.join(", ");
    const el = h("section", { class: `widget widget-${w.type}`, dataset: { widget: w.id, type: w.type } }, h("header", {}, h("h3", { title: name }, name), toolsEl), body);
    place(el, w);
    const cell = { widget: w, el, plot: null };
    const csv = h("a", { class: "small", href: dataUrl(base, w, range, 500, "csv"), download: `${name}.csv` }, "CSV");
    // "The last 24 h" moves on: the link is made again at the click.
    csv.addEventListener("click", () => (csv.href = dataUrl(base, w, range, 500, "csv")));
    toolsEl.append(csv);
    if (CHART_TYPES.includes(w.type)) {
      const png = h("button", { type: "button", class: "tool", title: "Download as PNG" }, "PNG");
      png.addEventListener("click", () => cell.plot && downloadPng(cell.plot, name));
      toolsEl.append(png);
    }
    if (tools) tools(w, toolsEl);
    grid.append(el);
    cell.draw = () =>
      drawWidget(body, base, w, range)
        .then((plot) => (cell.plot = plot))
        .catch((ex) => clear(body).append(notice(ex.message)));
    cells.set(w.id, cell);
  }
  requestAnimationFrame(() => Promise.all([...cells.values()].map((c) => c.draw())).then(() => (grid.dataset.drawn = String(performance.now()))));
  return cells;
}

/**
 * Makes `cells` (widget id → { widget, el }) draggable inside `grid`. `onDone()` runs after a
 * drag that changed the layout. A corner handle is added to each element for resizing.
 */
export function enableDrag(grid, cells, onDone) {
  grid.classList.add("editable");
  for (const cell of cells.values()) {
    const handle = h("span", { class: "resize-handle", title: "Drag to resize", "aria-hidden": "true" });
    cell.el.append(handle);
    cell.el.querySelector("header").addEventListener("pointerdown", (e) => {
      if (e.button !== 0 || e.target.closest("button, a, input, select")) return;
      drag(grid, cells, cell, e, "move", onDone);
    });
    handle.addEventListener("pointerdown", (e) => {
      if (e.button === 0) drag(grid, cells, cell, e, "resize", onDone);
    });
  }
}

function drag(grid, cells, cell, start, mode, onDone) {
  start.preventDefault();
  const w = cell.widget;
  const all = [...cells.values()];
  const before = all.map((c) => ({ c, x: c.widget.x, y: c.widget.y, w: c.widget.w, h: c.widget.h }));
  const pitchX = (grid.clientWidth - GAP_PX * (COLUMNS - 1)) / COLUMNS + GAP_PX;
  const pitchY = ROW_PX + GAP_PX;
  const target = start.currentTarget;
  target.setPointerCapture(start.pointerId);
  cell.el.classList.add("dragging");
  const move = (e) => {
    const dx = Math.round((e.clientX - start.clientX) / pitchX);
    const dy = Math.round((e.clientY - start.clientY) / pitchY);
    for (const b of before) Object.assign(b.c.widget, { x: b.x, y: b.y, w: b.w, h: b.h });
    const mine = before.find((b) => b.c === cell);
    if (mine === undefined) return;
    if (mode === "move") {
      w.x = Math.min(COLUMNS - w.w, Math.max(0, mine.x + dx));
      w.y = Math.max(0, mine.y + dy);
    } else {
      w.w = Math.min(COLUMNS - w.x, Math.max(1, mine.w + dx));
      w.h = Math.min(MAX_ROWS_HIGH, Math.max(1, mine.h + dy));
    }
    settle(all.map((c) => c.widget), w);
    for (const c of all) place(c.el, c.widget);
  };
  const end = () => {
    target.removeEventListener("pointermove", move);
    target.removeEventListener("pointerup", end);
    target.removeEventListener("pointercancel", end);
    cell.el.classList.remove("dragging");
    const changed = before.some((b) => b.x !== b.c.widget.x || b.y !== b.c.widget.y || b.w !== b.c.widget.w || b.h !== b.c.widget.h);
    if (changed) onDone();
  };
  target.addEventListener("pointermove", move);
  target.addEventListener("pointerup", end);
  target.addEventListener("pointercancel", end);
}
