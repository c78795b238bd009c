//! `lotse admin backup` and `lotse admin restore`: one consistent copy of what a crawl cannot
//! bring back (the portal database with the uploaded originals, the approved and corrected
//! rewrites, the citizens' ratings), verified before anything is replaced.
//!
//! A backup is written into a hidden directory beside its destination and renamed into place
//! only when complete, with a `MANIFEST.json` of sizes and SHA-256 digests. A restore copies
//! the files into a staging directory inside the data directory, checks digests and SQLite
//! integrity there, moves the databases it replaces aside (never deletes them) and only then
//! renames the new ones into place; on a failure the old files are put back.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The SQLite files of a data directory that a backup carries (the index is derived: rebuilt
/// from the originals and the crawl). `portal.sqlite` holds everything since issue 33.4; the
/// rewrite and rating files of older versions are carried while they are not imported yet
/// (the next start imports them, also after a restore).
pub const FILES: &[&str] = &["portal.sqlite", "simplify.sqlite", "feedback.sqlite"];

const MANIFEST: &str = "MANIFEST.json";
const FORMAT: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub lotse_version: String,
    pub created_at: i64,
    pub files: Vec<FileEntry>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct FileEntry {
    pub name: String,
    pub bytes: u64,
    pub sha256: String,
}

fn digest(path: &Path) -> Result<(u64, String)> {
    let mut f = std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut h = Sha256::new();
    let n = std::io::copy(&mut f, &mut h).with_context(|| format!("cannot read {}", path.display()))?;
    Ok((n, hex::encode(h.finalize())))
}

fn is_empty_dir(p: &Path) -> Result<bool> {
    Ok(std::fs::read_dir(p).with_context(|| format!("cannot read {}", p.display()))?.next().is_none())
}

