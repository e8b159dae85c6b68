// The public HTTP API, as any Consul client speaks it: the token in X-Consul-Token, blocking queries
// with ?index=&wait=, X-Consul-Index on every read.

const TOKEN_KEY = "meshctl.ui.token";
const WAIT = "60s";

export function token() {
  try { return localStorage.getItem(TOKEN_KEY) || ""; } catch { return ""; }
}

export function setToken(value) {
  if (value) localStorage.setItem(TOKEN_KEY, value);
  else localStorage.removeItem(TOKEN_KEY);
}

export class APIError extends Error {
  constructor(status, text, index) {
    super(`${status} ${text}`);
    this.status = status;
    this.text = (text || "").trim();
    this.index = index;
  }
}

// One call; `{ body, index, filtered, status }`, or an APIError for any status but 2xx.
export async function call(method, path, { body, signal, headers, tokenOverride } = {}) {
  const sent = { ...(headers || {}) };
  const tok = tokenOverride !== undefined ? tokenOverride : token();
  if (tok) sent["X-Consul-Token"] = tok;
  const resp = await fetch(path, { method, headers: sent, body, signal, cache: "no-store", credentials: "omit" });
  const text = await resp.text();
  const index = Number(resp.headers.get("X-Consul-Index") || 0);
  if (!resp.ok) throw new APIError(resp.status, text, index);
  let parsed = text;
  if ((resp.headers.get("Content-Type") || "").includes("json")) parsed = text ? JSON.parse(text) : null;
  return { body: parsed, index, status: resp.status,
           filtered: resp.headers.get("X-Consul-Results-Filtered-By-ACLs") === "true" };
}

export const get = (path, opts) => call("GET", path, opts);

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => { clearTimeout(timer); resolve(); }, { once: true });
  });
}

// Long polls hold a connection each, and a browser has six per host for all its tabs: a page that
// is hidden (another tab, minimised, navigated away from, frozen in the back-forward cache) lets
// go of its polls and takes them up again, at the index it had, once it is visible.
const inflight = new Set();

function dropPolls() {
  for (const c of inflight) c.abort();
}

document.addEventListener("visibilitychange", () => { if (document.hidden) dropPolls(); });
window.addEventListener("pagehide", dropPolls);

function whenVisible(signal) {
  if (!document.hidden) return Promise.resolve();
  return new Promise((resolve) => {
    const check = () => {
      if (document.hidden && !signal.aborted) return;
      document.removeEventListener("visibilitychange", check);
      window.removeEventListener("pageshow", check);
      resolve();
    };
    document.addEventListener("visibilitychange", check);
    window.addEventListener("pageshow", check);
    signal.addEventListener("abort", check, { once: true });
  });
}

// One GET that is dropped (AbortError, `dropped` true) when the page is hidden.
async function pollOnce(url, signal) {
  const ctl = new AbortController();
  const onAbort = () => ctl.abort();
  signal.addEventListener("abort", onAbort, { once: true });
  inflight.add(ctl);
  try {
    return await get(url, { signal: ctl.signal });
  } catch (err) {
    if (ctl.signal.aborted && !signal.aborted) err.dropped = true;
    throw err;
  } finally {
    inflight.delete(ctl);
    signal.removeEventListener("abort", onAbort);
  }
}

// Follow a blocking endpoint until `signal` aborts: `onData(result)` on the first answer and after
// every change of X-Consul-Index; `onError(err)` on failures (retried with a backoff). With
// `missingOk`, a 404 is an answer with body null (a KV key that does not exist yet).
export function watch(path, signal, onData, onError, { missingOk = false } = {}) {
  let index = 0;
  let delivered = false;
  (async () => {
    let backoff = 0;
    while (!signal.aborted) {
      await whenVisible(signal);
      if (signal.aborted) return;
      const sep = path.includes("?") ? "&" : "?";
      const url = index ? `${path}${sep}index=${index}&wait=${WAIT}` : path;
      let result;
      try {
        result = await pollOnce(url, signal);
      } catch (err) {
        if (signal.aborted) return;
        if (err.dropped) continue;
        if (missingOk && err instanceof APIError && err.status === 404) {
          result = { body: null, index: err.index, status: 404, filtered: false };
        } else {
          onError?.(err);
          delivered = false;
          backoff = Math.min(backoff ? backoff * 2 : 500, 10000);
          await sleep(backoff, signal);
          continue;
        }
      }
      backoff = 0;
      if (signal.aborted) return;
      const next = result.index > 0 ? result.index : 0;
      const changed = !delivered || next !== index;
      // an index going backwards (a restarted store) starts over; no index at all: poll
      index = next < index ? 0 : next;
      if (changed) {
        delivered = true;
        try { onData(result); } catch (e) { console.error(e); }
      }
      if (!next) await sleep(3000, signal);
    }
  })();
}

// Call `fn` now and every `ms` until `signal` aborts (for the endpoints that do not block).
export function poll(fn, ms, signal) {
  (async () => {
    while (!signal.aborted) {
      await whenVisible(signal);
      if (signal.aborted) return;
      try { await fn(); } catch (e) { if (!signal.aborted) console.error(e); }
      await sleep(ms, signal);
    }
  })();
}

export function kvPath(key) {
  return "/v1/kv/" + key.split("/").map(encodeURIComponent).join("/");
}

export function decodeValue(b64) {
  if (b64 === null || b64 === undefined) return { text: "", binary: false, size: 0 };
  const raw = atob(b64);
  const bytes = Uint8Array.from(raw, (c) => c.charCodeAt(0));
  try {
    return { text: new TextDecoder("utf-8", { fatal: true }).decode(bytes), binary: false, size: bytes.length };
  } catch {
    return { text: b64, binary: true, size: bytes.length };
  }
}
