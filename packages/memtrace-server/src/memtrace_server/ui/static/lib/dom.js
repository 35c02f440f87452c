// DOM building without HTML strings. Every child string becomes a text node and attributes are
// set one by one: nothing here parses markup, so text from memories can never become elements,
// scripts or event handlers (no API that parses a string as HTML is used anywhere in the
// explorer; tests/server/test_ui.py checks).

const SVG_NS = "http://www.w3.org/2000/svg";
// set as properties (their live state), not as attributes
const PROPS = new Set(["value", "checked", "selected", "disabled", "hidden", "indeterminate"]);

function build(el, attrs, children) {
  if (attrs) {
    for (const [name, value] of Object.entries(attrs)) {
      if (value === undefined || value === null || value === false) continue;
      if (name.startsWith("on")) {
        if (typeof value !== "function") throw new TypeError(`${name} must be a function`);
        el.addEventListener(name.slice(2).toLowerCase(), value);
      } else if (name === "class") {
        el.setAttribute("class", Array.isArray(value) ? value.filter(Boolean).join(" ") : value);
      } else if (name === "dataset") {
        Object.assign(el.dataset, value);
      } else if (name === "href" && !String(value).startsWith("#")) {
        // the explorer only links to its own views; an outside or javascript: URL is a bug
        throw new TypeError(`refusing href ${value}`);
      } else if (PROPS.has(name) && !(el instanceof SVGElement)) {
        el[name] = value;
      } else {
        el.setAttribute(name, value === true ? "" : String(value));
      }
    }
  }
  return append(el, children);
}

/** Append children: nodes as they are, anything else as a text node (null/false skipped). */
export function append(el, children) {
  for (const child of [children].flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** An HTML element: h("p", {class: "note"}, "text", h("b", null, "bold")). */
export function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

/** An SVG element (same arguments as h). */
export function svg(tag, attrs, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

/** Remove every child of el, then append children. */
export function replaceChildren(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

// --- time ------------------------------------------------------------------------------------

const absolute = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });
const relative = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
const UNITS = [
  ["year", 365 * 86400],
  ["month", 30 * 86400],
  ["week", 7 * 86400],
  ["day", 86400],
  ["hour", 3600],
  ["minute", 60],
  ["second", 1],
];

export function formatTime(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? String(iso) : absolute.format(date);
}

export function relativeTime(iso, now = Date.now()) {
  const seconds = (new Date(iso).getTime() - now) / 1000;
  if (!Number.isFinite(seconds)) return "";
  for (const [unit, size] of UNITS) {
    if (Math.abs(seconds) >= size || unit === "second") {
      return relative.format(Math.round(seconds / size), unit);
    }
  }
  return "";
}

/** A duration in words: 90 -> "1 min 30 s". */
export function formatDuration(seconds) {
  const s = Math.abs(Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min${s % 60 ? ` ${s % 60} s` : ""}`;
  if (s < 86400) return `${Math.floor(s / 3600)} h${s % 3600 >= 60 ? ` ${Math.floor((s % 3600) / 60)} min` : ""}`;
  return `${Math.floor(s / 86400)} d${s % 86400 >= 3600 ? ` ${Math.floor((s % 86400) / 3600)} h` : ""}`;
}

/** <time datetime=iso title=iso>medium date and time</time> */
export function timeElement(iso, { relativeTo } = {}) {
  if (!iso) return h("span", { class: "muted" }, "—");
  const text = relativeTo ? relativeTime(iso, relativeTo) : formatTime(iso);
  return h("time", { datetime: iso, title: formatTime(iso) + ` (${iso})` }, text);
}

/** A function that runs fn at most once per `ms` after the last call. */
export function debounce(fn, ms) {
  let timer = 0;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}
