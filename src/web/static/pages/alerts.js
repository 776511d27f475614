// `/projects/{p}/alerts`: the project's rules with their state, value and history (mute,
// unmute, delete), a form for a new rule (threshold, absence, change), and the channels
// with their delivery log, Send test and a form for a new one (a webhook channel's signing
// secret shown once). States change at each evaluation, so the list is refreshed every 5 s
// while the page is open.

import { api, enc } from "../api.js";
import { h, clear, copyButton, link, notice } from "../dom.js";
import { canWrite, onLeave } from "../app.js";
import { ago, dateTime } from "../format.js";

const AGGS = ["avg", "sum", "min", "max", "count", "last"];
const OPS = [">", "<", ">=", "<=", "==", "!="];
const KINDS = { slack: "Slack", discord: "Discord", teams: "Microsoft Teams", webhook: "Webhook (signed)", email: "Email (SMTP)" };

function select(id, options, value) {
  return h("select", { id }, options.map((o) => h("option", { value: o, selected: o === value }, o)));
}

export async function alertsPage(main, project) {
  const base = `/api/v1/projects/${enc(project)}`;
  main.append(h("h1", {}, "Alerts"));
  const rules = h("section", { id: "rules" });
  const channels = h("section", { id: "channels" });
  let form = null;
  const refresh = async () => {
    const [r, c] = await Promise.all([api("GET", `${base}/alerts`), api("GET", `${base}/channels`)]);
    drawRules(rules, project, base, r.alerts, c.channels, refresh);
    drawChannels(channels, base, c.channels, refresh);
    if (form) form.setChannels(c.channels);
  };
  await refresh();
  main.append(rules);
  if (canWrite()) {
    form = await ruleForm(base, refresh);
    await refresh();
    main.append(form.el);
  }
  main.append(channels);
  if (canWrite()) main.append(channelForm(base, refresh));
  const timer = setInterval(() => refresh().catch(() => {}), 5000);
  onLeave(() => clearInterval(timer));
}

/** A <details> whose lines `load()` fetches the first time it is opened. */
function lazyList(label, empty, load) {
  const d = h("details", { class: "history" }, h("summary", {}, label));
  d.addEventListener("toggle", async () => {
    if (!d.open || d.dataset.loaded) return;
    d.dataset.loaded = "1";
    try {
      const lines = await load();
      d.append(lines.length === 0 ? h("p", { class: "muted small" }, empty) : h("ul", { class: "changes" }, lines.map((l) => h("li", {}, l))));
    } catch (ex) {
      d.append(notice(ex.message));
    }
  });
  return d;
}

function stateBadge(r) {
  const muted = r.mutedUntil && r.mutedUntil > Date.now();
  return h("span", {}, h("span", { class: `badge state-${r.state}` }, r.state), muted ? h("span", { class: "badge muted-badge", title: `until ${dateTime(r.mutedUntil)}` }, "muted") : null);
}

function drawRules(el, project, base, rules, channels, refresh) {
  clear(el).append(h("h2", {}, "Rules"));
  if (rules.length === 0) {
    el.append(h("p", { class: "empty" }, "No rule yet. A rule watches one metric: a threshold (latency above a line), an absence (a cron job that stopped reporting) or a change (signups down on last week)."));
    return;
  }
  const names = new Map(channels.map((c) => [c.id, c.name]));
  const rows = rules.map((r) => {
    const tools = h("td", { class: "tools" });
    if (canWrite()) {
      const muted = r.mutedUntil && r.mutedUntil > Date.now();
      const mute = h("button", { type: "button", class: "mute" }, muted ? "Unmute" : "Mute 1 h");
      mute.addEventListener("click", async () => {
        await api("PATCH", `${base}/alerts/${enc(r.id)}`, { mutedUntil: muted ? null : Date.now() + 3600e3 });
        await refresh();
      });
      const del = h("button", { type: "button", class: "danger" }, "Delete");
      del.addEventListener("click", async () => {
        if (!confirm(`Delete the rule "${r.name}" and its history?`)) return;
        await api("DELETE", `${base}/alerts/${enc(r.id)}`);
        await refresh();
      });
      tools.append(mute, del);
    }
    const history = lazyList("History", "No change yet.", async () =>
      (await api("GET", `${base}/alerts/${enc(r.id)}`)).history.map((c) => `${dateTime(c.at)}: ${c.from} → ${c.to}${c.value === null ? "" : ` (${c.value})`}`),
    );
    return h(
      "tr",
      { dataset: { rule: r.id, state: r.state } },
      h("td", {}, h("strong", {}, r.name), history),
      h("td", {}, link(`/projects/${enc(project)}/metrics/${enc(r.metricId)}`, r.metricId)),
      h("td", {}, r.description, r.for && r.for !== "0s" ? h("span", { class: "muted small" }, ` for ${r.for}`) : null),
      h("td", {}, stateBadge(r), h("span", { class: "muted small" }, ` ${ago(r.since)}`)),
      h("td", { class: "num" }, r.value === null ? "—" : String(Math.round(r.value * 1000) / 1000)),
      h("td", { class: "small" }, r.channels.map((c) => names.get(c) || c).join(", ") || "—"),
      tools,
    );
  });
  el.append(
    h(
      "table",
      { class: "list", id: "rule-list" },
      h("thead", {}, h("tr", {}, ["Rule", "Metric", "Condition", "State", "Value", "Channels", ""].map((t) => h("th", {}, t)))),
      h("tbody", {}, rows),
    ),
  );
}

