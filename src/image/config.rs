//! The image config (`<sha256>.json`) and `manifest.json` of a
//! docker-archive, serialised exactly as nixpkgs' script does.

use crate::digest::Digest;
use crate::pyjson::{self, Style};
use crate::time::DateTime;
use serde_json::{Map, Value};

/// What the config records of one layer.
pub struct LayerRecord {
    /// The uncompressed layer's digest.
    pub diff_id: Digest,
    /// The member holding it, e.g. `<sha>/layer.tar`.
    pub member: String,
    /// The paths its history comment lists.
    pub paths: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("{what}")]
pub struct ConfigError {
    pub what: String,
}

/// `overlay_base_config`: the base image's Env, then the conf's, one entry
/// per variable (last value wins, first position kept). Nothing else of the
/// base config is inherited.
pub fn overlay_env(base: &Map<String, Value>, mut config: Map<String, Value>) -> Result<Map<String, Value>, ConfigError> {
    let list = |v: Option<&Value>, whose: &str| -> Result<Vec<String>, ConfigError> {
        match v {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|i| i.as_str().map(str::to_string).ok_or_else(|| ConfigError { what: format!("{whose} Env has a non-string entry {i}") }))
                .collect(),
            Some(other) => Err(ConfigError { what: format!("{whose} Env must be a list of strings, found {other}") }),
        }
    };
    // `docker import` writes `"Env": null`: no Env, as docker reads it.
    let mut env = list(base.get("Env").filter(|v| !v.is_null()), "the base image's")?;
    env.extend(list(config.get("Env"), "the conf's config")?);
    if env.is_empty() {
        return Ok(config);
    }
    let mut merged: Vec<(String, String)> = Vec::with_capacity(env.len());
    for entry in env {
        let key = entry.split_once('=').map_or(entry.as_str(), |(k, _)| k).to_string();
        match merged.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = entry,
            None => merged.push((key, entry)),
        }
    }
    config.insert("Env".into(), Value::Array(merged.into_iter().map(|(_, e)| Value::String(e)).collect()));
    Ok(config)
}

/// The config JSON bytes: `json.dumps(config, indent=4)` of nixpkgs'
/// object, written straight out (a `Value` per history entry took ~400
/// bytes each, 13 MiB for 32,000 layers).
/// A `variant` (newer nixpkgs' argument, `""` off 32-bit ARM) follows
/// `os`, as the OCI config orders them; without one the bytes are
/// nixpkgs' script's.
pub fn image_config(created: &DateTime, architecture: &Value, variant: Option<&str>, config: Map<String, Value>, layers: &[LayerRecord]) -> Vec<u8> {
    let style = Style::indent(4);
    let created = created.to_string();
    let mut out = String::with_capacity(512 + layers.len() * 160);
    out.push_str("{\n    \"created\": ");
    pyjson::write_str(&mut out, &created);
    out.push_str(",\n    \"architecture\": ");
    pyjson::write_value(&mut out, architecture, style, 1);
    out.push_str(",\n    \"os\": \"linux\"");
    if let Some(v) = variant {
        out.push_str(",\n    \"variant\": ");
        pyjson::write_str(&mut out, v);
    }
    out.push_str(",\n    \"config\": ");
    pyjson::write_value(&mut out, &Value::Object(config), style, 1);
    out.push_str(",\n    \"rootfs\": {\n        \"diff_ids\": ");
    list(&mut out, layers, 2, |out, l| {
        out.push('"');
        out.push_str(&l.diff_id.to_string());
        out.push('"');
    });
    out.push_str(",\n        \"type\": \"layers\"\n    },\n    \"history\": ");
    let mut comment = String::new();
    list(&mut out, layers, 1, |out, l| {
        out.push_str("{\n            \"created\": ");
        pyjson::write_str(out, &created);
        out.push_str(",\n            \"comment\": ");
        comment.clear();
        comment.push_str("store paths: ");
        comment.push_str(&pyjson::py_repr_str_list(&l.paths));
        pyjson::write_str(out, &comment);
        out.push_str("\n        }");
    });
    out.push_str("\n}");
    out.into_bytes()
}

