//! `sbom` and `provenance` on a closure real Nix built and exported
//! (structured `exportReferencesGraph`, `nix path-info --json`): every
//! document is checked by its official validator (pyspdxtools,
//! cyclonedx-python-lib's strict JSON schema validator for 1.6,
//! in-toto-attestation's Statement and SLSA provenance v1 protos), and its
//! facts against what real tools say of the same image and store paths:
//! NAR hashes from `nix-store --dump`, references from `nix-store
//! --query`, the image ID from skopeo, diff_ids from the image's config,
//! manifest digests from the OCI layouts `copy` writes, read by skopeo.

use crate::harness as common;

use common::{bin, require, run, sha256_hex, verify_image};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

const NIX_CONFIG: &str = "experimental-features = nix-command flakes\nsubstituters =\nbuild-users-group =\nsandbox = false";

fn nix(tool: &str) -> Command {
    require(tool);
    let mut c = Command::new(tool);
    c.env("NIX_CONFIG", NIX_CONFIG);
    c
}

fn stdout_text(cmd: &mut Command) -> String {
    String::from_utf8(run(cmd).stdout).unwrap().trim().to_string()
}

/// A small closure built by real Nix: an app referencing a library, a data
/// file and itself, and the structured-attrs graph Nix exports for it.
struct Closure {
    /// `.attrs.json` of a derivation with `exportReferencesGraph.graph = [ app ]`.
    attrs: PathBuf,
    app: String,
    lib: String,
    data: String,
}

const CLOSURE_NIX: &str = r#"
let
  mk = name: script: derivation {
    inherit name;
    system = builtins.currentSystem;
    builder = "/bin/sh";
    args = [ "-c" script ];
    PATH = "/usr/bin:/bin";
  };
in rec {
  lib = mk "libgreet-1.2.3" "mkdir -p $out/lib; echo greetings from layered-image tests/sbom.rs > $out/lib/greeting";
  data = mk "sbom-test-data" "echo data > $out";
  app = mk "sbom-test-app-0.1" ''
    mkdir -p $out/bin
    printf '#!/bin/sh\ncat ${lib}/lib/greeting ${data}\n' > $out/bin/app
    chmod +x $out/bin/app
    echo $out > $out/self
  '';
  graph = derivation {
    name = "sbom-test-graph.json";
    system = builtins.currentSystem;
    builder = "/bin/sh";
    __structuredAttrs = true;
    exportReferencesGraph.graph = [ app ];
    args = [ "-c" "read -r _ < \"$NIX_ATTRS_JSON_FILE\"; /bin/cp \"$NIX_ATTRS_JSON_FILE\" ${placeholder "out"}" ];
  };
}
"#;

fn build_closure(dir: &Path) -> Closure {
    let expr = dir.join("closure.nix");
    std::fs::write(&expr, CLOSURE_NIX).unwrap();
    let build = |attr: &str| stdout_text(nix("nix-build").arg(&expr).args(["-A", attr, "--no-out-link"]));
    Closure { attrs: PathBuf::from(build("graph")), app: build("app"), lib: build("lib"), data: build("data") }
}

/// A customisation layer and base json, and the conf `conf` makes of the
/// closure (two store layers at most, so that one holds two paths).
fn make_conf(dir: &Path, c: &Closure, extra: &[&str]) -> PathBuf {
    let src = dir.join("custom-src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("hello.txt"), "hi\n").unwrap();
    let custom = dir.join("custom");
    if !custom.join("checksum").exists() {
        run(Command::new(bin()).arg("customisation-layer").arg(&src).arg(&custom));
    }
    let base = dir.join("base.json");
    let cmd = format!("{}/bin/app", c.app);
    std::fs::write(&base, serde_json::to_vec(&serde_json::json!({"config": {"Cmd": [cmd]}, "architecture": "amd64", "os": "linux"})).unwrap())
        .unwrap();
    let out = dir.join(format!("conf-{}.json", sha256_hex(extra.join(" ").as_bytes())));
    let max_layers = if extra.contains(&"--max-layers") { &[][..] } else { &["--max-layers", "3"][..] };
    run(Command::new(bin())
        .arg("conf")
        .arg("--graph")
        .arg(&c.attrs)
        .args(["--graph-key", "graph", "--image-name", "sbom-test", "--image-tag", "v1"])
        .args(max_layers)
        .arg("--base-json")
        .arg(&base)
        .arg("--customisation-layer")
        .arg(&custom)
        .args(extra)
        .arg("-o")
        .arg(&out));
    out
}

fn sbom(conf: &Path, args: &[&str]) -> Vec<u8> {
    run(Command::new(bin()).arg("sbom").arg(conf).args(args)).stdout
}

/// The image config of a docker-archive: its diff_ids.
fn diff_ids(archive: &Path) -> Vec<String> {
    let mut ar = tar::Archive::new(std::fs::File::open(archive).unwrap());
    let mut manifest = Value::Null;
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".json") {
            let mut v = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut v).unwrap();
            if name == "manifest.json" {
                manifest = serde_json::from_slice(&v).unwrap();
            } else {
                files.insert(name, v);
            }
        }
    }
    let config: Value = serde_json::from_slice(&files[manifest[0]["Config"].as_str().unwrap()]).unwrap();
    config["rootfs"]["diff_ids"].as_array().unwrap().iter().map(|d| d.as_str().unwrap().strip_prefix("sha256:").unwrap().to_string()).collect()
}

