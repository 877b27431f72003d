use std::path::PathBuf;

/// `stream CONF [-t NAME:TAG] [-o FILE]`
#[derive(clap::Args)]
pub struct Args {
    /// The conf.json (seed or newest nixpkgs schema).
    pub conf: PathBuf,
    /// Override the image's RepoTags entry.
    #[arg(short = 't', long = "repo-tag", alias = "repo_tag", value_name = "NAME:TAG")]
    pub repo_tag: Option<String>,
    /// Write the image to FILE (atomically) instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("stream: not implemented yet")
}
