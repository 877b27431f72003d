//! One self-contained HTML page (no network, no external script): a
//! treemap of the image (layers, then store paths; area = bytes, colour =
//! layer) and the table of layers and paths; for a diff, B's image with
//! the changed and added layers highlighted.

use super::diff::{Diff, Status};
use super::{Explained, human, report};
use serde_json::{Value, json};

/// `explain --html`.
pub fn explain_page(e: &Explained) -> String {
    let title = format!("{} — {} in {} layers", e.repo_tag, human(e.size()), e.layers.len());
    page(&title, &report::json(e), &Value::Null)
}

/// `diff --html`: B's image, each layer marked with its status.
pub fn diff_page(d: &Diff) -> String {
    let statuses: Value =
        d.changes.iter().filter_map(|c| c.b.map(|b| (b.to_string(), Value::from(c.status.name())))).collect::<serde_json::Map<_, _>>().into();
    let removed: Vec<Value> = d
        .changes
        .iter()
        .filter(|c| c.status == Status::Removed)
        .map(|c| json!({"index_a": c.a, "size": c.diff_id.size, "paths": c.paths_removed}))
        .collect();
    let title =
        format!("{} → {}: a push uploads {} ({} bytes)", d.a.image_id.short(), d.b.image_id.short(), human(d.upload_bytes()), d.upload_bytes());
    page(&title, &report::json(&d.b), &json!({"status": statuses, "removed": removed, "diff": super::diff::json(d)}))
}