/// The image ID skopeo gives a docker-archive (its manifest's config digest).
fn skopeo_image_id(archive: &Path) -> String {
    require("skopeo");
    let raw: Value =
        serde_json::from_str(&stdout_text(Command::new("skopeo").arg("inspect").arg("--raw").arg(format!("docker-archive:{}", archive.display()))))
            .unwrap();
    raw["config"]["digest"].as_str().unwrap().strip_prefix("sha256:").unwrap().to_string()
}

/// What real Nix says of a store path: NAR hash and size (of its
/// `nix-store --dump`), and references other than itself.
struct NixFacts {
    nar_sha256: String,
    nar_size: u64,
    references: BTreeSet<String>,
}

fn nix_facts(path: &str) -> NixFacts {
    let nar = run(nix("nix-store").args(["--dump", path])).stdout;
    let refs = stdout_text(nix("nix-store").args(["--query", "--references", path]));
    NixFacts {
        nar_sha256: sha256_hex(&nar),
        nar_size: nar.len() as u64,
        references: refs.lines().filter(|r| *r != path).map(str::to_string).collect(),
    }
}

fn python(script: &str, args: &[&Path]) -> String {
    require("python3");
    let out = Command::new("python3").arg("-c").arg(script).args(args).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "validator failed:\n{text}");
    text
}

