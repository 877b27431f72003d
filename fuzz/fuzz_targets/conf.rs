//! Conf::parse on arbitrary bytes: an error or a conf, never a panic.
#![no_main]
use layered_image::conf::Conf;
use layered_image::time::DateTime;
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let _ = Conf::parse(data, Path::new("/fuzz/conf.json"), DateTime::from_unix_micros(1_700_000_000_000_000));
});
