// `/projects/{p}/dashboards`: the project's dashboards; create one, or import an exported
// JSON file. `/projects/{p}/dashboards/{id}`: the dashboard itself (dashboard.js).

import { api, enc } from "../api.js";
import { h, clear, link, notice } from "../dom.js";
import { canWrite, navigate } from "../app.js";
import { dateTime } from "../format.js";

export async function dashboardsPage(main, project) {
  const { dashboards } = await api("GET", `/api/v1/projects/${enc(project)}/dashboards`);
  main.append(h("h1", {}, "Dashboards"));
  if (dashboards.length === 0) main.append(h("p", { class: "empty" }, "No dashboard yet. Create one and add widgets for your metrics."));
  else
    main.append(
      h(
        "table",
        { class: "list", id: "dashboards" },
        h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "Widgets"), h("th", {}, "Updated"))),
        h("tbody", {}, dashboards.map((d) => h("tr", {}, h("td", {}, link(`/projects/${enc(project)}/dashboards/${enc(d.id)}`, d.name)), h("td", { class: "num" }, d.widgets), h("td", {}, dateTime(d.updatedAt))))),
      ),
    );
  if (!canWrite()) return;
  const err = h("div", {});
  const name = h("input", { id: "dashboard-name", required: true, maxlength: 200, placeholder: "Operations" });
  const form = h("form", { class: "card", id: "create-dashboard" }, h("h2", {}, "New dashboard"), h("label", {}, "Name", name), err, h("button", { type: "submit", class: "primary" }, "Create dashboard"));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clear(err);
    try {
      const d = await api("POST", `/api/v1/projects/${enc(project)}/dashboards`, { name: name.value, widgets: [] });
      navigate(`/projects/${enc(project)}/dashboards/${enc(d.id)}`);
    } catch (ex) {
      err.append(notice(ex.message));
    }
  });
  const file = h("input", { type: "file", accept: "application/json,.json", id: "import-file" });
  const importErr = h("div", {});
  file.addEventListener("change", async () => {
    clear(importErr);
    try {
      const d = await api("POST", `/api/v1/projects/${enc(project)}/dashboards`, JSON.parse(await file.files[0].text()));
      navigate(`/projects/${enc(project)}/dashboards/${enc(d.id)}`);
    } catch (ex) {
      importErr.append(notice(ex.message));
    }
  });
  main.append(form, h("div", { class: "card" }, h("h2", {}, "Import"), h("label", {}, "A dashboard exported as JSON", file), importErr));
}
