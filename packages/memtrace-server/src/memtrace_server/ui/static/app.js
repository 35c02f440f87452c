// The memtrace memory explorer (docs/ui.md): a single page over the public API.
//
// Views are chosen by the URL's fragment (#/timeline?agent_id=…, #/memory/<id>, #/agents,
// #/agents/<id>, #/sessions, #/sessions/<id>), so a view and its filters can be shared as a
// link; the API key never goes into it. Memory content is untrusted: it is only ever put into
// the page as text nodes (lib/dom.js), never parsed as HTML.

import { activityChart } from "./lib/chart.js";
import { ApiError, api, apiUrl, authHeaders, credentials, setUnauthorizedHandler, unauthorized } from "./lib/api.js";
import { append, debounce, formatDuration, h, relativeTime, replaceChildren, timeElement } from "./lib/dom.js";
import { LiveStream } from "./lib/sse.js";
import { matchRuns, queryStems } from "./lib/text.js";

const MEMORY_TYPES = ["episodic", "session", "decision", "entity"];
const CONTEXT_FORMATS = [
  ["markdown", "Markdown"],
  ["xml", "XML"],
  ["jsonl", "JSON Lines"],
];
const WINDOWS = [
  ["", "Any time"],
  ["15m", "Last 15 minutes"],
  ["1h", "Last hour"],
  ["6h", "Last 6 hours"],
  ["24h", "Last 24 hours"],
  ["7d", "Last 7 days"],
  ["30d", "Last 30 days"],
];
// the agents page's activity windows: [value, label, bucket]
const ACTIVITY_WINDOWS = [
  ["6h", "Last 6 hours", "15m"],
  ["24h", "Last 24 hours", "1h"],
  ["7d", "Last 7 days", "1h"],
  ["30d", "Last 30 days", "6h"],
];
const CONTEXT_WINDOWS = [
  ["24h", "Last 24 hours"],
  ["7d", "Last 7 days"],
  ["30d", "Last 30 days"],
  ["365d", "Last year"],
];
const PAGE_SIZE = 50;
const EXCERPT = 480;
// the timeline's filters, as in the URL and GET /api/v1/memories
const FILTERS = ["agent_id", "session_id", "memory_type", "event_type", "tags", "since", "until"];

const state = {
  principal: null, // {org_id, key_id, key_name, permissions}
  agents: new Map(), // id -> agent, for names
  view: null, // {name, update?(params), close?()}
  lastTimeline: "#/timeline",
  routedOnce: false,
};

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const account = document.getElementById("account");
const toast = document.getElementById("toast");

const canWrite = () => Boolean(state.principal && state.principal.permissions.includes("write"));
const enc = encodeURIComponent;

// --- small pieces -------------------------------------------------------------------------

let toastTimer = 0;
function announce(message) {
  clearTimeout(toastTimer);
  toast.textContent = message;
  toast.classList.add("visible");
  toastTimer = setTimeout(() => {
    toast.classList.remove("visible");
    toast.textContent = "";
  }, 6000);
}

function errorBox(error, what) {
  const message = error instanceof ApiError ? `${error.message} (HTTP ${error.status})` : String(error.message || error);
  return h("div", { class: "error", role: "alert" }, h("strong", null, `${what}: `), message);
}

function agentName(id) {
  const agent = state.agents.get(id);
  return agent ? agent.name : id;
}

function hashFor(path, params) {
  const query = params ? new URLSearchParams([...params].filter(([, v]) => v !== "" && v != null)).toString() : "";
  return `#/${path}${query ? `?${query}` : ""}`;
}

function shortId(id) {
  return id.length > 16 ? `${id.slice(0, 8)}…${id.slice(-6)}` : id;
}

function excerpt(text, stems, length = EXCERPT) {
  // a long text is cut to `length` characters around its first matched word
  if (text.length <= length) return text;
  let start = 0;
  if (stems && stems.size) {
    let at = 0;
    for (const run of matchRuns(text, stems)) {
      if (run.match) break;
      at += run.text.length;
    }
    if (at < text.length && at > length * 0.6) start = at - Math.floor(length / 3);
  }
  const piece = text.slice(start, start + length);
  return `${start > 0 ? "…" : ""}${piece}${start + length < text.length ? "…" : ""}`;
}

/** Text with the words the search matched in <mark>: text nodes and <mark> elements only. */
function highlighted(text, stems) {
  const fragment = document.createDocumentFragment();
  for (const run of matchRuns(text, stems)) {
    fragment.append(run.match ? h("mark", null, run.text) : document.createTextNode(run.text));
  }
  return fragment;
}

function field(label, control, hint) {
  const id = control.id;
  return h(
    "div",
    { class: "field" },
    h("label", { for: id }, label),
    control,
    hint ? h("span", { class: "hint", id: `${id}-hint` }, hint) : null,
  );
}

function select(id, name, options, value) {
  const el = h("select", { id, name });
  let found = false;
  for (const [optionValue, label] of options) {
    const selected = optionValue === value;
    found ||= selected;
    el.append(h("option", { value: optionValue, selected }, label));
  }
  if (!found && value) el.append(h("option", { value, selected: true }, value));
  return el;
}

function badge(text, kind) {
  return h("span", { class: ["badge", kind && `badge-${kind}`] }, text);
}

function tagList(tags) {
  if (!tags || !tags.length) return null;
  return h(
    "ul",
    { class: "tags", "aria-label": "Tags" },
    tags.map((tag) => h("li", null, h("a", { href: hashFor("timeline", new URLSearchParams({ tags: tag })) }, tag))),
  );
}

function jsonBlock(value, label) {
  return h("pre", { class: "json", tabindex: "0", "aria-label": label }, JSON.stringify(value, null, 2));
}

function loading(what = "Loading…") {
  return h("p", { class: "loading", role: "status" }, what);
}

async function loadAgents() {
  try {
    const list = await api("/api/v1/agents");
    state.agents = new Map(list.agents.map((agent) => [agent.id, agent]));
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
  }
  return state.agents;
}

/** Run fn over items, at most `limit` at a time. */
async function eachLimited(items, limit, fn) {
  const queue = [...items];
  const workers = Array.from({ length: Math.min(limit, queue.length) }, async () => {
    while (queue.length) await fn(queue.shift());
  });
  await Promise.all(workers);
}

// --- the confirmation dialog ----------------------------------------------------------------

const dialog = (() => {
  const title = h("h2", { id: "confirm-title" });
  const text = h("p", { id: "confirm-text" });
  const cancel = h("button", { type: "button", class: "secondary", value: "cancel", autofocus: true }, "Cancel");
  const ok = h("button", { type: "button", class: "danger", value: "ok" });
  const el = h(
    "dialog",
    { id: "confirm", "aria-labelledby": "confirm-title", "aria-describedby": "confirm-text" },
    title,
    text,
    h("div", { class: "dialog-actions" }, cancel, ok),
  );
  document.body.append(el);
  cancel.addEventListener("click", () => el.close("cancel"));
  ok.addEventListener("click", () => el.close("ok"));
  return { el, title, text, ok };
})();