/// Write a backup of `data` into `dest` (missing or empty). `portal_elsewhere`: the portal
/// database is PostgreSQL (backed up with `pg_dump`), so only the SQLite files are copied.
pub fn backup(data: &Path, portal_elsewhere: bool, dest: &Path) -> Result<Manifest> {
    if dest.exists() && !(dest.is_dir() && is_empty_dir(dest)?) {
        bail!("{} exists and is not an empty directory", dest.display());
    }
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = dest.file_name().context("the backup destination needs a directory name")?;
    std::fs::create_dir_all(&parent).with_context(|| format!("cannot create {}", parent.display()))?;
    let staging = parent.join(format!(".{}.partial-{}", name.to_string_lossy(), std::process::id()));
    if staging.exists() {
        std::fs::remove_dir_all(&staging).with_context(|| format!("cannot remove {}", staging.display()))?;
    }
    std::fs::create_dir(&staging).with_context(|| format!("cannot create {}", staging.display()))?;
    let written = (|| -> Result<Manifest> {
        let mut files = Vec::new();
        for f in FILES {
            let src = data.join(f);
            if *f == "portal.sqlite" && portal_elsewhere {
                continue;
            }
            if !src.is_file() {
                if *f == "portal.sqlite" {
                    bail!("no portal database at {} (is --data right?)", src.display());
                }
                continue;
            }
            let to = staging.join(f);
            lotse_portal::store::snapshot_sqlite(&src, &to).with_context(|| format!("cannot copy {}", src.display()))?;
            lotse_portal::store::check_sqlite(&to).with_context(|| format!("the copy of {f} is not sound"))?;
            let (bytes, sha256) = digest(&to)?;
            files.push(FileEntry { name: f.to_string(), bytes, sha256 });
        }
        let m = Manifest {
            format: FORMAT,
            lotse_version: env!("CARGO_PKG_VERSION").to_string(),
            created_at: lotse_portal::store::now(),
            files,
        };
        std::fs::write(staging.join(MANIFEST), serde_json::to_vec_pretty(&m)?).context("cannot write the manifest")?;
        Ok(m)
    })();
    let m = match written {
        Ok(m) => m,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    if dest.exists() {
        std::fs::remove_dir(dest).with_context(|| format!("cannot replace the empty {}", dest.display()))?;
    }
    std::fs::rename(&staging, dest).with_context(|| format!("cannot move the backup to {}", dest.display()))?;
    Ok(m)
}

/// What a restore did.
pub struct Restored {
    pub restored: Vec<String>,
    /// Where the databases that were replaced now are.
    pub moved_aside: Option<PathBuf>,
}

/// A database file with the files SQLite keeps beside it.
fn with_sidecars(p: &Path) -> Vec<PathBuf> {
    let s = p.as_os_str().to_string_lossy().to_string();
    vec![p.to_path_buf(), PathBuf::from(format!("{s}-wal")), PathBuf::from(format!("{s}-shm")), PathBuf::from(format!("{s}-journal"))]
}

/// Restore the backup in `src` into `data`. Refuses when `data` holds any of the databases
/// (or a running server's write-ahead log) unless `force`.
pub fn restore(src: &Path, data: &Path, force: bool) -> Result<Restored> {
    let raw = std::fs::read(src.join(MANIFEST)).with_context(|| format!("{} is not a Lotse backup (no {MANIFEST})", src.display()))?;
    let m: Manifest = serde_json::from_slice(&raw).with_context(|| format!("{MANIFEST} in {} is damaged", src.display()))?;
    if m.format != FORMAT {
        bail!("backup format {} is not supported (this lotse reads format {FORMAT})", m.format);
    }
    if m.files.is_empty() {
        bail!("the backup in {} holds no database", src.display());
    }
    for f in &m.files {
        if !FILES.contains(&f.name.as_str()) {
            bail!("the manifest names an unknown file {:?}", f.name);
        }
    }
    // 1. refuse to replace data in use or present, unless forced
    let present: Vec<&str> = FILES.iter().copied().filter(|f| data.join(f).exists()).collect();
    let in_use = FILES.iter().any(|f| with_sidecars(&data.join(f))[1..3].iter().any(|p| p.exists()));
    // (--force never overrides this: a running server would go on writing into the moved files)
    if in_use {
        bail!(
            "{} is in use (a database has its write-ahead log open: is `lotse serve` running?); stop the server first (after a crash, start and stop it once)",
            data.display()
        );
    }
    if !force {
        if !present.is_empty() {
            bail!("{} already holds {}; pass --force to replace them (they are moved aside, not deleted)", data.display(), present.join(", "));
        }
    }
    std::fs::create_dir_all(data).with_context(|| format!("cannot create {}", data.display()))?;
    // 2. copy into staging and verify there
    let staging = data.join(format!(".restore-{}", std::process::id()));
    if staging.exists() {
        std::fs::remove_dir_all(&staging).with_context(|| format!("cannot remove {}", staging.display()))?;
    }
    std::fs::create_dir(&staging).with_context(|| format!("cannot create {}", staging.display()))?;
    let verified = (|| -> Result<()> {
        for f in &m.files {
            let to = staging.join(&f.name);
            std::fs::copy(src.join(&f.name), &to).with_context(|| format!("cannot copy {} from the backup", f.name))?;
            let (bytes, sha256) = digest(&to)?;
            if bytes != f.bytes || sha256 != f.sha256 {
                bail!("{} in the backup does not match its manifest (damaged or changed)", f.name);
            }
            lotse_portal::store::check_sqlite(&to).with_context(|| format!("{} in the backup is not sound", f.name))?;
        }
        Ok(())
    })();
    if let Err(e) = verified {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e);
    }
    // 3. move the old databases aside, then the new ones in; put the old ones back on failure
    let aside = data.join(format!("before-restore-{}", lotse_portal::store::now()));
    let mut moved: Vec<(PathBuf, PathBuf)> = Vec::new();
    let mut placed: Vec<PathBuf> = Vec::new();
    let swapped = (|| -> Result<()> {
        for f in FILES {
            for p in with_sidecars(&data.join(f)) {
                if p.exists() {
                    std::fs::create_dir_all(&aside).with_context(|| format!("cannot create {}", aside.display()))?;
                    let to = aside.join(p.file_name().context("file name")?);
                    std::fs::rename(&p, &to).with_context(|| format!("cannot move {} aside", p.display()))?;
                    moved.push((p, to));
                }
            }
        }
        for f in &m.files {
            let to = data.join(&f.name);
            std::fs::rename(staging.join(&f.name), &to).with_context(|| format!("cannot put {} in place", f.name))?;
            placed.push(to);
        }
        Ok(())
    })();
    if let Err(e) = swapped {
        for p in &placed {
            let _ = std::fs::remove_file(p);
        }
        for (from, to) in moved.iter().rev() {
            let _ = std::fs::rename(to, from);
        }
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e.context("restore undone: the data directory is as it was"));
    }
    let _ = std::fs::remove_dir_all(&staging);
    Ok(Restored {
        restored: m.files.iter().map(|f| f.name.clone()).collect(),
        moved_aside: (!moved.is_empty()).then_some(aside),
    })
}
