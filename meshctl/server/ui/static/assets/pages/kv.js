// The KV tree: browse folders, view, create, edit and delete keys with their flags.
// Every write is a check-and-set on the ModifyIndex that was read (`?cas=`), so two editors
// cannot silently overwrite each other: a lost race is shown with the current value, and the
// user's text stays in the form.
import { APIError, call, decodeValue, get, kvPath, watch } from "../api.js";
import { h, link, replace, shortId } from "../dom.js";
import { liveLine, pageHead, showError } from "./common.js";

function kvHref(key) {
  return "/ui/kv/" + key.split("/").map(encodeURIComponent).join("/");
}

function crumbs(path) {
  const parts = path.split("/");
  const out = [link("/ui/kv/", "Key/Value")];
  let acc = "";
  for (let i = 0; i < parts.length - 1; i++) {
    acc += parts[i] + "/";
    out.push(" / ", link(kvHref(acc), parts[i]));
  }
  return h("p", { class: "crumbs" }, out, " / ");
}

function writeError(err, verb = "saved") {
  if (err instanceof APIError && err.status === 403) {
    return [`Permission denied: not ${verb}, this token may not write this key. Your text is kept.`,
      err.text ? h("span", { class: "form-detail" }, err.text) : null];
  }
  return `Not ${verb}: ${err instanceof APIError ? `${err.status} ${err.text}` : err.message || err}. Your text is kept.`;
}

function setStatus(el, kind, text) {
  el.className = `form-status form-status-${kind}`;
  replace(el, text);
  el.setAttribute("role", kind === "error" ? "alert" : "status");
}

export function kvPage(root, { path }, ctx) {
  if (path === "" || path.endsWith("/")) folderPage(root, path, ctx);
  else keyPage(root, path, ctx);
}

function folderPage(root, prefix, { signal, navigate }) {
  const live = liveLine();
  const list = h("div", { id: "kv-list" }, h("p", { class: "muted" }, "Loading…"));
  const title = prefix ? prefix.split("/").slice(-2, -1)[0] + "/" : "Key/Value";
  replace(root, prefix ? crumbs(prefix.slice(0, -1)) : null,
    pageHead(title, live.el), createForm(prefix, navigate), list);
  watch(`${kvPath(prefix)}?keys&separator=/`, signal, (r) => {
    live.ok();
    const keys = (r.body || []).filter((k) => k !== prefix).sort();
    if (!keys.length) {
      replace(list, h("p", { class: "empty" }, prefix ? `Nothing under ${prefix} (or nothing this token may read).`
        : "The store holds no keys (or none this token may read)."));
      return;
    }
    replace(list, h("table", { class: "grid", id: "kv-keys" },
      h("thead", {}, h("tr", {}, h("th", {}, "Key"))),
      h("tbody", {}, keys.map((k) => {
        const name = k.slice(prefix.length);
        const folder = k.endsWith("/");
        return h("tr", { "data-key": k, class: folder ? "kv-folder" : "kv-key" },
          h("td", {}, h("span", { class: folder ? "icon-folder" : "icon-key", "aria-hidden": "true" }),
            link(kvHref(k), name)));
      }))));
  }, (err) => showError(list, live, err, `keys under ${prefix || "/"}`), { missingOk: true });
}

function createForm(prefix, navigate) {
  const name = h("input", { id: "kv-new-key", name: "key", required: true, autocomplete: "off",
    placeholder: "name, or folder/name, or folder/" });
  const value = h("textarea", { id: "kv-new-value", rows: 4, spellcheck: "false" });
  const flags = h("input", { id: "kv-new-flags", type: "number", min: 0, value: "0" });
  const status = h("p", { class: "form-status", id: "kv-new-status" });
  const form = h("form", { class: "card kv-create", id: "kv-create" },
    h("h2", {}, "Create a key", prefix ? h("span", { class: "muted" }, ` under ${prefix}`) : null),
    h("label", {}, "Key", h("span", { class: "prefix-input" }, prefix ? h("code", {}, prefix) : null, name)),
    h("label", {}, "Value", value),
    h("label", { class: "short" }, "Flags", flags),
    h("div", { class: "actions" }, h("button", { type: "submit", id: "kv-create-submit" }, "Create")),
    status);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = prefix + name.value.replace(/^\/+/, "");
    if (!name.value.trim()) return;
    const folder = key.endsWith("/");
    try {
      const r = await call("PUT", `${kvPath(key)}?cas=0&flags=${Number(flags.value) || 0}`,
        { body: folder ? "" : value.value });
      if (r.body === true) {
        navigate(kvHref(key));
      } else {
        setStatus(status, "error", `Not created: ${key} already exists. Open it to edit it.`);
        status.append(" ", link(kvHref(key), "Open"));
      }
    } catch (err) {
      setStatus(status, "error", writeError(err, "created"));
    }
  });
  // a closed <details> keeps the listing first; it opens on click
  const details = h("details", { class: "create-details", id: "kv-create-details" },
    h("summary", { class: "button-like" }, "Create"), form);
  return details;
}