/** Ask; resolves true when confirmed. Focus starts on Cancel and returns to the opener. */
function confirmAction({ title, text, confirm }) {
  const opener = document.activeElement;
  dialog.title.textContent = title;
  dialog.text.textContent = text;
  dialog.ok.textContent = confirm;
  dialog.el.returnValue = "";
  return new Promise((resolve) => {
    dialog.el.addEventListener(
      "close",
      () => {
        const yes = dialog.el.returnValue === "ok";
        if (!yes && opener && opener.isConnected) opener.focus();
        resolve(yes);
      },
      { once: true },
    );
    dialog.el.showModal();
  });
}

// --- copying --------------------------------------------------------------------------------

async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // no clipboard API (an insecure origin) or no permission: the old way
    const area = h("textarea", { class: "offscreen", readonly: true, "aria-hidden": "true", tabindex: "-1" });
    area.value = text;
    document.body.append(area);
    area.select();
    let done = false;
    try {
      done = document.execCommand("copy");
    } catch {
      done = false;
    }
    area.remove();
    return done;
  }
}

// --- chrome: navigation and account ---------------------------------------------------------

function renderChrome() {
  const signedIn = Boolean(state.principal);
  nav.hidden = !signedIn;
  account.hidden = !signedIn;
  if (!signedIn) {
    account.replaceChildren();
    return;
  }
  const p = state.principal;
  const readOnly = !canWrite();
  replaceChildren(
    account,
    h(
      "p",
      { class: "who" },
      h("span", { class: "org", title: "The organization of this key" }, p.org_id),
      p.key_name ? h("span", { class: "key-name" }, ` · ${p.key_name}`) : null,
      " ",
      readOnly ? badge("read-only", "readonly") : badge(p.permissions.join(", "), "perm"),
    ),
    h("button", { type: "button", class: "secondary", id: "sign-out", onclick: signOut }, "Sign out"),
  );
}

