#!/usr/bin/env python3
"""Validates the JSON of OCI image layouts against the official image-spec
schemas (draft-04, ../shared/oci-image-spec/schema), offline.

    oci_schema.py SCHEMA_DIR LAYOUT...

Each LAYOUT is a layout directory or an oci-archive (a tar of one). Checked:
oci-layout, index.json, and every image index, image manifest and image
config reached from index.json through descriptors of OCI media types.
Documents of Docker media types (skopeo --format v2s2) are not OCI
documents: they are counted, not validated. Prints one line per document to
stdout; the first invalid one is the error (exit 1).
"""
import json
import os
import sys
import tarfile

# jsonschema imports the optional checkers of string formats, which the
# OCI schemas do not assert; one (rfc3987_syntax) compiles a grammar for
# seconds. Blocked, they are skipped as if not installed.
for _optional in ("rfc3987_syntax", "rfc3987", "rfc3339_validator", "webcolors", "jsonpointer", "uri_template", "isoduration", "fqdn", "idna"):
    sys.modules.setdefault(_optional, None)

from jsonschema import Draft4Validator  # noqa: E402
from referencing import Registry, Resource  # noqa: E402
from referencing.jsonschema import DRAFT4  # noqa: E402

INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER = {
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.container.image.v1+json",
}
BASE = "https://opencontainers.org/schema/"


def registry(schema_dir):
    """Every file under the URLs upstream's schema.go (specURLs) serves it
    at, so that the relative $refs resolve without a network."""
    resources = []
    for name in sorted(os.listdir(schema_dir)):
        if not name.endswith(".json"):
            continue
        with open(os.path.join(schema_dir, name)) as f:
            contents = json.load(f)
        res = Resource.from_contents(contents, default_specification=DRAFT4)
        urls = {BASE + name, BASE + "image/" + name, BASE + "descriptor/" + name, BASE + "image/descriptor/" + name}
        if isinstance(contents.get("id"), str):
            urls.add(contents["id"])
        resources += [(u, res) for u in urls]
    return Registry().with_resources(resources)


class Layout:
    def __init__(self, path):
        self.path = path
        self.tar = None if os.path.isdir(path) else tarfile.open(path)

    def read(self, name):
        if self.tar is None:
            with open(os.path.join(self.path, name), "rb") as f:
                return f.read()
        for candidate in (name, "./" + name):
            try:
                return self.tar.extractfile(candidate).read()
            except KeyError:
                continue
        raise KeyError(name)


def main():
    schema_dir, layouts = sys.argv[1], sys.argv[2:]
    reg = registry(schema_dir)

    def validator(schema_id):
        return Draft4Validator(reg.contents(schema_id), registry=reg)

    validators = {
        "layout": validator(BASE + "image/layout"),
        INDEX: validator(BASE + "image/index"),
        MANIFEST: validator(BASE + "image/manifest"),
        CONFIG: validator(BASE + "image/config"),
    }
    failed = False

    def check(kind, where, doc):
        nonlocal failed
        errors = sorted(validators[kind].iter_errors(doc), key=lambda e: list(e.absolute_path))
        if errors:
            e = errors[0]
            path = "/".join(str(p) for p in e.absolute_path)
            print(f"INVALID {where} ({kind}) at /{path}: {e.message}", file=sys.stderr)
            failed = True
        else:
            print(f"valid {kind} {where}")

    for path in layouts:
        layout = Layout(path)
        check("layout", f"{path}/oci-layout", json.loads(layout.read("oci-layout")))
        index = json.loads(layout.read("index.json"))
        check(INDEX, f"{path}/index.json", index)
        todo = list(index.get("manifests", []))
        seen = set()
        while todo:
            d = todo.pop(0)
            media_type, digest = d.get("mediaType"), d.get("digest", "")
            if digest in seen or media_type not in (INDEX, MANIFEST, CONFIG) and media_type not in DOCKER:
                continue
            seen.add(digest)
            name = "blobs/" + digest.replace(":", "/", 1)
            try:
                doc = json.loads(layout.read(name))
            except (KeyError, OSError, ValueError) as e:
                print(f"INVALID {path}/{name}: cannot be read as JSON: {e}", file=sys.stderr)
                failed = True
                continue
            if media_type in DOCKER:
                print(f"docker {media_type} {path}/{name}")
            else:
                check(media_type, f"{path}/{name}", doc)
            if media_type in (INDEX, "application/vnd.docker.distribution.manifest.list.v2+json"):
                todo += doc.get("manifests", [])
            elif media_type in (MANIFEST, "application/vnd.docker.distribution.manifest.v2+json"):
                todo.append(doc.get("config", {}))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
