//! Per-path owners and modes for store layers (the conf's `perms`), in the
//! shape of nix2container's `perms`: a rule names a store path, an
//! optional regex over each member's whole path (unanchored, as Go's
//! `regexp.MatchString` that nix2container calls), and the mode, ids and
//! names its matches get. Rules are applied while a layer's headers are
//! written, so the store is never copied or chowned, and no fakeroot runs.
//!
//! Without rules nothing changes: the headers stay byte-identical to
//! nixpkgs'.

use regex::bytes::Regex;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum PermsError {
    #[error("key \"{key}\" must be {expected}")]
    Type { key: String, expected: &'static str },
    #[error("key \"{key}\": {value:?} is not an octal mode (0..=7777)")]
    Mode { key: String, value: String },
    #[error("key \"{key}\": {value} is not a valid id (0..=4294967295)")]
    Id { key: String, value: String },
    #[error("key \"{key}\": invalid regex: {source}")]
    Regex { key: String, source: Box<regex::Error> },
    #[error("key \"{key}\": unknown field \"{field}\" (expected path, regex, mode, uid, gid, uname, gname)")]
    Unknown { key: String, field: String },
    #[error("key \"{key}\": {path:?} {problem}")]
    Path { key: String, path: String, problem: String },
    #[error("key \"{key}\": store path {path:?} is in no store layer of this conf")]
    NotInImage { key: String, path: String },
}

/// One rule of `perms`.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The member name of the store path it applies under (`/nix/store/…`).
    pub path: Vec<u8>,
    pub regex: Option<Regex>,
    pub mode: Option<u32>,
    pub uid: Option<u64>,
    pub gid: Option<u64>,
    pub uname: Option<String>,
    pub gname: Option<String>,
}

/// The rules of one image, shared by every layer writer.
#[derive(Debug, Clone, Default)]
pub struct Perms {
    rules: Arc<[Rule]>,
    /// Rule indices by their path: an entry looks up its few ancestors
    /// instead of testing every rule (a rule per store path is common).
    by_path: Arc<HashMap<Vec<u8>, Vec<usize>>>,
}

/// What a member's header carries after the rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied<'a> {
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub uname: &'a str,
    pub gname: &'a str,
}

impl Perms {
    pub fn new(rules: Vec<Rule>) -> Perms {
        let mut by_path: HashMap<Vec<u8>, Vec<usize>> = HashMap::new();
        for (i, r) in rules.iter().enumerate() {
            by_path.entry(r.path.clone()).or_default().push(i);
        }
        Perms { rules: rules.into(), by_path: Arc::new(by_path) }
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Applies every rule whose path contains `name` and whose regex
    /// matches it to `base`; a later rule wins, field by field. A rule that
    /// sets an id but not its name clears the name: a header saying uid
    /// 1000 but uname "root" would make GNU tar, run as root, restore the
    /// file to root (it prefers names to numbers).
    pub fn apply<'a>(&'a self, name: &[u8], base: Applied<'a>) -> Applied<'a> {
        let mut out = base;
        // The rules whose path is `name` or an ancestor of it, in order.
        let mut hits: Vec<usize> = Vec::new();
        let ends = name.iter().enumerate().skip(1).filter(|(_, b)| **b == b'/').map(|(i, _)| i).chain([name.len()]);
        for end in ends {
            if let Some(v) = self.by_path.get(&name[..end]) {
                hits.extend(v);
            }
        }
        hits.sort_unstable();
        for rule in hits.into_iter().map(|i| &self.rules[i]) {
            if rule.regex.as_ref().is_some_and(|r| !r.is_match(name)) {
                continue;
            }
            if let Some(mode) = rule.mode {
                out.mode = mode;
            }
            if let Some(uid) = rule.uid {
                out.uid = uid;
                out.uname = rule.uname.as_deref().unwrap_or("");
            } else if let Some(uname) = &rule.uname {
                out.uname = uname;
            }
            if let Some(gid) = rule.gid {
                out.gid = gid;
                out.gname = rule.gname.as_deref().unwrap_or("");
            } else if let Some(gname) = &rule.gname {
                out.gname = gname;
            }
        }
        out
    }
}

/// Reads the conf's `perms` value. `member_name` turns a rule's `path`
/// into its member name, or says why it is not a store path (the conf's
/// own store-path check); `in_image` says whether a member name is a
/// store path of one of the conf's layers.
pub fn parse(value: &Value, member_name: impl Fn(&str) -> Result<Vec<u8>, String>, in_image: impl Fn(&[u8]) -> bool) -> Result<Perms, PermsError> {
    let Some(items) = value.as_array() else {
        return Err(PermsError::Type { key: "perms".into(), expected: "a list of {\"path\": STORE_PATH, ...} objects" });
    };
    let mut rules = Vec::with_capacity(items.len());
    let mut compiled: HashMap<String, Regex> = HashMap::new();
    for (i, item) in items.iter().enumerate() {
        let key = format!("perms[{i}]");
        let Some(obj) = item.as_object() else {
            return Err(PermsError::Type { key, expected: "an object with \"path\" and optional regex, mode, uid, gid, uname, gname" });
        };
        if let Some(field) = obj.keys().find(|k| !["path", "regex", "mode", "uid", "gid", "uname", "gname"].contains(&k.as_str())) {
            return Err(PermsError::Unknown { key, field: field.clone() });
        }
        let field = |f: &str| format!("{key}.{f}");
        let string = |f: &str| -> Result<Option<String>, PermsError> {
            match obj.get(f) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(PermsError::Type { key: field(f), expected: "a string" }),
            }
        };
        let id = |f: &str| -> Result<Option<u64>, PermsError> {
            match obj.get(f) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => {
                    let text = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    text.parse::<u32>().map(|n| Some(u64::from(n))).map_err(|_| PermsError::Id { key: field(f), value: v.to_string() })
                }
            }
        };
        let path = string("path")?.ok_or_else(|| PermsError::Type { key: field("path"), expected: "an absolute store path (a string)" })?;
        let member = member_name(&path).map_err(|problem| PermsError::Path { key: field("path"), path: path.clone(), problem })?;
        if !in_image(&member) {
            return Err(PermsError::NotInImage { key: field("path"), path });
        }
        let regex = match string("regex")? {
            None => None,
            // One regex for many store paths is common: compiled once, shared.
            Some(r) => Some(match compiled.get(&r) {
                Some(re) => re.clone(),
                None => {
                    let re = Regex::new(&r).map_err(|source| PermsError::Regex { key: field("regex"), source: Box::new(source) })?;
                    compiled.insert(r, re.clone());
                    re
                }
            }),
        };
        let mode = string("mode")?.map(|m| parse_mode(&m).ok_or(PermsError::Mode { key: field("mode"), value: m })).transpose()?;
        rules.push(Rule { path: member, regex, mode, uid: id("uid")?, gid: id("gid")?, uname: string("uname")?, gname: string("gname")? });
    }
    Ok(Perms::new(rules))
}