function keyPage(root, key, { signal, navigate }) {
  const live = liveLine();
  const body = h("div", { id: "kv-body" }, h("p", { class: "muted" }, "Loading…"));
  replace(root, crumbs(key), pageHead(key.split("/").pop(), live.el), h("p", { class: "muted keypath" },
    h("code", {}, key)), body);
  let editor = null;
  watch(kvPath(key), signal, (r) => {
    live.ok();
    const entry = r.body ? r.body[0] : null;
    if (!editor) {
      if (!entry) {
        replace(body, h("p", { class: "empty", id: "kv-missing" }, `No key ${key} (or this token may not read it).`),
          createForm(key.includes("/") ? key.slice(0, key.lastIndexOf("/") + 1) : "", navigate));
        return;
      }
      editor = keyEditor(key, entry, navigate);
      replace(body, editor.el);
    } else {
      editor.changed(entry);
    }
  }, (err) => showError(body, live, err, `key ${key}`), { missingOk: true });
}

function keyEditor(key, entry, navigate) {
  let read = entry; // the entry the user's edit is based on (its ModifyIndex is the CAS index)
  let lastSave = null; // {text, flags} of our own last successful write
  const decoded = decodeValue(entry.Value);
  const value = h("textarea", { id: "kv-value", rows: 10, spellcheck: "false", readonly: decoded.binary || null },
    decoded.text);
  const flags = h("input", { id: "kv-flags", type: "number", min: 0, value: String(entry.Flags || 0) });
  const status = h("p", { class: "form-status", id: "kv-status" });
  const notice = h("div", { id: "kv-notice" });
  const facts = h("dl", { class: "facts" });
  const save = h("button", { type: "submit", id: "kv-save" }, "Save");
  const del = h("button", { type: "button", id: "kv-delete", class: "danger" }, "Delete");
  const confirmBox = h("span", { class: "confirm", hidden: true },
    "Delete this key? ",
    h("button", { type: "button", id: "kv-delete-yes", class: "danger", onclick: () => remove() }, "Yes, delete"),
    h("button", { type: "button", class: "secondary", onclick: () => { confirmBox.hidden = true; } }, "No"));
  del.addEventListener("click", () => { confirmBox.hidden = false; });

  function showFacts() {
    replace(facts,
      h("dt", {}, "Modify index"), h("dd", { id: "kv-modify-index" }, String(read.ModifyIndex)),
      h("dt", {}, "Create index"), h("dd", {}, String(read.CreateIndex)),
      h("dt", {}, "Lock index"), h("dd", {}, String(read.LockIndex || 0)),
      h("dt", {}, "Session"), h("dd", {}, read.Session
        ? link("/ui/sessions", h("code", { title: read.Session }, shortId(read.Session)), " (held)")
        : h("span", { class: "muted" }, "not locked")));
  }
  showFacts();

  function adopt(current) {
    read = current;
    showFacts();
  }

  // Someone else's write or delete while the form is open: said at once, the form untouched.
  function changed(current) {
    if (current && current.ModifyIndex === read.ModifyIndex) {
      if (current.Session !== read.Session || current.LockIndex !== read.LockIndex) adopt(current);
      return;
    }
    if (current && lastSave && decodeValue(current.Value).text === lastSave.text && current.Flags === lastSave.flags) {
      lastSave = null;
      adopt(current);
      return;
    }
    if (!current) {
      replace(notice, h("div", { class: "notice notice-warn", id: "kv-changed" },
        "This key was deleted since you opened it. Saving will create it again only if you confirm."));
      return;
    }
    replace(notice, h("div", { class: "notice notice-warn", id: "kv-changed" },
      `This key was changed by someone else (modify index ${current.ModifyIndex}). Saving will ask first.`));
  }

  function conflict(current, verb) {
    const cur = current ? decodeValue(current.Value) : null;
    const overwrite = h("button", { type: "button", id: "kv-overwrite", class: "danger" },
      verb === "delete" ? "Delete anyway" : "Overwrite with my text");
    const reload = h("button", { type: "button", id: "kv-reload", class: "secondary" },
      "Discard my text, load the current value");
    overwrite.addEventListener("click", () => {
      if (current) adopt(current);
      else read = { ...read, ModifyIndex: 0 };
      replace(notice);
      if (verb === "delete") remove(); else write();
    });
    reload.addEventListener("click", () => {
      if (!current) { navigate(kvHref(key.slice(0, key.lastIndexOf("/") + 1))); return; }
      adopt(current);
      value.value = cur.text;
      flags.value = String(current.Flags || 0);
      replace(notice);
      setStatus(status, "info", "Loaded the current value.");
    });
    replace(notice, h("div", { class: "notice notice-conflict", id: "kv-conflict", role: "alert" },
      h("strong", {}, verb === "delete" ? "Not deleted: " : "Not saved: "),
      "someone else changed this key after you opened it. Your text is still in the form.",
      current ? [h("div", { class: "current-label" }, `Current value (modify index ${current.ModifyIndex}, flags ${current.Flags || 0}):`),
        h("pre", { class: "output", id: "kv-current" }, cur.text)]
        : h("div", { class: "current-label", id: "kv-current" }, "The key has been deleted."),
      h("div", { class: "actions" }, overwrite, reload)));
  }

  async function write() {
    const text = value.value;
    const f = Number(flags.value) || 0;
    setStatus(status, "info", "Saving…");
    try {
      const r = await call("PUT", `${kvPath(key)}?cas=${read.ModifyIndex}&flags=${f}`, { body: text });
      if (r.body === true) {
        lastSave = { text, flags: f };
        replace(notice);
        setStatus(status, "ok", "Saved.");
        try { // the new ModifyIndex: the base of the next edit
          const now = await get(kvPath(key));
          const cur = now.body && now.body[0];
          if (cur && decodeValue(cur.Value).text === text && cur.Flags === f && cur.ModifyIndex !== read.ModifyIndex) {
            lastSave = null;
            adopt(cur);
          }
        } catch { /* the watch will tell */ }
        return;
      }
      const now = await get(kvPath(key)).catch((e) => (e instanceof APIError && e.status === 404 ? null : Promise.reject(e)));
      setStatus(status, "error", "Not saved: the key changed since you opened it (see above).");
      conflict(now && now.body ? now.body[0] : null, "save");
    } catch (err) {
      setStatus(status, "error", writeError(err));
    }
  }

  async function remove() {
    confirmBox.hidden = true;
    try {
      const r = await call("DELETE", `${kvPath(key)}?cas=${read.ModifyIndex}`);
      if (r.body === true) {
        navigate(kvHref(key.slice(0, key.lastIndexOf("/") + 1)));
        return;
      }
      const now = await get(kvPath(key)).catch((e) => (e instanceof APIError && e.status === 404 ? null : Promise.reject(e)));
      setStatus(status, "error", "Not deleted: the key changed since you opened it (see above).");
      conflict(now && now.body ? now.body[0] : null, "delete");
    } catch (err) {
      setStatus(status, "error", writeError(err, "deleted"));
    }
  }

  const form = h("form", { class: "card kv-edit", id: "kv-form" },
    decoded.binary ? h("p", { class: "notice notice-info" },
      `A binary value (${decoded.size} bytes), shown as base64; it cannot be edited here.`) : null,
    h("label", {}, "Value", value),
    h("label", { class: "short" }, "Flags", flags),
    h("div", { class: "actions" }, decoded.binary ? null : save, del, confirmBox),
    status);
  form.addEventListener("submit", (event) => { event.preventDefault(); write(); });
  return { el: h("div", { class: "kv-editor" }, notice, form, h("section", { class: "card" }, h("h2", {}, "Details"), facts)),
    changed };
}

