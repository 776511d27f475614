// The time range a page shows: the last 1 h, 24 h, 7 d, 30 d, or a custom from–to, kept in
// the URL (`range`, and `from`/`to` in Unix ms for a custom one) so the view can be shared.

import { h } from "./dom.js";
import { RANGES, rangeMs } from "./format.js";

function toLocalInput(ms) {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60e3);
  return d.toISOString().slice(0, 16);
}

/** A range picker; `onChange()` runs after the range (and the URL) changed. */
export function rangePicker(id, onChange) {
  const params = new URLSearchParams(location.search);
  let name = params.get("range") || "24h";
  let custom = [Number(params.get("from")) || Date.now() - 86400e3, Number(params.get("to")) || Date.now()];
  const select = h(
    "select",
    { id, "aria-label": "Range" },
    RANGES.map(([n]) => h("option", { value: n, selected: n === name }, `Last ${n}`)),
    h("option", { value: "custom", selected: name === "custom" }, "Custom…"),
  );
  const from = h("input", { type: "datetime-local", id: `${id}-from`, "aria-label": "From", value: toLocalInput(custom[0]) });
  const to = h("input", { type: "datetime-local", id: `${id}-to`, "aria-label": "To", value: toLocalInput(custom[1]) });
  const box = h("span", { class: "custom-range" }, from, " – ", to);
  box.hidden = name !== "custom";
  const sync = () => {
    const u = new URL(location.href);
    u.searchParams.set("range", name);
    if (name === "custom") {
      u.searchParams.set("from", String(custom[0]));
      u.searchParams.set("to", String(custom[1]));
    } else {
      u.searchParams.delete("from");
      u.searchParams.delete("to");
    }
    history.replaceState(null, "", u);
    onChange();
  };
  select.addEventListener("change", () => {
    name = select.value;
    box.hidden = name !== "custom";
    sync();
  });
  for (const [i, input] of [from, to].entries())
    input.addEventListener("change", () => {
      const ms = new Date(input.value).getTime();
      if (Number.isFinite(ms)) {
        custom[i] = ms;
        if (custom[0] < custom[1]) sync();
      }
    });
  return {
    el: h("span", { class: "range-picker" }, select, box),
    /** [from, to] in Unix ms. */
    span() {
      if (name === "custom") return [custom[0], custom[1]];
      const now = Date.now();
      return [now - rangeMs(name), now];
    },
    label() {
      return name === "custom" ? "period" : name;
    },
  };
}
