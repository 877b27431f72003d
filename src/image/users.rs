//! The users layer (the conf's `users`): `/etc/passwd`, `/etc/group` and
//! `/etc/shadow` (accounts locked), each user's home owned by the user,
//! and `/tmp` with mode 1777, in one small tar made in memory with the
//! owners written into its headers — no fakeroot, no chown. It goes on top
//! of the customisation layer, and the three files extend what the layers
//! below would show (the customisation layer's, e.g. `fakeNss`' symlinks
//! into the store, else the base image's), so that neither a base image's
//! accounts nor fakeNss' `root` and `nobody` are lost.
//!
//! Parent directories (`/etc`, `/home`) are not written: an entry for them
//! would replace the owner and mode a lower layer gave them, while a
//! runtime creates a missing parent as root, 0755, anyway.

use super::ImageError;
use crate::conf::Conf;
use crate::digest::Digest;
use crate::image::base::BaseImage;
use crate::image::customisation::Customisation;
use crate::tar::python::{self as tar, Header};
use crate::tar::reader::{Dialect, Reader, Streamed};
use serde_json::Value;
use std::borrow::Cow;
use std::collections::BTreeSet;
use std::io::{self, Read};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    #[error("key \"{key}\" must be {expected}")]
    Type { key: String, expected: &'static str },
    #[error("key \"{key}\": {what}")]
    Invalid { key: String, what: String },
    #[error("users: {what} (from {origin})")]
    Clash { what: String, origin: String },
    #[error("users: cannot read /{file} from {origin}: {what}")]
    Below { file: String, origin: String, what: String },
}

/// One account of `users`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// The primary group's name (default: the user's name).
    pub group: String,
    pub home: String,
    pub shell: String,
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Users {
    pub users: Vec<User>,
}

/// A field of passwd/group/shadow must not break the line format.
fn field_ok(s: &str) -> bool {
    !s.contains([':', '\n', '\r', '\0'])
}

/// What useradd (shadow-utils) accepts as a name, minus the trailing `$`.
fn name_ok(s: &str) -> bool {
    let mut bytes = s.bytes();
    s.len() <= 32
        && bytes.next().is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

impl Users {
    pub fn parse(v: &Value) -> Result<Users, UsersError> {
        let items = v.as_array().ok_or(UsersError::Type { key: "users".into(), expected: "a list of {\"name\": ..., \"uid\": N} objects" })?;
        let mut users = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let key = |f: &str| format!("users[{i}].{f}");
            let obj = item.as_object().ok_or(UsersError::Type { key: format!("users[{i}]"), expected: "an object" })?;
            if let Some(f) = obj.keys().find(|k| !["name", "uid", "gid", "group", "home", "shell", "description"].contains(&k.as_str())) {
                return Err(UsersError::Invalid {
                    key: format!("users[{i}]"),
                    what: format!("unknown field \"{f}\" (expected name, uid, gid, group, home, shell, description)"),
                });
            }
            let string = |f: &str| -> Result<Option<String>, UsersError> {
                match obj.get(f) {
                    None | Some(Value::Null) => Ok(None),
                    Some(Value::String(s)) if field_ok(s) => Ok(Some(s.clone())),
                    Some(Value::String(_)) => Err(UsersError::Invalid { key: key(f), what: "must not contain ':' or a line break".into() }),
                    Some(_) => Err(UsersError::Type { key: key(f), expected: "a string" }),
                }
            };
            let id = |f: &str| -> Result<Option<u32>, UsersError> {
                match obj.get(f) {
                    None | Some(Value::Null) => Ok(None),
                    Some(v) => v
                        .as_u64()
                        .and_then(|n| u32::try_from(n).ok())
                        .map(Some)
                        .ok_or(UsersError::Type { key: key(f), expected: "an id (0..=4294967295)" }),
                }
            };
            let name = string("name")?.ok_or(UsersError::Type { key: key("name"), expected: "a user name (a string)" })?;
            if !name_ok(&name) {
                return Err(UsersError::Invalid {
                    key: key("name"),
                    what: format!("{name:?} is not a valid user name ([a-z_][a-z0-9_-]*, at most 32)"),
                });
            }
            let uid = id("uid")?.ok_or(UsersError::Type { key: key("uid"), expected: "an id (0..=4294967295)" })?;
            let group = string("group")?.unwrap_or_else(|| name.clone());
            if !name_ok(&group) {
                return Err(UsersError::Invalid { key: key("group"), what: format!("{group:?} is not a valid group name") });
            }
            let home = string("home")?.unwrap_or_else(|| format!("/home/{name}"));
            let parts: Vec<&str> = home.split('/').filter(|c| !c.is_empty()).collect();
            if !home.starts_with('/') || parts.is_empty() || parts.iter().any(|c| *c == "." || *c == "..") {
                return Err(UsersError::Invalid { key: key("home"), what: format!("{home:?} must be an absolute path below / without . or ..") });
            }
            users.push(User {
                uid,
                gid: id("gid")?.unwrap_or(uid),
                group,
                home: format!("/{}", parts.join("/")),
                shell: string("shell")?.unwrap_or_else(|| "/bin/sh".into()),
                description: string("description")?.unwrap_or_default(),
                name,
            });
        }
        for (i, u) in users.iter().enumerate() {
            for v in &users[..i] {
                if v.name == u.name || v.uid == u.uid {
                    return Err(UsersError::Invalid {
                        key: format!("users[{i}]"),
                        what: format!("name {:?} or uid {} is already taken by {:?}", u.name, u.uid, v.name),
                    });
                }
                if v.group == u.group && v.gid != u.gid {
                    return Err(UsersError::Invalid {
                        key: format!("users[{i}].gid"),
                        what: format!("group {:?} already has gid {}", u.group, v.gid),
                    });
                }
            }
        }
        Ok(Users { users })
    }
}

