//! How much work the stress and property tests do: less under Miri, more in a soak.

/// `default` normally, `miri` under Miri, and `default` times the soak factor with
/// `CACHEPOOL_SOAK=1` (or `CACHEPOOL_SOAK=<factor>`). Scale one dimension of a test only
/// (operations, not also rounds), so a soak does `factor` times the work.
pub fn scale(default: usize, miri: usize) -> usize {
    if cfg!(miri) {
        return miri;
    }
    default * soak_factor()
}

/// The soak multiplier: 1 unless `CACHEPOOL_SOAK` is set (`1` or `true` means 50).
pub fn soak_factor() -> usize {
    match std::env::var("CACHEPOOL_SOAK") {
        Ok(v) if v == "1" || v.eq_ignore_ascii_case("true") => 50,
        Ok(v) => v.parse().unwrap_or(1).max(1),
        Err(_) => 1,
    }
}
