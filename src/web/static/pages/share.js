// Share links. On a dashboard page, `shareCard` lists the dashboard's read-only links and
// lets an admin make one (its URL and an iframe snippet, shown once) or revoke one. At
// `/share/{token}` (and `/share/{token}/embed`, without the title bar, for an iframe),
// `sharePage` shows the dashboard to anyone holding the link, without signing in: the grid
// read-only, one time range, live.

import { api, enc } from "../api.js";
import { h, clear, notice, copyButton } from "../dom.js";
import { canWrite } from "../app.js";
import { dateTime } from "../format.js";
import { rangePicker } from "../range.js";
import { renderGrid } from "../grid.js";
import { listenAt } from "../live.js";

export function shareCard(project, dashboard) {
  const path = `/api/v1/projects/${enc(project)}/dashboards/${enc(dashboard)}/shares`;
  const list = h("div", {});
  const fresh = h("div", {});
  const err = h("div", {});
  const card = h("details", { class: "card share", id: "share" }, h("summary", {}, "Share"), fresh, err, list);
  const refresh = async () => {
    clear(err);
    try {
      const { shares } = await api("GET", path);
      clear(list).append(
        shares.length === 0
          ? h("p", { class: "empty" }, "No share link yet. A link shows this dashboard, read-only, to anyone who has it, without signing in; nothing else of the project.")
          : h(
              "table",
              { class: "list compact", id: "share-links" },
              h("thead", {}, h("tr", {}, h("th", {}, "Link"), h("th", {}, "Created"), h("th", {}, ""))),
              h("tbody", {}, shares.map(row)),
            ),
      );
    } catch (ex) {
      err.append(notice(ex.message));
    }
  };
  const row = (s) => {
    const revoke = canWrite() ? h("button", { type: "button", class: "danger tool", dataset: { share: s.id } }, "Revoke") : null;
    if (revoke)
      revoke.addEventListener("click", async () => {
        if (!confirm(`Revoke the link ${s.tokenPrefix}…? Anyone using it loses access at once.`)) return;
        try {
          await api("DELETE", `${path}/${enc(s.id)}`);
          clear(fresh);
          await refresh();
        } catch (ex) {
          err.append(notice(ex.message));
        }
      });
    return h("tr", {}, h("td", {}, h("code", {}, `${s.tokenPrefix}…`)), h("td", { class: "muted" }, dateTime(s.createdAt)), h("td", {}, revoke));
  };
  if (canWrite()) {
    const create = h("button", { type: "button", class: "primary", id: "create-share" }, "Create a share link");
    create.addEventListener("click", async () => {
      clear(err);
      try {
        const s = await api("POST", path);
        const url = new URL(s.url, location.origin).href;
        const embed = `<iframe src="${new URL(s.embedUrl, location.origin).href}" width="100%" height="600" style="border:0"></iframe>`;
        clear(fresh).append(
          h("p", { class: "notice warn" }, "Copy the link now: it is shown only this once. Anyone who has it can see this dashboard."),
          h("div", { class: "secret" }, h("span", { class: "label" }, "Link"), h("code", { id: "share-url" }, url), copyButton(url)),
          h("div", { class: "secret" }, h("span", { class: "label" }, "Embed"), h("code", { id: "share-embed" }, embed), copyButton(embed)),
        );
        await refresh();
      } catch (ex) {
        err.append(notice(ex.message));
      }
    });
    fresh.before(h("div", { class: "actions" }, create));
  }
  card.addEventListener("toggle", () => card.open && refresh());
  return card;
}

export async function sharePage(main, token, embed) {
  const base = `/api/v1/share/${enc(token)}`;
  const dash = await api("GET", base);
  document.title = `${dash.name} · stathook`;
  const grid = h("div", { class: "grid", id: "grid" });
  const range = rangePicker("dashboard-range", () => layout());
  let cells = new Map();
  const layout = () => {
    cells = renderGrid(grid, dash.widgets, { base, range, empty: "This dashboard has no widget." });
  };
  main.append(
    h("div", { class: "controls share-head" }, h(embed ? "h2" : "h1", { id: "dashboard-title" }, dash.name), h("span", { class: "grow" }), range.el),
    grid,
  );
  if (!embed) main.append(h("p", { class: "muted small" }, "A read-only view shared from stathook."));
  layout();
  return listenAt(`${base}/events`, (ids) => {
    for (const c of cells.values()) if (!ids || c.widget.metricIds.some((m) => ids.has(m))) c.draw();
  });
}
