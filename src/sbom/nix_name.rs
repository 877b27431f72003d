//! A store path's package name and version, split as Nix itself splits a
//! derivation name (`builtins.parseDrvName`, `nix-env`): the name ends at
//! the first dash that is followed by something other than a letter.

/// `(name, version)` of a derivation name; the version is empty when
/// there is none (`hello` → `("hello", "")`).
pub fn parse_drv_name(full: &str) -> (&str, &str) {
    let bytes = full.as_bytes();
    for i in 0..bytes.len() {
        // Nix tests `!isalpha(s[i + 1])` in the C locale: ASCII letters only.
        if bytes[i] == b'-' && i + 1 < bytes.len() && !bytes[i + 1].is_ascii_alphabetic() {
            return (&full[..i], &full[i + 1..]);
        }
    }
    (full, "")
}

/// The part of a store path's base name after its hash and dash
/// (`/nix/store/<32 chars>-hello-2.12` → `hello-2.12`), and the hash.
/// `None` when the base name is not `<hash>-<name>`.
pub fn store_name(store_path: &str) -> Option<(&str, &str)> {
    let base = store_path.trim_end_matches('/').rsplit('/').next()?;
    let (hash, name) = base.split_once('-')?;
    (!hash.is_empty() && !name.is_empty()).then_some((hash, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Expected values: what `nix-instantiate --eval -E 'builtins.parseDrvName "…"'`
    /// (Nix 2.8) answers for each name.
    #[test]
    fn split_like_parse_drv_name() {
        let cases = [
            ("hello-2.12.1", ("hello", "2.12.1")),
            ("hello", ("hello", "")),
            ("glibc-2.39-52", ("glibc", "2.39-52")),
            ("glibc-2.39-52-bin", ("glibc", "2.39-52-bin")),
            ("perl5.38.2-XML-Parser-2.46", ("perl5.38.2-XML-Parser", "2.46")),
            ("python3.12-requests-2.31.0", ("python3.12-requests", "2.31.0")),
            ("source", ("source", "")),
            ("foo-", ("foo-", "")),
            ("-1.0", ("", "1.0")),
            ("nix-2.8.0pre", ("nix", "2.8.0pre")),
            ("x-_y", ("x", "_y")),
            ("a-Éb-1", ("a", "Éb-1")),
        ];
        for (input, want) in cases {
            assert_eq!(parse_drv_name(input), want, "{input}");
        }
    }

    #[test]
    fn store_names() {
        assert_eq!(store_name("/nix/store/0c2jw3xkl6a1yq8wsw7i9cx9bv2lbq1d-hello-2.12"), Some(("0c2jw3xkl6a1yq8wsw7i9cx9bv2lbq1d", "hello-2.12")));
        assert_eq!(store_name("nix/store/abc-x/"), Some(("abc", "x")));
        assert_eq!(store_name("/nix/store/nodash"), None);
    }
}