pub(crate) fn validate_spdx(file: &Path) {
    require("pyspdxtools");
    let out = Command::new("pyspdxtools").arg("-i").arg(file).output().unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "pyspdxtools rejects {}:\n{}{}",
        file.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The strict CycloneDX 1.6 schema, and every purl parsed by packageurl-python.
pub(crate) fn validate_cyclonedx(file: &Path) {
    python(
        r#"
import json, sys
from cyclonedx.validation.json import JsonStrictValidator
from cyclonedx.schema import SchemaVersion
from packageurl import PackageURL
text = open(sys.argv[1]).read()
error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
if error is not None:
    sys.exit('CycloneDX 1.6: ' + str(error.data.message))
for c in json.loads(text)['components']:
    if 'purl' in c:
        p = PackageURL.from_string(c['purl'])
        if p.type != 'nix' or p.name != c['name'] or (p.version or None) != c.get('version'):
            sys.exit('purl %s does not say name %s version %s' % (c['purl'], c['name'], c.get('version')))
"#,
        &[file],
    );
}

/// in-toto-attestation's Statement v1 (parsed by its protobuf schema,
/// unknown fields rejected, then `validate()`), and the predicate parsed
/// as the SLSA provenance v1 proto, its required fields present.
pub(crate) fn validate_provenance(file: &Path) {
    python(
        r#"
import json, sys
from google.protobuf import json_format
from in_toto_attestation.v1 import statement_pb2
from in_toto_attestation.v1.statement import Statement
from in_toto_attestation.v1.resource_descriptor import ResourceDescriptor
from in_toto_attestation.predicates.provenance.v1 import provenance_pb2
doc = json.load(open(sys.argv[1]))
pb = json_format.ParseDict(doc, statement_pb2.Statement())
Statement.copy_from_pb(pb).validate()
if doc['predicateType'] != 'https://slsa.dev/provenance/v1':
    sys.exit('predicateType ' + doc['predicateType'])
prov = json_format.ParseDict(doc['predicate'], provenance_pb2.Provenance())
if not prov.build_definition.build_type or not prov.run_details.builder.id:
    sys.exit('buildType and builder.id are required')
for rd in prov.build_definition.resolved_dependencies:
    ResourceDescriptor.copy_from_pb(rd).validate()
    if not (rd.uri or rd.digest or rd.content):
        sys.exit('a resolved dependency has neither uri, digest nor content: ' + rd.name)
"#,
        &[file],
    );
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// The conf's store layers: path → index of its layer in the image
/// (no base image here, so store layer i is image layer i).
fn layer_of(conf: &Path) -> BTreeMap<String, usize> {
    let v: Value = serde_json::from_slice(&std::fs::read(conf).unwrap()).unwrap();
    let mut m = BTreeMap::new();
    for (i, layer) in v["store_layers"].as_array().unwrap().iter().enumerate() {
        for p in layer.as_array().unwrap() {
            m.insert(p.as_str().unwrap().to_string(), i);
        }
    }
    m
}

#[test]
fn sboms_of_a_real_nix_closure_validate_and_give_every_path_its_hash_references_and_layer() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let c = build_closure(d);
    let conf = make_conf(d, &c, &["--closure-graph"]);
    let layers = layer_of(&conf);
    let paths: BTreeSet<String> = [&c.app, &c.lib, &c.data].into_iter().cloned().collect();
    assert_eq!(layers.keys().cloned().collect::<BTreeSet<_>>(), paths, "the conf layers the whole closure");
    assert!(layers.values().collect::<BTreeSet<_>>().len() < paths.len(), "some layer holds two paths: {layers:?}");

    // The image itself, read back by verify and skopeo.
    let image = d.join("image.tar");
    run(Command::new(bin()).arg("stream").arg(&conf).arg("-o").arg(&image));
    verify_image(image.to_str().unwrap());
    let image_id = skopeo_image_id(&image);
    let diff_ids = diff_ids(&image);
    assert_eq!(diff_ids.len(), layers.values().max().unwrap() + 2, "store layers and the customisation layer");

    // SPDX.
    let spdx_bytes = sbom(&conf, &[]);
    let spdx_file = write(d, "image.spdx.json", &spdx_bytes);
    validate_spdx(&spdx_file);
    let doc: Value = serde_json::from_slice(&spdx_bytes).unwrap();
    let packages: BTreeMap<String, &Value> =
        doc["packages"].as_array().unwrap().iter().map(|p| (p["SPDXID"].as_str().unwrap().to_string(), p)).collect();
    let rels: BTreeSet<(String, String, String)> = doc["relationships"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["spdxElementId"].as_str().unwrap().into(),
                r["relationshipType"].as_str().unwrap().into(),
                r["relatedSpdxElement"].as_str().unwrap().into(),
            )
        })
        .collect();
    let image_pkg = packages["SPDXRef-Image"];
    assert_eq!(image_pkg["checksums"][0]["checksumValue"], image_id.as_str(), "the image is described by its image ID");
    assert_eq!((image_pkg["name"].as_str(), image_pkg["versionInfo"].as_str()), (Some("sbom-test"), Some("v1")));
    assert!(rels.contains(&("SPDXRef-DOCUMENT".into(), "DESCRIBES".into(), "SPDXRef-Image".into())));
    let id_of_path: BTreeMap<String, String> =
        packages.values().filter_map(|p| Some((p.get("packageFileName")?.as_str()?.to_string(), p["SPDXID"].as_str()?.to_string()))).collect();
    assert_eq!(id_of_path.keys().cloned().collect::<BTreeSet<_>>(), paths, "one package per store path, no more");
    for (i, diff) in diff_ids.iter().enumerate() {
        let layer = format!("SPDXRef-Layer-{}", i + 1);
        assert_eq!(packages[&layer]["checksums"][0]["checksumValue"], diff.as_str(), "{layer}");
        assert!(rels.contains(&("SPDXRef-Image".into(), "CONTAINS".into(), layer.clone())));
    }
    for path in &paths {
        let id = &id_of_path[path];
        let pkg = packages[id];
        let facts = nix_facts(path);
        assert_eq!(pkg["checksums"][0]["checksumValue"], facts.nar_sha256.as_str(), "{path}: narHash");
        assert!(pkg["comment"].as_str().unwrap().contains(&format!("narSize {} bytes", facts.nar_size)), "{path}: {}", pkg["comment"]);
        let holders: Vec<&String> = rels.iter().filter(|(_, k, to)| k == "CONTAINS" && to == id).map(|(from, _, _)| from).collect();
        assert_eq!(holders, [&format!("SPDXRef-Layer-{}", layers[path] + 1)], "{path} is carried by its conf layer");
        let deps: BTreeSet<String> = rels.iter().filter(|(from, k, _)| from == id && k == "DEPENDS_ON").map(|(_, _, to)| to.clone()).collect();
        let want: BTreeSet<String> = facts.references.iter().map(|r| id_of_path[r].clone()).collect();
        assert_eq!(deps, want, "{path}: references as nix-store --query --references gives them");
    }
    let names: BTreeSet<(String, Option<String>)> = id_of_path
        .values()
        .map(|id| (packages[id]["name"].as_str().unwrap().to_string(), packages[id]["versionInfo"].as_str().map(str::to_string)))
        .collect();
    // What `builtins.parseDrvName` makes of the three names.
    let parsed: BTreeSet<(String, Option<String>)> = ["libgreet-1.2.3", "sbom-test-data", "sbom-test-app-0.1"]
        .iter()
        .map(|n| {
            let v: Value = serde_json::from_str(&stdout_text(nix("nix-instantiate").args([
                "--eval",
                "--json",
                "-E",
                &format!("builtins.parseDrvName \"{n}\""),
            ])))
            .unwrap();
            let version = v["version"].as_str().unwrap();
            (v["name"].as_str().unwrap().to_string(), (!version.is_empty()).then(|| version.to_string()))
        })
        .collect();
    assert_eq!(names, parsed);

    // CycloneDX.
    let cdx_bytes = sbom(&conf, &["--format", "cyclonedx-json"]);
    let cdx_file = write(d, "image.cdx.json", &cdx_bytes);
    validate_cyclonedx(&cdx_file);
    let bom: Value = serde_json::from_slice(&cdx_bytes).unwrap();
    assert_eq!(bom["metadata"]["component"]["hashes"][0]["content"], image_id.as_str());
    assert_eq!(bom["metadata"]["timestamp"], "1970-01-01T00:00:01Z", "the conf's created, not the clock");
    let components: BTreeMap<String, &Value> =
        bom["components"].as_array().unwrap().iter().map(|c| (c["bom-ref"].as_str().unwrap().to_string(), c)).collect();
    let deps: BTreeMap<String, BTreeSet<String>> = bom["dependencies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (d["ref"].as_str().unwrap().to_string(), d["dependsOn"].as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_string()).collect())
        })
        .collect();
    let layer_components: Vec<&&Value> = components.values().filter(|c| c["type"] == "file").collect();
    assert_eq!(
        layer_components.iter().map(|c| c["hashes"][0]["content"].as_str().unwrap().to_string()).collect::<BTreeSet<_>>(),
        diff_ids.iter().cloned().collect()
    );
    for path in &paths {
        let comp = components.get(path).unwrap_or_else(|| panic!("{path} is not a component"));
        let facts = nix_facts(path);
        assert_eq!(comp["hashes"][0]["content"], facts.nar_sha256.as_str(), "{path}");
        let props: BTreeMap<&str, &str> =
            comp["properties"].as_array().unwrap().iter().map(|p| (p["name"].as_str().unwrap(), p["value"].as_str().unwrap())).collect();
        assert_eq!(props["layered-image:layer"], format!("sha256:{}", diff_ids[layers[path]]), "{path}");
        assert_eq!(props["layered-image:nix-nar-size"], facts.nar_size.to_string());
        assert_eq!(deps[path], facts.references, "{path}");
    }
    assert_eq!(deps[&format!("image:sha256:{image_id}")], BTreeSet::from([c.app.clone()]), "the image depends on what it was asked to hold");

    // The same bytes on every run and on one core.
    assert_eq!(sbom(&conf, &[]), spdx_bytes);
    require("taskset");
    let one_core = run(Command::new("taskset").args(["-c", "0"]).arg(bin()).arg("sbom").arg(&conf).args(["--format", "cyclonedx-json"])).stdout;
    assert_eq!(one_core, cdx_bytes);
    // Recorded digests (what `digests` adds) give the same document without reading a layer.
    let with_digests = d.join("conf-digests.json");
    run(Command::new(bin()).arg("digests").arg(&conf).arg("-o").arg(&with_digests));
    assert_eq!(sbom(&with_digests, &[]), spdx_bytes);
}