function markNav(section) {
  for (const link of nav.querySelectorAll("a")) {
    if (link.dataset.section === section) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

function signOut() {
  closeView();
  credentials.clear();
  state.principal = null;
  state.agents = new Map();
  renderChrome();
  renderSignIn("Signed out. The key was removed from this tab.");
}

setUnauthorizedHandler(() => {
  closeView();
  credentials.clear();
  state.principal = null;
  renderChrome();
  renderSignIn("The server no longer accepts this key (401). Sign in again.");
});

// --- sign in --------------------------------------------------------------------------------

function renderSignIn(notice) {
  document.title = "Sign in · memtrace explorer";
  markNav("");
  const input = h("input", {
    id: "api-key",
    name: "api-key",
    type: "password",
    autocomplete: "off",
    spellcheck: "false",
    required: true,
    "aria-describedby": "api-key-hint",
  });
  const error = h("p", { class: "form-error", id: "signin-error", role: "alert" });
  const button = h("button", { type: "submit" }, "Sign in");
  const form = h(
    "form",
    { class: "signin-form", "aria-labelledby": "signin-title" },
    field("API key", input, "Kept in this browser tab only (session storage) and sent to this server as the X-API-Key header. Closing the tab forgets it."),
    button,
    error,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = input.value.trim();
    if (!key) return;
    button.disabled = true;
    error.textContent = "";
    try {
      const me = await api("/api/v1/me", { key });
      credentials.set(key);
      state.principal = me;
      input.value = "";
      renderChrome();
      await loadAgents();
      await route({ focus: true });
    } catch (failure) {
      error.textContent =
        failure instanceof ApiError
          ? failure.status === 401
            ? "This key was not accepted (401). Check it and try again."
            : `${failure.message} (HTTP ${failure.status})`
          : `Could not reach the server: ${failure.message || failure}`;
      button.disabled = false;
      input.focus();
    }
  });
  replaceChildren(
    main,
    h(
      "section",
      { class: "signin", "aria-labelledby": "signin-title" },
      h("h1", { id: "signin-title", tabindex: "-1" }, "Sign in to the memory explorer"),
      notice ? h("p", { class: "notice", role: "status" }, notice) : null,
      h("p", null, "Use an API key of your organization: the explorer shows that organization's memories, agents and sessions, and offers deleting only to keys with the write permission."),
      form,
    ),
  );
  input.focus();
}

// --- the router -----------------------------------------------------------------------------

function parseHash() {
  const raw = location.hash.replace(/^#/, "");
  const q = raw.indexOf("?");
  const path = q < 0 ? raw : raw.slice(0, q);
  const params = new URLSearchParams(q < 0 ? "" : raw.slice(q + 1));
  let parts;
  try {
    parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  } catch {
    parts = [];
  }
  return { parts, params };
}

function closeView() {
  if (state.view && state.view.close) state.view.close();
  state.view = null;
}

async function route({ focus } = {}) {
  if (!state.principal) {
    renderSignIn();
    return;
  }
  const { parts, params } = parseHash();
  const [section = "timeline", id] = parts;
  const name = `${section}${id ? "/" : ""}`;
  if (state.view && state.view.name === name && state.view.id === id && state.view.update) {
    state.view.update(params);
    return;
  }
  closeView();
  markNav(section === "memory" ? "timeline" : section);
  let view;
  switch (section) {
    case "timeline":
      view = timelineView(params);
      break;
    case "memory":
      view = id ? memoryView(id) : notFound();
      break;
    case "agents":
      view = id ? agentView(id, params) : agentsView(params);
      break;
    case "sessions":
      view = id ? sessionView(id, params) : sessionsView(params);
      break;
    default:
      view = notFound();
  }
  view.name = name;
  view.id = id;
  state.view = view;
  // focus the new view's heading (not on the first load: the page starts at the top)
  if (focus || state.routedOnce) {
    const heading = main.querySelector("h1");
    if (heading) heading.focus({ preventScroll: false });
  }
  state.routedOnce = true;
}

function notFound() {
  document.title = "Not found · memtrace explorer";
  replaceChildren(
    main,
    h("section", { "aria-labelledby": "nf-title" }, h("h1", { id: "nf-title", tabindex: "-1" }, "No such view"), h("p", null, h("a", { href: "#/timeline" }, "Go to the timeline"))),
  );
  return {};
}

function viewHead(title, ...extra) {
  return h("div", { class: "view-head" }, h("h1", { id: "view-title", tabindex: "-1" }, title), ...extra);
}

// --- the timeline ---------------------------------------------------------------------------

function sinceMillis(since, now = Date.now()) {
  if (!since) return null;
  const m = /^([0-9]+)([smhdw])$/.exec(since);
  if (m) return now - Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86400, w: 604800 }[m[2]] * 1000;
  const t = Date.parse(since);
  return Number.isNaN(t) ? null : t;
}

function compareMemories(a, b) {
  // newest first: by event time, then by id (ids are time-sortable)
  const ta = Date.parse(a.time);
  const tb = Date.parse(b.time);
  if (ta !== tb) return tb - ta;
  return a.id < b.id ? 1 : a.id > b.id ? -1 : 0;
}

function memoryCard(memory, stems, { fresh = false } = {}) {
  const titleId = `card-${memory.id}`;
  const isError = memory.event_type === "error";
  return h(
    "li",
    { class: ["card", fresh && "fresh", isError && "card-error"], dataset: { id: memory.id } },
    h(
      "article",
      { "aria-labelledby": titleId },
      h(
        "header",
        { class: "card-head" },
        h(
          "h2",
          { class: "card-title", id: titleId },
          badge(memory.memory_type, memory.memory_type),
          memory.event_type && memory.event_type !== "general" ? badge(memory.event_type, isError ? "error" : "event") : null,
          h("span", { class: "agent-name" }, agentName(memory.agent_id)),
        ),
        h("span", { class: "when" }, timeElement(memory.time, { relativeTo: Date.now() })),
      ),
      h("p", { class: "content" }, highlighted(excerpt(memory.content, stems), stems)),
      h(
        "footer",
        { class: "card-foot" },
        tagList(memory.tags),
        memory.score != null ? h("span", { class: "score", title: "Relevance score" }, `score ${memory.score.toFixed(2)}`) : null,
        memory.session_id ? h("a", { class: "session-link", href: `#/sessions/${enc(memory.session_id)}` }, h("span", { class: "sr-only" }, "Session "), shortId(memory.session_id)) : null,
        h("a", { class: "open", href: `#/memory/${enc(memory.id)}` }, "Open", h("span", { class: "sr-only" }, ` memory ${memory.id}`)),
      ),
    ),
  );
}

function timelineView(initialParams) {
  let params = initialParams;
  let offset = 0;
  let hasMore = false;
  let loadedIds = new Set();
  let memories = [];
  let stems = new Set();
  let stream = null;
  let generation = 0;
  let freshCount = 0;
  const announceFresh = debounce(() => {
    if (freshCount) announce(`${freshCount} new ${freshCount === 1 ? "memory" : "memories"} in the timeline`);
    freshCount = 0;
  }, 1500);

  const live = h("p", { class: "live", id: "live-state", role: "status" }, "");
  const q = h("input", { id: "q", name: "q", type: "search", autocomplete: "off", placeholder: "keywords" });
  const searchForm = h(
    "form",
    { class: "search", role: "search", "aria-label": "Search memories" },
    h("label", { for: "q" }, "Search"),
    q,
    h("button", { type: "submit" }, "Search"),
  );
  const clearSearch = h("button", { type: "button", class: "secondary", id: "clear-search" }, "Clear search");
  searchForm.append(clearSearch);

  const inputs = {
    agent_id: h("input", { id: "f-agent", name: "agent_id", list: "agent-options", autocomplete: "off", spellcheck: "false" }),
    session_id: h("input", { id: "f-session", name: "session_id", autocomplete: "off", spellcheck: "false" }),
    memory_type: null,
    event_type: h("input", { id: "f-event", name: "event_type", autocomplete: "off", spellcheck: "false", placeholder: "e.g. error" }),
    tags: h("input", { id: "f-tags", name: "tags", autocomplete: "off", spellcheck: "false", placeholder: "a,b" }),
    since: null,
    until: h("input", { id: "f-until", name: "until", autocomplete: "off", spellcheck: "false", placeholder: "now" }),
  };
  const agentOptions = h("datalist", { id: "agent-options" });
  const filterForm = h("form", { class: "filters", "aria-label": "Filter memories" });
  const info = h("p", { class: "result-info", id: "result-info", "aria-live": "polite" });
  const feed = h("ol", { class: "feed", id: "feed", "aria-label": "Memories, newest first" });
  const more = h("button", { type: "button", class: "secondary more", id: "load-more", hidden: true }, "Load more");
  const problems = h("div", { class: "problems" });

  function renderFilters() {
    inputs.memory_type = select("f-type", "memory_type", [["", "Any type"], ...MEMORY_TYPES.map((t) => [t, t])], params.get("memory_type") || "");
    inputs.since = select("f-since", "since", WINDOWS, params.get("since") || "");
    for (const name of ["agent_id", "session_id", "event_type", "tags", "until"]) inputs[name].value = params.get(name) || "";
    replaceChildren(agentOptions, [...state.agents.values()].map((a) => h("option", { value: a.id }, a.name)));
    replaceChildren(
      filterForm,
      h(
        "fieldset",
        null,
        h("legend", null, "Filters"),
        h(
          "div",
          { class: "grid" },
          field("Agent", inputs.agent_id),
          agentOptions,
          field("Session", inputs.session_id),
          field("Memory type", inputs.memory_type),
          field("Event type", inputs.event_type),
          field("Tags (all of)", inputs.tags),
          field("Time window", inputs.since),
          field("Until", inputs.until),
        ),
        h(
          "div",
          { class: "form-actions" },
          h("button", { type: "submit" }, "Apply filters"),
          h("button", { type: "button", class: "secondary", id: "reset-filters", onclick: () => navigate(new URLSearchParams()) }, "Reset"),
        ),
      ),
    );
    q.value = params.get("q") || "";
    clearSearch.hidden = !params.get("q");
  }

  function navigate(next) {
    const target = hashFor("timeline", next);
    if (location.hash === target) update(next);
    else location.hash = target;
  }

  filterForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    for (const name of FILTERS) {
      const value = (inputs[name].value || "").trim();
      if (value) next.set(name, value);
    }
    if (params.get("q")) next.set("q", params.get("q"));
    navigate(next);
  });
  searchForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const next = new URLSearchParams(params);
    const value = q.value.trim();
    if (value) next.set("q", value);
    else next.delete("q");
    navigate(next);
  });
  clearSearch.addEventListener("click", () => {
    const next = new URLSearchParams(params);
    next.delete("q");
    navigate(next);
    q.focus();
  });
  more.addEventListener("click", () => loadPage(generation));

  function filterQuery() {
    const query = {};
    for (const name of FILTERS) if (params.get(name)) query[name] = params.get(name);
    return query;
  }

  function searchBody() {
    const f = filterQuery();
    const body = { query: params.get("q") };
    for (const name of ["agent_id", "session_id", "since", "until"]) if (f[name]) body[name] = f[name];
    if (f.memory_type) body.memory_types = [f.memory_type];
    if (f.event_type) body.event_types = [f.event_type];
    if (f.tags) body.tags = f.tags.split(",").map((t) => t.trim()).filter(Boolean);
    return body;
  }

  function describe(count) {
    const searching = Boolean(params.get("q"));
    const parts = [`${count.toLocaleString()} ${count === 1 ? "memory" : "memories"}`, searching ? "best match first" : "newest first"];
    if (hasMore) parts.push("more below");
    info.textContent = parts.join(" · ");
  }

  async function loadPage(gen) {
    more.disabled = true;
    const searching = Boolean(params.get("q"));
    try {
      let page;
      let has;
      if (searching) {
        const limit = Math.min(PAGE_SIZE, 1000 - offset);
        const result = await api("/api/v1/search", { method: "POST", body: { ...searchBody(), limit, offset } });
        page = result.results;
        has = result.has_more && offset + page.length < 1000;
      } else {
        const result = await api("/api/v1/memories", { query: { ...filterQuery(), limit: PAGE_SIZE, offset } });
        page = result.memories;
        has = result.has_more;
      }
      if (gen !== generation) return;
      offset += page.length;
      hasMore = has;
      for (const memory of page) {
        if (loadedIds.has(memory.id)) continue;
        loadedIds.add(memory.id);
        memories.push(memory);
        feed.append(memoryCard(memory, stems));
      }
      if (!memories.length) {
        feed.replaceChildren(h("li", { class: "empty" }, searching ? "No memory matches this search." : "No memories match these filters yet."));
      }
      describe(memories.length);
      more.hidden = !hasMore;
    } catch (error) {
      if (gen !== generation) return;
      replaceChildren(problems, errorBox(error, searching ? "Search failed" : "Could not load memories"));
    } finally {
      more.disabled = false;
    }
  }

  function insertLive(memory) {
    if (loadedIds.has(memory.id)) return;
    const since = sinceMillis(params.get("since"));
    if (since != null && Date.parse(memory.time) < since) return;
    // its place among the loaded memories (a backfilled memory may be older than some)
    let index = memories.findIndex((m) => compareMemories(memory, m) < 0);
    if (index < 0) {
      if (hasMore) return; // it belongs to a page not loaded yet
      index = memories.length;
    }
    loadedIds.add(memory.id);
    memories.splice(index, 0, memory);
    offset += 1; // the server's pages moved by one
    const empty = feed.querySelector(".empty");
    if (empty) empty.remove();
    const card = memoryCard(memory, stems, { fresh: true });
    const before = feed.children[index] || null;
    feed.insertBefore(card, before);
    describe(memories.length);
    freshCount += 1;
    announceFresh();
  }

  function setLive(text, kind) {
    live.textContent = text;
    live.className = `live live-${kind}`;
  }

  function startStream() {
    if (params.get("q")) {
      setLive("Live updates pause during a search", "off");
      return Promise.resolve(false);
    }
    if (params.get("until")) {
      setLive("Live updates off: the window has an end", "off");
      return Promise.resolve(false);
    }
    const f = filterQuery();
    stream = new LiveStream({
      url: () =>
        apiUrl("/api/v1/memories/stream", {
          agent_id: f.agent_id,
          session_id: f.session_id,
          memory_types: f.memory_type,
          event_types: f.event_type,
          tags: f.tags,
        }),
      headers: () => authHeaders(),
      onMemory: (memory) => insertLive(memory),
      onState: (s, detail) => {
        if (s === "open") setLive("Live", "on");
        else if (s === "connecting") setLive("Connecting…", "wait");
        else if (s === "reconnecting") setLive(detail.delay ? `Reconnecting in ${formatDuration(detail.delay / 1000)}…` : "Reconnecting…", "wait");
        else if (s === "failed") {
          if (detail.status === 401 || detail.refused) {
            setLive("Live updates stopped: key refused", "off");
            unauthorized(new ApiError(401, detail.message));
          }
          else if (detail.status === 404) setLive("Live updates unavailable on this server", "off");
          else setLive(`Live updates stopped: ${detail.message}`, "off");
        }
      },
    });
    stream.start();
    return stream.opened;
  }

  async function reload() {
    generation += 1;
    const gen = generation;
    if (stream) stream.stop();
    stream = null;
    offset = 0;
    hasMore = false;
    loadedIds = new Set();
    memories = [];
    stems = queryStems(params.get("q") || "");
    feed.replaceChildren();
    problems.replaceChildren();
    info.textContent = "Loading…";
    more.hidden = true;
    // subscribe first (wait, briefly, until the stream answers), then read the list: a memory
    // committed in between is in both, and shown once
    const opened = startStream();
    await Promise.race([opened, new Promise((resolve) => setTimeout(resolve, 3000))]);
    if (gen !== generation) return;
    await loadPage(gen);
  }

  function update(next) {
    params = next;
    state.lastTimeline = hashFor("timeline", params);
    document.title = `${params.get("q") ? `“${params.get("q")}” · ` : ""}Timeline · memtrace explorer`;
    renderFilters();
    reload();
  }

  replaceChildren(
    main,
    h(
      "section",
      { class: "timeline", "aria-labelledby": "view-title" },
      viewHead("Timeline", live),
      searchForm,
      filterForm,
      problems,
      info,
      feed,
      more,
    ),
  );
  update(params);
  return {
    update,
    close() {
      generation += 1;
      if (stream) stream.stop();
    },
  };
}

