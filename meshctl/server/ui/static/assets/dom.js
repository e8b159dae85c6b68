// Building DOM without markup strings: every value reaches the page as text, never as HTML.

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "value") el.value = value;
    else if (key === "checked") el.checked = Boolean(value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of [children].flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

// A link inside the app (the router intercepts clicks on [data-nav]).
export function link(href, ...children) {
  return h("a", { href, "data-nav": true }, ...children);
}

export const STATUS_ORDER = { critical: 3, warning: 2, passing: 1 };

export function worst(checks) {
  let status = "passing";
  for (const c of checks) {
    if ((STATUS_ORDER[c.Status] || 3) > STATUS_ORDER[status]) status = STATUS_ORDER[c.Status] ? c.Status : "critical";
  }
  return status;
}

export function pill(status, text) {
  return h("span", { class: `pill pill-${status}`, title: status }, text ?? status);
}

// "3 passing, 1 critical" as coloured pills; nothing for no checks.
export function summary(checks) {
  const counts = { passing: 0, warning: 0, critical: 0 };
  for (const c of checks) counts[STATUS_ORDER[c.Status] ? c.Status : "critical"] += 1;
  const out = [];
  for (const status of ["critical", "warning", "passing"]) {
    if (counts[status]) out.push(pill(status, `${counts[status]} ${status}`));
  }
  return out.length ? h("span", { class: "pills" }, out) : h("span", { class: "muted" }, "no checks");
}

export function errorBox(err, what) {
  const status = err && err.status;
  let text;
  if (status === 403) text = `Permission denied${what ? ` reading ${what}` : ""}: ${err.text || "forbidden"}. ` +
    "Log in with a token that may read it.";
  else if (status) text = `${what ? `${what}: ` : ""}${status} ${err.text || ""}`;
  else text = `${what ? `${what}: ` : ""}${err && err.message ? err.message : err}`;
  return h("div", { class: status === 403 ? "notice notice-denied" : "notice notice-error", role: "alert" }, text);
}

export function segmentsPath(parts) {
  return parts.map(encodeURIComponent).join("/");
}

export function shortId(id) {
  return id ? id.slice(0, 8) : "";
}

export function fmtTime(date) {
  return date.toLocaleTimeString([], { hour12: false });
}