async function ruleForm(base, refresh) {
  const { metrics } = await api("GET", `${base}/metrics`);
  const err = h("div", {});
  const name = h("input", { id: "rule-name", required: true, maxlength: 200, placeholder: "API slow" });
  const metric = h("input", { id: "rule-metric", required: true, list: "rule-metrics", placeholder: "api_latency_ms" });
  const datalist = h("datalist", { id: "rule-metrics" }, metrics.map((m) => h("option", { value: m.metricId }, m.metricName)));
  const kind = select("rule-kind", ["threshold", "absence", "change"], "threshold");
  const agg = select("rule-agg", AGGS, "avg");
  const windowIn = h("input", { id: "rule-window", value: "5m", size: 5 });
  const op = select("rule-op", OPS, ">");
  const value = h("input", { id: "rule-value", type: "number", step: "any", value: "100" });
  const clearIn = h("input", { id: "rule-clear", type: "number", step: "any", placeholder: "optional" });
  const silence = h("input", { id: "rule-silence", value: "10m", size: 5 });
  const cron = h("input", { id: "rule-cron", placeholder: "0 3 * * *  (instead of a silence)" });
  const grace = h("input", { id: "rule-grace", placeholder: "30m", size: 5 });
  const hold = h("input", { id: "rule-for", value: "0s", size: 5 });
  const picks = h("fieldset", { id: "rule-channels" }, h("legend", {}, "Notify"));
  let shownIds = null;
  // Rebuilt only when the channels changed, so the periodic refresh keeps what is ticked.
  const setChannels = (channels) => {
    const ids = channels.map((c) => c.id).join(",");
    if (ids === shownIds) return;
    shownIds = ids;
    const choices = channels.length
      ? channels.map((c) => h("label", { class: "inline" }, h("input", { type: "checkbox", value: c.id, class: "rule-channel" }), ` ${c.name}`))
      : [h("p", { class: "muted small" }, "No channel yet: add one below.")];
    clear(picks).append(h("legend", {}, "Notify"), ...choices);
  };
  const threshold = h("div", { class: "kind threshold" }, h("label", {}, "Aggregation", agg), h("label", {}, "over", windowIn), h("label", {}, "is", op), h("label", {}, "Value", value), h("label", {}, "Clears at", clearIn));
  const absence = h("div", { class: "kind absence" }, h("label", {}, "No sample for", silence), h("label", {}, "or by each cron tick (UTC)", cron), h("label", {}, "with a grace of", grace));
  const show = () => {
    threshold.hidden = kind.value === "absence";
    absence.hidden = kind.value !== "absence";
    clearIn.parentElement.hidden = kind.value !== "threshold";
    value.previousSibling.textContent = kind.value === "change" ? "Change, %" : "Value";
  };
  kind.addEventListener("change", show);
  show();
  const form = h(
    "form",
    { class: "card", id: "create-rule" },
    h("h2", {}, "New rule"),
    h("label", {}, "Name", name),
    h("label", {}, "Metric", metric, datalist),
    h("label", {}, "Kind", kind),
    threshold,
    absence,
    h("label", {}, "Hold for (pending until then)", hold),
    picks,
    err,
    h("button", { type: "submit", class: "primary", id: "rule-save" }, "Create rule"),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clear(err);
    let condition;
    if (kind.value === "threshold") {
      condition = { type: "threshold", agg: agg.value, window: windowIn.value, op: op.value, value: Number(value.value) };
      if (clearIn.value !== "") condition.clear = Number(clearIn.value);
    } else if (kind.value === "change") condition = { type: "change", agg: agg.value, window: windowIn.value, op: op.value, percent: Number(value.value) };
    else if (cron.value.trim()) condition = { type: "absence", cron: cron.value.trim(), ...(grace.value ? { grace: grace.value } : {}) };
    else condition = { type: "absence", for: silence.value };
    const chosen = [...form.querySelectorAll(".rule-channel:checked")].map((c) => c.value);
    try {
      await api("POST", `${base}/alerts`, { name: name.value, metricId: metric.value, condition, for: hold.value || "0s", channels: chosen });
      form.reset();
      show();
      await refresh();
    } catch (ex) {
      err.append(notice(ex.message));
    }
  });
  return { el: form, setChannels };
}

function attemptText(a) {
  if (!a) return "never used";
  const status = a.status ? ` ${a.status}` : "";
  return `${a.outcome}${status} ${ago(a.at)}${a.error ? `: ${a.error}` : ""}`;
}