// --- one memory -----------------------------------------------------------------------------

function definition(term, ...value) {
  return [h("dt", null, term), h("dd", null, ...value)];
}

function memoryLink(id, text) {
  return h("a", { href: `#/memory/${enc(id)}` }, text || id);
}

function memoryView(id) {
  document.title = `Memory ${shortId(id)} · memtrace explorer`;
  const body = h("div", { class: "memory-body" }, loading());
  const actions = h("div", { class: "actions" });
  replaceChildren(
    main,
    h(
      "section",
      { class: "memory", "aria-labelledby": "view-title" },
      h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, h("a", { href: state.lastTimeline }, "Timeline"), h("span", { "aria-hidden": "true" }, " › "), h("span", { "aria-current": "page" }, "Memory")),
      viewHead(h("span", null, "Memory ", h("code", { class: "id" }, id)), actions),
      body,
    ),
  );
  let closed = false;
  (async () => {
    let memory;
    try {
      memory = await api(`/api/v1/memories/${enc(id)}`);
    } catch (error) {
      if (closed) return;
      if (error instanceof ApiError && error.status === 404) {
        replaceChildren(body, h("p", { class: "error", role: "alert" }, `There is no memory ${id}: it was deleted, it expired, or the id is wrong.`));
      } else replaceChildren(body, errorBox(error, "Could not load the memory"));
      return;
    }
    if (closed) return;
    renderMemory(memory, body, actions);
  })();
  return {
    close() {
      closed = true;
    },
  };
}

