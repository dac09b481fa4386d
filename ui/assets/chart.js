// The dashboard's traffic chart: a hand-drawn SVG of two panels sharing a
// time axis, decisions/s on top and the denial ratio below, one line per
// zone. A gap in a zone's samples is a gap in its line.

const SVG_NS = "http://www.w3.org/2000/svg";

const HEIGHT = 320;
const LEFT = 56;
const RIGHT = 12;
const PANELS = [
  { top: 24, bottom: 150, title: "decisions/s", field: "rate", cls: "rate-line" },
  { top: 190, bottom: 300, title: "denial ratio", field: "denial", cls: "denial-line" },
];

function node(tag, attrs) {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") e.textContent = v;
    else e.setAttribute(k, String(v));
  }
  return e;
}

// niceMax rounds v up to 1, 2, 2.5 or 5 times a power of ten.
function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function rateLabel(v) {
  if (v >= 1000) return (v / 1000).toFixed(v >= 10000 ? 0 : 1) + "k";
  return Number.isInteger(v) ? String(v) : v.toFixed(1);
}

// drawChart redraws chart (an <svg>) from history, the samples of the last
// spanMs ending at now: [{t, zones: Map zone -> {rate, denial}}]. colorOf
// gives a zone's palette class; legend gets one entry per plotted zone.
// chart's data-points attribute is set to the number of samples plotted.
export function drawChart({ chart, legend, history, colorOf, now, spanMs }) {
  // Draw at the element's own width, so that text is never stretched.
  const W = Math.max(480, Math.round(chart.getBoundingClientRect().width) || 960);
  chart.setAttribute("viewBox", `0 0 ${W} ${HEIGHT}`);
  const x = (t) => LEFT + (W - LEFT - RIGHT) * (1 - (now - t) / spanMs);
  const zones = [];
  for (const s of history) for (const z of s.zones.keys()) if (!zones.includes(z)) zones.push(z);
  zones.sort();
  const nodes = [];
  for (const p of PANELS) {
    let max = 1;
    if (p.field === "rate") {
      let top = 0;
      for (const s of history) for (const v of s.zones.values()) top = Math.max(top, v.rate);
      max = niceMax(top);
    }
    const y = (v) => p.bottom - (p.bottom - p.top) * (v / max);
    nodes.push(node("text", { x: LEFT, y: p.top - 8, class: "chart-title", text: p.title }));
    for (const f of [0, 0.5, 1]) {
      const v = max * f;
      nodes.push(node("line", { x1: LEFT, x2: W - RIGHT, y1: y(v), y2: y(v), class: f === 0 ? "axis" : "grid" }));
      const label = p.field === "rate" ? rateLabel(v) : Math.round(v * 100) + "%";
      nodes.push(node("text", { x: LEFT - 6, y: y(v) + 4, class: "tick", "text-anchor": "end", text: label }));
    }
    for (const z of zones) {
      let d = "";
      let gap = true;
      for (const s of history) {
        const v = s.zones.get(z);
        if (!v) {
          gap = true;
          continue;
        }
        d += `${gap ? "M" : "L"}${x(s.t).toFixed(1)},${y(v[p.field]).toFixed(1)}`;
        gap = false;
      }
      if (d) nodes.push(node("path", { d, class: `line ${p.cls} ${colorOf(z)}`, "data-zone": z }));
    }
  }
  for (let m = 5; m >= 0; m--) {
    const anchor = m === 0 ? "end" : m === 5 ? "start" : "middle";
    const text = m === 0 ? "now" : `−${m} min`;
    nodes.push(node("text", { x: x(now - m * 60000), y: 316, class: "tick", "text-anchor": anchor, text }));
  }
  if (history.length === 0) {
    nodes.push(node("text", { x: W / 2, y: 160, class: "chart-empty", "text-anchor": "middle", text: "waiting for two polls…" }));
  }
  chart.replaceChildren(...nodes);
  chart.setAttribute("data-points", String(history.length));

  const sig = zones.join("\n");
  if (legend.dataset.sig === sig) return;
  legend.dataset.sig = sig;
  legend.replaceChildren(...zones.map((z) => {
    const item = document.createElement("span");
    item.className = "legend-item";
    const swatch = document.createElement("span");
    swatch.className = "swatch " + colorOf(z);
    item.append(swatch, z);
    return item;
  }));
}
