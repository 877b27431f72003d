use crate::args::BlobArgs;
use crate::args::ReportArgs;
use anyhow::Context;
use layered_image::blob::cache::BlobCache;
use layered_image::conf::Conf;
use layered_image::dest::Name;
use layered_image::explain::{self, Decision, Explained};
use layered_image::plan::confgen::Layering;
use layered_image::plan::graph::read_raw;
use layered_image::plan::layering::pipeline::parse_pipeline;
use layered_image::source::ImageSource;
use layered_image::time::DateTime;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The exit status when a `--fail-over` budget is exceeded (errors exit 1).
pub const OVER_BUDGET: i32 = 3;

/// How the image's closure was layered: what `conf` was given.
#[derive(clap::Args)]
pub struct LayeringArgs {
    /// The closure graph the conf was made from (as for `conf --graph`): with it, each store path
    /// says which layering rule placed it, and the biggest paths what pulls them in.
    #[arg(long, value_name = "FILE")]
    pub graph: Option<PathBuf>,
    /// Key of the graph list inside --graph.
    #[arg(long, value_name = "KEY", requires = "graph")]
    pub graph_key: Option<String>,
    /// The layering the conf was made with (default: auto-layer, else popularity, whichever gives the conf's layers).
    #[arg(long, value_enum, requires = "graph")]
    pub layering: Option<crate::conf::Strategy>,
    /// Pipeline file for --layering pipeline.
    #[arg(long, value_name = "FILE", requires = "graph")]
    pub pipeline: Option<PathBuf>,
    /// maxLayers the conf was made with.
    #[arg(long, default_value_t = 100, allow_negative_numbers = true, value_name = "N")]
    pub max_layers: i64,
    /// A store path the conf left out (as `conf --exclude`; repeatable).
    #[arg(long, value_name = "PATH")]
    pub exclude: Vec<String>,
    /// An explicit layer file the conf was made with (as `conf --layer`; repeatable).
    #[arg(long = "layer", value_name = "FILE")]
    pub layers: Vec<PathBuf>,
}

/// `explain CONF|IMAGE [--json] [--html FILE] [--graph FILE ...] [--fail-over BYTES]`
#[derive(clap::Args)]
#[command(after_help = "Examples:\n  \
    layered-image explain conf.json\n  \
    layered-image explain oci:./out:latest\n  \
    layered-image explain conf.json --graph closure-graph.json --json | jq '.layers[].paths[] | [.path, .why]'\n  \
    layered-image explain conf.json --html image.html --fail-over 500000000")]
pub struct Args {
    /// The image's conf.json, or an image as `copy` reads them: oci:DIR[:REF],
    /// oci-archive:PATH[:REF], docker-archive:PATH.
    #[arg(value_name = "CONF|IMAGE")]
    pub conf: PathBuf,
    #[command(flatten)]
    pub report: ReportArgs,
    /// Exit with status 3 when the image's layers (uncompressed) exceed BYTES.
    #[arg(long, value_name = "BYTES")]
    pub fail_over: Option<u64>,
    #[command(flatten)]
    pub layering: LayeringArgs,
    #[command(flatten)]
    pub blobs: BlobArgs,
}

fn read_pipeline(file: &Path) -> anyhow::Result<(Layering, String)> {
    let text = layered_image::input::read_limited(file, layered_image::input::SMALL_JSON_LIMIT)
        .with_context(|| format!("cannot read pipeline file {}", file.display()))?;
    let value: serde_json::Value = serde_json::from_slice(&text).with_context(|| format!("pipeline file {}: invalid JSON", file.display()))?;
    let list = match &value {
        serde_json::Value::Object(o) => {
            o.get("pipeline").cloned().with_context(|| format!("pipeline file {}: no \"pipeline\" key", file.display()))?
        }
        _ => value,
    };
    let steps = parse_pipeline(&list).with_context(|| format!("pipeline file {}", file.display()))?;
    Ok((Layering::Pipeline(steps), list.to_string()))
}