function renderMemory(memory, body, actions) {
  const copy = h("button", { type: "button", class: "secondary", id: "copy-id" }, "Copy id");
  copy.addEventListener("click", async () => {
    const ok = await copyText(memory.id);
    announce(ok ? `Copied ${memory.id}` : `Could not copy: select the id and copy it (${memory.id})`);
  });
  replaceChildren(actions, copy);
  if (canWrite()) {
    const del = h("button", { type: "button", class: "danger", id: "delete-memory" }, "Delete…");
    del.addEventListener("click", async () => {
      const yes = await confirmAction({
        title: "Delete this memory?",
        text: `${memory.id} will be removed from every index and search. This cannot be undone.`,
        confirm: "Delete memory",
      });
      if (!yes) return;
      del.disabled = true;
      try {
        await api(`/api/v1/memories/${enc(memory.id)}`, { method: "DELETE" });
      } catch (error) {
        del.disabled = false;
        if (error instanceof ApiError && error.status === 404) announce(`${memory.id} was already gone`);
        else {
          body.prepend(errorBox(error, "Delete failed"));
          del.focus();
          return;
        }
      }
      announce(`Deleted memory ${memory.id}`);
      location.hash = state.lastTimeline;
    });
    actions.append(del);
  }

  const recordedAfter = (Date.parse(memory.recorded_at) - Date.parse(memory.time)) / 1000;
  const meta = h(
    "dl",
    { class: "meta" },
    definition("Agent", h("a", { href: hashFor("timeline", new URLSearchParams({ agent_id: memory.agent_id })) }, agentName(memory.agent_id)), state.agents.has(memory.agent_id) ? h("span", { class: "muted" }, ` (${memory.agent_id})`) : null),
    definition("Session", memory.session_id ? h("a", { href: `#/sessions/${enc(memory.session_id)}` }, memory.session_id) : h("span", { class: "muted" }, "none")),
    definition("Memory type", badge(memory.memory_type, memory.memory_type)),
    definition("Event type", badge(memory.event_type, memory.event_type === "error" ? "error" : "event")),
    definition("Event time", timeElement(memory.time), h("span", { class: "muted" }, ` · ${relativeTime(memory.time)}`)),
    definition(
      "Recorded",
      timeElement(memory.recorded_at),
      h("span", { class: "muted" }, Math.abs(recordedAfter) < 1 ? " · at the event time" : recordedAfter > 0 ? ` · ${formatDuration(recordedAfter)} after the event` : ` · ${formatDuration(recordedAfter)} before the event time`),
    ),
    definition("Importance", memory.importance != null ? importanceMeter(memory.importance) : h("span", { class: "muted" }, "not set")),
    definition("Tags", tagList(memory.tags) || h("span", { class: "muted" }, "none")),
    definition("Dedup key", memory.dedup_key ? h("code", null, memory.dedup_key) : h("span", { class: "muted" }, "none")),
    memory.namespace ? definition("Namespace", h("code", null, memory.namespace.join(" / "))) : null,
    memory.key ? definition("Key", h("code", null, memory.key), memory.key_created_at ? h("span", { class: "muted" }, " · first version ", timeElement(memory.key_created_at)) : null) : null,
    memory.expires_at ? definition("Expires", timeElement(memory.expires_at)) : null,
    memory.supersedes ? definition("Supersedes", memoryLink(memory.supersedes)) : null,
    memory.superseded_by ? definition("Superseded by", memoryLink(memory.superseded_by), memory.superseded_at ? h("span", { class: "muted" }, " · ", timeElement(memory.superseded_at)) : null) : null,
    definition("Parent", memory.parent_id ? memoryLink(memory.parent_id) : h("span", { class: "muted" }, "none")),
  );
  const thread = h("div", { class: "thread" }, loading("Loading the thread…"));
  replaceChildren(
    body,
    memory.superseded_by ? h("p", { class: "notice" }, "A later memory replaced this one: ", memoryLink(memory.superseded_by), ".") : null,
    h("h2", null, "Content"),
    h("pre", { class: "content", tabindex: "0", "aria-label": "Content" }, memory.content),
    h("h2", null, "Details"),
    meta,
    h("h2", null, "Thread"),
    thread,
    memory.metadata ? [h("h2", null, "Metadata"), jsonBlock(memory.metadata, "Metadata")] : null,
    memory.payload != null ? [h("h2", null, "Payload"), jsonBlock(memory.payload, "Payload")] : null,
  );
  loadThread(memory).then(
    (tree) => replaceChildren(thread, tree),
    (error) => replaceChildren(thread, errorBox(error, "Could not load the thread")),
  );
}

function importanceMeter(value) {
  return h(
    "span",
    { class: "importance" },
    h("meter", { min: "0", max: "1", value: String(value), "aria-label": "Importance" }),
    ` ${value}`,
  );
}

const THREAD_DEPTH = 25;

/** The memory's thread as nested lists: its ancestors (parent_id chain) down from the root,
 * and every descendant found among the memories of the same session (or agent) since the root. */
async function loadThread(memory) {
  const chain = [memory];
  const seen = new Set([memory.id]);
  let missing = null;
  let current = memory;
  while (current.parent_id && chain.length < THREAD_DEPTH) {
    if (seen.has(current.parent_id)) break;
    try {
      current = await api(`/api/v1/memories/${enc(current.parent_id)}`);
    } catch (error) {
      if (error instanceof ApiError && (error.status === 404 || error.status === 400)) {
        missing = current.parent_id;
        break;
      }
      throw error;
    }
    seen.add(current.id);
    chain.unshift(current);
  }
  const root = chain[0];
  // replies are looked for among the memories of the same session (all of them) or, without a
  // session, of the same agent since the thread's root
  const scope = memory.session_id ? { session_id: memory.session_id } : { agent_id: memory.agent_id, since: root.time };
  const related = await api("/api/v1/memories", { query: { ...scope, order: "asc", limit: 1000 } });
  const children = new Map();
  const byId = new Map(chain.map((m) => [m.id, m]));
  for (const m of related.memories) if (!byId.has(m.id)) byId.set(m.id, m);
  for (const m of byId.values()) {
    if (!m.parent_id) continue;
    if (!children.has(m.parent_id)) children.set(m.parent_id, []);
    children.get(m.parent_id).push(m);
  }
  for (const list of children.values()) list.sort((a, b) => -compareMemories(a, b));
  let nodes = 0;
  function node(m, depth) {
    nodes += 1;
    const label = m.content.length > 90 ? `${m.content.slice(0, 90)}…` : m.content;
    const isCurrent = m.id === memory.id;
    const item = h(
      "li",
      null,
      isCurrent ? h("strong", { "aria-current": "true", class: "current" }, label, h("span", { class: "sr-only" }, " (this memory)")) : memoryLink(m.id, label),
      h("span", { class: "muted node-meta" }, ` · ${m.memory_type} · ${agentName(m.agent_id)} · `, timeElement(m.time, { relativeTo: Date.now() })),
    );
    const kids = (children.get(m.id) || []).filter(() => nodes < 300);
    if (kids.length && depth < THREAD_DEPTH) item.append(h("ul", null, kids.map((k) => node(k, depth + 1))));
    return item;
  }
  const tree = h("ul", { class: "tree", "aria-label": "Thread" }, node(root, 0));
  const notes = [];
  if (missing) notes.push(h("p", { class: "muted" }, `The thread starts below ${missing}, which is gone (deleted or expired).`));
  if (chain.length === 1 && !(children.get(memory.id) || []).length) {
    notes.push(h("p", { class: "muted" }, "This memory has no parent and no replies."));
  }
  if (related.has_more) notes.push(h("p", { class: "muted" }, "Only the first 1,000 memories of the session (or agent) were searched for replies."));
  return append(document.createDocumentFragment(), [...notes, tree]);
}

