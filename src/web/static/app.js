// The app: sign-in, the layout (header and the project sidebar) and the router. Every page
// has its own URL; links with `data-nav` are followed without a reload; state a person
// would bookmark (range, search) lives in the query string.

import { api } from "./api.js";
import { h, clear, link, notice } from "./dom.js";
import { projectsPage } from "./pages/projects.js";
import { integrationsPage } from "./pages/integrations.js";
import { metricsPage } from "./pages/metrics.js";
import { metricPage } from "./pages/metric.js";
import { dashboardsPage } from "./pages/dashboards.js";
import { dashboardPage } from "./pages/dashboard.js";
import { sharePage } from "./pages/share.js";
import { alertsPage } from "./pages/alerts.js";

const root = document.getElementById("app");
let me = null;
/** What the current page asked to run when it is left (closing event streams). */
let cleanups = [];

export function onLeave(f) {
  cleanups.push(f);
}

export function navigate(url, replace = false) {
  if (replace) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
  render();
}

export function canWrite() {
  return me && me.role === "admin";
}

document.addEventListener("click", (e) => {
  const a = e.target.closest("a[data-nav]");
  if (!a || e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
  e.preventDefault();
  navigate(a.getAttribute("href"));
});
window.addEventListener("popstate", () => render());
window.addEventListener("signed-out", () => {
  if (me) {
    me = null;
    render();
  }
});

async function render() {
  for (const f of cleanups) f();
  cleanups = [];
  const parts = location.pathname.split("/").filter(Boolean).map(decodeURIComponent);
  // A share link's page needs no account: no sign-in, no header, no sidebar.
  if (parts[0] === "share") return shared(parts[1] || "", parts[2] === "embed");
  if (!me) {
    const s = await api("GET", "/api/v1/session");
    if (!s.signedIn) return signIn(s.firstUserNeeded);
    me = s;
  }
  const main = h("main", { id: "main" });
  let project = null;
  if (parts[0] === "projects" && parts[1]) project = parts[1];
  clear(root).append(header(), h("div", { class: "body" }, project ? sidebar(project, parts[2] || "") : null, main));
  try {
    if (!project) await projectsPage(main);
    else if (!parts[2] || parts[2] === "metrics") {
      if (parts[3]) await metricPage(main, project, parts[3]);
      else await metricsPage(main, project, !parts[2]);
    } else if (parts[2] === "integrations") await integrationsPage(main, project);
    else if (parts[2] === "alerts") await alertsPage(main, project);
    else if (parts[2] === "dashboards") {
      if (parts[3]) await dashboardPage(main, project, parts[3]);
      else await dashboardsPage(main, project);
    }
    else main.append(notice(`No such page: ${location.pathname}`));
  } catch (err) {
    main.append(notice(err.message));
  }
}

async function shared(token, embed) {
  const main = h("main", { id: "main", class: embed ? "embed" : "shared" });
  clear(root).append(main);
  try {
    onLeave(await sharePage(main, token, embed));
  } catch (err) {
    main.append(notice(err.message));
  }
}

function header() {
  const signOut = h("button", { type: "button", class: "link", id: "sign-out" }, "Sign out");
  signOut.addEventListener("click", async () => {
    await api("DELETE", "/api/v1/session");
    me = null;
    render();
  });
  return h(
    "header",
    { class: "top" },
    link("/", h("strong", {}, "stathook")),
    h("span", { class: "grow" }),
    h("span", { class: "muted" }, `${me.username} (${me.role})`),
    signOut,
  );
}

function sidebar(project, current) {
  const item = (key, label) =>
    h("li", { class: current === key ? "current" : "" }, link(`/projects/${encodeURIComponent(project)}${key ? "/" + key : ""}`, label));
  return h(
    "nav",
    { class: "side", "aria-label": "Project" },
    h("p", { class: "muted small" }, "Project"),
    h("p", { class: "project-id" }, project),
    h("ul", {}, item("", "Home"), item("dashboards", "Dashboards"), item("metrics", "Metrics"), item("alerts", "Alerts"), item("integrations", "Integrations")),
  );
}

function signIn(firstUserNeeded) {
  const err = h("div", {});
  const user = h("input", { name: "username", id: "username", autocomplete: "username", required: true });
  const pass = h("input", { name: "password", id: "password", type: "password", autocomplete: firstUserNeeded ? "new-password" : "current-password", required: true });
  const token = h("input", { name: "adminToken", id: "admin-token", type: "password", autocomplete: "off", required: true });
  const form = h(
    "form",
    { class: "card signin", id: "sign-in" },
    h("h1", {}, firstUserNeeded ? "Create the first account" : "Sign in to stathook"),
    firstUserNeeded
      ? h("p", { class: "muted" }, "No account exists yet. Paste the admin token (the file admin-token in the data dir) to create an admin account.")
      : null,
    firstUserNeeded ? h("label", {}, "Admin token", token) : null,
    h("label", {}, "Username", user),
    h("label", {}, "Password", pass),
    err,
    h("button", { type: "submit", class: "primary" }, firstUserNeeded ? "Create account and sign in" : "Sign in"),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clear(err);
    try {
      if (firstUserNeeded) {
        await api("POST", "/api/v1/users", { name: user.value, role: "admin", password: pass.value }, { Authorization: `Bearer ${token.value.trim()}` });
      }
      me = await api("POST", "/api/v1/session", { username: user.value, password: pass.value });
      render();
    } catch (ex) {
      err.append(notice(ex.message));
    }
  });
  clear(root).append(h("main", { class: "center" }, form));
  user.focus();
}

render().catch((err) => clear(root).append(notice(err.message)));
