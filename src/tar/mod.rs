//! Tar as the tools this project matches write it: Python's `tarfile`
//! (nixpkgs' stream script) and GNU tar (the customisation layer).

pub mod gnu;
pub mod python;
