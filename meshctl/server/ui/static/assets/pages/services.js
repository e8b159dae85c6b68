// Services: every service with its instances, tags and check states; one service's instances.
import { get, watch } from "../api.js";
import { h, link, pill, replace, segmentsPath, summary, worst } from "../dom.js";
import { checksTable, failingList, filteredNote, liveLine, pageHead, showError } from "./common.js";

// The list follows two blocking queries: the catalog's services (instances are fetched again
// when it changes) and every check (/v1/health/state/any), from which each instance's health is
// computed here, so a check changing anywhere costs one answer and no further request.
export function servicesPage(root, _params, { signal }) {
  const live = liveLine();
  const body = h("div", { id: "services-body" }, h("p", { class: "muted" }, "Loading services…"));
  replace(root, pageHead("Services", live.el), body);
  let names = null; // {name: tags} from the catalog
  let instances = null; // {name: [catalog service entries]}
  let checks = null; // every check the token may read
  let filtered = false;
  let seq = 0;

  async function loadInstances() {
    const mine = ++seq;
    const list = Object.keys(names).sort();
    let answers;
    try {
      answers = await Promise.all(list.map((n) => get(`/v1/catalog/service/${encodeURIComponent(n)}`, { signal })));
    } catch (err) {
      if (!signal.aborted && mine === seq) showError(body, live, err, "service instances");
      return;
    }
    if (signal.aborted || mine !== seq) return;
    instances = Object.fromEntries(list.map((n, i) => [n, answers[i].body || []]));
    filtered = filtered || answers.some((a) => a.filtered);
    render();
  }

  function render() {
    if (!instances || !checks) return;
    live.ok();
    const rows = Object.keys(instances).sort();
    if (!rows.length) {
      replace(body, filteredNote(filtered),
        h("p", { class: "empty", id: "no-services" }, "No services (none this token may see)."));
      return;
    }
    const byInstance = {};
    const byNode = {};
    for (const c of checks) {
      if (c.ServiceID) (byInstance[`${c.Node}\u0000${c.ServiceID}`] ||= []).push(c);
      else (byNode[c.Node] ||= []).push(c);
    }
    const tbody = h("tbody");
    for (const name of rows) {
      const list = instances[name];
      const mine = list.flatMap((i) => [...(byNode[i.Node] || []), ...(byInstance[`${i.Node}\u0000${i.ServiceID}`] || [])]);
      const status = list.length ? worst(mine) : "passing";
      const tags = [...new Set([...(names[name] || []), ...list.flatMap((i) => i.ServiceTags || [])])];
      tbody.append(h("tr", { class: `service-row status-${status}`, "data-service": name, "data-status": status },
        h("td", {}, link(`/ui/services/${encodeURIComponent(name)}`, name)),
        h("td", {}, summary(mine)),
        h("td", { class: "num" }, `${list.length} instance${list.length === 1 ? "" : "s"}`),
        h("td", {}, tags.length ? tags.map((t) => h("span", { class: "tag" }, t)) : h("span", { class: "muted" }, "—"))));
      const failing = failingList(mine);
      if (failing) {
        tbody.append(h("tr", { class: `failing-row status-${status}`, "data-failing-for": name },
          h("td", { colspan: 4 }, failing)));
      }
    }
    replace(body, filteredNote(filtered),
      h("table", { class: "grid", id: "services" },
        h("thead", {}, h("tr", {}, h("th", {}, "Service"), h("th", {}, "Health"), h("th", {}, "Instances"),
          h("th", {}, "Tags"))),
        tbody));
  }

  watch("/v1/catalog/services", signal, (r) => {
    names = r.body || {};
    filtered = r.filtered;
    loadInstances();
  }, (err) => showError(body, live, err, "the service catalog"));
  watch("/v1/health/state/any", signal, (r) => {
    checks = r.body || [];
    render();
  }, (err) => showError(body, live, err, "health checks"));
}

export function servicePage(root, { name }, { signal }) {
  const live = liveLine();
  const body = h("div", { id: "service-body" }, h("p", { class: "muted" }, "Loading…"));
  replace(root,
    h("p", { class: "crumbs" }, link("/ui/services", "Services"), " / "),
    pageHead(name, live.el), body);
  watch(`/v1/health/service/${encodeURIComponent(name)}`, signal, (r) => {
    live.ok();
    const instances = r.body || [];
    if (!instances.length) {
      replace(body, filteredNote(r.filtered),
        h("p", { class: "empty" }, `No instances of ${name} (or none this token may see).`));
      return;
    }
    replace(body, filteredNote(r.filtered), instances.map(instanceCard));
  }, (err) => showError(body, live, err, `service ${name}`));
}

function instanceCard(inst) {
  const svc = inst.Service;
  const checks = inst.Checks || [];
  const status = worst(checks);
  const address = svc.Address || inst.Node.Address;
  const meta = Object.entries(svc.Meta || {});
  return h("section", { class: `card instance status-${status}`, "data-instance": svc.ID, "data-status": status },
    h("div", { class: "card-head" },
      h("h2", {}, svc.ID),
      pill(status),
      h("span", { class: "muted" }, "on node ", link(`/ui/nodes/${segmentsPath([inst.Node.Node])}`, inst.Node.Node)),
      h("code", { class: "addr" }, svc.Port ? `${address}:${svc.Port}` : address)),
    h("div", { class: "card-meta" },
      (svc.Tags || []).map((t) => h("span", { class: "tag" }, t)),
      meta.map(([k, v]) => h("span", { class: "meta" }, `${k}=${v}`))),
    checksTable(checks));
}
