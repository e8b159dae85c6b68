// Nodes with their checks; one node's services and checks.
import { watch } from "../api.js";
import { h, link, replace, segmentsPath, summary, worst } from "../dom.js";
import { checksTable, failingList, filteredNote, liveLine, pageHead, showError } from "./common.js";

export function nodesPage(root, _params, { signal }) {
  const live = liveLine();
  const body = h("div", { id: "nodes-body" }, h("p", { class: "muted" }, "Loading nodes…"));
  replace(root, pageHead("Nodes", live.el), body);
  let nodes = null;
  let checks = null;
  let filtered = false;

  function render() {
    if (!nodes || !checks) return;
    live.ok();
    if (!nodes.length) {
      replace(body, filteredNote(filtered), h("p", { class: "empty" }, "No nodes (none this token may see)."));
      return;
    }
    const byNode = {};
    for (const c of checks) (byNode[c.Node] ||= []).push(c);
    const withMeta = nodes.some((n) => Object.keys(n.Meta || {}).length);
    const tbody = h("tbody");
    for (const n of nodes) {
      const mine = byNode[n.Node] || [];
      const status = worst(mine);
      tbody.append(h("tr", { class: `node-row status-${status}`, "data-node": n.Node, "data-status": status },
        h("td", {}, link(`/ui/nodes/${segmentsPath([n.Node])}`, n.Node)),
        h("td", {}, h("code", {}, n.Address)),
        h("td", {}, summary(mine)),
        withMeta ? h("td", {}, Object.entries(n.Meta || {}).map(([k, v]) => h("span", { class: "meta" }, `${k}=${v}`)))
          : null));
      const failing = failingList(mine, { showNode: false });
      if (failing) {
        tbody.append(h("tr", { class: `failing-row status-${status}` }, h("td", { colspan: withMeta ? 4 : 3 }, failing)));
      }
    }
    replace(body, filteredNote(filtered), h("table", { class: "grid", id: "nodes" },
      h("thead", {}, h("tr", {}, h("th", {}, "Node"), h("th", {}, "Address"), h("th", {}, "Health"),
        withMeta ? h("th", {}, "Meta") : null)),
      tbody));
  }

  watch("/v1/catalog/nodes", signal, (r) => { nodes = r.body || []; filtered = r.filtered; render(); },
    (err) => showError(body, live, err, "the node list"));
  watch("/v1/health/state/any", signal, (r) => { checks = r.body || []; render(); },
    (err) => showError(body, live, err, "health checks"));
}

export function nodePage(root, { name }, { signal }) {
  const live = liveLine();
  const services = h("div", { id: "node-services" }, h("p", { class: "muted" }, "Loading…"));
  const checks = h("div", { id: "node-checks" }, h("p", { class: "muted" }, "Loading…"));
  const info = h("div", { class: "node-info" });
  replace(root, h("p", { class: "crumbs" }, link("/ui/nodes", "Nodes"), " / "), pageHead(name, live.el), info,
    h("h2", {}, "Checks"), checks, h("h2", {}, "Services"), services);
  const path = encodeURIComponent(name);
  watch(`/v1/catalog/node/${path}`, signal, (r) => {
    live.ok();
    if (!r.body) {
      replace(info, h("p", { class: "empty" }, `No node ${name} (or this token may not read it).`));
      replace(services);
      return;
    }
    const node = r.body.Node;
    replace(info, h("dl", { class: "facts" },
      h("dt", {}, "Address"), h("dd", {}, h("code", {}, node.Address)),
      h("dt", {}, "Datacenter"), h("dd", {}, node.Datacenter || ""),
      node.ID ? [h("dt", {}, "ID"), h("dd", {}, h("code", {}, node.ID))] : null,
      Object.entries(node.Meta || {}).length ? [h("dt", {}, "Meta"),
        h("dd", {}, Object.entries(node.Meta).map(([k, v]) => h("span", { class: "meta" }, `${k}=${v}`)))] : null));
    const list = Object.values(r.body.Services || {}).sort((a, b) => a.ID.localeCompare(b.ID));
    replace(services, list.length ? h("table", { class: "grid" },
      h("thead", {}, h("tr", {}, h("th", {}, "Service"), h("th", {}, "ID"), h("th", {}, "Address"), h("th", {}, "Tags"))),
      h("tbody", {}, list.map((s) => h("tr", { "data-service": s.Service },
        h("td", {}, link(`/ui/services/${encodeURIComponent(s.Service)}`, s.Service)),
        h("td", {}, h("code", {}, s.ID)),
        h("td", {}, h("code", {}, s.Port ? `${s.Address || node.Address}:${s.Port}` : s.Address || node.Address)),
        h("td", {}, (s.Tags || []).map((t) => h("span", { class: "tag" }, t)))))))
      : h("p", { class: "muted" }, "No services."));
  }, (err) => showError(info, live, err, `node ${name}`), { missingOk: true });
  watch(`/v1/health/node/${path}`, signal, (r) => {
    const list = r.body || [];
    replace(checks, list.length ? [h("p", {}, summary(list)), checksTable(list)]
      : h("p", { class: "muted" }, "No checks."));
  }, (err) => showError(checks, live, err, `checks of ${name}`));
}