/// JSON inside `<script>`: `<` escaped so no string can end the element.
fn embed(v: &Value) -> String {
    v.to_string().replace('<', "\\u003c")
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn page(title: &str, image: &Value, diff: &Value) -> String {
    format!(
        r##"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<title>{title}</title>
<style>{STYLE}</style></head>
<body>
<h1>{title}</h1>
<p id="summary"></p>
<div id="map"></div>
<p class="legend" id="legend"></p>
<table id="layers"><thead><tr><th>layer</th><th>status</th><th>diff_id</th><th>size</th><th>compressed</th><th>files</th><th>path / why</th></tr></thead><tbody></tbody></table>
<script type="application/json" id="image">{image}</script>
<script type="application/json" id="diff">{diff}</script>
<script>{SCRIPT}</script>
</body></html>
"##,
        title = escape(title),
        image = embed(image),
        diff = embed(diff),
    )
}

const STYLE: &str = r#"
body { font: 13px/1.4 sans-serif; margin: 16px; color: #222; }
h1 { font-size: 18px; margin: 0 0 8px; }
#map { position: relative; width: 100%; height: 520px; background: #eee; border: 1px solid #999; }
.tile { position: absolute; box-sizing: border-box; border: 1px solid rgba(0,0,0,.35); overflow: hidden;
        font-size: 11px; padding: 1px 3px; white-space: nowrap; text-overflow: ellipsis; }
.layer { position: absolute; box-sizing: border-box; border: 2px solid #333; }
.layer > .label { font-weight: bold; font-size: 11px; padding: 0 3px; white-space: nowrap; overflow: hidden; }
.changed { border: 4px solid #d00 !important; }
.added { border: 4px dashed #d00 !important; }
.kept { opacity: .45; }
table { border-collapse: collapse; margin-top: 12px; width: 100%; }
th, td { border-bottom: 1px solid #ccc; padding: 2px 6px; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.layerrow { background: #f4f4f4; font-weight: bold; }
.swatch { display: inline-block; width: 10px; height: 10px; margin-right: 4px; border: 1px solid #555; }
.why { color: #555; font-size: 12px; }
"#;

const SCRIPT: &str = r##"
"use strict";
const image = JSON.parse(document.getElementById("image").textContent);
const diff = JSON.parse(document.getElementById("diff").textContent);
const status = (diff && diff.status) || {};
function human(n) {
  const u = ["B", "KiB", "MiB", "GiB", "TiB"]; let i = 0; let v = n;
  while (v >= 1024 && i < u.length - 1) { v /= 1024; i++; }
  return i === 0 ? n + " B" : v.toFixed(1) + " " + u[i];
}
function colour(i, light) { return "hsl(" + ((i * 137.5) % 360) + ", 55%, " + (light ? 82 : 62) + "%)"; }
function worst(row, side, scale) {
  const s = row.reduce((a, r) => a + r.v, 0) * scale;
  const hi = row[0].v * scale, lo = row[row.length - 1].v * scale;
  return Math.max(side * side * hi / (s * s), (s * s) / (side * side * lo));
}
// Squarified treemap: rows along the shorter side, each row kept while it
// makes its tiles' worst aspect ratio no worse.
function squarify(items, x, y, w, h) {
  const out = [];
  let rest = items.filter(it => it.v > 0).sort((a, b) => b.v - a.v);
  let total = rest.reduce((a, r) => a + r.v, 0);
  while (rest.length && w > 0 && h > 0) {
    const side = Math.min(w, h), scale = (w * h) / total;
    let row = [rest[0]], best = worst(row, side, scale);
    for (let i = 1; i < rest.length; i++) {
      const next = row.concat([rest[i]]), score = worst(next, side, scale);
      if (score > best) break;
      row = next; best = score;
    }
    const sum = row.reduce((a, r) => a + r.v, 0), thick = sum * scale / side;
    let off = 0;
    for (const it of row) {
      const len = it.v * scale / thick;
      out.push(w >= h ? {it, x: x, y: y + off, w: thick, h: len} : {it, x: x + off, y: y, w: len, h: thick});
      off += len;
    }
    if (w >= h) { x += thick; w -= thick; } else { y += thick; h -= thick; }
    total -= sum; rest = rest.slice(row.length);
  }
  return out;
}
function el(tag, cls, text) { const e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = text; return e; }
const map = document.getElementById("map");
const W = map.clientWidth, H = map.clientHeight;
let tiles = 0;
const layers = image.layers.map(l => ({v: l.size, l}));
for (const r of squarify(layers, 0, 0, W, H)) {
  const l = r.it.l, st = status[String(l.index)];
  const box = el("div", "layer" + (st ? " " + st : ""));
  Object.assign(box.style, {left: r.x + "px", top: r.y + "px", width: r.w + "px", height: r.h + "px", background: colour(l.index, true)});
  box.title = "layer " + l.index + ": " + human(l.size) + " — " + l.why + (st ? " (" + st + ")" : "");
  const label = el("div", "label", "layer " + l.index + (st && st !== "kept" ? " (" + st + ")" : ""));
  box.appendChild(label);
  map.appendChild(box);
  const top = r.h > 30 && r.w > 30 ? 14 : 0;
  const items = l.paths.map(p => ({v: p.size, p}));
  for (const t of squarify(items, 0, top, r.w - 4, r.h - 4 - top)) {
    const d = el("div", "tile", t.w > 40 && t.h > 12 ? t.it.p.path.replace(/^.*\/[a-z0-9]{32}-/, "") : "");
    Object.assign(d.style, {left: t.x + "px", top: t.y + "px", width: t.w + "px", height: t.h + "px", background: colour(l.index, false)});
    d.title = t.it.p.path + "\n" + human(t.it.p.size) + "\n" + t.it.p.why;
    box.appendChild(d);
    tiles++;
  }
}
const summary = document.getElementById("summary");
summary.textContent = "image " + image.image_id + " (" + image.repo_tag + "): " + human(image.size) + " in " + image.layers.length +
  " layers" + (image.compressed_size !== null ? ", " + human(image.compressed_size) + " compressed" : "") +
  "; duplicated " + human(image.duplicates.bytes) + "; layers under 100 KiB: " + (image.small_layers.join(", ") || "none") + ".";
if (diff && diff.diff) {
  const removed = diff.removed.map(r => "layer " + r.index_a + " of A (" + human(r.size) + ")").join(", ");
  document.getElementById("legend").textContent = "Solid red border: changed layer; dashed: added; faded: kept (already in the registry). " +
    "A push uploads " + human(diff.diff.upload_bytes) + "." + (removed ? " Removed: " + removed + "." : "");
}
const body = document.querySelector("#layers tbody");
for (const l of image.layers) {
  const tr = el("tr", "layerrow");
  const sw = el("span", "swatch"); sw.style.background = colour(l.index, false);
  const c0 = el("td"); c0.appendChild(sw); c0.appendChild(document.createTextNode(String(l.index))); tr.appendChild(c0);
  tr.appendChild(el("td", "", status[String(l.index)] || ""));
  tr.appendChild(el("td", "", l.diff_id.slice(0, 19)));
  tr.appendChild(el("td", "num", human(l.size)));
  tr.appendChild(el("td", "num", l.blob ? human(l.blob.size) : ""));
  tr.appendChild(el("td", "num", l.files === null ? "" : String(l.files)));
  tr.appendChild(el("td", "why", l.why));
  body.appendChild(tr);
  for (const p of l.paths) {
    const r = el("tr");
    for (let i = 0; i < 3; i++) r.appendChild(el("td"));
    r.appendChild(el("td", "num", human(p.size)));
    r.appendChild(el("td"));
    r.appendChild(el("td", "num", String(p.files)));
    const c = el("td"); c.appendChild(el("div", "", p.path)); c.appendChild(el("div", "why", p.why)); r.appendChild(c);
    body.appendChild(r);
  }
}
console.log("layered-image treemap: " + image.layers.length + " layers, " + tiles + " path tiles");
"##;
