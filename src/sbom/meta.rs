//! What Nix knows at evaluation time of an image's direct contents and
//! the store path names cannot say: `meta.license` (as an SPDX license
//! expression), `meta.homepage`, `meta.description`, and the real
//! `pname` and `version`. Given as a JSON object keyed by store path:
//!
//! ```json
//! {"/nix/store/…-hello-2.12.1": {"pname": "hello", "version": "2.12.1",
//!   "license": "GPL-3.0-or-later", "homepage": "https://www.gnu.org/software/hello/",
//!   "description": "A program that produces a familiar, friendly greeting"}}
//! ```
//!
//! Transitive paths get only what their names and the graph say.

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    #[error("cannot read {file}: {source}")]
    Read { file: String, source: std::io::Error },
    #[error("{file}: invalid JSON: {source}")]
    Json { file: String, source: serde_json::Error },
    #[error("{file}: {what}")]
    Shape { file: String, what: String },
}

/// What Nix says of one store path; every field optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackageMeta {
    pub pname: Option<String>,
    pub version: Option<String>,
    /// An SPDX license expression (`MIT`, `GPL-2.0-only OR MIT`, `LicenseRef-…`).
    pub license: Option<String>,
    pub homepage: Option<String>,
    pub description: Option<String>,
}

/// Store path → its metadata.
pub type Meta = BTreeMap<String, PackageMeta>;

pub fn read(file: &Path) -> Result<Meta, MetaError> {
    let name = file.display().to_string();
    let text = crate::input::read_limited(file, crate::input::SMALL_JSON_LIMIT).map_err(|source| MetaError::Read { file: name.clone(), source })?;
    let value: Value = serde_json::from_slice(&text).map_err(|source| MetaError::Json { file: name.clone(), source })?;
    from_value(&value, &name)
}

pub fn from_value(value: &Value, file: &str) -> Result<Meta, MetaError> {
    let shape = |what: String| MetaError::Shape { file: file.to_string(), what };
    let map = value.as_object().ok_or_else(|| shape("expected an object keyed by store path".into()))?;
    let mut meta = Meta::new();
    for (path, entry) in map {
        let fields =
            entry.as_object().ok_or_else(|| shape(format!("{path}: expected an object of pname, version, license, homepage, description")))?;
        let mut m = PackageMeta::default();
        for (key, v) in fields {
            let text = match v {
                Value::Null => continue,
                Value::String(s) => s.clone(),
                other => return Err(shape(format!("{path}: \"{key}\" must be a string, found {other}"))),
            };
            let slot = match key.as_str() {
                "pname" => &mut m.pname,
                "version" => &mut m.version,
                "license" => &mut m.license,
                "homepage" => &mut m.homepage,
                "description" => &mut m.description,
                other => return Err(shape(format!("{path}: unknown key \"{other}\" (known: pname, version, license, homepage, description)"))),
            };
            *slot = Some(text);
        }
        if let Some(l) = &m.license {
            if !is_license_expression(l) {
                return Err(shape(format!(
                    "{path}: license {l:?} is not an SPDX license expression (ids, LicenseRef-…, AND, OR, WITH, parentheses)"
                )));
            }
        }
        if m.pname.as_deref() == Some("") {
            return Err(shape(format!("{path}: \"pname\" is empty")));
        }
        meta.insert(path.clone(), m);
    }
    Ok(meta)
}

/// The SPDX license expression grammar (annex D), without checking ids
/// against the license list: identifiers joined by AND/OR, an optional
/// `+`, WITH an exception, parentheses.
pub fn is_license_expression(s: &str) -> bool {
    let spaced = s.replace('(', " ( ").replace(')', " ) ");
    let tokens: Vec<&str> = spaced.split_whitespace().collect();
    let mut pos = 0;
    expression(&tokens, &mut pos) && pos == tokens.len()
}

fn is_id(t: &str) -> bool {
    let t = t.strip_suffix('+').unwrap_or(t);
    let t = t.strip_prefix("DocumentRef-").and_then(|r| r.split_once(':').map(|(_, l)| l)).unwrap_or(t);
    !t.is_empty() && !["AND", "OR", "WITH"].contains(&t) && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

fn expression(t: &[&str], pos: &mut usize) -> bool {
    if !term(t, pos) {
        return false;
    }
    while *pos < t.len() && (t[*pos] == "AND" || t[*pos] == "OR") {
        *pos += 1;
        if !term(t, pos) {
            return false;
        }
    }
    true
}

fn term(t: &[&str], pos: &mut usize) -> bool {
    match t.get(*pos) {
        Some(&"(") => {
            *pos += 1;
            if !expression(t, pos) || t.get(*pos) != Some(&")") {
                return false;
            }
            *pos += 1;
            true
        }
        Some(id) if is_id(id) => {
            *pos += 1;
            if t.get(*pos) == Some(&"WITH") {
                *pos += 1;
                let ok = t.get(*pos).is_some_and(|e| is_id(e) && !e.ends_with('+'));
                *pos += 1;
                return ok;
            }
            true
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn license_expressions() {
        for ok in [
            "MIT",
            "GPL-2.0-or-later",
            "GPL-2.0+",
            "(MIT OR Apache-2.0) AND BSD-3-Clause",
            "GPL-2.0-only WITH Classpath-exception-2.0",
            "LicenseRef-unfree",
        ] {
            assert!(is_license_expression(ok), "{ok}");
        }
        for bad in ["", "MIT OR", "(MIT", "MIT AND AND BSD", "GNU GPL v3", "MIT WITH", "a_b", "MIT)"] {
            assert!(!is_license_expression(bad), "{bad}");
        }
    }

    #[test]
    fn bad_metadata_is_named() {
        let p = "/nix/store/a-x";
        for (v, want) in [
            (json!([]), "keyed by store path"),
            (json!({p: {"licence": "MIT"}}), "unknown key \"licence\""),
            (json!({p: {"license": ["MIT"]}}), "must be a string"),
            (json!({p: {"license": "GNU GPL"}}), "not an SPDX license expression"),
        ] {
            let e = from_value(&v, "meta.json").unwrap_err().to_string();
            assert!(e.contains("meta.json") && e.contains(want), "{e}");
        }
        let m = from_value(&json!({p: {"pname": "x", "license": "MIT", "homepage": null}}), "meta.json").unwrap();
        assert_eq!(m[p], PackageMeta { pname: Some("x".into()), license: Some("MIT".into()), ..Default::default() });
    }
}