#[test]
fn the_graph_beside_a_plain_conf_gives_the_same_documents_and_the_recorded_graph_changes_no_image_byte() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let c = build_closure(d);
    let plain = make_conf(d, &c, &[]);
    let recorded = make_conf(d, &c, &["--closure-graph"]);

    // Without the option the conf is what it always was; with it, one key more.
    let plain_v: Value = serde_json::from_slice(&std::fs::read(&plain).unwrap()).unwrap();
    let mut recorded_v: Value = serde_json::from_slice(&std::fs::read(&recorded).unwrap()).unwrap();
    assert!(plain_v.get("closure_graph").is_none());
    let graph = recorded_v.as_object_mut().unwrap().shift_remove("closure_graph").expect("closure_graph recorded");
    assert_eq!(recorded_v, plain_v);
    assert_eq!(graph.as_array().unwrap().len(), 3);

    // nixpkgs' own stream script and ours ignore the key: the same image.
    let ours_plain = run(Command::new(bin()).arg("stream").arg(&plain)).stdout;
    let ours_recorded = run(Command::new(bin()).arg("stream").arg(&recorded)).stdout;
    let reference = run(Command::new(common::shared().join("parity/reference-stream")).arg(&recorded)).stdout;
    assert!(ours_plain == ours_recorded && ours_recorded == reference, "closure_graph changed the image");
    let image = write(d, "image.tar", &ours_recorded);
    verify_image(image.to_str().unwrap());

    // The graph as Nix exported it, or as `nix path-info --json -r` (SRI
    // narHash) gives it, beside the plain conf: the same bytes.
    let path_info = write(d, "path-info.json", &run(nix("nix").args(["path-info", "--json", "-r", &c.app])).stdout);
    for format in ["spdx-json", "cyclonedx-json"] {
        let from_conf = sbom(&recorded, &["--format", format]);
        let attrs = c.attrs.to_str().unwrap();
        assert_eq!(sbom(&plain, &["--format", format, "--graph", attrs, "--graph-key", "graph"]), from_conf, "{format}");
        assert_eq!(sbom(&plain, &["--format", format, "--graph", path_info.to_str().unwrap()]), from_conf, "{format}");
    }
}

