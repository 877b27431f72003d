//! `verify` on arbitrary bytes (it must fail cleanly, never panic), and
//! on what `stream` builds on top of them as a base image: an image the
//! streamer accepts and writes must verify, or one of the two is wrong.
#![no_main]
use layered_image::image::base::BaseImage;
use layered_image::conf::Conf;
use layered_image::dest::docker_archive::stream;
use layered_image::image::Progress;
use layered_image::time::DateTime;
use layered_image::verify::{Target, verify};
use libfuzzer_sys::fuzz_target;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::AtomicBool;

struct Quiet;
impl Progress for Quiet {
    fn line(&self, _: &str) {}
}

fn tmp_root() -> &'static Path {
    // /dev/shm when there is one: two temp files per input are the cost here.
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let shm = Path::new("/dev/shm");
        let base = if shm.is_dir() { shm.to_path_buf() } else { std::env::temp_dir() };
        tempfile::Builder::new().prefix("li-fuzz-verify-").tempdir_in(base).expect("temp dir").keep()
    })
}

/// A conf with no store layers and an empty customisation layer.
fn conf() -> &'static Conf {
    static CONF: OnceLock<Conf> = OnceLock::new();
    CONF.get_or_init(|| {
        let dir = tmp_root().join("custom");
        std::fs::create_dir_all(&dir).unwrap();
        // An empty tar (two zero blocks padded to 10 KiB) and its sha256.
        std::fs::write(dir.join("layer.tar"), vec![0u8; 10240]).unwrap();
        std::fs::write(dir.join("checksum"), "84ff92691f909a05b224e1c56abb4864f01b4f8e3c854e4bb4c7baf1d3f6d652\n").unwrap();
        let text = format!(
            r#"{{"architecture": "amd64", "config": {{}}, "created": "1970-01-01T00:00:01Z", "uid": 0, "gid": 0,
               "uname": "root", "gname": "root", "store_dir": "/nix/store", "from_image": null,
               "store_layers": [], "customisation_layer": "{}", "repo_tag": "fuzz:1"}}"#,
            dir.display()
        );
        Conf::parse(text.as_bytes(), Path::new("/fuzz/conf.json"), DateTime::from_unix_micros(0)).expect("fuzz conf")
    })
}

fuzz_target!(|data: &[u8]| {
    let mut input = tempfile::NamedTempFile::new_in(tmp_root()).expect("temp file");
    input.write_all(data).expect("write");
    let _ = verify(&Target::Path(input.path().to_path_buf()));
    let Ok(base) = BaseImage::open(input.path()) else {
        return;
    };
    let mut out = tempfile::NamedTempFile::new_in(tmp_root()).expect("temp file");
    if stream(conf(), Some(&base), "fuzz:1", out.as_file_mut(), &Quiet, &AtomicBool::new(false)).is_err() {
        return;
    }
    let target = Target::DockerArchive { path: out.path().to_path_buf(), reference: None };
    if let Err(e) = verify(&target) {
        panic!("stream accepted this base image, but its output does not verify: {e}");
    }
});
