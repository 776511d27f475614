// Building elements without ever parsing an HTML string: every text is a text node, so a metric name can
// never become markup.

/** h("a", {href: "/x", class: "btn", onclick: f}, "text", child, [more]) */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

/** A link that the router follows without a reload. */
export function link(href, ...children) {
  return h("a", { href, "data-nav": "" }, ...children);
}

/** A button that copies `text` and says so. */
export function copyButton(text, label = "Copy") {
  const b = h("button", { type: "button", class: "copy" }, label);
  b.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(text);
      b.textContent = "Copied";
    } catch {
      // Clipboard access needs a secure context; select the text for a manual copy.
      const pre = b.previousElementSibling;
      if (pre) window.getSelection().selectAllChildren(pre);
      b.textContent = "Press Ctrl+C";
    }
    setTimeout(() => (b.textContent = label), 1500);
  });
  return b;
}

/** A message line for errors and notices. */
export function notice(text, kind = "error") {
  return h("p", { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status" }, text);
}