/// A file as the layers below the users layer show it.
#[derive(Debug)]
struct Found {
    text: String,
    origin: String,
}

/// One layer below, as a tar to scan.
struct Source<'a> {
    origin: String,
    open: Box<dyn Fn() -> io::Result<Box<dyn Read + 'a>> + 'a>,
}

enum Hit {
    File(Vec<u8>),
    Link(String),
    Gone,
}

/// Normalises a member name or absolute path to `etc/passwd` form.
fn norm(p: &str) -> String {
    p.split('/').filter(|c| !c.is_empty() && *c != ".").collect::<Vec<_>>().join("/")
}

const FILE_LIMIT: u64 = 16 << 20;

/// The last entry for `want` in one layer: its content, its link target,
/// a whiteout, or nothing.
fn scan(source: &Source<'_>, want: &str) -> io::Result<Option<Hit>> {
    let (dir, base) = want.rsplit_once('/').unwrap_or(("", want));
    let whiteout = if dir.is_empty() { format!(".wh.{base}") } else { format!("{dir}/.wh.{base}") };
    let opaque = if dir.is_empty() { ".wh..wh..opq".to_string() } else { format!("{dir}/.wh..wh..opq") };
    // As docker unpacks the base image (Go's archive/tar).
    let mut archive = Reader::new(Streamed((source.open)()?), Dialect::Go);
    let mut hit = None;
    while let Some(entry) = archive.next_entry().map_err(io::Error::other)? {
        let name = norm(&String::from_utf8_lossy(entry.name()));
        if name == whiteout || name == opaque {
            hit = hit.or(Some(Hit::Gone));
        } else if name == want {
            let target = || String::from_utf8_lossy(&entry.header.linkname).into_owned();
            hit = Some(match entry.typeflag() {
                // A hard link names a member of the archive, a symlink a path.
                b'1' => Hit::Link(format!("/{}", norm(&target()))),
                b'2' => Hit::Link(target()),
                _ if entry.is_regular() => Hit::File(archive.read_data(&entry, FILE_LIMIT).map_err(io::Error::other)?),
                _ => Hit::Gone,
            });
        }
    }
    Ok(hit)
}