#[test]
fn provenance_names_the_manifests_copy_writes_and_every_input_by_its_digest() {
    require("skopeo");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let c = build_closure(d);
    let conf = make_conf(d, &c, &["--closure-graph"]);
    let drv = stdout_text(nix("nix-instantiate").arg(d.join("closure.nix")).args(["-A", "app"]));
    let rev = "0123456789abcdef0123456789abcdef01234567";
    let args = ["--compress", "gzip", "--compress", "zstd", "--compress", "none", "--derivation", &drv, "--nixpkgs-revision", rev];
    let statement = run(Command::new(bin()).arg("provenance").arg(&conf).args(args)).stdout;
    let file = write(d, "image.intoto.json", &statement);
    validate_provenance(&file);
    let doc: Value = serde_json::from_slice(&statement).unwrap();

    // Each subject is the manifest `copy` writes with that compression, as skopeo reads it.
    let subjects: Vec<&str> = doc["subject"].as_array().unwrap().iter().map(|s| s["digest"]["sha256"].as_str().unwrap()).collect();
    assert_eq!(subjects.len(), 3);
    for (compression, subject) in ["gzip", "zstd", "none"].iter().zip(&subjects) {
        let layout = d.join(format!("oci-{compression}"));
        let target = format!("oci:{}:v1", layout.display());
        run(Command::new(bin()).arg("copy").arg(&conf).arg(&target).args(["--compress", compression]));
        verify_image(&target);
        let raw = run(Command::new("skopeo").args(["inspect", "--raw"]).arg(&target)).stdout;
        assert_eq!(sha256_hex(&raw), *subject, "{compression}");
    }
    assert!(doc["subject"].as_array().unwrap().iter().all(|s| s["name"] == "sbom-test"));

    let build = &doc["predicate"]["buildDefinition"];
    assert_eq!(build["externalParameters"]["derivation"], drv.as_str());
    let deps: BTreeMap<String, &Value> =
        build["resolvedDependencies"].as_array().unwrap().iter().map(|r| (r["name"].as_str().unwrap().to_string(), r)).collect();
    assert_eq!(deps["nixpkgs"]["digest"]["gitCommit"], rev);
    for path in [&c.app, &c.lib, &c.data] {
        assert_eq!(deps[path.as_str()]["digest"]["sha256"], nix_facts(path).nar_sha256.as_str(), "{path}");
    }
    let image = d.join("image.tar");
    run(Command::new(bin()).arg("stream").arg(&conf).arg("-o").arg(&image));
    verify_image(image.to_str().unwrap());
    assert_eq!(doc["predicate"]["runDetails"]["byproducts"][0]["digest"]["sha256"], skopeo_image_id(&image).as_str());

    // Reproducible: one core and one job, or all of them.
    require("taskset");
    let again = run(Command::new("taskset").args(["-c", "0"]).arg(bin()).arg("provenance").arg(&conf).args(args).args(["-j", "1"])).stdout;
    assert_eq!(again, statement);
    // A digest given instead of computed.
    let given = format!("sha256:{}", subjects[0]);
    let by_digest = run(Command::new(bin()).arg("provenance").arg(&conf).args(["--subject-digest", &given])).stdout;
    let v: Value = serde_json::from_slice(&by_digest).unwrap();
    assert_eq!(v["subject"][0]["digest"]["sha256"], subjects[0]);
}