// --- agents ---------------------------------------------------------------------------------

function activityWindow(params) {
  const value = params.get("window") || "24h";
  return ACTIVITY_WINDOWS.find(([v]) => v === value) || ACTIVITY_WINDOWS[1];
}

function windowForm(params, path) {
  const [value] = activityWindow(params);
  const control = select("activity-window", "window", ACTIVITY_WINDOWS.map(([v, l]) => [v, l]), value);
  control.addEventListener("change", () => {
    const next = new URLSearchParams(params);
    next.set("window", control.value);
    history.replaceState(null, "", hashFor(path, next));
    state.view.update(next);
  });
  return h("div", { class: "inline-form" }, field("Activity window", control));
}

async function activitySection(target, params, filter, subject) {
  const [, label, bucket] = activityWindow(params);
  replaceChildren(target, loading("Loading activity…"));
  try {
    const activity = await api("/api/v1/activity", { query: { since: activityWindow(params)[0], bucket, ...filter } });
    // the chart is drawn at the width it gets (24: the figure's padding and border)
    const width = (target.clientWidth || 744) - 26;
    replaceChildren(target, activityChart(activity, { subject, width, caption: `${label}${subject ? ` · ${subject}` : " · all agents"}` }));
  } catch (error) {
    if (error instanceof ApiError && error.status === 404 && !filter.agent_id) {
      replaceChildren(target, h("p", { class: "notice" }, "This server has no activity endpoint (GET /api/v1/activity)."));
    } else replaceChildren(target, errorBox(error, "Could not load the activity"));
  }
}

function agentsView(initialParams) {
  document.title = "Agents · memtrace explorer";
  let params = initialParams;
  const chart = h("div", { class: "chart-box" });
  const controls = h("div", { class: "controls" });
  const tableBox = h("div", { class: "table-box" }, loading("Loading agents…"));
  replaceChildren(
    main,
    h(
      "section",
      { class: "agents", "aria-labelledby": "view-title" },
      viewHead("Agents"),
      controls,
      h("h2", null, "Activity"),
      chart,
      h("h2", null, "Registered agents"),
      tableBox,
    ),
  );
  let closed = false;
  async function renderTable() {
    let agents;
    try {
      agents = [...(await loadAgents()).values()];
    } catch (error) {
      replaceChildren(tableBox, errorBox(error, "Could not load the agents"));
      return;
    }
    if (closed) return;
    if (!agents.length) {
      replaceChildren(tableBox, h("p", { class: "muted" }, "No agent is registered in this organization (memories may still name agents: see the timeline)."));
      return;
    }
    agents.sort((a, b) => a.name.localeCompare(b.name));
    const rows = new Map();
    const table = h(
      "table",
      { class: "data agents-table" },
      h("caption", { class: "sr-only" }, "Registered agents and their figures"),
      h(
        "thead",
        null,
        h("tr", null, ["Agent", "Memories", "Last 24 h", "Errors (24 h)", "Sessions (active)", "Last active", "By type"].map((t) => h("th", { scope: "col" }, t))),
      ),
      h(
        "tbody",
        null,
        agents.map((agent) => {
          const cells = Array.from({ length: 6 }, () => h("td", null, "…"));
          rows.set(agent.id, cells);
          return h("tr", null, h("th", { scope: "row" }, h("a", { href: hashFor(`agents/${enc(agent.id)}`, new URLSearchParams({ window: activityWindow(params)[0] })) }, agent.name)), cells);
        }),
      ),
    );
    replaceChildren(tableBox, h("div", { class: "scroll-x", tabindex: "0", role: "region", "aria-label": "Agents table" }, table));
    await eachLimited(agents, 4, async (agent) => {
      const cells = rows.get(agent.id);
      try {
        const s = await api(`/api/v1/agents/${enc(agent.id)}/stats`);
        if (closed) return;
        const values = [
          s.memory_count.toLocaleString(),
          s.memories_24h.toLocaleString(),
          h("span", { class: s.errors_24h ? "errors" : null }, s.errors_24h.toLocaleString()),
          `${s.session_count} (${s.active_sessions})`,
          s.last_active_at ? timeElement(s.last_active_at, { relativeTo: Date.now() }) : "never",
          Object.entries(s.memory_types || {}).map(([t, c]) => `${t} ${c}`).join(", ") || "—",
        ];
        values.forEach((v, i) => replaceChildren(cells[i], v));
      } catch (error) {
        replaceChildren(cells[0], "unavailable");
        if (!(error instanceof ApiError)) throw error;
      }
    });
  }
  function update(next) {
    params = next;
    replaceChildren(controls, windowForm(params, "agents"));
    activitySection(chart, params, {}, "");
  }
  update(params);
  renderTable();
  return {
    update(next) {
      const focused = document.activeElement && document.activeElement.id;
      update(next);
      if (focused) document.getElementById(focused)?.focus();
    },
    close() {
      closed = true;
    },
  };
}