/// Looks `path` up through `sources` (topmost first), following symlinks;
/// one into the store is read from the store itself.
fn lookup(sources: &[Source<'_>], store_dir: &str, path: &str) -> Result<Option<Found>, UsersError> {
    let mut want = norm(path);
    let store = norm(store_dir);
    for _ in 0..16 {
        if want.starts_with(&format!("{store}/")) {
            let on_disk = Path::new("/").join(&want);
            let below = |what: String| UsersError::Below { file: norm(path), origin: on_disk.display().to_string(), what };
            if !store_dir.starts_with('/') {
                return Err(below("a symlink into a store_dir given as a relative path cannot be followed".into()));
            }
            // The file is read from this machine: whatever the layers' links
            // say, only a file that really is inside the store may be.
            let inside = match (std::fs::canonicalize(&on_disk), std::fs::canonicalize(Path::new("/").join(&store))) {
                (Ok(file), Ok(dir)) => file.starts_with(&dir),
                (Err(e), _) | (_, Err(e)) => return Err(below(e.to_string())),
            };
            if !inside {
                return Err(below("it resolves to a file outside the store".into()));
            }
            let data = crate::input::read_limited(&on_disk, FILE_LIMIT).map_err(|e| below(e.to_string()))?;
            let text = String::from_utf8(data).map_err(|_| below("not UTF-8".into()))?;
            return Ok(Some(Found { text, origin: on_disk.display().to_string() }));
        }
        let mut next = None;
        for s in sources {
            let below = |what: String| UsersError::Below { file: want.clone(), origin: s.origin.clone(), what };
            match scan(s, &want).map_err(|e| below(e.to_string()))? {
                None => continue,
                Some(Hit::Gone) => return Ok(None),
                Some(Hit::File(data)) => {
                    let text = String::from_utf8(data).map_err(|_| below("not UTF-8".into()))?;
                    return Ok(Some(Found { text, origin: format!("/{want} in {}", s.origin) }));
                }
                Some(Hit::Link(target)) => {
                    let parent = want.rsplit_once('/').map_or("", |(d, _)| d);
                    // `..` resolved here, so that no link can climb out of the store below.
                    next = Some(if target.starts_with('/') { resolve_relative("", &target) } else { resolve_relative(parent, &target) });
                    break;
                }
            }
        }
        match next {
            Some(n) => want = n,
            None => return Ok(None),
        }
    }
    Err(UsersError::Below { file: norm(path), origin: "the layers below".into(), what: "too many levels of symbolic links".into() })
}

fn resolve_relative(dir: &str, target: &str) -> String {
    let mut parts: Vec<&str> = dir.split('/').filter(|c| !c.is_empty()).collect();
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    parts.join("/")
}

/// The layers below the users layer, topmost first: the customisation
/// layer, then the base image's (store layers hold only the store).
fn sources<'a>(base: Option<&'a BaseImage>, custom: &'a Customisation) -> Vec<Source<'a>> {
    let tar_path = custom.tar_path.clone();
    let mut out = vec![Source {
        origin: format!("the customisation layer {}", custom.tar_path.display()),
        open: Box::new(move || Ok(Box::new(io::BufReader::new(std::fs::File::open(&tar_path)?)) as Box<dyn Read>)),
    }];
    if let Some(b) = base {
        for layer in b.layers.iter().rev() {
            out.push(Source {
                origin: format!("base layer {} of {}", layer.name, b.path.display()),
                open: Box::new(move || {
                    let mut r = b.layer_reader_at(b.source_of(layer));
                    let mut head = [0u8; 8];
                    let n = crate::image::decode::read_head(&mut r, &mut head)?;
                    let whole = io::Cursor::new(head[..n].to_vec()).chain(r);
                    crate::image::decode::reader(crate::image::decode::sniff(&head[..n]), io::BufReader::new(whole))
                }),
            });
        }
    }
    out
}

/// A line-oriented account file: entries keyed by their first field.
struct Table {
    text: String,
    origin: String,
}

impl Table {
    fn new(found: Option<Found>, default: &str) -> Table {
        match found {
            Some(f) => {
                let mut text = f.text;
                if !text.is_empty() && !text.ends_with('\n') {
                    text.push('\n');
                }
                Table { text, origin: f.origin }
            }
            None => Table { text: default.to_string(), origin: "the users layer's defaults".into() },
        }
    }

    /// The entry named `name`, split into fields.
    fn get(&self, name: &str) -> Option<Vec<&str>> {
        self.text.lines().map(|l| l.split(':').collect::<Vec<_>>()).find(|f| f[0] == name)
    }

    /// The entry whose `field`th field is `value`.
    fn with_field(&self, field: usize, value: &str) -> Option<&str> {
        self.text.lines().find(|l| l.split(':').nth(field) == Some(value)).and_then(|l| l.split(':').next())
    }

    fn push(&mut self, line: String) {
        self.text.push_str(&line);
        self.text.push('\n');
    }
}

/// The three account files: the accounts below, then `users`'.
fn account_files(users: &Users, passwd: Option<Found>, group: Option<Found>, shadow: Option<Found>) -> Result<[String; 3], UsersError> {
    // Without any passwd below, the accounts fakeNss gives (root, nobody),
    // which much software expects to find.
    let mut passwd = Table::new(passwd, "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/var/empty:/sbin/nologin\n");
    let mut group = Table::new(group, "root:x:0:\nnobody:x:65534:\n");
    let had_shadow = shadow.is_some();
    let mut shadow = Table::new(shadow, "");
    if !had_shadow {
        let below: Vec<String> = passwd.text.lines().filter_map(|l| l.split(':').next()).filter(|n| !n.is_empty()).map(str::to_string).collect();
        for name in below {
            shadow.push(format!("{name}:!:::::::"));
        }
    }
    for u in &users.users {
        let clash = |what: String, origin: &str| UsersError::Clash { what, origin: origin.to_string() };
        if passwd.get(&u.name).is_some() {
            return Err(clash(format!("user {:?} already exists", u.name), &passwd.origin));
        }
        if let Some(other) = passwd.with_field(2, &u.uid.to_string()) {
            return Err(clash(format!("uid {} of {:?} is already {other:?}'s", u.uid, u.name), &passwd.origin));
        }
        match group.get(&u.group) {
            Some(f) if f.get(2) == Some(&u.gid.to_string().as_str()) => {}
            Some(f) => return Err(clash(format!("group {:?} already exists with gid {}", u.group, f.get(2).unwrap_or(&"?")), &group.origin)),
            None => {
                if let Some(other) = group.with_field(2, &u.gid.to_string()) {
                    return Err(clash(format!("gid {} of group {:?} is already {other:?}'s", u.gid, u.group), &group.origin));
                }
                group.push(format!("{}:x:{}:", u.group, u.gid));
            }
        }
        passwd.push(format!("{}:x:{}:{}:{}:{}:{}", u.name, u.uid, u.gid, u.description, u.home, u.shell));
        if shadow.get(&u.name).is_none() {
            shadow.push(format!("{}:!:::::::", u.name));
        }
    }
    Ok([passwd.text, group.text, shadow.text])
}

/// The users layer's tar, or `None` when the conf has no `users`.
pub fn users_layer(conf: &Conf, base: Option<&BaseImage>, custom: &Customisation) -> Result<Option<UsersLayer>, ImageError> {
    let Some(users) = &conf.users else { return Ok(None) };
    let sources = sources(base, custom);
    let find = |p: &str| lookup(&sources, &conf.store_dir, p);
    let [passwd, group, shadow] = account_files(users, find("/etc/passwd")?, find("/etc/group")?, find("/etc/shadow")?)?;
    let tar = layer_tar(users, &passwd, &group, &shadow, conf.stamp.mtime);
    Ok(Some(UsersLayer { digest: Digest::of(&tar), tar }))
}

/// The users layer: its tar and the tar's digest (its diff_id).
#[derive(Debug, Clone)]
pub struct UsersLayer {
    pub tar: Vec<u8>,
    pub digest: Digest,
}

impl UsersLayer {
    /// What the layer's history comment lists in place of store paths.
    pub const HISTORY: &'static str = "users";
}

fn layer_tar(users: &Users, passwd: &str, group: &str, shadow: &str, mtime: i64) -> Vec<u8> {
    let mut out = Vec::new();
    let mut member = |name: String, mode: u32, owner: (u32, u32, &str, &str), data: Option<&str>| {
        let dir = data.is_none();
        let data = data.unwrap_or("").as_bytes();
        let header = Header {
            name: Cow::Owned(if dir { format!("{name}/") } else { name }.into_bytes()),
            mode,
            uid: owner.0.into(),
            gid: owner.1.into(),
            size: data.len() as u64,
            mtime,
            typeflag: if dir { tar::DIRTYPE } else { tar::REGTYPE },
            uname: Cow::Owned(owner.2.as_bytes().to_vec()),
            gname: Cow::Owned(owner.3.as_bytes().to_vec()),
            ..Header::default()
        };
        tar::encode_header(&header, &mut out);
        out.extend_from_slice(data);
        out.resize(out.len() + tar::padding(data.len() as u64) as usize, 0);
    };
    let root = (0, 0, "root", "root");
    member("etc/group".into(), 0o644, root, Some(group));
    member("etc/passwd".into(), 0o644, root, Some(passwd));
    member("etc/shadow".into(), 0o640, root, Some(shadow));
    // Homes in name order, each once (two users may share one; the first
    // listed owns it).
    let mut homes = BTreeSet::new();
    let mut owners = Vec::new();
    for u in &users.users {
        if homes.insert(u.home.clone()) {
            owners.push(u);
        }
    }
    owners.sort_by(|a, b| a.home.cmp(&b.home));
    for u in owners {
        member(u.home.trim_start_matches('/').to_string(), 0o755, (u.uid, u.gid, &u.name, &u.group), None);
    }
    member("tmp".into(), 0o1777, root, None);
    let end = tar::end_of_archive_len(out.len() as u64);
    out.resize(out.len() + end as usize, 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn users(v: Value) -> Users {
        Users::parse(&v).unwrap()
    }

    fn found(text: &str) -> Option<Found> {
        Some(Found { text: text.into(), origin: "below".into() })
    }

    #[test]
    fn accounts_extend_what_is_below() {
        let u = users(json!([{"name": "app", "uid": 1000}]));
        let [p, g, s] = account_files(&u, found("root:x:0:0::/root:/bin/sh"), found("root:x:0:\n"), None).unwrap();
        assert_eq!(p, "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n");
        assert_eq!(g, "root:x:0:\napp:x:1000:\n");
        assert_eq!(s, "root:!:::::::\napp:!:::::::\n");
    }

    #[test]
    fn without_accounts_below_root_and_nobody_are_written() {
        let u = users(json!([{"name": "app", "uid": 1000, "gid": 100, "group": "users", "home": "/srv//app/", "shell": "/bin/bash"}]));
        let [p, g, _] = account_files(&u, None, None, None).unwrap();
        assert!(p.starts_with("root:x:0:0:"), "{p}");
        assert!(p.ends_with("app:x:1000:100::/srv/app:/bin/bash\n"), "{p}");
        assert!(g.ends_with("users:x:100:\n"), "{g}");
    }

    #[test]
    fn clashes_name_the_file_below() {
        let u = users(json!([{"name": "app", "uid": 1000}]));
        let e = account_files(&u, found("app:x:5:5::/:/bin/sh\n"), None, None).unwrap_err().to_string();
        assert!(e.contains("\"app\" already exists") && e.contains("below"), "{e}");
        let e = account_files(&u, found("ubuntu:x:1000:1000::/:/bin/sh\n"), None, None).unwrap_err().to_string();
        assert!(e.contains("uid 1000") && e.contains("ubuntu"), "{e}");
        let e = account_files(&u, None, found("staff:x:1000:\n"), None).unwrap_err().to_string();
        assert!(e.contains("gid 1000") && e.contains("staff"), "{e}");
    }

    /// A layer holding one symlink, `etc/passwd -> target`.
    fn link_layer(target: &str) -> Source<'static> {
        let mut b = ::tar::Builder::new(Vec::new());
        let mut h = ::tar::Header::new_gnu();
        h.set_entry_type(::tar::EntryType::Symlink);
        h.set_size(0);
        b.append_link(&mut h, "etc/passwd", target).unwrap();
        let bytes = b.into_inner().unwrap();
        Source { origin: "a test layer".into(), open: Box::new(move || Ok(Box::new(io::Cursor::new(bytes.clone())) as Box<dyn Read>)) }
    }

    #[test]
    fn links_are_followed_into_the_store_and_never_out_of_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("nix/store");
        std::fs::create_dir_all(store.join("aaa-nss/etc")).unwrap();
        std::fs::write(store.join("aaa-nss/etc/passwd"), "root:x:0:0::/:/bin/sh\n").unwrap();
        std::fs::create_dir_all(dir.path().join("host/etc")).unwrap();
        std::fs::write(dir.path().join("host/etc/passwd"), "secret:x:1:1::/:/bin/sh\n").unwrap();
        std::fs::create_dir_all(store.join("bbb-evil")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("host/etc"), store.join("bbb-evil/etc")).unwrap();
        let store_dir = store.display().to_string();
        let found = lookup(&[link_layer(&format!("{store_dir}/aaa-nss/etc/passwd"))], &store_dir, "/etc/passwd").unwrap().unwrap();
        assert_eq!(found.text, "root:x:0:0::/:/bin/sh\n");
        for evil in [format!("{store_dir}/../../host/etc/passwd"), format!("{store_dir}/bbb-evil/etc/passwd")] {
            // Either an error, or (`..` resolved first) a path outside the
            // store that no layer holds: never the host's file.
            match lookup(&[link_layer(&evil)], &store_dir, "/etc/passwd") {
                Ok(Some(f)) => panic!("{evil}: read {:?} from {}", f.text, f.origin),
                Ok(None) => {}
                Err(e) => assert!(e.to_string().contains("outside the store"), "{evil}: {e}"),
            }
        }
        let e = lookup(&[link_layer(&format!("{store_dir}/bbb-evil/etc/passwd"))], &store_dir, "/etc/passwd").unwrap_err().to_string();
        assert!(e.contains("outside the store"), "{e}");
        let e = lookup(&[link_layer("/nix/store/aaa-nss/etc/passwd")], "nix/store", "/etc/passwd").unwrap_err().to_string();
        assert!(e.contains("relative"), "{e}");
    }

    #[test]
    fn bad_users_name_their_key() {
        let err = |v: Value| Users::parse(&v).unwrap_err().to_string();
        assert!(err(json!([{"name": "a:b", "uid": 1}])).contains("users[0].name"));
        assert!(err(json!([{"name": "Root", "uid": 1}])).contains("users[0].name"));
        assert!(err(json!([{"name": "a"}])).contains("users[0].uid"));
        assert!(err(json!([{"name": "a", "uid": -1}])).contains("users[0].uid"));
        assert!(err(json!([{"name": "a", "uid": 1, "home": "rel"}])).contains("users[0].home"));
        assert!(err(json!([{"name": "a", "uid": 1, "home": "/x/../etc"}])).contains("users[0].home"));
        assert!(err(json!([{"name": "a", "uid": 1}, {"name": "b", "uid": 1}])).contains("users[1]"));
        assert!(err(json!([{"name": "a", "uid": 1, "groups": []}])).contains("\"groups\""));
        assert!(err(json!({})).contains("a list"));
    }

    #[test]
    fn the_layer_is_deterministic_and_carries_owners() {
        let u = users(json!([{"name": "app", "uid": 1000}]));
        let a = layer_tar(&u, "p\n", "g\n", "s\n", 1);
        assert_eq!(a, layer_tar(&u, "p\n", "g\n", "s\n", 1));
        let mut archive = ::tar::Archive::new(&a[..]);
        let got: Vec<(String, u32, u64, u64)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (e.path().unwrap().display().to_string(), h.mode().unwrap(), h.uid().unwrap(), h.gid().unwrap())
            })
            .collect();
        assert_eq!(
            got,
            [
                ("etc/group".into(), 0o644, 0, 0),
                ("etc/passwd".into(), 0o644, 0, 0),
                ("etc/shadow".into(), 0o640, 0, 0),
                ("home/app/".into(), 0o755, 1000, 1000),
                ("tmp/".into(), 0o1777, 0, 0)
            ]
        );
    }
}