#[test]
fn base_image_layers_are_listed_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let c = build_closure(d);
    // The base: the bundled example image, as `stream` makes it.
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hello/conf.json");
    let base = d.join("base.tar");
    run(Command::new(bin()).arg("stream").arg(&example).arg("-o").arg(&base));
    verify_image(base.to_str().unwrap());
    let base_diff_ids = diff_ids(&base);

    let conf = make_conf(d, &c, &["--closure-graph", "--from-image", base.to_str().unwrap(), "--max-layers", "6"]);
    let image = d.join("image.tar");
    run(Command::new(bin()).arg("stream").arg(&conf).arg("-o").arg(&image));
    verify_image(image.to_str().unwrap());
    let all = diff_ids(&image);
    assert_eq!(all[..base_diff_ids.len()], base_diff_ids[..]);

    let spdx = sbom(&conf, &[]);
    validate_spdx(&write(d, "image.spdx.json", &spdx));
    let doc: Value = serde_json::from_slice(&spdx).unwrap();
    let layer_pkgs: Vec<&Value> =
        doc["packages"].as_array().unwrap().iter().filter(|p| p["SPDXID"].as_str().unwrap().starts_with("SPDXRef-Layer-")).collect();
    assert_eq!(layer_pkgs.iter().map(|p| p["checksums"][0]["checksumValue"].as_str().unwrap().to_string()).collect::<Vec<_>>(), all);
    for (i, p) in layer_pkgs.iter().enumerate() {
        let is_base = p["name"].as_str().unwrap().ends_with("base-image-layer");
        assert_eq!(is_base, i < base_diff_ids.len(), "{}", p["name"]);
    }
    assert_eq!(doc["packages"][0]["checksums"][0]["checksumValue"], skopeo_image_id(&image).as_str());
    // The layers' paths are counted from the first store layer on.
    let layers = layer_of(&conf);
    let packages = doc["packages"].as_array().unwrap();
    for rel in
        doc["relationships"].as_array().unwrap().iter().filter(|r| r["relationshipType"] == "CONTAINS" && r["spdxElementId"] != "SPDXRef-Image")
    {
        let pkg = packages.iter().find(|p| p["SPDXID"] == rel["relatedSpdxElement"]).unwrap();
        let path = pkg["packageFileName"].as_str().unwrap();
        assert_eq!(rel["spdxElementId"], format!("SPDXRef-Layer-{}", base_diff_ids.len() + layers[path] + 1), "{path}");
    }

    let cdx = sbom(&conf, &["--format", "cyclonedx-json"]);
    validate_cyclonedx(&write(d, "image.cdx.json", &cdx));
    let bom: Value = serde_json::from_slice(&cdx).unwrap();
    let kinds: Vec<&str> =
        bom["components"].as_array().unwrap().iter().filter(|c| c["type"] == "file").map(|c| c["properties"][0]["value"].as_str().unwrap()).collect();
    let mut want = vec!["base-image"; base_diff_ids.len()];
    want.extend(vec!["store"; all.len() - base_diff_ids.len() - 1]);
    want.push("customisation");
    assert_eq!(kinds, want);
}

