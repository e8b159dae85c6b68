// Sessions and locks: every session, and the KV keys each one holds.
import { watch } from "../api.js";
import { errorBox, h, link, replace, segmentsPath } from "../dom.js";
import { liveLine, pageHead, showError } from "./common.js";

function kvHref(key) {
  return "/ui/kv/" + key.split("/").map(encodeURIComponent).join("/");
}

function duration(ns) {
  if (!ns) return "0s";
  const s = ns / 1e9;
  return s >= 1 ? `${+s.toFixed(3)}s` : `${+(ns / 1e6).toFixed(3)}ms`;
}

export function sessionsPage(root, _params, { signal }) {
  const live = liveLine();
  const sessionsEl = h("div", { id: "sessions-body" }, h("p", { class: "muted" }, "Loading sessions…"));
  const locksEl = h("div", { id: "locks-body" }, h("p", { class: "muted" }, "Loading locks…"));
  replace(root, pageHead("Sessions & locks", live.el), h("h2", {}, "Locks held"), locksEl, h("h2", {}, "Sessions"),
    sessionsEl);
  let sessions = null;
  let entries = null; // KV entries (null: not loaded; false: this token may not read the KV)

  function render() {
    if (sessions === null || entries === null) return;
    live.ok();
    const held = {};
    for (const e of entries || []) if (e.Session) (held[e.Session] ||= []).push(e);
    const byId = Object.fromEntries(sessions.map((s) => [s.ID, s]));
    const locks = (entries || []).filter((e) => e.Session);
    if (entries === false) {
      replace(locksEl, h("p", { class: "notice notice-denied" }, "This token may not read the KV store: held keys are not shown."));
    } else if (!locks.length) {
      replace(locksEl, h("p", { class: "empty", id: "no-locks" }, "No key is locked."));
    } else {
      replace(locksEl, h("table", { class: "grid", id: "locks" },
        h("thead", {}, h("tr", {}, h("th", {}, "Key"), h("th", {}, "Held by session"), h("th", {}, "Name"),
          h("th", {}, "Node"), h("th", {}, "Lock index"))),
        h("tbody", {}, locks.map((e) => {
          const s = byId[e.Session];
          return h("tr", { "data-key": e.Key, "data-session": e.Session },
            h("td", {}, link(kvHref(e.Key), e.Key)),
            h("td", {}, h("code", { title: e.Session }, e.Session)),
            h("td", {}, s ? s.Name || h("span", { class: "muted" }, "—") : h("span", { class: "muted" }, "?")),
            h("td", {}, s ? link(`/ui/nodes/${segmentsPath([s.Node])}`, s.Node) : ""),
            h("td", { class: "num" }, String(e.LockIndex)));
        }))));
    }
    if (!sessions.length) {
      replace(sessionsEl, h("p", { class: "empty", id: "no-sessions" }, "No sessions (or none this token may see)."));
      return;
    }
    replace(sessionsEl, h("table", { class: "grid", id: "sessions" },
      h("thead", {}, h("tr", {}, h("th", {}, "Session"), h("th", {}, "Name"), h("th", {}, "Node"), h("th", {}, "Behavior"),
        h("th", {}, "TTL"), h("th", {}, "Lock delay"), h("th", {}, "Checks"), h("th", {}, "Holds"))),
      h("tbody", {}, sessions.map((s) => {
        const checks = [...(s.NodeChecks || s.Checks || []), ...(s.ServiceChecks || []).map((c) => c.ID)];
        return h("tr", { "data-session": s.ID },
          h("td", {}, h("code", { title: s.ID }, s.ID)),
          h("td", {}, s.Name || h("span", { class: "muted" }, "—")),
          h("td", {}, link(`/ui/nodes/${segmentsPath([s.Node])}`, s.Node)),
          h("td", {}, s.Behavior),
          h("td", {}, s.TTL || h("span", { class: "muted" }, "none")),
          h("td", {}, duration(s.LockDelay)),
          h("td", {}, checks.map((c) => h("span", { class: "tag" }, c))),
          h("td", {}, (held[s.ID] || []).map((e) => h("div", {}, link(kvHref(e.Key), e.Key)))));
      }))));
  }

  watch("/v1/session/list", signal, (r) => { sessions = r.body || []; render(); },
    (err) => showError(sessionsEl, live, err, "sessions"));
  watch("/v1/kv/?recurse", signal, (r) => { entries = r.body || []; render(); }, (err) => {
    if (err.status === 403) { entries = false; render(); } else replace(locksEl, errorBox(err, "the KV store"));
  }, { missingOk: true });
}
