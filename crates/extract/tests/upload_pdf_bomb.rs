//! The PDF decompression bomb of issue 31 as an upload: refused (422, German message) and the
//! process's memory stays flat. Its own test binary, so that the memory measured is this
//! test's alone.

use lotse_extract::upload::{ExtractError, extract};

fn status_kb(key: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn the_one_gib_zero_bomb_upload_is_refused_and_memory_stays_flat() {
    // about 1 MB of PDF: one page whose content stream is 1 GiB of zeros (FlateDecode)
    let bomb = lotse_extract::pdf_limits::testing::zero_bomb(1 << 30);
    assert!(bomb.len() < 2_000_000, "{} bytes", bomb.len());
    let before = status_kb("VmRSS:").expect("VmRSS") * 1024;
    // reset the peak (VmHWM) to the current size where the kernel allows it
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let started = std::time::Instant::now();
    let res = extract(&bomb, "haushaltsplan.pdf", "/portal/dokumente/1");
    let took = started.elapsed();
    let after = status_kb(if reset { "VmHWM:" } else { "VmRSS:" }).expect("status") * 1024;
    let growth = after.saturating_sub(before);
    eprintln!(
        "upload of {} bytes: {res:?} in {took:?}; peak growth {} MB",
        bomb.len(),
        growth / 1_000_000
    );
    let err = res.unwrap_err();
    assert!(matches!(err, ExtractError::PdfTooLarge(_)), "{err:?}");
    assert!(!err.is_type_error(), "a 422");
    assert!(
        err.message_de().contains("unplausibel großen Datenmenge"),
        "{}",
        err.message_de()
    );
    assert!(
        growth < 200_000_000,
        "peak memory grew by {} MB",
        growth / 1_000_000
    );
}