fn fails(args: &[&str]) -> String {
    let out = Command::new(bin()).args(args).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{args:?} should fail: {}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stdout.is_empty(), "{args:?}: stdout carries data only");
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "one error line: {err}");
    assert!(err.starts_with("layered-image: error: ") && !err.contains("panicked"), "{err}");
    err
}

#[test]
fn bad_inputs_give_one_error_naming_the_culprit_and_no_document() {
    let case = common::Case::new();
    let conf = case.conf();
    let conf_s = conf.to_str().unwrap();
    let out = case.root().join("out.json");
    let out_s = out.to_str().unwrap();

    // No graph anywhere.
    let e = fails(&["sbom", conf_s, "-o", out_s]);
    assert!(e.contains(conf_s) && e.contains("closure_graph") && e.contains("--graph"), "{e}");
    assert!(!out.exists());

    // A narHash that is no hash.
    let mut v = case.conf_value();
    v["closure_graph"] = serde_json::json!([{"path": "nix/store/aaaa-pkg", "narHash": "sha256:not-a-hash", "references": []}]);
    case.write_conf(&v);
    let e = fails(&["sbom", conf_s, "-o", out_s]);
    assert!(e.contains("nix/store/aaaa-pkg") && e.contains("sha256:not-a-hash") && e.contains("closure_graph"), "{e}");
    assert!(!out.exists());

    // A graph file that is not one.
    let graph = case.root().join("graph.json");
    std::fs::write(&graph, "{\"graph\": 3}").unwrap();
    let e = fails(&["provenance", conf_s, "--graph", graph.to_str().unwrap(), "-o", out_s]);
    assert!(e.contains("graph.json"), "{e}");
    assert!(!out.exists());

    // A store path that is gone: named, and nothing written.
    v["closure_graph"] = serde_json::json!([{"path": "nix/store/aaaa-pkg", "references": []}]);
    v["store_layers"] = serde_json::json!([["nix/store/aaaa-pkg"], ["nix/store/bbbb-gone"]]);
    case.write_conf(&v);
    let e = fails(&["sbom", conf_s, "-o", out_s]);
    assert!(e.contains("nix/store/bbbb-gone"), "{e}");
    assert!(!out.exists());

    // A malformed subject digest.
    let mut v = case.conf_value();
    v["closure_graph"] = serde_json::json!([]);
    case.write_conf(&v);
    let e = fails(&["provenance", conf_s, "--subject-digest", "sha256:XYZ", "-o", out_s]);
    assert!(e.contains("--subject-digest") && e.contains("sha256:XYZ"), "{e}");
    assert!(!out.exists());
}

#[test]
fn a_path_missing_from_the_graph_is_listed_and_warned_about() {
    let case = common::Case::new();
    let mut v = case.conf_value();
    v["closure_graph"] = serde_json::json!([]);
    case.write_conf(&v);
    let out = Command::new(bin()).arg("sbom").arg(case.conf()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("warning") && err.contains("nix/store/aaaa-pkg"), "{err}");
    let file = write(case.root(), "doc.spdx.json", &out.stdout);
    validate_spdx(&file);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let pkg = doc["packages"].as_array().unwrap().iter().find(|p| p["packageFileName"] == "nix/store/aaaa-pkg").expect("listed");
    assert!(pkg.get("checksums").is_none() && pkg["comment"].as_str().unwrap().contains("no narHash"));
}