/// nix2container's modes are octal strings ("0755", "1777", "644").
fn parse_mode(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return None;
    }
    u32::from_str_radix(s, 8).ok().filter(|m| *m <= 0o7777)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn perms(v: Value) -> Result<Perms, PermsError> {
        parse(&v, |p| Ok(p.as_bytes().to_vec()), |m| m.starts_with(b"/nix/store/"))
    }

    fn base() -> Applied<'static> {
        Applied { mode: 0o555, uid: 0, gid: 0, uname: "root", gname: "root" }
    }

    #[test]
    fn rules_apply_under_their_path_where_the_regex_matches() {
        let p = perms(json!([
            {"path": "/nix/store/aaa-home", "regex": "/home/app$", "mode": "0700", "uid": 1000, "gid": "1000", "uname": "app"},
            {"path": "/nix/store/bbb-tmp", "mode": "1777"}
        ]))
        .unwrap();
        assert_eq!(p.apply(b"/nix/store/aaa-home/home/app", base()), Applied { mode: 0o700, uid: 1000, gid: 1000, uname: "app", gname: "" });
        // Under the path, but the regex does not match.
        assert_eq!(p.apply(b"/nix/store/aaa-home/home", base()), base());
        // A sibling whose name merely starts with the rule's path.
        assert_eq!(p.apply(b"/nix/store/bbb-tmpx", base()), base());
        assert_eq!(p.apply(b"/nix/store/bbb-tmp", base()).mode, 0o1777);
        assert_eq!(p.apply(b"/nix/store/bbb-tmp/x/y", base()).mode, 0o1777);
    }

    #[test]
    fn later_rules_win_field_by_field() {
        let p = perms(json!([
            {"path": "/nix/store/aaa", "mode": "0700", "uid": 5},
            {"path": "/nix/store/aaa", "regex": "\\.sh$", "mode": "0755"}
        ]))
        .unwrap();
        assert_eq!(p.apply(b"/nix/store/aaa/run.sh", base()), Applied { mode: 0o755, uid: 5, gid: 0, uname: "", gname: "root" });
    }

    #[test]
    fn bad_rules_name_their_key() {
        let err = |v: Value| perms(v).unwrap_err().to_string();
        assert!(err(json!([{"path": "/nix/store/a", "mode": "0999"}])).contains("perms[0].mode"));
        assert!(err(json!([{"path": "/nix/store/a", "mode": 493}])).contains("perms[0].mode"));
        assert!(err(json!([{"path": "/nix/store/a"}, {"path": "/nix/store/b", "regex": "("}])).contains("perms[1].regex"));
        assert!(err(json!([{"path": "/nix/store/a", "uid": -1}])).contains("perms[0].uid"));
        assert!(err(json!([{"path": "/nix/store/a", "owner": 1}])).contains("\"owner\""));
        assert!(err(json!([{"regex": "x"}])).contains("perms[0].path"));
        assert!(err(json!([{"path": "/etc/x"}])).contains("no store layer"));
        assert!(err(json!({"path": "/nix/store/a"})).contains("a list"));
    }
}
