// Token login: the token is kept in this browser's localStorage and sent as X-Consul-Token.
import { APIError, get, setToken, token } from "../api.js";
import { h, replace } from "../dom.js";
import { pageHead } from "./common.js";

export function loginPage(root, _params, { navigate, query }) {
  const input = h("input", { id: "token-input", type: "password", autocomplete: "off", spellcheck: "false",
    placeholder: "SecretID of an ACL token", value: token() });
  const status = h("p", { class: "form-status", id: "login-status" });
  const next = query.get("next");
  const target = next && next.startsWith("/ui/") && !next.startsWith("/ui/login") ? next : "/ui/services";
  const form = h("form", { class: "card login", id: "login-form" },
    h("label", {}, "Token", input),
    h("div", { class: "actions" }, h("button", { type: "submit", id: "login-submit" }, "Log in"),
      token() ? h("button", { type: "button", class: "secondary", id: "login-clear", onclick: () => {
        setToken("");
        window.dispatchEvent(new Event("meshctl:token"));
        navigate(target);
      } }, "Log out") : null),
    status);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const secret = input.value.trim();
    if (!secret) return;
    status.className = "form-status";
    status.textContent = "Checking…";
    try {
      await get("/v1/acl/token/self", { tokenOverride: secret });
      setToken(secret);
      window.dispatchEvent(new Event("meshctl:token"));
      navigate(target);
    } catch (err) {
      status.className = "form-status form-status-error";
      if (err instanceof APIError && err.status === 401) {
        status.textContent = "ACLs are disabled on this cluster: no token is needed.";
      } else if (err instanceof APIError && err.status === 403) {
        status.textContent = "This token is not known to the cluster.";
      } else {
        status.textContent = `Could not check the token: ${err.message || err}`;
      }
    }
  });
  replace(root, pageHead("Log in"), h("p", { class: "muted" },
    "With ACLs on, every page shows what this token may see. It is kept in this browser only (localStorage) ",
    "and sent to this agent as X-Consul-Token."), form);
  input.focus();
}