function agentView(id, initialParams) {
  let params = initialParams;
  document.title = `Agent ${agentName(id)} · memtrace explorer`;
  const info = h("div", { class: "agent-info" }, loading());
  const controls = h("div", { class: "controls" });
  const chart = h("div", { class: "chart-box" });
  const heading = h("span", null, "Agent ", agentName(id));
  replaceChildren(
    main,
    h(
      "section",
      { class: "agent", "aria-labelledby": "view-title" },
      h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, h("a", { href: hashFor("agents", params) }, "Agents"), h("span", { "aria-hidden": "true" }, " › "), h("span", { "aria-current": "page" }, agentName(id))),
      viewHead(heading),
      info,
      h("h2", null, "Activity"),
      controls,
      chart,
    ),
  );
  (async () => {
    try {
      const [agent, stats] = await Promise.all([api(`/api/v1/agents/${enc(id)}`), api(`/api/v1/agents/${enc(id)}/stats`)]);
      replaceChildren(heading, "Agent ", agent.name);
      document.title = `Agent ${agent.name} · memtrace explorer`;
      replaceChildren(
        info,
        agent.description ? h("p", null, agent.description) : null,
        h(
          "dl",
          { class: "meta" },
          definition("Id", h("code", null, agent.id)),
          definition("Registered", timeElement(agent.created_at)),
          definition("Last active", stats.last_active_at ? timeElement(stats.last_active_at) : "never"),
          definition("Memories", `${stats.memory_count.toLocaleString()} (${stats.memories_24h.toLocaleString()} in the last 24 h)`),
          definition("Errors in 24 h", h("span", { class: stats.errors_24h ? "errors" : null }, String(stats.errors_24h))),
          definition("Sessions", h("a", { href: hashFor("sessions", new URLSearchParams({ agent_id: agent.id })) }, `${stats.session_count} (${stats.active_sessions} active)`)),
        ),
        h(
          "table",
          { class: "data compact" },
          h("caption", null, "Memories per type"),
          h("thead", null, h("tr", null, h("th", { scope: "col" }, "Type"), h("th", { scope: "col" }, "Memories"))),
          h(
            "tbody",
            null,
            MEMORY_TYPES.map((t) => h("tr", null, h("th", { scope: "row" }, t), h("td", null, String((stats.memory_types || {})[t] || 0)))),
          ),
        ),
        h("p", null, h("a", { href: hashFor("timeline", new URLSearchParams({ agent_id: agent.id })) }, "Show this agent's memories in the timeline")),
        agent.config ? [h("h2", null, "Configuration"), jsonBlock(agent.config, "Configuration")] : null,
      );
    } catch (error) {
      replaceChildren(info, errorBox(error, "Could not load the agent"));
    }
  })();
  function update(next) {
    params = next;
    replaceChildren(controls, windowForm(params, `agents/${enc(id)}`));
    activitySection(chart, params, { agent_id: id }, agentName(id));
  }
  update(params);
  return {
    update(next) {
      update(next);
      document.getElementById("activity-window")?.focus();
    },
  };
}

// --- sessions -------------------------------------------------------------------------------

function sessionsView(initialParams) {
  document.title = "Sessions · memtrace explorer";
  let params = initialParams;
  let offset = 0;
  let generation = 0;
  const status = select("s-status", "status", [["", "Any status"], ["active", "Active"], ["closed", "Closed"]], params.get("status") || "");
  const agent = h("input", { id: "s-agent", name: "agent_id", list: "s-agent-options", autocomplete: "off", spellcheck: "false", value: params.get("agent_id") || "" });
  const form = h(
    "form",
    { class: "filters", "aria-label": "Filter sessions" },
    h(
      "fieldset",
      null,
      h("legend", null, "Filters"),
      h("div", { class: "grid" }, field("Status", status), field("Agent", agent), h("datalist", { id: "s-agent-options" }, [...state.agents.values()].map((a) => h("option", { value: a.id }, a.name)))),
      h("div", { class: "form-actions" }, h("button", { type: "submit" }, "Apply filters")),
    ),
  );
  const tbody = h("tbody");
  const tableBox = h("div", { class: "table-box" });
  const more = h("button", { type: "button", class: "secondary more", id: "sessions-more", hidden: true }, "Load more");
  const problems = h("div");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    if (status.value) next.set("status", status.value);
    if (agent.value.trim()) next.set("agent_id", agent.value.trim());
    location.hash = hashFor("sessions", next);
  });
  replaceChildren(main, h("section", { class: "sessions", "aria-labelledby": "view-title" }, viewHead("Sessions"), form, problems, tableBox, more));

  function row(session) {
    const statusCell = h("td", null, badge(session.status, session.status));
    const actionCell = h("td");
    if (canWrite() && session.status === "active") {
      const close = h("button", { type: "button", class: "secondary small" }, "Close", h("span", { class: "sr-only" }, ` session ${session.id}`));
      close.addEventListener("click", async () => {
        const yes = await confirmAction({ title: "Close this session?", text: `${session.id} will be marked closed. Its memories are kept.`, confirm: "Close session" });
        if (!yes) return;
        try {
          const updated = await api(`/api/v1/sessions/${enc(session.id)}`, { method: "PATCH", body: { status: "closed" } });
          replaceChildren(statusCell, badge(updated.status, updated.status));
          close.remove();
          announce(`Closed session ${session.id}`);
          statusCell.parentElement.querySelector("a")?.focus();
        } catch (error) {
          replaceChildren(problems, errorBox(error, "Could not close the session"));
        }
      });
      actionCell.append(close);
    }
    return h(
      "tr",
      null,
      h("th", { scope: "row" }, h("a", { href: `#/sessions/${enc(session.id)}` }, h("code", null, session.id))),
      h("td", null, agentName(session.agent_id)),
      statusCell,
      h("td", null, timeElement(session.created_at)),
      h("td", null, timeElement(session.updated_at, { relativeTo: Date.now() })),
      actionCell,
    );
  }

  async function load(gen) {
    more.disabled = true;
    try {
      const result = await api("/api/v1/sessions", { query: { status: params.get("status"), agent_id: params.get("agent_id"), limit: 100, offset } });
      if (gen !== generation) return;
      offset += result.sessions.length;
      for (const session of result.sessions) tbody.append(row(session));
      if (!tbody.children.length) tbody.append(h("tr", null, h("td", { colspan: "6" }, "No sessions match.")));
      more.hidden = !result.has_more;
    } catch (error) {
      replaceChildren(problems, errorBox(error, "Could not load the sessions"));
    } finally {
      more.disabled = false;
    }
  }
  more.addEventListener("click", () => load(generation));
  replaceChildren(
    tableBox,
    h(
      "div",
      { class: "scroll-x", tabindex: "0", role: "region", "aria-label": "Sessions table" },
      h(
        "table",
        { class: "data" },
        h("caption", { class: "sr-only" }, "Sessions"),
        h("thead", null, h("tr", null, ["Session", "Agent", "Status", "Created", "Updated", "Actions"].map((t) => h("th", { scope: "col" }, t)))),
        tbody,
      ),
    ),
  );
  load(generation);
  return {
    close() {
      generation += 1;
    },
  };
}

