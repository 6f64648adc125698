//! `assert_stats!`: checks the fields of a `cachepool::Stats` that a test names, by name.

/// Asserts that each named field of a [`cachepool::Stats`] has the value given, and says
/// nothing of the others:
///
/// ```ignore
/// assert_stats!(pool.stats(), new: 2, closed: 2, idle: 0);
/// assert_stats!(stats, new: 3, idle: 3; "{order:?}"); // a message after `;`
/// ```
///
/// On failure it lists every named field with its expected and actual value, marking those
/// that differ, then prints the whole `Stats`.
macro_rules! assert_stats {
    ($stats:expr, $($field:ident: $expected:expr),+ $(,)? $(; $($message:tt)+)?) => {{
        use ::std::fmt::Write as _;
        let stats: ::cachepool::Stats = $stats;
        let mut fields = ::std::string::String::new();
        let mut differ = false;
        $(
            let (actual, expected) = (stats.$field, $expected);
            let mark = if actual == expected { " " } else { "≠" };
            differ |= actual != expected;
            let _ = write!(
                fields,
                "\n  {mark} {}: expected {expected:?}, actual {actual:?}",
                stringify!($field),
            );
        )+
        if differ {
            let context = ::std::string::String::new() $(+ &format!($($message)+) + ": ")?;
            panic!("{context}stats differ:{fields}\n  in {stats}");
        }
    }};
}

pub(crate) use assert_stats;

/// Stats with `new`, `get` and `closed` set (`Stats` is `non_exhaustive`: no struct literal).
fn sample() -> cachepool::Stats {
    let mut stats = cachepool::Stats::default();
    (stats.new, stats.get, stats.closed) = (2, 9, 2);
    stats
}

#[test]
fn assert_stats_checks_only_the_named_fields() {
    let stats = sample();
    assert_stats!(stats, new: 2, closed: 2, idle: 0);
}

#[test]
#[should_panic(
    expected = "stats differ:\n    new: expected 2, actual 2\n  ≠ closed: expected 3, \
                           actual 2\n  in new=2 get=9 put=0 closed=2"
)]
fn assert_stats_names_each_field_and_prints_the_whole_stats() {
    let stats = sample();
    assert_stats!(stats, new: 2, closed: 3);
}

#[test]
#[should_panic(expected = "thread 7: stats differ:\n  ≠ idle: expected 1, actual 0")]
fn assert_stats_puts_the_message_first() {
    let thread = 7;
    assert_stats!(cachepool::Stats::default(), idle: 1; "thread {thread}");
}
