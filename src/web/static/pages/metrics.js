// `/projects/{p}` (home) and `/projects/{p}/metrics`: the catalog with last values,
// "last seen" and a 24 h sparkline per metric; search by name or id (`?q=`), live.

import { api, enc } from "../api.js";
import { h, clear, link, notice } from "../dom.js";
import { onLeave } from "../app.js";
import { ago, formatValue } from "../format.js";
import { sparkline } from "../chart.js";
import { listen } from "../live.js";

export async function metricsPage(main, project, home) {
  const p = await api("GET", `/api/v1/projects/${enc(project)}`);
  const params = new URLSearchParams(location.search);
  const search = h("input", { type: "search", id: "metric-search", placeholder: "Search by name or id", value: params.get("q") || "", "aria-label": "Search metrics" });
  const table = h("div", { id: "catalog" });
  main.append(h("h1", {}, home ? p.name : "Metrics"));
  if (home) {
    main.append(h("p", { class: "muted" }, `Project ID `, h("code", {}, p.id), ` · tier ${p.tier}`));
    const { dashboards } = await api("GET", `/api/v1/projects/${enc(project)}/dashboards`);
    main.append(
      h("h2", {}, "Dashboards"),
      dashboards.length
        ? h("ul", { class: "dashboard-links" }, dashboards.map((d) => h("li", {}, link(`/projects/${enc(project)}/dashboards/${enc(d.id)}`, d.name))))
        : h("p", { class: "empty" }, "No dashboard yet. ", link(`/projects/${enc(project)}/dashboards`, "Create one"), "."),
      h("h2", {}, "Metrics"),
    );
  }
  main.append(search, table);
  let catalog = [];
  const draw = () => {
    const q = search.value.trim().toLowerCase();
    const shown = catalog.filter((m) => !q || m.metricId.toLowerCase().includes(q) || m.metricName.toLowerCase().includes(q));
    clear(table);
    if (catalog.length === 0) {
      table.append(
        h("div", { class: "empty card" }, h("p", {}, "No metric has arrived yet."), h("p", {}, link(`/projects/${enc(project)}/integrations`, "Connect a custom webhook"), " and POST your first metric: it appears here at once.")),
      );
      return;
    }
    if (shown.length === 0) {
      table.append(h("p", { class: "empty" }, `No metric matches "${search.value}".`));
      return;
    }
    const rows = shown.map((m) => {
      const spark = h("div", { class: "spark", dataset: { metric: m.metricId } });
      return {
        m,
        spark,
        row: h(
          "tr",
          { dataset: { metric: m.metricId } },
          h("td", {}, link(`/projects/${enc(project)}/metrics/${enc(m.metricId)}`, m.metricName)),
          h("td", {}, h("code", {}, m.metricId)),
          h("td", {}, m.unit || ""),
          h("td", { class: "num last-value" }, formatValue(m.lastValue, m.unit)),
          h("td", { title: new Date(m.lastTimestamp).toLocaleString() }, ago(m.lastTimestamp)),
          h("td", { class: "num" }, m.sampleCount.toLocaleString()),
          h("td", {}, spark),
        ),
      };
    });
    table.append(
      h(
        "table",
        { class: "list" },
        h("thead", {}, h("tr", {}, ["Name", "Metric ID", "Unit", "Last value", "Last seen", "Samples", "24 h"].map((t) => h("th", {}, t)))),
        h("tbody", {}, rows.map((r) => r.row)),
      ),
    );
    drawSparks(project, rows.slice(0, 100));
  };
  const load = async () => {
    catalog = (await api("GET", `/api/v1/projects/${enc(project)}/metrics`)).metrics;
    draw();
  };
  search.addEventListener("input", () => {
    const u = new URL(location.href);
    if (search.value) u.searchParams.set("q", search.value);
    else u.searchParams.delete("q");
    history.replaceState(null, "", u);
    draw();
  });
  await load();
  onLeave(listen(project, () => load().catch((e) => table.append(notice(e.message)))));
}

async function drawSparks(project, rows) {
  if (rows.length === 0) return;
  const ids = rows.map((r) => r.m.metricId).join(",");
  const q = await api("GET", `/api/v1/projects/${enc(project)}/query?metricIds=${enc(ids)}&from=-24h&to=now&step=30m&agg=avg`);
  q.series.forEach((s, i) => {
    const el = rows.find((r) => r.m.metricId === s.metricId)?.spark || rows[i].spark;
    clear(el);
    // One point draws as a lone marker, which reads as a glyph: a line needs two.
    if (s.values.filter((v) => v !== null).length >= 2) sparkline(el, q.timestamps, s.values);
  });
}