#[test]
fn what_nix_knows_of_the_direct_contents_is_included() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let c = build_closure(d);
    let conf = make_conf(d, &c, &["--closure-graph"]);
    let meta = write(
        d,
        "meta.json",
        &serde_json::to_vec(&serde_json::json!({
            &c.app: {"pname": "sbom-test-app", "version": "0.1-rc1", "license": "(MIT OR Apache-2.0) AND LicenseRef-test-unfree",
                     "homepage": "https://example.org/app", "description": "The test app"},
            &c.lib: {"license": "GPL-3.0-or-later"},
        }))
        .unwrap(),
    );
    let meta_s = meta.to_str().unwrap();
    let spdx = sbom(&conf, &["--meta", meta_s]);
    validate_spdx(&write(d, "meta.spdx.json", &spdx));
    let doc: Value = serde_json::from_slice(&spdx).unwrap();
    let pkg = |path: &str| doc["packages"].as_array().unwrap().iter().find(|p| p["packageFileName"] == path).unwrap().clone();
    let app = pkg(&c.app);
    assert_eq!((app["name"].as_str(), app["versionInfo"].as_str()), (Some("sbom-test-app"), Some("0.1-rc1")));
    assert_eq!(app["licenseDeclared"], "(MIT OR Apache-2.0) AND LicenseRef-test-unfree");
    assert_eq!(app["homepage"], "https://example.org/app");
    assert_eq!(pkg(&c.lib)["licenseDeclared"], "GPL-3.0-or-later");
    assert!(pkg(&c.data).get("licenseDeclared").is_none(), "nothing claimed for a path Nix said nothing of");
    assert_eq!(doc["hasExtractedLicensingInfos"][0]["licenseId"], "LicenseRef-test-unfree");

    let cdx = sbom(&conf, &["--format", "cyclonedx-json", "--meta", meta_s]);
    validate_cyclonedx(&write(d, "meta.cdx.json", &cdx));
    let bom: Value = serde_json::from_slice(&cdx).unwrap();
    let app = bom["components"].as_array().unwrap().iter().find(|x| x["bom-ref"] == c.app.as_str()).unwrap();
    assert_eq!(app["licenses"][0]["expression"], "(MIT OR Apache-2.0) AND LicenseRef-test-unfree");
    assert_eq!(app["externalReferences"][0]["url"], "https://example.org/app");
    assert_eq!(app["purl"], "pkg:nix/sbom-test-app@0.1-rc1");

    // A misspelt key is an error naming the file and the path, not a silent omission.
    std::fs::write(&meta, serde_json::to_vec(&serde_json::json!({&c.app: {"licence": "MIT"}})).unwrap()).unwrap();
    let e = fails(&["sbom", conf.to_str().unwrap(), "--meta", meta_s]);
    assert!(e.contains("meta.json") && e.contains(&c.app) && e.contains("licence"), "{e}");
}

/// Valid by image-spec's own manifest schema (`schema/image-manifest-schema.json`
/// and the definitions it refers to, in ../shared), checked by Python's
/// `jsonschema`; the schema's descriptor check makes a broken digest fail.
#[test]
fn referrer_manifests_are_valid_by_the_image_spec_schema() {
    use layered_image::digest::{BlobDigest, Digest};
    use layered_image::sbom::referrer::artifact_manifest;
    let subject = || BlobDigest { digest: Digest::from_hex(&"ab".repeat(32)).unwrap(), size: 1234 };
    let schema_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/oci-image-spec/schema");
    assert!(schema_dir.join("image-manifest-schema.json").exists(), "{} is missing: the tests need ../shared", schema_dir.display());
    let dir = tempfile::tempdir().unwrap();
    for (created, media_type) in [(None, "application/spdx+json"), (Some("2024-01-02T03:04:05Z"), "application/vnd.cyclonedx+json")] {
        let a = artifact_manifest(b"x", media_type, &subject(), created);
        let file = dir.path().join("m.json");
        std::fs::write(&file, &a.manifest).unwrap();
        let script = r#"
import json, sys, pathlib
from jsonschema import Draft4Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4
d = pathlib.Path(sys.argv[1])
reg = Registry()
for f in d.glob('*.json'):
    s = json.loads(f.read_text())
    r = Resource(contents=s, specification=DRAFT4)
    # The URLs image-spec's schema.go serves each file under.
    for prefix in ('https://opencontainers.org/schema/', 'https://opencontainers.org/schema/image/'):
        reg = reg.with_resource(prefix + f.name, r)
schema = json.loads((d / 'image-manifest-schema.json').read_text())
errors = list(Draft4Validator(schema, registry=reg).iter_errors(json.loads(pathlib.Path(sys.argv[2]).read_text())))
for e in errors: print(e.message)
sys.exit(1 if errors else 0)
"#;
        let out = std::process::Command::new("python3").arg("-c").arg(script).arg(&schema_dir).arg(&file).output().expect("python3 runs");
        assert!(out.status.success(), "schema: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    }
}