function sessionView(id, initialParams) {
  let params = initialParams;
  document.title = `Session ${shortId(id)} · memtrace explorer`;
  const info = h("div", { class: "session-info" }, loading());
  const actions = h("div", { class: "actions" });
  const contextBox = h("div", { class: "context-box" });
  replaceChildren(
    main,
    h(
      "section",
      { class: "session", "aria-labelledby": "view-title" },
      h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, h("a", { href: "#/sessions" }, "Sessions"), h("span", { "aria-hidden": "true" }, " › "), h("span", { "aria-current": "page" }, "Session")),
      viewHead(h("span", null, "Session ", h("code", { class: "id" }, id)), actions),
      info,
      h("h2", { id: "context-title" }, "Context, as an LLM gets it"),
      contextBox,
    ),
  );

  function renderInfo(session) {
    replaceChildren(
      info,
      h(
        "dl",
        { class: "meta" },
        definition("Agent", h("a", { href: `#/agents/${enc(session.agent_id)}` }, agentName(session.agent_id))),
        definition("Status", badge(session.status, session.status)),
        definition("Created", timeElement(session.created_at)),
        definition("Updated", timeElement(session.updated_at)),
        session.closed_at ? definition("Closed", timeElement(session.closed_at)) : null,
        definition("Memories", h("a", { href: hashFor("timeline", new URLSearchParams({ session_id: session.id })) }, "Show in the timeline")),
      ),
      session.metadata && Object.keys(session.metadata).length ? [h("h2", null, "Metadata"), jsonBlock(session.metadata, "Session metadata")] : null,
    );
    actions.replaceChildren();
    if (canWrite() && session.status === "active") {
      const close = h("button", { type: "button", class: "secondary", id: "close-session" }, "Close session");
      close.addEventListener("click", async () => {
        const yes = await confirmAction({ title: "Close this session?", text: `${session.id} will be marked closed. Its memories are kept.`, confirm: "Close session" });
        if (!yes) return;
        try {
          const updated = await api(`/api/v1/sessions/${enc(session.id)}`, { method: "PATCH", body: { status: "closed" } });
          renderInfo(updated);
          announce(`Closed session ${session.id}`);
          document.getElementById("view-title")?.focus();
        } catch (error) {
          info.prepend(errorBox(error, "Could not close the session"));
        }
      });
      actions.append(close);
    }
  }

  (async () => {
    try {
      renderInfo(await api(`/api/v1/sessions/${enc(id)}`));
    } catch (error) {
      replaceChildren(info, errorBox(error, error instanceof ApiError && error.status === 404 ? "No such session" : "Could not load the session"));
    }
  })();

  // the context controls
  const format = params.get("format") || "markdown";
  const budget = Number(params.get("max_tokens")) || 2000;
  const radios = h(
    "fieldset",
    { class: "segmented" },
    h("legend", null, "Format"),
    CONTEXT_FORMATS.map(([value, label]) =>
      h("label", null, h("input", { type: "radio", name: "format", value, checked: value === format }), ` ${label}`),
    ),
  );
  const slider = h("input", { type: "range", id: "budget", name: "max_tokens", min: "50", max: "8000", step: "50", value: String(Math.min(Math.max(budget, 50), 8000)), "aria-describedby": "budget-value" });
  const sliderValue = h("output", { id: "budget-value", for: "budget" }, `${Number(slider.value).toLocaleString()} tokens`);
  const since = select("context-since", "since", CONTEXT_WINDOWS, params.get("since") || "24h");
  const stats = h("p", { class: "context-stats", id: "context-stats", "aria-live": "polite" });
  const meter = h("meter", { id: "budget-meter", min: "0", max: slider.value, value: "0", "aria-label": "Tokens used of the budget" });
  const output = h("pre", { class: "context", id: "context", tabindex: "0", "aria-label": "Session context" });
  const problems = h("div");
  const controls = h(
    "form",
    { class: "context-controls", "aria-labelledby": "context-title", onsubmit: (e) => e.preventDefault() },
    radios,
    h("div", { class: "field" }, h("label", { for: "budget" }, "Token budget"), slider, sliderValue),
    field("Window", since),
  );
  replaceChildren(contextBox, controls, h("div", { class: "context-summary" }, meter, stats), problems, output);

  let request = null;
  async function loadContext() {
    const chosen = controls.querySelector("input[name=format]:checked").value;
    const maxTokens = Number(slider.value);
    const next = new URLSearchParams({ format: chosen, max_tokens: String(maxTokens), since: since.value });
    params = next;
    history.replaceState(null, "", hashFor(`sessions/${enc(id)}`, next));
    if (request) request.abort();
    const controller = new AbortController();
    request = controller;
    stats.textContent = "Loading…";
    problems.replaceChildren();
    try {
      const result = await api(`/api/v1/sessions/${enc(id)}/context`, {
        method: "POST",
        body: { format: chosen, max_tokens: maxTokens, since: since.value },
        signal: controller.signal,
      });
      if (controller.signal.aborted) return;
      output.textContent = result.context || "";
      meter.max = maxTokens;
      meter.value = result.token_estimate;
      const formatLabel = (CONTEXT_FORMATS.find(([v]) => v === result.format) || [null, result.format])[1];
      stats.textContent = `${formatLabel} · ${result.memory_count.toLocaleString()} ${result.memory_count === 1 ? "memory" : "memories"} · ${result.token_estimate.toLocaleString()} of ${maxTokens.toLocaleString()} tokens`;
      output.dataset.format = result.format;
    } catch (error) {
      if (error.name === "AbortError") return;
      output.textContent = "";
      meter.value = 0;
      stats.textContent = "";
      replaceChildren(problems, errorBox(error, "Could not build the context"));
    }
  }
  const loadSoon = debounce(loadContext, 250);
  radios.addEventListener("change", loadContext);
  since.addEventListener("change", loadContext);
  slider.addEventListener("input", () => {
    sliderValue.textContent = `${Number(slider.value).toLocaleString()} tokens`;
    loadSoon();
  });
  loadContext();
  return {
    close() {
      if (request) request.abort();
    },
  };
}

// --- start ----------------------------------------------------------------------------------

document.querySelector(".skip-link").addEventListener("click", (event) => {
  event.preventDefault();
  (main.querySelector("h1") || main).focus();
});
window.addEventListener("hashchange", () => route());

(async () => {
  const key = credentials.key;
  if (!key) {
    renderSignIn();
    return;
  }
  replaceChildren(main, loading("Signing in…"));
  try {
    state.principal = await api("/api/v1/me", { key });
  } catch (error) {
    credentials.clear();
    renderSignIn(error instanceof ApiError && error.status === 401 ? "The key of this tab is no longer accepted. Sign in again." : `Could not reach the server: ${error.message || error}`);
    return;
  }
  renderChrome();
  await loadAgents();
  await route();
})();
