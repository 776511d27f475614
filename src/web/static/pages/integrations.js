// `/projects/{p}/integrations`: the catalog (Custom → Custom Webhooks), the Connect → name
// → Create flow that shows the Webhook URL, API key (once) and Project ID with filled-in
// snippets, and the project's connections with their usage, Revoke and Regenerate.

import { api, enc } from "../api.js";
import { h, clear, copyButton, notice } from "../dom.js";
import { canWrite } from "../app.js";
import { ago, dateTime } from "../format.js";
import { timeChart } from "../chart.js";

export async function integrationsPage(main, project) {
  main.append(h("h1", {}, "Integrations"));
  const flow = h("div", { id: "connect-flow" });
  const connections = h("section", { id: "connections" });
  main.append(
    h("h2", { class: "category" }, "Custom"),
    h(
      "div",
      { class: "catalog" },
      h(
        "article",
        { class: "card integration", id: "custom-webhooks" },
        h("h3", {}, "Custom Webhooks"),
        h("p", { class: "muted" }, "Send metrics from scripts, cron jobs, Zapier, Make, n8n or your own code with one HTTP POST."),
        canWrite() ? connectButton(flow, project, connections) : h("p", { class: "muted small" }, "Viewers cannot connect webhooks."),
      ),
    ),
    flow,
    connections,
  );
  await listConnections(connections, project);
}

function connectButton(flow, project, connections) {
  const b = h("button", { type: "button", class: "primary", id: "connect" }, "Connect");
  b.addEventListener("click", () => {
    const err = h("div", {});
    const name = h("input", { name: "name", id: "webhook-name", required: true, maxlength: 200, placeholder: "Cron Job Metrics" });
    const form = h(
      "form",
      { class: "card", id: "create-webhook" },
      h("h3", {}, "New custom webhook"),
      h("label", {}, "Give your webhook a name", name),
      err,
      h("button", { type: "submit", class: "primary", id: "create" }, "Create"),
    );
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      clear(err);
      try {
        const r = await api("POST", `/api/v1/projects/${enc(project)}/webhooks`, { name: name.value });
        clear(flow).append(created(r));
        await listConnections(connections, project);
      } catch (ex) {
        err.append(notice(ex.message));
      }
    });
    clear(flow).append(form);
    name.focus();
  });
  return b;
}

function secretRow(label, value, id) {
  return h("div", { class: "secret" }, h("span", { class: "label" }, label), h("code", { id }, value), copyButton(value));
}

/** What the spec's Step 2 shows, then its examples filled in. */
function created(r) {
  const body = JSON.stringify(
    { projectId: r.projectId, metrics: [{ metricId: "daily_signups", metricName: "Daily Signups", value: 42, unit: "count", timestamp: Date.now() }] },
    null,
    2,
  );
  const curl = `curl -X POST ${r.webhookUrl} \\\n  -H "Authorization: Bearer ${r.apiKey}" \\\n  -H "Content-Type: application/json" \\\n  -d '${JSON.stringify({ projectId: r.projectId, metrics: [{ metricId: "daily_signups", metricName: "Daily Signups", value: 42, unit: "count" }] })}'`;
  const python = `import requests, time

requests.post(
    "${r.webhookUrl}",
    headers={"Authorization": "Bearer ${r.apiKey}"},
    json={
        "projectId": "${r.projectId}",
        "metrics": [{"metricId": "daily_signups", "metricName": "Daily Signups",
                     "value": 42, "unit": "count", "timestamp": int(time.time() * 1000)}],
    },
).raise_for_status()`;
  const node = `await fetch("${r.webhookUrl}", {
  method: "POST",
  headers: { "Authorization": "Bearer ${r.apiKey}", "Content-Type": "application/json" },
  body: JSON.stringify({
    projectId: "${r.projectId}",
    metrics: [{ metricId: "daily_signups", metricName: "Daily Signups", value: 42, unit: "count", timestamp: Date.now() }],
  }),
});`;
  const snippet = (title, text, id) => h("details", { open: id === "snippet-curl" }, h("summary", {}, title), h("pre", { id }, text), copyButton(text));
  return h(
    "div",
    { class: "card created", id: "webhook-created" },
    h("h3", {}, `Webhook "${r.webhook.name}" created`),
    h("p", { class: "notice warn" }, "Copy the API key now: it is shown only once."),
    secretRow("Webhook URL", r.webhookUrl, "webhook-url"),
    secretRow("API Key", r.apiKey, "api-key"),
    secretRow("Project ID", r.projectId, "project-id-value"),
    h("h4", {}, "Send your first metric"),
    snippet("curl", curl, "snippet-curl"),
    snippet("Python", python, "snippet-python"),
    snippet("Node.js", node, "snippet-node"),
    h("details", {}, h("summary", {}, "Request body"), h("pre", {}, body)),
  );
}

