// Charts on uPlot (vendored; loaded as a classic script before the modules run, so
// `window.uPlot` is there). Colours come from the page's CSS variables, so a chart follows
// the light or dark theme.

import { formatValue } from "./format.js";

const PALETTE = ["--c1", "--c2", "--c3", "--c4", "--c5", "--c6"];

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || "#888";
}

/**
 * A time-series chart in `el`. `data` is [timestamps (ms), ...values per series];
 * `series` names them. Returns the uPlot instance (its `.ctx.canvas` is the PNG source).
 */
export function timeChart(el, { data, series, unit, kind = "line", height = 260, xRange = null, bands = null }) {
  // `bands()` gives [from, to] spans (ms) shaded behind the series: an alert's firing times.
  // `xRange()` gives the [from, to] the chart spans, so a sparse metric is drawn where it
  // lies in the range instead of stretched across it.
  const width = Math.max((el.clientWidth || 600) - 16, 200);
  const axis = { stroke: cssVar("--muted"), grid: { stroke: cssVar("--grid") }, ticks: { stroke: cssVar("--grid") } };
  const opts = {
    width,
    height,
    ms: 1,
    legend: { show: series.length > 1 },
    cursor: { drag: { x: true, y: false } },
    scales: { x: { time: true, range: (u, min, max) => (xRange ? xRange() : [min, max]) } },
    axes: [axis, { ...axis, size: 70, values: (u, vals) => vals.map((v) => formatValue(v, unit)) }],
    series: [
      {},
      ...series.map((name, i) => {
        const color = cssVar(PALETTE[i % PALETTE.length]);
        const s = { label: name, stroke: color, width: 2, value: (u, v) => formatValue(v, unit), spanGaps: false };
        if (kind === "area") s.fill = color + "33";
        if (kind === "bars") {
          s.fill = color + "aa";
          s.paths = window.uPlot.paths.bars({ size: [0.8, 60] });
          s.points = { show: false };
        }
        return s;
      }),
    ],
  };
  if (bands)
    opts.hooks = {
      drawAxes: [
        (u) => {
          const { ctx, bbox } = u;
          ctx.save();
          ctx.fillStyle = cssVar("--danger") + "26";
          for (const [from, to] of bands()) {
            const x0 = Math.max(bbox.left, u.valToPos(from, "x", true));
            const x1 = Math.min(bbox.left + bbox.width, u.valToPos(to, "x", true));
            if (x1 > x0) ctx.fillRect(x0, bbox.top, Math.max(x1 - x0, 2), bbox.height);
          }
          ctx.restore();
        },
      ],
    };
  const plot = new window.uPlot(opts, data, el);
  const ro = new ResizeObserver(() => {
    const w = el.clientWidth - 16;
    if (w > 0 && Math.abs(w - plot.width) > 2) plot.setSize({ width: w, height });
  });
  ro.observe(el);
  return plot;
}

/** A small line without axes, for a catalog row or a stat. */
export function sparkline(el, timestamps, values, width = 120, height = 28) {
  const color = cssVar("--c1");
  return new window.uPlot(
    {
      width,
      height,
      ms: 1,
      legend: { show: false },
      cursor: { show: false },
      axes: [{ show: false }, { show: false }],
      scales: { x: { time: true } },
      series: [{}, { stroke: color, width: 1.5, fill: color + "22" }],
      padding: [2, 0, 2, 0],
    },
    [timestamps, values],
    el,
  );
}

/** Saves a chart's canvas as a PNG file. */
export function downloadPng(plot, name) {
  plot.ctx.canvas.toBlob((blob) => {
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = `${name}.png`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 1000);
  }, "image/png");
}

/** A step that gives about one bucket per 2 pixels of `widthPx` over `rangeMs`. */
export function maxPointsFor(widthPx) {
  return Math.max(50, Math.min(2000, Math.round(widthPx / 2)));
}
