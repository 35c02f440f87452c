// The activity chart: memories per time bucket from GET /api/v1/activity, as inline SVG built
// with DOM calls (no library), errors stacked in their own colour and marked with a triangle
// (not colour alone), with a text alternative: a one-sentence summary as the image's label and
// the figures as a table.

import { formatTime, h, svg } from "./dom.js";

const PAD = { left: 40, right: 8, top: 14, bottom: 28 };

export function bucketName(seconds) {
  const names = { 60: "minute", 3600: "hour", 86400: "day", 604800: "week" };
  if (names[seconds]) return names[seconds];
  if (seconds % 86400 === 0) return `${seconds / 86400} days`;
  if (seconds % 3600 === 0) return `${seconds / 3600} hours`;
  if (seconds % 60 === 0) return `${seconds / 60} minutes`;
  return `${seconds} seconds`;
}

function tickLabel(iso, bucketSeconds, spanSeconds) {
  const date = new Date(iso);
  if (spanSeconds <= 2 * 86400 && bucketSeconds < 86400) {
    return date.toLocaleTimeString(undefined, { hour: "numeric", minute: "2-digit" });
  }
  return date.toLocaleDateString(undefined, { month: "short", day: "numeric" });
}

function memories(n) {
  return `${n.toLocaleString()} ${n === 1 ? "memory" : "memories"}`;
}

function errors(n) {
  return `${n.toLocaleString()} ${n === 1 ? "error" : "errors"}`;
}

/** The summary sentence (the chart's accessible name). */
export function summarize(activity, subject = "") {
  const unit = bucketName(activity.bucket_seconds);
  const busiest = activity.buckets.reduce((a, b) => (b.count > (a ? a.count : -1) ? b : a), null);
  let text = `Memories${subject ? ` of ${subject}` : ""} per ${unit} from ${formatTime(
    activity.since,
  )} to ${formatTime(activity.until)}: ${memories(activity.total)}, ${errors(activity.errors)}.`;
  if (busiest && busiest.count > 0) {
    text += ` Busiest ${unit}: ${memories(busiest.count)} from ${formatTime(busiest.start)}.`;
  }
  return text;
}

/** A <figure> with the chart, its legend and the data table; ``width``: the chart's width in
 * CSS pixels (its text then has its real size), 720 by default. */
export function activityChart(activity, { subject = "", caption = "", width = 720 } = {}) {
  const W = Math.round(Math.max(280, Math.min(width, 1200)));
  const H = W < 480 ? 180 : 220;
  const buckets = activity.buckets || [];
  const n = Math.max(buckets.length, 1);
  const max = Math.max(1, ...buckets.map((b) => b.count));
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const step = plotW / n;
  const barW = Math.max(1, step * 0.8);
  const y = (value) => PAD.top + plotH - (value / max) * plotH;
  const summary = summarize(activity, subject);
  const spanSeconds = (new Date(activity.until) - new Date(activity.since)) / 1000;

  const chart = svg("svg", {
    viewBox: `0 0 ${W} ${H}`,
    class: "chart",
    role: "img",
    "aria-label": summary,
    focusable: "false",
  });
  // grid and y labels: 0, half, max
  for (const value of [0, Math.round(max / 2), max]) {
    if (value === Math.round(max / 2) && (value === 0 || value === max)) continue;
    chart.append(
      svg("line", { x1: PAD.left, x2: W - PAD.right, y1: y(value), y2: y(value), class: "grid" }),
      svg("text", { x: PAD.left - 6, y: y(value) + 4, class: "axis", "text-anchor": "end" }, String(value)),
    );
  }
  const unit = bucketName(activity.bucket_seconds);
  buckets.forEach((bucket, i) => {
    const x = PAD.left + i * step + (step - barW) / 2;
    const group = svg("g", { class: "bucket" });
    group.append(
      svg("title", null, `${formatTime(bucket.start)} (1 ${unit}): ${memories(bucket.count)}, ${errors(bucket.errors)}`),
    );
    const ok = bucket.count - bucket.errors;
    if (ok > 0) {
      group.append(svg("rect", { x, width: barW, y: y(bucket.count), height: y(bucket.errors) - y(bucket.count), class: "bar" }));
    }
    if (bucket.errors > 0) {
      group.append(
        svg("rect", { x, width: barW, y: y(bucket.errors), height: y(0) - y(bucket.errors), class: "bar-error" }),
        svg("path", {
          d: `M ${x + barW / 2} ${y(bucket.count) - 2} l -4 -7 h 8 z`,
          class: "error-mark",
        }),
      );
    }
    chart.append(group);
  });
  // x ticks: a label every ~110 pixels
  const every = Math.max(1, Math.ceil(n / Math.max(2, Math.floor(plotW / 110))));
  buckets.forEach((bucket, i) => {
    if (i % every !== 0) return;
    const x = PAD.left + i * step + step / 2;
    chart.append(
      svg("line", { x1: x, x2: x, y1: y(0), y2: y(0) + 4, class: "grid" }),
      svg("text", { x, y: H - 8, class: "axis", "text-anchor": "middle" }, tickLabel(bucket.start, activity.bucket_seconds, spanSeconds)),
    );
  });
  chart.append(svg("line", { x1: PAD.left, x2: W - PAD.right, y1: y(0), y2: y(0), class: "baseline" }));

  const legend = h(
    "ul",
    { class: "legend", "aria-hidden": "true" },
    h("li", null, h("span", { class: "swatch swatch-ok" }), "memories"),
    h("li", null, h("span", { class: "swatch swatch-error" }), "errors (marked ▼)"),
  );
  const rows = buckets.filter((b) => b.count > 0);
  const table = h(
    "table",
    { class: "data" },
    h("caption", null, `Memories per ${unit}${rows.length < buckets.length ? ` (${unit}s without memories left out)` : ""}`),
    h(
      "thead",
      null,
      h("tr", null, h("th", { scope: "col" }, "From"), h("th", { scope: "col" }, "Memories"), h("th", { scope: "col" }, "Errors"), h("th", { scope: "col" }, "By type")),
    ),
    h(
      "tbody",
      null,
      rows.length
        ? rows.map((b) =>
            h(
              "tr",
              { class: b.errors ? "has-errors" : null },
              h("th", { scope: "row" }, formatTime(b.start)),
              h("td", null, String(b.count)),
              h("td", null, String(b.errors)),
              h("td", null, Object.entries(b.by_type || {}).map(([t, c]) => `${t} ${c}`).join(", ")),
            ),
          )
        : h("tr", null, h("td", { colspan: "4" }, "No memories in this window.")),
    ),
  );
  return h(
    "figure",
    { class: "activity" },
    caption ? h("figcaption", null, caption) : null,
    chart,
    legend,
    h("p", { class: "chart-summary" }, summary),
    h("details", null, h("summary", null, "Show the figures as a table"), table),
  );
}
