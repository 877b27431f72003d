//! BaseImage::open on arbitrary bytes (plain or compressed docker-archive),
//! then every layer read to its end.
#![no_main]
use layered_image::base_image::BaseImage;
use libfuzzer_sys::fuzz_target;
use std::io::{Read, Write};

fuzz_target!(|data: &[u8]| {
    // /dev/shm when there is one: a temp file per input is the cost here.
    let shm = std::path::Path::new("/dev/shm");
    let mut f = if shm.is_dir() { tempfile::NamedTempFile::new_in(shm) } else { tempfile::NamedTempFile::new() }.expect("temp file");
    f.write_all(data).expect("write");
    let Ok(img) = BaseImage::open(f.path()) else { return };
    let mut buf = vec![0u8; 64 * 1024];
    for layer in &img.layers {
        let Ok(mut r) = img.layer_reader(layer) else { continue };
        while let Ok(n) = r.read(&mut buf) {
            if n == 0 {
                break;
            }
        }
    }
});
