// The gate viewer of `rnnlab inspect --html` (rnnlab/gateview.py writes the data this reads).
// Plain DOM, canvas and SVG: no library, nothing fetched.
"use strict";
(function () {
  const D = JSON.parse(document.getElementById("data").textContent);
  const T = D.steps, H = D.hidden, EXAMPLE_BUDGET = D.examples.budget;
  // $ and S: assets/common.js
  const bytes = (b64) => { const s = atob(b64), b = new Uint8Array(s.length); for (let i = 0; i < s.length; i++) b[i] = s.charCodeAt(i); return b.buffer; };
  // float16 (the examples of the threshold search) to numbers: sign, 5 exponent bits, 10 mantissa bits
  const decode16 = (b64) => { const h = new Uint16Array(bytes(b64)), f = new Float32Array(h.length);
    for (let i = 0; i < h.length; i++) { const x = h[i], e = (x >> 10) & 31, m = x & 1023, s = x & 32768 ? -1 : 1;
      f[i] = e === 0 ? s * m * 2 ** -24 : e === 31 ? (m ? NaN : s * Infinity) : s * (1 + m / 1024) * 2 ** (e - 15); }
    return f; };
  const decode = (b64) => new Float32Array(bytes(b64));
  const A = {}; // "layer0.forward.forget_gate" -> Float32Array (T * H), row t holds the H units
  for (const [k, v] of Object.entries(D.arrays)) A[k] = decode(v);
  const at = (key, t, u) => A[key][t * H + u];
  const pretty = (name) => name.replace(/_/g, " ");
  const fmt = (v) => (Math.abs(v) < 0.0005 ? 0 : v).toFixed(3);

  // --- colours: gates 0..1 (sequential), states symmetric around 0 (diverging) -------------------
  const SEQ = [[255, 255, 255], [198, 219, 239], [107, 174, 214], [33, 113, 181], [8, 48, 107]];
  const DIV = [[33, 102, 172], [146, 197, 222], [247, 247, 247], [244, 165, 130], [178, 24, 43]];
  const ramp = (stops, x) => { x = Math.min(1, Math.max(0, x)) * (stops.length - 1); const i = Math.min(stops.length - 2, Math.floor(x)), f = x - i; return stops[i].map((c, j) => Math.round(c + f * (stops[i + 1][j] - c))); };
  const scale = {};
  for (const name of D.names) {
    if (name.endsWith("_gate")) { scale[name] = { lo: 0, hi: 1, stops: SEQ }; continue; }
    let m = 1e-6; for (const p of D.panels) for (const v of A[p + "." + name]) m = Math.max(m, Math.abs(v));
    if (name !== "cell") m = Math.min(m, 1); // tanh outputs: one scale, -1..1
    scale[name] = { lo: -m, hi: m, stops: DIV };
  }
  const color = (name, v) => { const s = scale[name]; return ramp(s.stops, (v - s.lo) / (s.hi - s.lo)); };
  const css = (rgb) => `rgb(${rgb[0]},${rgb[1]},${rgb[2]})`;

  // --- state of the page --------------------------------------------------------------------------
  const st = { step: 0, pinned: false, units: [], trajName: D.state, brush: null };
  const CW = Math.max(2, Math.min(40, Math.floor(1000 / T))), RH = Math.max(2, Math.min(16, Math.floor(200 / H)));
  const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22"];
  const listeners = [];
  const redraw = () => listeners.forEach((f) => f());
  const setStep = (t, pin) => {
    t = Math.max(0, Math.min(T - 1, t));
    if (st.pinned && !pin) return;
    if (pin) st.pinned = !(st.pinned && st.step === t);
    st.step = t; redraw();
  };
  const unitKey = (u) => u.panel + ":" + u.unit;
  const toggleUnit = (panel, unit) => {
    const i = st.units.findIndex((u) => u.panel === panel && u.unit === unit);
    if (i >= 0) st.units.splice(i, 1); else st.units.push({ panel, unit });
    redraw();
  };
  const addUnits = (panel, lo, hi) => {
    const have = new Set(st.units.map(unitKey));
    for (let u = Math.min(lo, hi); u <= Math.max(lo, hi); u++) if (!have.has(panel + ":" + u)) st.units.push({ panel, unit: u });
    redraw();
  };

  // --- layout ---------------------------------------------------------------------------------------
  const app = document.getElementById("app");
  const main = $("div", { class: "main" }), side = $("aside", { class: "side", id: "step-panel" });
  app.append($("style", { text: `
    #app { display: flex; align-items: flex-start; }
    .main { flex: 1; min-width: 0; padding: 14px 20px 60px; }
    .side { width: 430px; flex: none; position: sticky; top: 0; height: 100vh; overflow: auto; border-left: 1px solid var(--line); background: var(--panel); padding: 12px 14px; }
    .tokens { line-height: 1.9; max-height: 260px; overflow: auto; border: 1px solid var(--line); padding: 6px 8px; border-radius: 4px; user-select: none; }
    .tok { padding: 1px 2px; margin: 0 1px; border-radius: 3px; cursor: pointer; white-space: pre; }
    .tok:hover { outline: 1px solid var(--accent); }
    .tok.cur { background: var(--hi); } .tok.pin { background: #f0a020; color: #fff; } .tok.span { box-shadow: inset 0 -3px 0 var(--accent); }
    .hm { display: flex; align-items: flex-start; margin: 2px 0 6px; }
    .hm svg.axis { display: block; margin-top: -4px; }
    .hm .lab { width: 120px; flex: none; font-size: 12px; color: var(--dim); padding-top: 2px; white-space: pre-line; }
    .hm .box { position: relative; overflow-x: auto; max-width: calc(100% - 180px); }
    .hm canvas { display: block; image-rendering: pixelated; cursor: crosshair; }
    .hm canvas.over { position: absolute; left: 0; top: 0; pointer-events: none; image-rendering: auto; }
    .legend { display: inline-flex; align-items: center; gap: 4px; font-size: 11px; color: var(--dim); margin-left: 8px; }
    .legend i { display: inline-block; width: 90px; height: 9px; }
    .side table.grid td { padding: 1px 5px; } .side table.grid td.u { color: var(--dim); }
    .side table.grid tr.sel td.u { color: #fff; background: var(--accent); }
    .out { background: #fff; border: 1px solid var(--line); border-radius: 4px; padding: 5px 8px; margin: 6px 0 10px; }
    .controls { display: flex; flex-wrap: wrap; gap: 10px; align-items: center; margin: 6px 0; }
    #traj svg { background: #fff; border: 1px solid var(--line); }
    .chips { height: 26px; overflow-x: auto; overflow-y: hidden; white-space: nowrap; }
    .chips span { display: inline-block; margin: 2px 4px 2px 0; padding: 0 6px; border-radius: 9px; color: #fff; font-size: 12px; cursor: pointer; }
    #matches { max-height: 360px; overflow: auto; padding-left: 20px; font-size: 13px; }
    #matches li { margin: 3px 0; } #matches mark { background: var(--hi); border-radius: 2px; }
  ` }));
  app.append(main, side);
  const tip = $("div", { class: "tip" }); document.body.append(tip);
  const tipShow = (ev, text) => { tip.textContent = text; tip.style.display = "block"; tip.style.left = ev.clientX + 14 + "px"; tip.style.top = ev.clientY + 12 + "px"; };
  const tipHide = () => { tip.style.display = "none"; };

  const pred = D.prediction || {};
  const said = pred.next_token !== undefined ? `next token “${pred.next_token}” (${(100 * pred.probability).toFixed(1)}%)`
    : pred.label !== undefined ? `${pred.label} (${(100 * pred.probability).toFixed(1)}%)` : pred.value !== undefined ? `${pred.value}` : pred.tags ? `the tags ${pred.tags.join(" ")}` : JSON.stringify(pred);
  main.append(
    $("h1", { text: D.title }),
    $("div", { class: "dim", text: `${D.task} · ${D.model} (${D.cell}) · ${T} steps · ${H} units per direction · ${D.panels.length} layer-direction panel(s) · the model says ${said}` + (pred.target !== undefined ? `, target ${pred.target}` : "") }),
    $("p", { class: "dim", text: "Hover a token or a heat-map column to see every gate at that step (click to pin it). Click a heat-map row to plot that unit below the text; drag up or down over the rows to add a range of units. Drag over tokens to choose a span for the threshold search." }),
  );

  // --- the tokens ---------------------------------------------------------------------------------------
  main.append($("h2", { text: D.is_text ? "The text" : "The steps" }));
  const tokBox = $("div", { class: "tokens", id: "tokens" });
  const tokEls = D.tokens.map((tok, t) => $("span", { class: "tok", "data-step": t, title: `step ${t}`, text: tok }));
  tokBox.append(...tokEls.flatMap((e) => [e, " "]));
  main.append(tokBox);
  let drag = null;
  tokBox.addEventListener("mouseover", (ev) => { const t = ev.target.dataset.step; if (t === undefined) return; if (drag) { drag.end = +t; showSpan(drag.start, drag.end); } setStep(+t, false); });
  tokBox.addEventListener("mousedown", (ev) => { const t = ev.target.dataset.step; if (t !== undefined) { drag = { start: +t, end: +t }; ev.preventDefault(); } });
  window.addEventListener("mouseup", () => {
    if (!drag) return;
    const d = drag; drag = null;
    if (d.start === d.end) setStep(d.start, true);
    else { fromIn.value = Math.min(d.start, d.end); toIn.value = Math.max(d.start, d.end); lenIn.value = Math.abs(d.end - d.start) + 1; showSpan(+fromIn.value, +toIn.value); }
  });
  const showSpan = (a, b) => tokEls.forEach((e, t) => e.classList.toggle("span", t >= Math.min(a, b) && t <= Math.max(a, b)));
  listeners.push(() => tokEls.forEach((e, t) => { e.classList.toggle("cur", t === st.step && !st.pinned); e.classList.toggle("pin", t === st.step && st.pinned); }));

  // --- trajectories of the chosen units ---------------------------------------------------------------
  const trajBox = $("div", { id: "traj" });
  const trajSel = $("select", { id: "traj-array", onchange: () => { st.trajName = trajSel.value; redraw(); } },
    ...D.names.map((n) => $("option", { value: n, text: pretty(n) })));
  trajSel.value = st.trajName;
  const unitsIn = $("input", { id: "units-input", placeholder: "e.g. 3, 5-9", size: 12 });
  const panelSel = () => $("select", {}, ...D.panels.map((p) => $("option", { value: p, text: p })));
  const unitsPanel = panelSel();
  const chips = $("div", { class: "chips", id: "unit-chips" });
  main.append($("h2", { text: "Units against the steps" }), $("div", { class: "controls" },
    $("label", { text: "plot " }, trajSel),
    $("span", { class: "dim", text: "add units" }), unitsPanel, unitsIn,
    $("button", { text: "add", onclick: () => { for (const part of unitsIn.value.split(",")) { const m = part.trim().match(/^(\d+)(?:\s*-\s*(\d+))?$/); if (m) addUnits(unitsPanel.value, Math.min(+m[1], H - 1), Math.min(+(m[2] ?? m[1]), H - 1)); } } }),
    $("button", { id: "clear-units", text: "clear", onclick: () => { st.units = []; redraw(); } }),
    $("button", { text: "memory carriers", title: "the units whose state changes least (inspect's summary.json)", onclick: () => { st.units = []; for (const p of D.panels) for (const u of D.carriers[p] || []) st.units.push({ panel: p, unit: u }); redraw(); } }),
  ), chips, trajBox);
  const TW = 1000, TH = 220, PAD = { l: 46, r: 10, t: 10, b: 26 };
  const xOf = (t) => PAD.l + (T === 1 ? 0 : (t * (TW - PAD.l - PAD.r)) / (T - 1));
  function drawTraj() {
    trajBox.textContent = "";
    chips.textContent = "";
    st.units.forEach((u, i) => chips.append($("span", { style: `background:${PALETTE[i % PALETTE.length]}`, title: "click to remove", text: `${u.panel} unit ${u.unit} ×`, onclick: () => toggleUnit(u.panel, u.unit) })));
    const svg = S("svg", { width: TW, height: TH, viewBox: `0 0 ${TW} ${TH}`, id: "traj-svg" });
    trajBox.append(svg);
    if (!st.units.length) { const t = S("text", { x: TW / 2, y: TH / 2, "text-anchor": "middle" }); t.textContent = "click heat-map rows (or add units above) to plot them here"; svg.append(t); return; }
    let lo = Infinity, hi = -Infinity;
    for (const u of st.units) for (let t = 0; t < T; t++) { const v = at(u.panel + "." + st.trajName, t, u.unit); lo = Math.min(lo, v); hi = Math.max(hi, v); }
    if (st.trajName.endsWith("_gate")) { lo = Math.min(lo, 0); hi = Math.max(hi, 1); }
    if (hi - lo < 1e-6) { hi += 0.5; lo -= 0.5; }
    const yOf = (v) => PAD.t + ((hi - v) * (TH - PAD.t - PAD.b)) / (hi - lo);
    for (const v of [lo, (lo + hi) / 2, hi]) {
      svg.append(S("line", { x1: PAD.l, x2: TW - PAD.r, y1: yOf(v), y2: yOf(v), stroke: "#e5e8ee" }));
      const lab = S("text", { x: PAD.l - 4, y: yOf(v) + 4, "text-anchor": "end" }); lab.textContent = v.toFixed(2); svg.append(lab);
    }
    if (lo < 0 && hi > 0) svg.append(S("line", { x1: PAD.l, x2: TW - PAD.r, y1: yOf(0), y2: yOf(0), stroke: "#b8bfcc", "stroke-dasharray": "3 3" }));
    const every = Math.max(1, Math.ceil(T / 20));
    for (let t = 0; t < T; t += every) { const lab = S("text", { x: xOf(t), y: TH - 8, "text-anchor": "middle" }); lab.textContent = t; svg.append(lab); }
    svg.append(S("line", { x1: xOf(st.step), x2: xOf(st.step), y1: PAD.t, y2: TH - PAD.b, stroke: "#f0a020", "stroke-width": 2 }));
    st.units.forEach((u, i) => {
      let d = ""; for (let t = 0; t < T; t++) d += (t ? "L" : "M") + xOf(t).toFixed(1) + "," + yOf(at(u.panel + "." + st.trajName, t, u.unit)).toFixed(1);
      svg.append(S("path", { d, class: "traj", "data-panel": u.panel, "data-unit": u.unit, fill: "none", stroke: PALETTE[i % PALETTE.length], "stroke-width": 1.6 }));
    });
    svg.addEventListener("mousemove", (ev) => { const r = svg.getBoundingClientRect(); setStep(Math.round(((ev.clientX - r.left - PAD.l) / (TW - PAD.l - PAD.r)) * (T - 1)), false); });
  }
  listeners.push(drawTraj);

  // --- the threshold search (LSTMVis) ---------------------------------------------------------------
  const EX = (D.examples.items || []).map((e) => ({ tokens: e.tokens, states: Object.fromEntries(Object.entries(e.states).map(([p, v]) => [p, decode16(v)])) }));
  const thPanel = panelSel(); thPanel.id = "th-panel";
  const thIn = $("input", { id: "th-theta", type: "number", step: "0.05", value: "0.3" });
  const fromIn = $("input", { id: "th-from", type: "number", min: 0, max: T - 1, value: 0 });
  const toIn = $("input", { id: "th-to", type: "number", min: 0, max: T - 1, value: Math.min(T - 1, 2) });
  const lenIn = $("input", { id: "th-len", type: "number", min: 1, value: Math.min(T, 3) });
  const thOut = $("div", { id: "th-result" }), matchList = $("ol", { id: "matches" });
  main.append($("h2", { text: `Threshold search: where else are the same units on? (${D.state} state)` }),
    $("p", { class: "dim", text: `Units whose ${D.state} state stays above θ over steps from..to of this input; then every run of at least min-length steps, in this input and in the first ${EX.length} example${EX.length === 1 ? "" : "s"} of the ${D.examples.split} split` +
      (D.examples.cut ? ` (of the ${D.examples.asked} asked for: the page keeps at most ${EXAMPLE_BUDGET.toLocaleString()} of their values)` : "") +
      (D.examples.missing ? ` (the split could not be read: ${D.examples.missing})` : "") + `, where all of them are above θ together.` }),
    $("div", { class: "controls" }, $("label", { text: "panel " }, thPanel), $("label", { text: "θ " }, thIn), $("label", { text: "from " }, fromIn),
      $("label", { text: "to " }, toIn), $("label", { text: "min length " }, lenIn), $("button", { id: "th-run", text: "find", onclick: () => runThreshold() })),
    thOut, matchList);
  // Runs where every unit of `units` is above theta, at least `minLen` long: [start, end] inclusive.
  function spans(arr, steps, units, theta, minLen) {
    const out = []; let start = -1;
    for (let t = 0; t <= steps; t++) {
      let on = t < steps;
      for (let k = 0; on && k < units.length; k++) on = arr[t * H + units[k]] > theta;
      if (on && start < 0) start = t;
      if (!on && start >= 0) { if (t - start >= minLen) out.push([start, t - 1]); start = -1; }
    }
    return out;
  }
  function runThreshold() {
    const panel = thPanel.value, theta = +thIn.value, a = Math.max(0, Math.min(+fromIn.value, +toIn.value)), b = Math.min(T - 1, Math.max(+fromIn.value, +toIn.value)), minLen = Math.max(1, +lenIn.value || 1);
    showSpan(a, b);
    const key = panel + "." + D.state, units = [];
    for (let u = 0; u < H; u++) { let on = true; for (let t = a; t <= b && on; t++) on = at(key, t, u) > theta; if (on) units.push(u); }
    matchList.textContent = "";
    thOut.textContent = "";
    thOut.dataset.units = units.join(",");
    if (!units.length) { thOut.append($("p", { text: `no unit of ${panel} stays above θ = ${theta} over steps ${a}–${b}; lower θ or shorten the span` })); return; }
    st.units = units.map((u) => ({ panel, unit: u })); st.trajName = D.state; trajSel.value = D.state; redraw();
    const sources = [{ name: "this input", tokens: D.tokens, arr: A[key] }, ...EX.map((e, j) => ({ name: `${D.examples.split} example ${j}`, tokens: e.tokens, arr: e.states[panel], j }))];
    let total = 0, shown = 0;
    for (const [si, s] of sources.entries()) {
      for (const [s0, s1] of spans(s.arr, s.tokens.length, units, theta, minLen)) {
        total++;
        if (shown >= 500) continue;
        shown++;
        const c0 = Math.max(0, s0 - 5), c1 = Math.min(s.tokens.length - 1, s1 + 5);
        const li = $("li", { class: "match", "data-source": si === 0 ? "input" : s.j, "data-start": s0, "data-end": s1 },
          $("span", { class: "dim", text: `${s.name}, steps ${s0}–${s1}: ` }), (c0 > 0 ? "… " : ""),
          s.tokens.slice(c0, s0).join(" ") + " ", $("mark", { text: s.tokens.slice(s0, s1 + 1).join(" ") }), " " + s.tokens.slice(s1 + 1, c1 + 1).join(" "), c1 < s.tokens.length - 1 ? " …" : "");
        matchList.append(li);
      }
    }
    thOut.append($("p", {}, $("b", { text: `${units.length} unit(s) of ${panel}` }), ` stay above θ = ${theta} over steps ${a}–${b}: ${units.join(", ")}. ` +
      `${total} span(s) of ≥ ${minLen} steps where they are all on` + (total > shown ? ` (first ${shown} listed)` : "") + ":"));
  }

  // --- the heat maps ------------------------------------------------------------------------------------
  main.append($("h2", { text: "Heat maps: units (rows, unit 0 on top) × steps (columns)" }));
  const overlays = [];
  for (const name of D.names) {
    const s = scale[name];
    const grad = `linear-gradient(to right, ${[0, 0.25, 0.5, 0.75, 1].map((x) => css(ramp(s.stops, x))).join(",")})`;
    main.append($("h3", {}, pretty(name), $("span", { class: "legend" }, s.lo.toFixed(2), $("i", { style: `background:${grad}` }), s.hi.toFixed(2))));
    for (const panel of D.panels) {
      const key = panel + "." + name;
      const cv = $("canvas", { width: T, height: H, "data-key": key, class: "heat", style: `width:${T * CW}px;height:${H * RH}px` });
      const ctx = cv.getContext("2d"), img = ctx.createImageData(T, H);
      for (let u = 0; u < H; u++) for (let t = 0; t < T; t++) { const c = color(name, at(key, t, u)), o = 4 * (u * T + t); img.data[o] = c[0]; img.data[o + 1] = c[1]; img.data[o + 2] = c[2]; img.data[o + 3] = 255; }
      ctx.putImageData(img, 0, 0);
      const ov = $("canvas", { class: "over", width: T * CW, height: H * RH, style: `width:${T * CW}px;height:${H * RH}px` });
      const box = $("div", { class: "box" }, cv, ov);
      main.append($("div", { class: "hm" }, $("div", { class: "lab", text: (D.panels.length > 1 ? panel.replace(".", " ") + "\n" : "") + `units 0–${H - 1}` }), box));
      const where = (ev) => { const r = cv.getBoundingClientRect(); return { t: Math.floor((ev.clientX - r.left) / CW), u: Math.min(H - 1, Math.max(0, Math.floor((ev.clientY - r.top) / RH))) }; };
      cv.addEventListener("mousemove", (ev) => { const p = where(ev); setStep(p.t, false); if (st.brush) { st.brush.u1 = p.u; drawOverlays(); } tipShow(ev, `${panel} ${pretty(name)}\nstep ${p.t} “${D.tokens[p.t]}”, unit ${p.u}: ${fmt(at(key, p.t, p.u))}`); });
      cv.addEventListener("mouseleave", tipHide);
      cv.addEventListener("mousedown", (ev) => { const p = where(ev); st.brush = { panel, u0: p.u, u1: p.u, t: p.t }; ev.preventDefault(); });
      overlays.push({ ov, panel });
    }
    main.append($("div", { class: "hm" }, $("div", { class: "lab" }), $("div", { class: "box" }, stepAxis())));
  }
  // Step numbers under a heat map's columns, at least ~50 px apart.
  function stepAxis() {
    const every = [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000].find((k) => k * CW >= 50) || 10000;
    const svg = S("svg", { width: T * CW, height: 14, class: "axis" });
    for (let t = 0; t < T; t += every) { const x = S("text", { x: t * CW + CW / 2, y: 11, "text-anchor": !t ? "start" : (t + 1) * CW + 12 > T * CW ? "end" : "middle" }); x.textContent = t; svg.append(x); }
    return svg;
  }
  window.addEventListener("mouseup", () => {
    const b = st.brush; if (!b) return; st.brush = null;
    if (b.u0 === b.u1) { toggleUnit(b.panel, b.u0); setStep(b.t, true); } else addUnits(b.panel, b.u0, b.u1);
  });
  function drawOverlays() {
    for (const { ov, panel } of overlays) {
      const g = ov.getContext("2d"); g.clearRect(0, 0, ov.width, ov.height);
      g.fillStyle = "rgba(240,160,32,0.35)"; g.fillRect(st.step * CW, 0, Math.max(CW, 2), ov.height);
      st.units.forEach((u, i) => { if (u.panel !== panel) return; g.strokeStyle = PALETTE[i % PALETTE.length]; g.lineWidth = 1.5; g.strokeRect(0.75, u.unit * RH + 0.75, ov.width - 1.5, RH - 0.5); });
      if (st.brush && st.brush.panel === panel) { const a = Math.min(st.brush.u0, st.brush.u1), b = Math.max(st.brush.u0, st.brush.u1); g.fillStyle = "rgba(43,108,176,0.25)"; g.fillRect(0, a * RH, ov.width, (b - a + 1) * RH); }
    }
  }
  listeners.push(drawOverlays);

  // --- the step panel: every array, every unit, at the chosen step -----------------------------------
  const stepHead = $("div", { id: "step-title" }), outBox = $("div", { class: "out", id: "running-output" });
  side.append($("h2", { text: "At one step", style: "margin-top:0" }), stepHead, outBox);
  const cells = [];
  for (const panel of D.panels) {
    const head = $("tr", {}, $("th", { class: "l", text: "unit" }), ...D.names.map((n) => $("th", { text: pretty(n).replace(" gate", "") })));
    const body = $("tbody");
    for (let u = 0; u < H; u++) {
      const tr = $("tr", { "data-unit": u }, $("td", { class: "u l", text: u, title: "click: plot this unit", style: "cursor:pointer", onclick: () => toggleUnit(panel, u) }));
      for (const n of D.names) { const td = $("td", { "data-key": panel + "." + n, "data-unit": u }); cells.push({ td, key: panel + "." + n, name: n, u }); tr.append(td); }
      body.append(tr);
    }
    side.append($("h3", { text: panel }), $("table", { class: "grid step-table", "data-panel": panel }, $("thead", {}, head), body));
  }
  const R = D.running;
  function runningAt(t) { let i = -1; for (let k = 0; k < R.steps.length && R.steps[k] <= t; k++) i = k; return i; }
  listeners.push(() => {
    const t = st.step;
    stepHead.textContent = "";
    stepHead.append($("b", { text: `step ${t}` }), `: “${D.tokens[t]}”`, st.pinned ? $("span", { class: "dim", text: " (pinned: click it again to release)" }) : "");
    const i = runningAt(t);
    outBox.textContent = "";
    if (i < 0) outBox.textContent = "no output yet";
    else {
      const head = R.what === "answer so far" ? `after reading steps 0–${R.steps[i]}, the model says` : `the model's ${R.what} at this step`;
      const body = R.value ? (R.value[i] == null ? "not a number" : R.value[i].toFixed(4)) : R.top[i].map(([n, p]) => `${n} ${p == null ? "?" : (100 * p).toFixed(1) + "%"}`).join(" · ");
      outBox.append($("div", { class: "dim", text: head }), $("div", { id: "running-value", text: body }));
    }
    for (const c of cells) { const v = at(c.key, t, c.u); c.td.textContent = fmt(v); const rgb = color(c.name, v); c.td.style.background = `rgba(${rgb[0]},${rgb[1]},${rgb[2]},0.55)`; }
    const chosen = new Set(st.units.map(unitKey));
    side.querySelectorAll("table.step-table").forEach((tb) => tb.querySelectorAll("tbody tr").forEach((tr) => tr.classList.toggle("sel", chosen.has(tb.dataset.panel + ":" + tr.dataset.unit))));
  });

  redraw();
  document.body.dataset.ready = "1";
  window.gateviewReadyMs = performance.now();
})();
