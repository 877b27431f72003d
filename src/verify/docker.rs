//! A docker-archive checked as `docker load` reads it: manifest.json, then
//! per entry the config (named by its own digest) and the layers (each
//! hashing, decompressed if need be, to its diff_id).

use super::archive::Archive;
use super::{Format, ImageSummary, Source, Summary, VerifyError, check_diff_id, diff_ids, hash_layer, is_hex64, layer_read_error, read_json};
use serde_json::Value;

pub(super) fn verify(a: &Archive, reference: Option<&str>) -> Result<Summary, VerifyError> {
    let image = a.image.as_str();
    let invalid = |what: String| VerifyError::Invalid { image: image.into(), what };
    let (manifest, _, _) = read_json(a, "manifest.json", "manifest.json")?;
    let entries = manifest.as_array().filter(|l| !l.is_empty()).ok_or_else(|| invalid("manifest.json is not a non-empty list".into()))?;
    let mut selected = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let tags = repo_tags(image, i, entry)?;
        let wanted = match reference {
            None => true,
            Some(r) => r.strip_prefix('@').map_or_else(|| tags.contains(&r), |n| n.parse() == Ok(i)),
        };
        if wanted {
            selected.push((i, entry));
        }
    }
    if selected.is_empty() {
        let r = reference.unwrap_or_default();
        return Err(invalid(format!("manifest.json has no entry {}", if r.starts_with('@') { r.to_string() } else { format!("tagged {r}") })));
    }
    let mut images = Vec::new();
    for (i, entry) in selected {
        images.push(verify_entry(a, i, entry)?);
    }
    Ok(Summary { format: Format::DockerArchive, image: image.into(), images, artifacts: Vec::new(), notes: Vec::new() })
}

fn repo_tags<'a>(image: &str, i: usize, entry: &'a Value) -> Result<Vec<&'a str>, VerifyError> {
    let bad = || VerifyError::Invalid { image: image.into(), what: format!("manifest.json[{i}].RepoTags is not a list of strings") };
    match entry.get("RepoTags") {
        // `docker save` of an untagged image writes null.
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(l)) => l.iter().map(|t| t.as_str().ok_or_else(bad)).collect(),
        Some(_) => Err(bad()),
    }
}

/// The digest a config member's name carries: `<hex>.json` (docker save,
/// nixpkgs) or `blobs/sha256/<hex>` (docker 25+, an OCI layout inside).
fn digest_in_name(name: &str) -> Option<&str> {
    let (dir, base) = name.rsplit_once('/').unwrap_or(("", name));
    let hex = base.strip_suffix(".json").or_else(|| (dir == "blobs/sha256" || dir.ends_with("/blobs/sha256")).then_some(base))?;
    is_hex64(hex).then_some(hex)
}

fn verify_entry(a: &Archive, i: usize, entry: &Value) -> Result<ImageSummary, VerifyError> {
    let image = a.image.as_str();
    let invalid = |what: String| VerifyError::Invalid { image: image.into(), what };
    if !entry.is_object() {
        return Err(invalid(format!("manifest.json[{i}] is not an object")));
    }
    let config_name =
        entry.get("Config").and_then(Value::as_str).ok_or_else(|| invalid(format!("manifest.json[{i}].Config is missing or not a string")))?;
    let layers =
        entry.get("Layers").and_then(Value::as_array).ok_or_else(|| invalid(format!("manifest.json[{i}].Layers is missing or not a list")))?;
    let named =
        digest_in_name(config_name).ok_or_else(|| invalid(format!("config {config_name} (manifest.json[{i}].Config) is not named <sha256>.json")))?;
    let (config, digest, _) = read_json(a, config_name, &format!("the config named by manifest.json[{i}]"))?;
    if digest != named {
        return Err(VerifyError::Digest {
            image: image.into(),
            what: format!("config {config_name}"),
            found: digest,
            expected: named.into(),
            named_by: "its name".into(),
        });
    }
    let diff_ids = diff_ids(image, config_name, &config)?;
    if diff_ids.len() != layers.len() {
        return Err(invalid(format!("manifest.json[{i}] lists {} layers but config {config_name} has {} diff_ids", layers.len(), diff_ids.len())));
    }
    let mut layer_bytes = 0;
    for (n, (layer, diff_id)) in layers.iter().zip(&diff_ids).enumerate() {
        let name = layer.as_str().ok_or_else(|| invalid(format!("manifest.json[{i}].Layers[{n}] is not a string")))?;
        // A link is named with what it resolved to: a lie may hide there.
        let what = match a.resolved(name) {
            Some(to) if to != name => format!("layer {n} ({name} -> {to})"),
            _ => format!("layer {n} ({name})"),
        };
        let (r, size) = a.open(name, &format!("layer {n} of manifest.json[{i}]"))?;
        let got = hash_layer(r, size, None, a.cancel()).map_err(|e| layer_read_error(image, &what, e))?;
        got.decoded(image, &what)?;
        check_diff_id(image, &what, &got, diff_id, &format!("config {config_name}"))?;
        layer_bytes += got.content.1;
    }
    Ok(ImageSummary { config: format!("sha256:{digest}"), layers: layers.len(), layer_bytes })
}
