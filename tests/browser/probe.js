// Measures a rendered report for tests/test_report_browser.py: which flags are visible, and
// where the figures' points, labels, leader lines, legends, data marks and bars are drawn.
// The result goes, as JSON, into a pre element (id probe-result) read back from the DOM.
function box(el) {
  const r = el.getBoundingClientRect();
  return {left: r.left, right: r.right, top: r.top, bottom: r.bottom};
}
function screenPoints(path, step) {
  const total = path.getTotalLength(), m = path.getScreenCTM(), points = [];
  for (let d = 0; d <= total; d += step) {
    const p = path.getPointAtLength(d);
    points.push([m.a * p.x + m.c * p.y + m.e, m.b * p.x + m.d * p.y + m.f]);
  }
  return points;
}
function byId(pattern) {
  return [...document.querySelectorAll("[id]")].filter(el => pattern.test(el.id));
}
window.addEventListener("load", () => {
  const result = {width: innerWidth, scrollWidth: document.documentElement.scrollWidth};
  result.flags = [...document.querySelectorAll(".flag")].map(el => {
    const r = box(el), style = getComputedStyle(el);
    return {text: el.textContent.trim(), ...r,
            shown: style.visibility === "visible" && style.display !== "none" && r.right > r.left};
  });
  result.tables = [...document.querySelectorAll("table")].map(el => ({
    caption: (el.closest("section") || {}).id || "", ...box(el)}));
  result.points = byId(/-point-\d+$/).map(el => ({id: el.id, ...box(el)}));
  result.labels = byId(/-label-\d+$/).map(el => ({id: el.id, ...box(el)}));
  result.leaders = byId(/-leader-\d+$/).map(el => {
    const path = el.querySelector("path");
    const points = screenPoints(path, Math.max(path.getTotalLength(), 1));
    return {id: el.id, start: points[0], end: points[points.length - 1]};
  });
  result.legends = byId(/-legend$/).map(el => ({id: el.id, ...box(el)}));
  result.marks = byId(/-data-\d+(-\d+)?$/).map(el => ({
    id: el.id,
    points: [...el.querySelectorAll("path")].flatMap(p => screenPoints(p, 2)),
  }));
  result.bars = byId(/-bar-\d+$/).map(el => ({id: el.id, ...box(el.querySelector("path"))}));
  const pre = document.createElement("pre");
  pre.id = "probe-result";
  pre.textContent = JSON.stringify(result);
  document.body.appendChild(pre);
});
