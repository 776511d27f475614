// Numbers, units and times as a person reads them, in the viewer's locale and time zone.

const CURRENCIES = new Set(["USD", "EUR", "GBP", "JPY", "CHF", "CAD", "AUD", "CNY", "INR", "BRL", "SEK", "NOK", "DKK", "PLN"]);

export function formatValue(v, unit) {
  if (v === null || v === undefined || Number.isNaN(v)) return "—";
  const u = unit || "";
  if (CURRENCIES.has(u.toUpperCase())) {
    return new Intl.NumberFormat(undefined, { style: "currency", currency: u.toUpperCase() }).format(v);
  }
  const num = new Intl.NumberFormat(undefined, { maximumFractionDigits: Math.abs(v) < 10 ? 3 : 2 }).format(v);
  if (u === "%" || u === "percent") return `${num} %`;
  if (u === "ms" && Math.abs(v) >= 1000) return `${formatValue(v / 1000, "s")}`;
  if (u === "" || u === "count") return num;
  return `${num} ${u}`;
}

export function ago(ms, now = Date.now()) {
  if (!ms) return "never";
  const s = Math.round((now - ms) / 1000);
  if (s < 5) return "just now";
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

export function dateTime(ms) {
  if (!ms) return "—";
  return new Date(ms).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}

/** The time ranges offered everywhere, kept in the URL as `range`. */
export const RANGES = [
  ["1h", 3600e3],
  ["24h", 86400e3],
  ["7d", 7 * 86400e3],
  ["30d", 30 * 86400e3],
];

export function rangeMs(name) {
  const r = RANGES.find(([n]) => n === name);
  return r ? r[1] : 86400e3;
}
