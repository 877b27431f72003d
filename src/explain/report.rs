//! `explain`'s text and JSON.

use super::{Explained, LayerInfo, Origin, PathInfo, SMALL_LAYER, human};
use serde_json::{Value, json};
use std::fmt::Write;

const NO_GRAPH: &str = "listed in the conf's store_layers (give --graph for the layering rule that placed it)";

/// Store paths of an image read as it is: nothing records the rule that placed them.
const IMAGE_INPUT: &str = "unknown (image input)";

fn path_why(p: &PathInfo, origin: &Origin) -> String {
    match (&p.why, origin) {
        (Some(r), _) => r.text(),
        (None, Origin::Image { .. }) => IMAGE_INPUT.to_string(),
        (None, _) => NO_GRAPH.to_string(),
    }
}

fn origin_name(o: &Origin) -> &'static str {
    match o {
        Origin::Base { .. } => "base",
        Origin::Store => "store",
        Origin::Customisation { .. } => "customisation",
        Origin::Image { .. } => "image",
    }
}

pub fn layer_json(l: &LayerInfo) -> Value {
    json!({
        "index": l.index,
        "origin": origin_name(&l.origin),
        "why": l.why(),
        "diff_id": l.diff_id.digest.to_string(),
        "size": l.diff_id.size,
        "files": l.files,
        "overhead": l.overhead(),
        "blob": l.blob.map(|b| json!({"digest": b.digest.to_string(), "size": b.size})),
        "paths": l.paths.iter().map(|p| path_json(p, &l.origin)).collect::<Vec<_>>(),
    })
}

fn path_json(p: &PathInfo, origin: &Origin) -> Value {
    let mut v = json!({"path": p.path, "size": p.size, "files": p.files, "why": path_why(p, origin)});
    if let Some(r) = &p.why {
        v["reason"] = r.to_json();
    }
    v
}

/// Everything of `explain --json` but the layers.
fn summary(e: &Explained) -> serde_json::Map<String, Value> {
    let v = json!({
        "image_id": e.image_id.to_string(),
        "repo_tag": e.repo_tag,
        "size": e.size(),
        "compression": e.compression.key(),
        "compressed_size": e.compressed_size(),
        "config_size": e.config_size,
        "biggest": e.biggest.iter().map(|b| json!({"path": b.path, "size": b.size, "layer": b.layer, "chain": b.chain})).collect::<Vec<_>>(),
        "duplicates": {
            "bytes": e.duplicated_bytes(),
            "groups": e.duplicates.iter().map(|d| json!({"size": d.size, "files": d.files})).collect::<Vec<_>>(),
        },
        "small_layers": e.layers.iter().filter(|l| l.diff_id.size < SMALL_LAYER).map(|l| l.index).collect::<Vec<_>>(),
    });
    match v {
        Value::Object(m) => m,
        _ => unreachable!("json! of an object"),
    }
}

/// `explain --json` as one value.
pub fn json(e: &Explained) -> Value {
    let mut m = summary(e);
    m.insert("layers".into(), e.layers.iter().map(layer_json).collect::<Vec<_>>().into());
    Value::Object(m)
}

/// `explain --json`, written layer by layer: memory follows the largest
/// layer rather than the image (the whole value of tens of thousands of
/// paths takes a hundred MiB).
pub fn write_json(e: &Explained, w: &mut dyn std::io::Write) -> std::io::Result<()> {
    let head = Value::Object(summary(e)).to_string();
    w.write_all(&head.as_bytes()[..head.len() - 1])?;
    w.write_all(b",\"layers\":[")?;
    for (i, l) in e.layers.iter().enumerate() {
        if i > 0 {
            w.write_all(b",")?;
        }
        // A layer may hold most of the image's paths: they go out one by one.
        let mut v = layer_json(&LayerInfo { paths: Vec::new(), ..l.clone() });
        v.as_object_mut().expect("an object").shift_remove("paths");
        // Both are derived from the paths left out above.
        v["why"] = l.why().into();
        v["overhead"] = l.overhead().into();
        let text = v.to_string();
        w.write_all(&text.as_bytes()[..text.len() - 1])?;
        w.write_all(b",\"paths\":[")?;
        for (k, p) in l.paths.iter().enumerate() {
            if k > 0 {
                w.write_all(b",")?;
            }
            serde_json::to_writer(&mut *w, &path_json(p, &l.origin))?;
        }
        w.write_all(b"]}")?;
    }
    w.write_all(b"]}\n")
}

/// `explain`'s text: what a person reads.
pub fn text(e: &Explained) -> String {
    let mut out = String::new();
    let compressed = e.compressed_size().map_or_else(String::new, |c| format!(", {} as {}", human(c), e.compression));
    let _ = writeln!(out, "image {} ({}): {} in {} layers{compressed}", e.image_id.short(), e.repo_tag, human(e.size()), e.layers.len());
    for l in &e.layers {
        let blob = l.blob.map_or_else(String::new, |b| format!(" ({})", human(b.size)));
        let files = l.files.map_or_else(String::new, |f| format!(", {f} files"));
        let _ = writeln!(out, "\nlayer {} {}  {}{blob}{files}  {}", l.index, l.diff_id.digest.short(), human(l.diff_id.size), l.why());
        for p in &l.paths {
            let _ = writeln!(out, "  {:>10}  {}  {}", human(p.size), p.path, path_why(p, &l.origin));
        }
    }
    if !e.biggest.is_empty() {
        let _ = writeln!(out, "\nbiggest store paths:");
        for b in &e.biggest {
            let chain = if b.chain.len() > 1 { format!("  pulled in by {}", b.chain[..b.chain.len() - 1].join(" -> ")) } else { String::new() };
            let _ = writeln!(out, "  {:>10}  {} (layer {}){chain}", human(b.size), b.path, b.layer);
        }
    }
    if !e.duplicates.is_empty() {
        let _ =
            writeln!(out, "\nduplicated: {} in {} sets of identical files in different store paths", human(e.duplicated_bytes()), e.duplicates.len());
        for d in e.duplicates.iter().take(5) {
            let _ = writeln!(out, "  {:>10} x{}  {}", human(d.size), d.files.len(), d.files.join(", "));
        }
    }
    let small: Vec<String> = e.layers.iter().filter(|l| l.diff_id.size < SMALL_LAYER).map(|l| l.index.to_string()).collect();
    if !small.is_empty() {
        let _ = writeln!(out, "\nlayers under {}: {}", human(SMALL_LAYER), small.join(", "));
    }
    out
}
