// What the catalog pages share: a live indicator, failing-check lists, filtered notes.
import { errorBox, fmtTime, h, pill, replace } from "../dom.js";

// A small "live · updated 12:00:01" line that pages tick on every answer.
export function liveLine() {
  const el = h("span", { class: "live", title: "follows blocking queries: changes show without reloading" },
    h("span", { class: "dot" }), "live");
  return {
    el,
    ok() { el.classList.remove("live-error"); el.lastChild.textContent = `live · updated ${fmtTime(new Date())}`; },
    fail() { el.classList.add("live-error"); el.lastChild.textContent = "reconnecting…"; },
  };
}

export function pageHead(title, ...extra) {
  return h("div", { class: "page-head" }, h("h1", {}, title), h("div", { class: "head-extra" }, extra));
}

export function filteredNote(filtered) {
  return filtered ? h("p", { class: "notice notice-info" }, "Some results are hidden: this token may not read them.")
    : null;
}

export function checkOutput(check) {
  const text = (check.Output || check.Notes || "").trim();
  return text ? h("pre", { class: "output" }, text) : h("span", { class: "muted" }, "no output");
}

// The non-passing checks of a list, each with its output.
export function failingList(checks, { showNode = true } = {}) {
  const bad = checks.filter((c) => c.Status !== "passing");
  if (!bad.length) return null;
  return h("ul", { class: "failing" }, bad.map((c) => h("li", { "data-check": c.CheckID, "data-status": c.Status },
    pill(c.Status), " ",
    h("span", { class: "check-name" }, showNode && c.Node ? `${c.Node} · ${c.Name || c.CheckID}` : c.Name || c.CheckID),
    checkOutput(c))));
}

// Error and recovery of a section: the error replaces its content until the next answer.
export function showError(section, live, err, what) {
  live?.fail();
  replace(section, errorBox(err, what));
}

export function checksTable(checks) {
  if (!checks.length) return h("p", { class: "muted" }, "No checks.");
  return h("table", { class: "grid checks" },
    h("thead", {}, h("tr", {}, h("th", {}, "Check"), h("th", {}, "Status"), h("th", {}, "Service"), h("th", {}, "Output"))),
    h("tbody", {}, checks.map((c) => h("tr", { class: `status-${c.Status}`, "data-check": c.CheckID, "data-status": c.Status },
      h("td", {}, h("div", { class: "strong" }, c.Name || c.CheckID), h("div", { class: "muted small" }, c.CheckID)),
      h("td", {}, pill(c.Status)),
      h("td", {}, c.ServiceName || h("span", { class: "muted" }, "node")),
      h("td", {}, checkOutput(c))))));
}
