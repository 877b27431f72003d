//! BaseImage::open on arbitrary bytes (plain or compressed docker-archive),
//! then every layer read to its end.
#![no_main]
use layered_image::base_image::BaseImage;
use libfuzzer_sys::fuzz_target;
use std::io::{Read, Write};

fuzz_target!(|data: &[u8]| {
    let mut f = tempfile::NamedTempFile::new().expect("temp file");
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
