// The run report of `rnnlab report` and the runs index of `rnnlab runs --html` (rnnlab/report_html.py
// writes the data this reads). Plain DOM and SVG: no library, nothing fetched.
"use strict";
(function () {
  const D = JSON.parse(document.getElementById("data").textContent);
  // $ and S: assets/common.js
  const num = (v, digits = 4) => (v == null ? "–" : typeof v === "number" ? (Number.isInteger(v) ? v.toLocaleString("en") : v.toFixed(digits)) : String(v));
  const pct = (v) => (v == null ? "–" : (100 * v).toFixed(2) + "%");
  const metric = (k, v) => (k.includes("accuracy") || k === "f1" ? pct(v) : num(v));
  const badge = (status) => $("span", { class: "badge " + String(status || "").replace("?", ""), text: status || "unknown" });
  const secs = (s) => (s == null ? "–" : s < 120 ? s.toFixed(1) + " s" : s < 7200 ? (s / 60).toFixed(1) + " min" : (s / 3600).toFixed(2) + " h");
  const app = document.getElementById("app");
  const wrap = $("div", { class: "wrap" });
  app.append(wrap);
  const tip = $("div", { class: "tip", id: "tip" });
  document.body.append(tip);
  const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"];

  // Round tick values (1, 2 or 5 times a power of ten apart) covering lo..hi, about n of them.
  function ticks(lo, hi, n) {
    const raw = (hi - lo) / n, mag = 10 ** Math.floor(Math.log10(raw)), f = raw / mag;
    const step = (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * mag, values = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) values.push(+v.toFixed(12));
    return { step, values };
  }

  // A line chart of [x, y] series; hovering shows every series' value at the nearest x.
  function chart(title, series, { percent = false } = {}) {
    const W = 640, Hh = 260, P = { l: 58, r: 12, t: 24, b: 30 };
    const svg = S("svg", { width: W, height: Hh, viewBox: `0 0 ${W} ${Hh}`, class: "chart", "data-metric": title });
    const pts = series.flatMap((s) => s.points);
    if (!pts.length) return svg;
    let x0 = Math.min(...pts.map((p) => p[0])), x1 = Math.max(...pts.map((p) => p[0]));
    let y0 = Math.min(...pts.map((p) => p[1])), y1 = Math.max(...pts.map((p) => p[1]));
    if (x1 === x0) { x1 += 1; x0 -= 1; }
    if (y1 - y0 < 1e-9) { y1 += 0.5; y0 -= 0.5; }
    const pad = (y1 - y0) * 0.05, low = y0, high = y1; y0 -= pad; y1 += pad;
    if (low >= 0) y0 = Math.max(0, y0); // a loss or an accuracy never goes below 0, nor an accuracy above 1
    if (percent && high <= 1) y1 = Math.min(1, y1);
    const yt = ticks(y0, y1, 5), xt = ticks(x0, x1, 6).values.filter((x) => Number.isInteger(x));
    const digits = Math.max(0, Math.ceil(-Math.log10(yt.step)));
    const X = (x) => P.l + ((x - x0) * (W - P.l - P.r)) / (x1 - x0), Y = (y) => P.t + ((y1 - y) * (Hh - P.t - P.b)) / (y1 - y0);
    const label = (x, y, text, anchor) => { const t = S("text", { x, y, "text-anchor": anchor }); t.textContent = text; svg.append(t); };
    const head = S("text", { x: P.l, y: 14, style: "font-weight:600;fill:#1d2430;font-size:12px" }); head.textContent = title; svg.append(head);
    for (const y of yt.values) {
      svg.append(S("line", { x1: P.l, x2: W - P.r, y1: Y(y), y2: Y(y), stroke: "#eceff4" }));
      label(P.l - 5, Y(y) + 4, percent ? (100 * y).toFixed(Math.max(0, digits - 2)) + "%" : y.toFixed(digits), "end");
    }
    for (const x of xt) label(X(x), Hh - 10, x.toLocaleString("en"), "middle");
    label(W - P.r, Hh - 22, "step", "end");
    series.forEach((s) => {
      const d = s.points.map((p, i) => (i ? "L" : "M") + X(p[0]).toFixed(1) + "," + Y(p[1]).toFixed(1)).join("");
      svg.append(S("path", { d, fill: "none", stroke: s.color, "stroke-width": 1.8, "stroke-dasharray": s.dash || "", class: "curve", "data-series": s.name }));
      if (s.points.length < 40) s.points.forEach((p) => svg.append(S("circle", { cx: X(p[0]), cy: Y(p[1]), r: 2.5, fill: s.color })));
    });
    const cursor = S("line", { y1: P.t, y2: Hh - P.b, stroke: "#999", "stroke-dasharray": "2 2", visibility: "hidden" });
    svg.append(cursor);
    // the legend, under the title
    let lx = P.l + 8 + 7 * title.length;
    series.forEach((s) => { svg.append(S("line", { x1: lx, x2: lx + 16, y1: 10, y2: 10, stroke: s.color, "stroke-width": 2, "stroke-dasharray": s.dash || "" })); const t = S("text", { x: lx + 19, y: 14 }); t.textContent = s.name; svg.append(t); lx += 26 + 6.2 * s.name.length; });
    svg.addEventListener("mousemove", (ev) => {
      const r = svg.getBoundingClientRect(), x = x0 + ((ev.clientX - r.left - P.l) * (x1 - x0)) / (W - P.l - P.r);
      let near = null; // the step nearest the pointer; then each series' value there, if it has one
      for (const p of pts) if (near === null || Math.abs(p[0] - x) < Math.abs(near - x)) near = p[0];
      const lines = [];
      for (const s of series) { const p = s.points.find((q) => q[0] === near); if (p) lines.push(`${s.name}: ${percent ? pct(p[1]) : num(p[1])}`); }
      lines.unshift(`step ${near.toLocaleString("en")}`);
      cursor.setAttribute("x1", X(near)); cursor.setAttribute("x2", X(near)); cursor.setAttribute("visibility", "visible");
      tip.textContent = `${title}\n` + lines.join("\n"); tip.style.display = "block"; tip.style.left = ev.clientX + 14 + "px"; tip.style.top = ev.clientY + 10 + "px";
    });
    svg.addEventListener("mouseleave", () => { tip.style.display = "none"; cursor.setAttribute("visibility", "hidden"); });
    return svg;
  }

  function report() {
    const runs = D.runs;
    wrap.append($("h1", { text: runs.length === 1 ? runs[0].name : `${runs.length} runs` }), $("div", { class: "dim", text: `rnnlab report · made ${D.made}` }));
    // the final table
    const keys = [...new Set(runs.flatMap((r) => [...Object.keys(r.summary.val || {}), ...Object.keys(r.summary.test || {})]))].filter((k) => k !== "step");
    wrap.append($("h2", { text: "Final results" }));
    const head = $("tr", {}, ...["run", "status", "task", "model", "params", "steps", "time", "best val at step", ...keys.map((k) => "val " + k), ...keys.map((k) => "test " + k)].map((h, i) => $("th", { class: i < 4 ? "l" : "", text: h })));
    const body = $("tbody");
    runs.forEach((r, i) => {
      const s = r.summary;
      body.append($("tr", { "data-run": r.name }, $("td", { class: "l" }, $("a", { href: "#run-" + i, text: r.name })), $("td", { class: "l" }, badge(r.status)),
        $("td", { class: "l", text: s.task || "–" }), $("td", { class: "l", text: s.model || "–" }), $("td", { text: num(s.params) }), $("td", { text: num(s.steps) }),
        $("td", { text: secs(s.wall_time_s) }), $("td", { text: num((s.val || {}).step) }),
        ...keys.map((k) => $("td", { text: metric(k, (s.val || {})[k]) })), ...keys.map((k) => $("td", { text: metric(k, (s.test || {})[k]) }))));
    });
    wrap.append($("div", { style: "overflow:auto" }, $("table", { class: "grid", id: "final" }, $("thead", {}, head), body)));
    // the curves: one chart per metric, every run's train (dashed) and val (solid) lines
    wrap.append($("h2", { text: "Training and validation curves" }), $("p", { class: "dim", text: "Hover a chart for the values at the nearest step. Solid: validation; dashed: training (the mean over the steps since the last evaluation); a lone point: the test split, read once at the end." }));
    const metrics = [...new Set(runs.flatMap((r) => Object.keys(r.curves)))];
    const charts = $("div", { style: "display:flex;flex-wrap:wrap;gap:14px" });
    for (const m of metrics) {
      const series = [];
      runs.forEach((r, i) => {
        for (const split of Object.keys(r.curves[m] || {}).sort((a, b) => (a === "val" ? 1 : 0) - (b === "val" ? 1 : 0))) {
          const own = { val: 0, train: 1, test: 2 }[split] ?? 3;
          series.push({ name: (runs.length > 1 ? `${i + 1}. ` : "") + split, points: r.curves[m][split], color: COLORS[(runs.length > 1 ? i : own) % COLORS.length], dash: split === "train" ? "5 3" : split === "test" ? "1 3" : "" });
        }
      });
      charts.append(chart(m, series, { percent: m.includes("accuracy") }));
    }
    if (!metrics.length) charts.append($("p", { class: "dim", text: "no metrics.jsonl rows yet (the run has not reached its first evaluation)" }));
    wrap.append(charts);
    if (runs.length > 1) wrap.append($("p", { class: "dim", text: runs.map((r, i) => `${i + 1}. ${r.name}`).join("   ") }));
    // each run: status, checkpoints, inspect pages, config
    runs.forEach((r, i) => {
      const s = r.summary;
      const sec = $("section", { id: "run-" + i, class: "run" });
      sec.append($("h2", {}, `${r.name} `, badge(r.status)));
      sec.append($("div", { class: "dim" }, `${r.path} · `, $("a", { href: r.href, text: "folder" }), s.device ? ` · ${s.device}, ${s.precision || ""}` : "", s.seed != null ? ` · seed ${s.seed}` : "", s.steps_per_s ? ` · ${num(s.steps_per_s, 1)} steps/s` : ""));
      if (s.error || s.reason) sec.append($("p", { text: String(s.error || s.reason) }));
      sec.append($("h3", { text: "Checkpoints" }));
      if (r.checkpoints.length) sec.append($("table", { class: "grid checkpoints" }, $("thead", {}, $("tr", {}, $("th", { class: "l", text: "file" }), $("th", { text: "size" }), $("th", { class: "l", text: "written" }))),
        $("tbody", {}, ...r.checkpoints.map((c) => $("tr", {}, $("td", { class: "l", text: c.name }), $("td", { text: (c.bytes / 1e6).toFixed(2) + " MB" }), $("td", { class: "l", text: c.modified }))))));
      else sec.append($("p", { class: "dim", text: "none: the run ended before its first checkpoint" }));
      sec.append($("h3", { text: "Inspect pages" }));
      if (r.inspect.length) sec.append($("ul", { class: "inspect" }, ...r.inspect.map((p) => $("li", {}, $("a", { href: p.href, text: p.input || p.name }), $("span", { class: "dim", text: ` · ${p.name}` })))));
      else sec.append($("p", { class: "dim" }, "none yet; make one with ", $("code", { text: `rnnlab inspect ${r.path} --html` })));
      if (r.lr.length > 1 && new Set(r.lr.map((p) => p[1])).size > 1) sec.append(chart("learning rate", [{ name: "lr", points: r.lr, color: "#8c564b" }]));
      sec.append($("details", { open: runs.length === 1 ? "" : null }, $("summary", { text: "Resolved config (config.yaml)" }), $("pre", { class: "config", text: r.config || "no config.yaml" })));
      if (runs.length === 1) sec.querySelector("details").open = true;
      wrap.append(sec);
    });
  }

  function index() {
    wrap.append($("h1", { text: D.title }), $("div", { class: "dim", text: `rnnlab runs --html · made ${D.made} · ${D.rows.length} row${D.rows.length === 1 ? "" : "s"}` }));
    const filter = $("input", { id: "filter", placeholder: "filter: any text of a row", size: 40 });
    wrap.append($("div", { class: "controls", style: "margin:12px 0" }, filter));
    const cols = [["name", "run"], ["kind", "kind"], ["task", "task"], ["model", "model"], ["status", "status"], ["steps", "steps"], ["val", "val"], ["test", "test"], ["wall_time_s", "time"], ["start", "started"]];
    const body = $("tbody");
    for (const r of D.rows) {
      const depth = r.path === "." ? 0 : r.path.split("/").length - 1;
      const name = $("td", { class: "l", style: `padding-left:${8 + 16 * depth}px` }, r.report ? $("a", { href: r.report, text: r.name }) : $("a", { href: r.href, text: r.name }));
      const tr = $("tr", { class: "row", "data-path": r.path }, name, ...cols.slice(1).map(([k]) => {
        if (k === "status") return $("td", { class: "l", title: r.reason || "" }, badge(r.status));
        if (k === "val" || k === "test") return $("td", { text: r[k] == null ? "–" : (r.metric === "accuracy" ? pct(r[k]) : num(r[k])) });
        if (k === "wall_time_s") return $("td", { text: secs(r[k]) });
        if (k === "start") return $("td", { class: "l", text: r[k] == null ? "–" : String(r[k]).replace("T", " ") });
        return $("td", { class: ["kind", "task", "model"].includes(k) ? "l" : "", text: r[k] == null ? "–" : num(r[k]) });
      }));
      body.append(tr);
    }
    const table = $("table", { class: "grid", id: "runs" }, $("thead", {}, $("tr", {}, ...cols.map(([, h], i) => $("th", { class: i < 5 || i === 9 ? "l" : "", text: h })))), body);
    wrap.append(table, $("p", { class: "dim", text: "A run's name opens its report (rnnlab report RUN); a comparison's or a probe's, its folder. val and test: the task's primary metric (accuracy, else loss) at the best validation checkpoint." }));
    filter.addEventListener("input", () => { const q = filter.value.toLowerCase(); body.querySelectorAll("tr").forEach((tr) => { tr.style.display = tr.textContent.toLowerCase().includes(q) ? "" : "none"; }); });
  }

  if (D.kind === "index") index(); else report();
  document.body.dataset.ready = "1";
})();
