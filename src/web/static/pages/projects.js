// `/`: the projects, and a form to create one (admins).

import { api } from "../api.js";
import { h, link, notice, clear } from "../dom.js";
import { canWrite, navigate } from "../app.js";
import { dateTime } from "../format.js";

export async function projectsPage(main) {
  const { projects } = await api("GET", "/api/v1/projects");
  main.append(h("h1", {}, "Projects"));
  if (projects.length === 0) {
    main.append(h("p", { class: "empty" }, canWrite() ? "No project yet. Create one to receive metrics." : "No project yet; an admin can create one."));
  } else {
    main.append(
      h(
        "table",
        { class: "list", id: "projects" },
        h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "Project ID"), h("th", {}, "Tier"), h("th", {}, "Retention"), h("th", {}, "Created"))),
        h(
          "tbody",
          {},
          projects.map((p) =>
            h(
              "tr",
              {},
              h("td", {}, link(`/projects/${encodeURIComponent(p.id)}`, p.name)),
              h("td", {}, h("code", {}, p.id)),
              h("td", {}, p.tier),
              h("td", {}, p.retention || "server default"),
              h("td", {}, dateTime(p.createdAt)),
            ),
          ),
        ),
      ),
    );
  }
  if (canWrite()) main.append(createForm());
}

function createForm() {
  const err = h("div", {});
  const name = h("input", { name: "name", id: "project-name", required: true, maxlength: 200, placeholder: "My Project" });
  const id = h("input", { name: "id", id: "project-id", pattern: "[A-Za-z0-9_\\-]{1,64}", placeholder: "optional, e.g. my-project" });
  const tier = h("select", { name: "tier", id: "project-tier" }, ["", "free", "pro", "scale", "unlimited"].map((t) => h("option", { value: t }, t || "server default")));
  const retention = h("input", { name: "retention", id: "project-retention", placeholder: "e.g. 90d or forever (optional)" });
  const form = h(
    "form",
    { class: "card", id: "create-project" },
    h("h2", {}, "Create a project"),
    h("label", {}, "Name", name),
    h("label", {}, "Project ID", id),
    h("label", {}, "Tier", tier),
    h("label", {}, "Retention", retention),
    err,
    h("button", { type: "submit", class: "primary" }, "Create project"),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clear(err);
    const body = { name: name.value };
    if (id.value) body.id = id.value;
    if (tier.value) body.tier = tier.value;
    if (retention.value) body.retention = retention.value;
    try {
      const p = await api("POST", "/api/v1/projects", body);
      navigate(`/projects/${encodeURIComponent(p.id)}/integrations`);
    } catch (ex) {
      err.append(notice(ex.message));
    }
  });
  return form;
}