async function listConnections(section, project) {
  const { webhooks } = await api("GET", `/api/v1/projects/${enc(project)}/webhooks`);
  clear(section).append(h("h2", {}, "Connections"));
  if (webhooks.length === 0) {
    section.append(h("p", { class: "empty" }, "No webhook connected yet. Connect one above, then POST your first metric."));
    return;
  }
  for (const w of webhooks) section.append(connection(w, project, section));
}

function connection(w, project, section) {
  const usage = h("div", { class: "usage" });
  const actions = h("div", { class: "actions" });
  const err = h("div", {});
  if (canWrite()) {
    const grace = h("select", { "aria-label": "Old key keeps working for" }, [["", "old key stops now"], ["10m", "old key works 10 min"], ["1h", "old key works 1 h"], ["1d", "old key works 1 day"], ["7d", "old key works 7 days"]].map(([v, t]) => h("option", { value: v }, t)));
    const regen = h("button", { type: "button" }, "Regenerate key");
    regen.addEventListener("click", async () => {
      clear(err);
      try {
        const q = grace.value ? `?grace=${enc(grace.value)}` : "";
        const r = await api("POST", `/api/v1/webhooks/${enc(w.id)}/rotate${q}`);
        section.parentElement.querySelector("#connect-flow").replaceChildren(created(r));
        await listConnections(section, project);
      } catch (ex) {
        err.append(notice(ex.message));
      }
    });
    const revoke = h("button", { type: "button", class: "danger" }, "Revoke");
    revoke.addEventListener("click", async () => {
      if (!confirm(`Revoke the key of "${w.name}"? Requests with it will get 401 at once.`)) return;
      try {
        await api("POST", `/api/v1/webhooks/${enc(w.id)}/revoke`);
        await listConnections(section, project);
      } catch (ex) {
        err.append(notice(ex.message));
      }
    });
    actions.append(grace, regen);
    if (w.status === "active") actions.append(revoke);
  }
  const card = h(
    "article",
    { class: "card connection", dataset: { webhook: w.id } },
    h("h3", {}, w.name, " ", h("span", { class: `badge ${w.status}` }, w.status)),
    h(
      "dl",
      { class: "facts" },
      h("dt", {}, "Key"), h("dd", {}, h("code", {}, `${w.keyPrefix}…`)),
      h("dt", {}, "Key age"), h("dd", {}, `${w.keyAgeDays} d${w.keyTooOld ? " (older than the server's limit: regenerate it)" : ""}`),
      h("dt", {}, "Created"), h("dd", {}, dateTime(w.createdAt)),
      h("dt", {}, "Last used"), h("dd", {}, w.lastUsedAt ? `${ago(w.lastUsedAt)} from ${w.lastSourceIp}` : "never"),
    ),
    actions,
    err,
    usage,
    requestLog(project, w),
  );
  api("GET", `/api/v1/projects/${enc(project)}/webhooks/${enc(w.id)}/usage`)
    .then((u) => showUsage(usage, u))
    .catch((ex) => usage.append(notice(ex.message)));
  return card;
}

/** The last 100 requests of a connection, with the exact error each refused one got. */
function requestLog(project, w) {
  const body = h("div", {});
  const d = h("details", { class: "request-log" }, h("summary", {}, "Request log (last 100)"), body);
  d.addEventListener("toggle", async () => {
    if (!d.open) return;
    clear(body);
    try {
      const { requests } = await api("GET", `/api/v1/projects/${enc(project)}/webhooks/${enc(w.id)}/requests`);
      if (requests.length === 0) {
        body.append(h("p", { class: "empty" }, "No request since the server started."));
        return;
      }
      body.append(
        h(
          "table",
          { class: "list compact" },
          h("thead", {}, h("tr", {}, ["Time", "Status", "Samples", "From", "Error"].map((t) => h("th", {}, t)))),
          h("tbody", {}, requests.map((r) => h("tr", { class: r.status === 200 ? "" : "refused" }, h("td", {}, dateTime(r.at)), h("td", {}, r.status), h("td", { class: "num" }, r.samples), h("td", {}, r.sourceIp), h("td", {}, r.error || "")))),
        ),
      );
    } catch (ex) {
      body.append(notice(ex.message));
    }
  });
  return d;
}

function showUsage(el, u) {
  const r = u.rejected;
  el.append(
    h("p", { class: "small" }, `${u.accepted} requests accepted, ${u.samplesStored} samples stored, ${u.rejectedTotal} rejected (auth ${r.auth}, validation ${r.validation}, rate limit ${r.rateLimit}, size ${r.size}, unavailable ${r.unavailable}) in the last 7 days`),
  );
  const box = h("div", { class: "chart small-chart" });
  el.append(box);
  const ts = u.hourly.map((x) => x.hourStart);
  requestAnimationFrame(() =>
    timeChart(box, { data: [ts, u.hourly.map((x) => x.accepted), u.hourly.map((x) => x.rejected)], series: ["accepted", "rejected"], unit: "count", kind: "bars", height: 120 }),
  );
}
