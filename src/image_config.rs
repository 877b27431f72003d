//! The image config (`<sha256>.json`) and `manifest.json` of a
//! docker-archive, serialised exactly as nixpkgs' script does.

use crate::pyjson::{self, Style};
use crate::time::DateTime;
use serde_json::{Map, Value, json};

/// What the config records of one layer.
pub struct LayerRecord {
    /// Hex sha256 of the uncompressed layer.
    pub diff_id: String,
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

/// The config JSON bytes.
pub fn image_config(created: &DateTime, architecture: &Value, config: Map<String, Value>, layers: &[LayerRecord]) -> Vec<u8> {
    let created = created.to_string();
    let image = json!({
        "created": created,
        "architecture": architecture,
        "os": "linux",
        "config": config,
        "rootfs": {
            "diff_ids": layers.iter().map(|l| format!("sha256:{}", l.diff_id)).collect::<Vec<_>>(),
            "type": "layers",
        },
        "history": layers.iter().map(|l| json!({
            "created": created,
            "comment": format!("store paths: {}", pyjson::py_repr_str_list(&l.paths)),
        })).collect::<Vec<_>>(),
    });
    pyjson::dumps(&image, Style::indent(4)).into_bytes()
}

/// The manifest.json bytes.
pub fn manifest(config_member: &str, repo_tag: &str, layers: &[LayerRecord]) -> Vec<u8> {
    let m = json!([{
        "Config": config_member,
        "RepoTags": [repo_tag],
        "Layers": layers.iter().map(|l| l.member.as_str()).collect::<Vec<_>>(),
    }]);
    pyjson::dumps(&m, Style::indent(4)).into_bytes()
}
