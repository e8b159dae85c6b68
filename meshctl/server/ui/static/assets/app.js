// The app shell: history routing under /ui/, the token box, one page at a time.
import { APIError, get, setToken, token } from "./api.js";
import { h, link, replace } from "./dom.js";
import { kvPage } from "./pages/kv.js";
import { loginPage } from "./pages/login.js";
import { nodePage, nodesPage } from "./pages/nodes.js";
import { serversPage } from "./pages/servers.js";
import { servicePage, servicesPage } from "./pages/services.js";
import { sessionsPage } from "./pages/sessions.js";

const BASE = "/ui/";
let current = null; // the AbortController of the page on screen

function decodeParts(rest) {
  return rest.split("/").map((p) => { try { return decodeURIComponent(p); } catch { return p; } });
}

function resolve(pathname) {
  const rest = pathname.startsWith(BASE) ? pathname.slice(BASE.length) : "";
  const [section, ...tail] = rest.split("/");
  const tailRaw = rest.slice(section.length + 1);
  switch (section) {
    case "":
    case "services":
      return tail.length && tail[0] ? ["services", servicePage, { name: decodeParts(tailRaw).join("/") }]
        : ["services", servicesPage, {}];
    case "nodes":
      return tail.length && tail[0] ? ["nodes", nodePage, { name: decodeParts(tailRaw).join("/") }]
        : ["nodes", nodesPage, {}];
    case "kv":
      return ["kv", kvPage, { path: decodeParts(tailRaw).join("/") }];
    case "sessions":
      return ["sessions", sessionsPage, {}];
    case "servers":
      return ["servers", serversPage, {}];
    case "login":
      return ["login", loginPage, {}];
    default:
      return ["", notFound, { pathname }];
  }
}

function notFound(root, { pathname }) {
  replace(root, h("h1", {}, "Not found"), h("p", {}, `Nothing at ${pathname}. `, link("/ui/services", "Services")));
}

export function navigate(href, { replaceState = false } = {}) {
  if (replaceState) history.replaceState(null, "", href);
  else history.pushState(null, "", href);
  render();
}

function render() {
  if (current) current.abort();
  current = new AbortController();
  const [section, page, params] = resolve(location.pathname);
  for (const a of document.querySelectorAll("#nav a")) {
    a.classList.toggle("active", a.dataset.section === section);
  }
  const root = document.getElementById("main");
  root.replaceChildren();
  root.dataset.page = section || "notfound";
  const ctx = { signal: current.signal, navigate, query: new URLSearchParams(location.search) };
  try {
    page(root, params, ctx);
  } catch (err) {
    console.error(err);
    replace(root, h("div", { class: "notice notice-error" }, String(err)));
  }
}

// The header's right side: who the stored token is, and log in / log out.
export async function refreshWho() {
  const who = document.getElementById("who");
  const stored = token();
  const loginLink = link(`/ui/login?next=${encodeURIComponent(location.pathname)}`, "Log in");
  loginLink.id = "login-link";
  if (!stored) {
    replace(who, h("span", { class: "muted" }, "no token"), loginLink);
    try {
      await get("/v1/acl/token/self");
    } catch (err) {
      if (err instanceof APIError && err.status === 401 && !token()) { // ACL support disabled: nothing to log in to
        replace(who, h("span", { class: "muted", id: "acls-off", title: "this cluster does not enforce ACLs" }, "ACLs off"));
      }
    }
    return;
  }
  const logout = h("button", { type: "button", class: "linkish", id: "logout", onclick: () => {
    setToken("");
    refreshWho();
    render();
  } }, "Log out");
  try {
    const { body } = await get("/v1/acl/token/self");
    const name = body.Description || `token ${String(body.AccessorID).slice(0, 8)}`;
    replace(who, h("span", { class: "token-name", title: `AccessorID ${body.AccessorID}` }, name), logout);
  } catch (err) {
    const text = err instanceof APIError && err.status === 403 ? "token not found" : "token (unverified)";
    replace(who, h("span", { class: "token-bad" }, text), loginLink, logout);
  }
}

document.addEventListener("click", (event) => {
  const a = event.target.closest("a[data-nav]");
  if (!a || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || !url.pathname.startsWith(BASE)) return;
  event.preventDefault();
  navigate(url.pathname + url.search);
});
window.addEventListener("popstate", render);
window.addEventListener("meshctl:token", () => refreshWho());

if (location.pathname === "/ui/" || location.pathname === "/ui") history.replaceState(null, "", "/ui/services");
refreshWho();
render();