/// The layering decision to explain, if a graph is given.
pub fn decision(args: &LayeringArgs, conf: &Conf) -> anyhow::Result<Option<Decision>> {
    let Some(graph) = &args.graph else { return Ok(None) };
    let (layering, pipeline_text) = match args.layering {
        None => (None, String::new()),
        Some(crate::conf::Strategy::Auto) => (Some(Layering::Auto), String::new()),
        Some(crate::conf::Strategy::Popularity) => (Some(Layering::Popularity), String::new()),
        Some(crate::conf::Strategy::Pipeline) => {
            let file = args.pipeline.as_ref().context("--layering pipeline needs --pipeline FILE")?;
            let (l, text) = read_pipeline(file)?;
            (Some(l), text)
        }
    };
    Ok(Some(Decision {
        graph_file: graph.display().to_string(),
        raw: read_raw(graph, args.graph_key.as_deref())?,
        layering,
        pipeline_text,
        max_layers: args.max_layers,
        exclude: args.exclude.clone(),
        explicit: layered_image::plan::layer_spec::flatten(&args.layers)?,
        from_image: conf.from_image.clone(),
    }))
}

pub fn options(blobs: &BlobArgs, decision: Option<Decision>) -> anyhow::Result<explain::Options> {
    Ok(explain::Options { compression: blobs.compression()?, jobs: blobs.jobs(), blob_cache: BlobCache::from_env(), decision })
}

/// What was explained: a conf, or an image read as it is.
pub enum Loaded {
    Conf(Box<Conf>),
    Image(Box<ImageSource>),
}

impl Loaded {
    pub fn input(&self) -> explain::diff::Input<'_> {
        match self {
            Loaded::Conf(c) => explain::diff::Input::Conf(c),
            Loaded::Image(i) => explain::diff::Input::Image(i),
        }
    }
}

/// The image `arg` names, if it names one by a transport (as `copy`'s
/// sources); `None` for a conf's path.
fn open_image(arg: &Path) -> anyhow::Result<Option<ImageSource>> {
    let text = arg.to_string_lossy();
    if !["oci:", "oci-archive:", "docker-archive:", "docker://", "docker-daemon:"].iter().any(|t| text.starts_with(t)) {
        return Ok(None);
    }
    let name: Name = text.parse()?;
    match ImageSource::open(&name)? {
        Some(image) => Ok(Some(image)),
        None => anyhow::bail!("{text}: explain and diff read images from oci:, oci-archive: and docker-archive: (and confs)"),
    }
}

pub fn load(
    arg: &Path,
    layering: Option<&LayeringArgs>,
    blobs: &BlobArgs,
    cancel: &std::sync::atomic::AtomicBool,
) -> anyhow::Result<(Loaded, Explained)> {
    if let Some(image) = open_image(arg)? {
        if layering.is_some_and(|l| l.graph.is_some()) {
            anyhow::bail!("--graph explains how a conf was layered; {} is an image, whose layering nothing records", arg.display());
        }
        let opts = options(blobs, None)?;
        let explained = explain::image::explain_image(&image, &opts, cancel).with_context(|| format!("explaining {}", arg.display()))?;
        return Ok((Loaded::Image(Box::new(image)), explained));
    }
    let conf_value = Conf::load(arg, DateTime::now_utc())?;
    let decision = match layering {
        Some(l) => decision(l, &conf_value)?,
        None => None,
    };
    let opts = options(blobs, decision)?;
    let explained = explain::explain_conf(&conf_value, &opts, cancel).with_context(|| format!("explaining {}", arg.display()))?;
    Ok((Loaded::Conf(Box::new(conf_value)), explained))
}

/// Prints `text` to stdout, writes `html` atomically, and exits with
/// [`OVER_BUDGET`] if `over` names an exceeded budget.
pub fn finish(text: &[u8], html: Option<(&Path, String)>, over: Option<String>) -> anyhow::Result<()> {
    if let Some((file, page)) = html {
        layered_image::output::write_whole(file, page.as_bytes())?;
    }
    let mut out = std::io::stdout().lock();
    out.write_all(text).and_then(|()| out.flush()).context("writing to stdout")?;
    if let Some(msg) = over {
        layered_image::diag::line(&format!("layered-image: {msg}"));
        std::process::exit(OVER_BUDGET);
    }
    Ok(())
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let cancel = crate::progress::cancel_on_signals()?;
    let (_, e) = load(&args.conf, Some(&args.layering), &args.blobs, &cancel)?;
    let text = if args.report.json {
        let mut v = Vec::new();
        explain::write_json(&e, &mut v)?;
        v
    } else {
        explain::text(&e).into_bytes()
    };
    let over = args.fail_over.filter(|&max| e.size() > max).map(|max| format!("the image's layers take {} bytes, over --fail-over {max}", e.size()));
    finish(&text, args.report.html.as_deref().map(|f| (f, explain::html::explain_page(&e))), over)
}
