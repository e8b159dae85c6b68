// Services: every service with its instances, tags and check states; one service's instances.
import { get, watch } from "../api.js";
import { h, link, pill, replace, segmentsPath, summary, worst } from "../dom.js";
import { checksTable, failingList, filteredNote, liveLine, pageHead, showError } from "./common.js";

export function servicesPage(root, _params, { signal }) {
  const live = liveLine();
  const body = h("div", { id: "services-body" }, h("p", { class: "muted" }, "Loading services…"));
  replace(root, pageHead("Services", live.el), body);
  let names = null; // {name: tags} from the catalog
  let filtered = false;
  let seq = 0;

  async function refresh() {
    if (!names) return;
    const mine = ++seq;
    const list = Object.keys(names).sort();
    let health;
    try {
      health = await Promise.all(list.map((n) => get(`/v1/health/service/${encodeURIComponent(n)}`, { signal })));
    } catch (err) {
      if (!signal.aborted && mine === seq) showError(body, live, err, "service health");
      return;
    }
    if (signal.aborted || mine !== seq) return;
    live.ok();
    const rows = list.map((name, i) => ({ name, tags: names[name] || [], instances: health[i].body || [],
      filtered: health[i].filtered }));
    render(rows, filtered || rows.some((r) => r.filtered));
  }

  function render(rows, anyFiltered) {
    if (!rows.length) {
      replace(body, filteredNote(anyFiltered),
        h("p", { class: "empty", id: "no-services" }, "No services (none this token may see)."));
      return;
    }
    const tbody = h("tbody");
    for (const r of rows) {
      const checks = r.instances.flatMap((inst) => inst.Checks || []);
      const status = r.instances.length ? worst(checks) : "passing";
      const tags = [...new Set([...(r.tags || []), ...r.instances.flatMap((i) => i.Service.Tags || [])])];
      tbody.append(h("tr", { class: `service-row status-${status}`, "data-service": r.name, "data-status": status },
        h("td", {}, link(`/ui/services/${encodeURIComponent(r.name)}`, r.name)),
        h("td", {}, summary(checks)),
        h("td", { class: "num" }, `${r.instances.length} instance${r.instances.length === 1 ? "" : "s"}`),
        h("td", {}, tags.length ? tags.map((t) => h("span", { class: "tag" }, t)) : h("span", { class: "muted" }, "—"))));
      const failing = failingList(checks);
      if (failing) {
        tbody.append(h("tr", { class: `failing-row status-${status}`, "data-failing-for": r.name },
          h("td", { colspan: 4 }, failing)));
      }
    }
    replace(body, filteredNote(anyFiltered),
      h("table", { class: "grid", id: "services" },
        h("thead", {}, h("tr", {}, h("th", {}, "Service"), h("th", {}, "Health"), h("th", {}, "Instances"),
          h("th", {}, "Tags"))),
        tbody));
  }

  watch("/v1/catalog/services", signal, (r) => {
    names = r.body || {};
    filtered = r.filtered;
    refresh();
  }, (err) => showError(body, live, err, "the service catalog"));
  watch("/v1/health/state/any", signal, () => refresh(), () => live.fail());
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
