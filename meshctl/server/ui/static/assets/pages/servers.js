// The cluster's servers: leader, peers, the Raft configuration and autopilot's health (where served).
import { APIError, get, poll } from "../api.js";
import { errorBox, fmtTime, h, pill, replace } from "../dom.js";
import { pageHead } from "./common.js";

const EVERY = 3000;

async function maybe(path, signal) {
  try {
    return { ok: true, ...(await get(path, { signal })) };
  } catch (err) {
    if (signal.aborted) throw err;
    return { ok: false, err };
  }
}

export function serversPage(root, _params, { signal }) {
  const updated = h("span", { class: "live" }, h("span", { class: "dot" }), "every 3s");
  const summaryEl = h("div", { id: "servers-summary" }, h("p", { class: "muted" }, "Loading…"));
  const raftEl = h("div", { id: "raft" });
  const healthEl = h("div", { id: "autopilot" });
  const membersEl = h("div", { id: "members" });
  replace(root, pageHead("Servers", updated), summaryEl, h("h2", {}, "Raft configuration"), raftEl,
    h("h2", {}, "Raft health (autopilot)"), healthEl, h("h2", {}, "Members"), membersEl);

  poll(async () => {
    const [leader, peers, raft, health, members] = await Promise.all([
      maybe("/v1/status/leader", signal), maybe("/v1/status/peers", signal),
      maybe("/v1/operator/raft/configuration", signal), maybe("/v1/operator/autopilot/health", signal),
      maybe("/v1/agent/members", signal)]);
    if (signal.aborted) return;
    updated.lastChild.textContent = `updated ${fmtTime(new Date())}`;
    const leaderAddr = leader.ok ? leader.body : "";
    replace(summaryEl, h("dl", { class: "facts facts-wide" },
      h("dt", {}, "Leader"), h("dd", { id: "leader" }, leaderAddr ? h("code", {}, leaderAddr)
        : h("span", { class: "pill pill-critical" }, leader.ok ? "no leader" : "unknown")),
      h("dt", {}, "Peers"), h("dd", { id: "peers" }, peers.ok
        ? (peers.body || []).map((p) => h("code", { class: p === leaderAddr ? "peer peer-leader" : "peer" }, p))
        : errorBox(peers.err, "peers"))));

    if (raft.ok) {
      const servers = raft.body.Servers || [];
      replace(raftEl, h("table", { class: "grid", id: "raft-servers" },
        h("thead", {}, h("tr", {}, h("th", {}, "Node"), h("th", {}, "Address"), h("th", {}, "ID"), h("th", {}, "Role"),
          h("th", {}, "Voter"))),
        h("tbody", {}, servers.map((s) => h("tr", { "data-node": s.Node, class: s.Leader ? "is-leader" : "" },
          h("td", { class: "strong" }, s.Node),
          h("td", {}, h("code", {}, s.Address)),
          h("td", {}, h("code", { class: "small" }, s.ID)),
          h("td", {}, s.Leader ? pill("passing", "leader") : "follower"),
          h("td", {}, s.Voter ? "yes" : "no"))))),
        h("p", { class: "muted small" }, `Raft index ${raft.body.Index}`));
    } else {
      replace(raftEl, errorBox(raft.err, "the Raft configuration (needs operator:read)"));
    }

    if (health.ok) {
      const b = health.body;
      replace(healthEl, h("p", {}, b.Healthy ? pill("passing", "healthy") : pill("critical", "unhealthy"),
        ` failure tolerance ${b.FailureTolerance}`),
      h("table", { class: "grid", id: "autopilot-servers" },
        h("thead", {}, h("tr", {}, h("th", {}, "Server"), h("th", {}, "Health"), h("th", {}, "Last contact"),
          h("th", {}, "Term"), h("th", {}, "Index"))),
        h("tbody", {}, (b.Servers || []).map((s) => h("tr", {},
          h("td", {}, s.Name), h("td", {}, s.Healthy ? pill("passing", "healthy") : pill("critical", "unhealthy")),
          h("td", {}, s.LastContact || "—"), h("td", {}, String(s.LastTerm ?? "")), h("td", {}, String(s.LastIndex ?? "")))))));
    } else if (health.err instanceof APIError && (health.err.status === 404 || health.err.status === 405)) {
      replace(healthEl, h("p", { class: "muted", id: "autopilot-absent" },
        "This store does not serve /v1/operator/autopilot/health."));
    } else {
      replace(healthEl, errorBox(health.err, "autopilot health"));
    }

    if (members.ok) {
      const list = members.body || [];
      replace(membersEl, list.length ? h("table", { class: "grid", id: "members-table" },
        h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "Address"), h("th", {}, "Role"), h("th", {}, "Status"),
          h("th", {}, "Datacenter"))),
        h("tbody", {}, list.map((m) => {
          const alive = m.Status === 1;
          const tags = m.Tags || {};
          return h("tr", {}, h("td", { class: "strong" }, m.Name), h("td", {}, h("code", {}, `${m.Addr}:${m.Port}`)),
            h("td", {}, tags.role === "consul" ? "server" : "client"),
            h("td", {}, alive ? pill("passing", "alive") : pill("critical", ["none", "alive", "leaving", "left", "failed"][m.Status] || String(m.Status))),
            h("td", {}, tags.dc || ""));
        }))) : h("p", { class: "muted" }, "No members (or none this token may see)."));
    } else {
      replace(membersEl, errorBox(members.err, "members"));
    }
  }, EVERY, signal);
}
