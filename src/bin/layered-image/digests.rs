use anyhow::Context;
use layered_image::conf::{Conf, DIGESTS_KEY};
use layered_image::time::DateTime;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

/// `digests CONF [-o FILE]`
#[derive(clap::Args)]
pub struct Args {
    /// The conf.json whose store layers to hash.
    pub conf: PathBuf,
    /// Write the new conf to FILE (atomically) instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Adds `store_layer_digests` to a conf, so that `stream` reads each layer
/// once. The rest of the conf is kept as it is, key order included.
pub fn run(args: Args) -> anyhow::Result<()> {
    let text = std::fs::read(&args.conf).with_context(|| format!("cannot read {}", args.conf.display()))?;
    let mut raw: serde_json::Value = serde_json::from_slice(&text).with_context(|| format!("{} is not valid JSON", args.conf.display()))?;
    let conf = Conf::load(&args.conf, DateTime::now_utc())?;
    // Digests depend on the files' mtime; "now" would make them stale at once.
    let mtime = raw.get("mtime").or_else(|| raw.get("created"));
    if mtime.and_then(|v| v.as_str()) == Some("now") {
        anyhow::bail!("{}: file mtimes are \"now\", so layer digests cannot be computed ahead of streaming", args.conf.display());
    }
    let cancel = AtomicBool::new(false);
    let digests = layered_image::stream::store_layer_digests(&conf, &cancel)?;
    let list: Vec<serde_json::Value> = digests.iter().map(|d| serde_json::json!({"sha256": d.sha256, "size": d.size})).collect();
    raw.as_object_mut().context("the conf must be a JSON object")?.insert(DIGESTS_KEY.into(), list.into());
    let mut bytes = serde_json::to_vec_pretty(&raw)?;
    bytes.push(b'\n');
    match &args.output {
        None => std::io::stdout().write_all(&bytes).context("cannot write to stdout")?,
        Some(path) => {
            let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).map_or_else(|| PathBuf::from("."), PathBuf::from);
            let mut tmp = tempfile::NamedTempFile::new_in(&dir).with_context(|| format!("cannot write in {}", dir.display()))?;
            tmp.write_all(&bytes).with_context(|| format!("cannot write {}", path.display()))?;
            tmp.persist(path).with_context(|| format!("cannot create {}", path.display()))?;
        }
    }
    Ok(())
}