/// A list as `dumps(indent=4)` writes it at `depth`, each item by `item`.
fn list<T>(out: &mut String, items: &[T], depth: usize, mut item: impl FnMut(&mut String, &T)) {
    if items.is_empty() {
        out.push_str("[]");
        return;
    }
    out.push('[');
    for (i, x) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('\n');
        out.extend(std::iter::repeat_n(' ', 4 * (depth + 1)));
        item(out, x);
    }
    out.push('\n');
    out.extend(std::iter::repeat_n(' ', 4 * depth));
    out.push(']');
}

/// The manifest.json bytes.
pub fn manifest(config_member: &str, repo_tag: &str, layers: &[LayerRecord]) -> Vec<u8> {
    let mut out = String::with_capacity(256 + layers.len() * 90);
    out.push_str("[\n    {\n        \"Config\": ");
    pyjson::write_str(&mut out, config_member);
    out.push_str(",\n        \"RepoTags\": [\n            ");
    pyjson::write_str(&mut out, repo_tag);
    out.push_str("\n        ],\n        \"Layers\": ");
    list(&mut out, layers, 2, |out, l| pyjson::write_str(out, &l.member));
    out.push_str("\n    }\n]");
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// What nixpkgs' objects give through the generic `dumps`.
    fn by_value(created: &DateTime, architecture: &Value, config: Map<String, Value>, layers: &[LayerRecord]) -> (Vec<u8>, Vec<u8>) {
        let c = created.to_string();
        let image = json!({
            "created": c,
            "architecture": architecture,
            "os": "linux",
            "config": config,
            "rootfs": {
                "diff_ids": layers.iter().map(|l| l.diff_id.to_string()).collect::<Vec<_>>(),
                "type": "layers",
            },
            "history": layers.iter().map(|l| json!({
                "created": c,
                "comment": format!("store paths: {}", pyjson::py_repr_str_list(&l.paths)),
            })).collect::<Vec<_>>(),
        });
        let m = json!([{
            "Config": "x.json",
            "RepoTags": ["r\u{e9}po:t\"ag"],
            "Layers": layers.iter().map(|l| l.member.as_str()).collect::<Vec<_>>(),
        }]);
        (pyjson::dumps(&image, Style::indent(4)).into_bytes(), pyjson::dumps(&m, Style::indent(4)).into_bytes())
    }

    #[test]
    fn written_straight_out_as_dumps_writes_it() {
        let created = crate::time::parse_iso("2024-05-06T07:08:09+00:00").unwrap();
        for n in [0, 1, 3] {
            let layers: Vec<LayerRecord> = (0..n)
                .map(|i| LayerRecord {
                    diff_id: crate::digest::Digest::from_hex(&format!("{i:064x}")).unwrap(),
                    member: format!("{i:064x}/layer.tar"),
                    paths: vec![format!("/nix/store/\u{e9}\n-{i}"), "b\"'".into()],
                })
                .collect();
            for (arch, config) in [
                (json!("amd64"), json!({})),
                (json!({"x": [1, 2.5, null]}), json!({"Env": ["A=\u{1f600}"], "Cmd": [], "Big": 1e300, "Nested": {"a": {}}})),
            ] {
                let Value::Object(config) = config else { unreachable!() };
                let (want_config, want_manifest) = by_value(&created, &arch, config.clone(), &layers);
                let want_config = String::from_utf8(want_config).unwrap();
                assert_eq!(String::from_utf8(image_config(&created, &arch, None, config.clone(), &layers)).unwrap(), want_config);
                // a variant is one more key after "os", in dumps' form
                let with = want_config.replacen("\"os\": \"linux\",", "\"os\": \"linux\",\n    \"variant\": \"v7\",", 1);
                assert_eq!(String::from_utf8(image_config(&created, &arch, Some("v7"), config, &layers)).unwrap(), with);
                assert_eq!(String::from_utf8(manifest("x.json", "r\u{e9}po:t\"ag", &layers)).unwrap(), String::from_utf8(want_manifest).unwrap());
            }
        }
    }
}