function drawChannels(el, base, channels, refresh) {
  clear(el).append(h("h2", {}, "Channels"));
  if (channels.length === 0) {
    el.append(h("p", { class: "empty" }, "No channel yet. Rules notify Slack, Discord or Microsoft Teams webhooks, or your own HTTPS endpoint (signed)."));
    return;
  }
  const rows = channels.map((c) => {
    const result = h("span", { class: "small test-result" });
    const tools = h("td", { class: "tools" });
    if (canWrite()) {
      const test = h("button", { type: "button", class: "send-test" }, "Send test");
      test.addEventListener("click", async () => {
        test.disabled = true;
        result.textContent = "sending…";
        try {
          result.textContent = attemptText(await api("POST", `${base}/channels/${enc(c.id)}/test`));
        } catch (ex) {
          result.textContent = ex.message;
        }
        test.disabled = false;
      });
      const del = h("button", { type: "button", class: "danger" }, "Delete");
      del.addEventListener("click", async () => {
        if (!confirm(`Delete the channel "${c.name}"?`)) return;
        try {
          await api("DELETE", `${base}/channels/${enc(c.id)}`);
          await refresh();
        } catch (ex) {
          result.textContent = ex.message;
        }
      });
      tools.append(test, del, result);
    }
    const log = lazyList("Deliveries", "Nothing sent yet.", async () =>
      (await api("GET", `${base}/channels/${enc(c.id)}`)).deliveries.map((d) => `${dateTime(d.at)} ${d.event} (attempt ${d.attempt}): ${attemptText(d)}`),
    );
    return h(
      "tr",
      { dataset: { channel: c.id } },
      h("td", {}, h("strong", {}, c.name), log),
      h("td", {}, KINDS[c.type] || c.type),
      h("td", {}, h("code", {}, c.url)),
      h("td", {}, c.failing ? h("span", { class: "badge state-firing" }, "failing") : h("span", { class: "badge active" }, "ok"), h("span", { class: "muted small" }, ` ${attemptText(c.lastAttempt)}`)),
      tools,
    );
  });
  el.append(
    h(
      "table",
      { class: "list", id: "channel-list" },
      h("thead", {}, h("tr", {}, ["Channel", "Type", "URL", "Last delivery", ""].map((t) => h("th", {}, t)))),
      h("tbody", {}, rows),
    ),
  );
}

function channelForm(base, refresh) {
  const err = h("div", {});
  const shown = h("div", { id: "channel-secret" });
  const name = h("input", { id: "channel-name", required: true, maxlength: 200, placeholder: "Ops room" });
  const type = h("select", { id: "channel-type" }, Object.entries(KINDS).map(([k, v]) => h("option", { value: k }, v)));
  const url = h("input", { id: "channel-url", type: "url", required: true, placeholder: "https://hooks.slack.com/services/…" });
  const urlLabel = h("label", {}, "Webhook URL", url);
  const to = h("input", { id: "email-to", placeholder: "ops@example.com, oncall@example.com" });
  const from = h("input", { id: "email-from", placeholder: "stathook <alerts@example.com>" });
  const host = h("input", { id: "smtp-host", placeholder: "smtp.example.com" });
  const port = h("input", { id: "smtp-port", type: "number", min: 1, max: 65535, placeholder: "587" });
  const security = select("smtp-security", ["starttls", "tls", "none"], "starttls");
  const user = h("input", { id: "smtp-username", autocomplete: "off" });
  const pass = h("input", { id: "smtp-password", type: "password", autocomplete: "new-password" });
  const emailFields = h(
    "div",
    { class: "kind email" },
    h("label", {}, "To", to),
    h("label", {}, "From", from),
    h("label", {}, "SMTP server", host),
    h("label", {}, "Port", port),
    h("label", {}, "Security (starttls: required, never falls back to plain)", security),
    h("label", {}, "Username", user),
    h("label", {}, "Password", pass),
  );
  const showKind = () => {
    const email = type.value === "email";
    emailFields.hidden = !email;
    urlLabel.hidden = email;
    url.required = !email;
  };
  type.addEventListener("change", showKind);
  showKind();
  const form = h(
    "form",
    { class: "card", id: "create-channel" },
    h("h2", {}, "New channel"),
    h("label", {}, "Name", name),
    h("label", {}, "Type", type),
    urlLabel,
    emailFields,
    err,
    shown,
    h("button", { type: "submit", class: "primary", id: "channel-save" }, "Add channel"),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clear(err);
    clear(shown);
    try {
      const body =
        type.value === "email"
          ? {
              name: name.value,
              type: "email",
              to: to.value.split(",").map((a) => a.trim()).filter(Boolean),
              from: from.value,
              smtp: { host: host.value, security: security.value, ...(port.value ? { port: Number(port.value) } : {}), ...(user.value ? { username: user.value, password: pass.value } : {}) },
            }
          : { name: name.value, type: type.value, url: url.value };
      const c = await api("POST", `${base}/channels`, body);
      if (c.secret)
        shown.append(
          h("p", {}, "Signing secret (shown this once; receivers verify the webhook-signature header with it):"),
          h("div", { class: "secret" }, h("code", { id: "channel-secret-value" }, c.secret), copyButton(c.secret)),
        );
      form.querySelectorAll("input").forEach((i) => (i.value = ""));
      showKind();
      await refresh();
    } catch (ex) {
      err.append(notice(ex.message));
    }
  });
  return form;
}
