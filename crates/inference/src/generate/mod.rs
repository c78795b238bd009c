//! Local generation (placeholder).
