//! Tar as the tools this project matches write it: Python's `tarfile`
//! (nixpkgs' stream script) and GNU tar (the customisation layer); and the
//! one reader, as tarfile and Go's archive/tar read it.

pub mod gnu;
pub mod python;
pub mod reader;
