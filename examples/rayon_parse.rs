//! Parses 200,000 access-log records with rayon, three times: building a parser for every
//! record, with rayon's own `map_init` (a parser per piece of work rayon splits off), and
//! checking a parser out of a `CachePool`. All runs must agree; the example prints the times,
//! how many parsers each built, and the pool's statistics.
//!
//! ```text
//! cargo run --release --example rayon_parse
//! RAYON_NUM_THREADS=8 cargo run --release --example rayon_parse
//! ```
//!
//! The parser stands for any object that is costly to build and cheap to use: a compiled
//! schema, a regex set, a codec with its tables. Here it owns a 64 KiB key index that `new`
//! fills in, and a scratch row it reuses from line to line. With the pool, each rayon thread
//! builds one parser and reuses it for every record it parses: the per-thread lists hand a
//! thread back the parser it used last, so no two threads ever contend for one.
//!
//! `map_init` looks like the same thing, but its init runs once per split of the work, not once
//! per thread: over a long job, rayon splits the input many times, so it builds many parsers.
//!
//! This parser is cheap as such objects go (`new` mostly fills 64 KiB), so the gain is a few
//! times; the costlier `new` is next to one use, the larger it grows.

use std::error::Error;
use std::fmt;
use std::ops::Range;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cachepool::CachePool;
use rayon::prelude::*;

/// Records in the generated corpus.
const RECORDS: usize = 200_000;

/// Hosts named in the corpus: `web-00` to `web-15`.
const HOSTS: usize = 16;

fn main() -> Result<(), Box<dyn Error>> {
    let started = Instant::now();
    let corpus = generate_corpus(RECORDS, 0x5eed);
    let corpus_bytes: usize = corpus.iter().map(String::len).sum();
    println!(
        "corpus: {RECORDS} records, {:.1} MiB, generated in {}",
        corpus_bytes as f64 / (1024.0 * 1024.0),
        millis(started.elapsed()),
    );
    println!("sample: {}", corpus[0]);

    // The baseline runs first, so that it, not the pool, pays for starting rayon's threads.
    let started = Instant::now();
    let fresh = summarize_with_fresh_parsers(&corpus)?;
    let fresh_time = started.elapsed();

    // rayon's `map_init`: its init runs for every piece of work rayon splits off.
    let inits = AtomicUsize::new(0);
    let started = Instant::now();
    let with_map_init = summarize_with_map_init(&corpus, &inits)?;
    let map_init_time = started.elapsed();

    // Parsers are created on demand: one per rayon thread that parses a record.
    let pool = CachePool::new(LogParser::new);
    let started = Instant::now();
    let pooled = summarize_with_pool(&corpus, &pool)?;
    let pooled_time = started.elapsed();

    assert_eq!(with_map_init, fresh, "every variant parses the same corpus");
    assert_eq!(pooled, fresh, "every variant parses the same corpus");

    println!();
    println!("{pooled}");
    println!();
    println!(
        "{} rayon threads; time, and parsers built:",
        rayon::current_num_threads()
    );
    println!(
        "one parser per record: {:>10}   {RECORDS:>7} parsers",
        millis(fresh_time)
    );
    println!(
        "rayon map_init:        {:>10}   {:>7} parsers ({:.1}x faster than one per record)",
        millis(map_init_time),
        inits.load(Ordering::Relaxed),
        fresh_time.as_secs_f64() / map_init_time.as_secs_f64(),
    );
    let stats = pool.stats();
    println!(
        "pooled parsers:        {:>10}   {:>7} parsers ({:.1}x faster than one per record)",
        millis(pooled_time),
        stats.new,
        fresh_time.as_secs_f64() / pooled_time.as_secs_f64(),
    );
    println!("pool stats: {stats}");
    Ok(())
}

/// Parses every record with rayon's `map_init`, counting the parsers its init builds.
fn summarize_with_map_init(corpus: &[String], inits: &AtomicUsize) -> Result<Summary, ParseError> {
    corpus
        .par_iter()
        .map_init(
            || {
                inits.fetch_add(1, Ordering::Relaxed);
                LogParser::new()
            },
            |parser, line| parser.parse(line).map(Summary::from),
        )
        .try_reduce(Summary::default, |a, b| Ok(a.merge(&b)))
}

/// Parses every record with a parser checked out of `pool`.
fn summarize_with_pool(
    corpus: &[String],
    pool: &CachePool<LogParser>,
) -> Result<Summary, ParseError> {
    corpus
        .par_iter()
        .map(|line| {
            // The guard gives the parser back to this thread's list when it drops, at the end
            // of the closure; the next record this thread parses gets the same parser.
            let mut parser = pool.checkout();
            parser.parse(line).map(Summary::from)
        })
        .try_reduce(Summary::default, |a, b| Ok(a.merge(&b)))
}

/// The baseline: builds (and drops) a parser for every record.
fn summarize_with_fresh_parsers(corpus: &[String]) -> Result<Summary, ParseError> {
    corpus
        .par_iter()
        .map(|line| LogParser::new().parse(line).map(Summary::from))
        .try_reduce(Summary::default, |a, b| Ok(a.merge(&b)))
}

/// The fields of a record; each appears once per line, in any order, as `name=value`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    Ts,
    Host,
    Method,
    Status,
    Bytes,
    LatencyMs,
}

impl Field {
    const ALL: [Field; 6] = [
        Field::Ts,
        Field::Host,
        Field::Method,
        Field::Status,
        Field::Bytes,
        Field::LatencyMs,
    ];

    fn name(self) -> &'static str {
        match self {
            Field::Ts => "ts",
            Field::Host => "host",
            Field::Method => "method",
            Field::Status => "status",
            Field::Bytes => "bytes",
            Field::LatencyMs => "latency_ms",
        }
    }
}

/// An entry of the key index that belongs to no field.
const NO_FIELD: u8 = u8::MAX;

/// Where a key sits in the key index: its first and last bytes, which tell this schema's keys
/// apart. `new` checks that; `parse` still compares the whole key.
fn key_slot(key: &[u8]) -> Option<usize> {
    let (&first, &last) = (key.first()?, key.last()?);
    Some(usize::from(first) << 8 | usize::from(last))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Method {
    Get,
    Post,
    Put,
    Delete,
}

/// One parsed line.
#[derive(Clone, Copy, Debug)]
struct Record {
    ts: u64,
    host: usize,
    method: Method,
    status: u16,
    bytes: u64,
    latency_ms: u64,
}

/// A key=value log-line parser: costlier to build than to run once, and reusable as is.
struct LogParser {
    /// The field of every possible key slot (see [`key_slot`]), or [`NO_FIELD`]: 64 KiB.
    key_index: Box<[u8]>,
    /// Scratch, by field: where its value lies in the line being parsed. Kept between lines
    /// so that parsing one allocates nothing.
    values: Vec<Option<Range<usize>>>,
}

impl LogParser {
    /// Builds the key index: the part of the parser worth keeping between records.
    fn new() -> Self {
        let mut key_index = vec![NO_FIELD; 1 << 16].into_boxed_slice();
        for field in Field::ALL {
            let slot = key_slot(field.name().as_bytes()).expect("field names are not empty");
            assert_eq!(key_index[slot], NO_FIELD, "two fields share a key slot");
            key_index[slot] = field as u8;
        }
        LogParser {
            key_index,
            values: vec![None; Field::ALL.len()],
        }
    }

    fn field(&self, key: &str) -> Option<Field> {
        let field = *Field::ALL.get(usize::from(self.key_index[key_slot(key.as_bytes())?]))?;
        (field.name() == key).then_some(field)
    }

    /// Parses one line: first finds every field's value, then converts them.
    fn parse(&mut self, line: &str) -> Result<Record, ParseError> {
        self.values.fill(None);
        // Where the current pair starts in `line`; pairs are separated by single spaces.
        let mut pair_start = 0;
        for pair in line.split(' ') {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| ParseError::NotKeyValue(pair.to_owned()))?;
            let field = self
                .field(key)
                .ok_or_else(|| ParseError::UnknownKey(key.to_owned()))?;
            let value_start = pair_start + key.len() + 1;
            if self.values[field as usize]
                .replace(value_start..value_start + value.len())
                .is_some()
            {
                return Err(ParseError::Repeated(field.name()));
            }
            pair_start += pair.len() + 1;
        }
        let value = |field: Field| match &self.values[field as usize] {
            Some(range) => Ok(&line[range.clone()]),
            None => Err(ParseError::MissingField(field.name())),
        };
        let host = value(Field::Host)?;
        let method = value(Field::Method)?;
        Ok(Record {
            ts: parse_number(Field::Ts, value(Field::Ts)?)?,
            host: host
                .strip_prefix("web-")
                .and_then(|n| n.parse().ok())
                .filter(|&n| n < HOSTS)
                .ok_or_else(|| ParseError::bad_value(Field::Host, host))?,
            method: match method {
                "GET" => Method::Get,
                "POST" => Method::Post,
                "PUT" => Method::Put,
                "DELETE" => Method::Delete,
                _ => return Err(ParseError::bad_value(Field::Method, method)),
            },
            status: parse_number(Field::Status, value(Field::Status)?)?,
            bytes: parse_number(Field::Bytes, value(Field::Bytes)?)?,
            latency_ms: parse_number(Field::LatencyMs, value(Field::LatencyMs)?)?,
        })
    }
}

fn parse_number<N: FromStr>(field: Field, text: &str) -> Result<N, ParseError> {
    text.parse().map_err(|_| ParseError::bad_value(field, text))
}

#[derive(Debug)]
enum ParseError {
    NotKeyValue(String),
    UnknownKey(String),
    Repeated(&'static str),
    MissingField(&'static str),
    BadValue { field: &'static str, value: String },
}

impl ParseError {
    fn bad_value(field: Field, value: &str) -> Self {
        ParseError::BadValue {
            field: field.name(),
            value: value.to_owned(),
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::NotKeyValue(token) => write!(f, "`{token}` is not key=value"),
            ParseError::UnknownKey(key) => write!(f, "unknown key `{key}`"),
            ParseError::Repeated(field) => write!(f, "{field} given twice"),
            ParseError::MissingField(field) => write!(f, "no {field} field"),
            ParseError::BadValue { field, value } => write!(f, "bad {field} `{value}`"),
        }
    }
}

impl Error for ParseError {}

/// What the corpus says, added up; merging is associative, so rayon may split it any way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Summary {
    requests: u64,
    writes: u64,
    client_errors: u64,
    server_errors: u64,
    bytes: u64,
    latency_ms: u64,
    slowest_ms: u64,
    first_ts: u64,
    last_ts: u64,
    per_host: [u64; HOSTS],
}

impl Default for Summary {
    fn default() -> Self {
        Summary {
            requests: 0,
            writes: 0,
            client_errors: 0,
            server_errors: 0,
            bytes: 0,
            latency_ms: 0,
            slowest_ms: 0,
            first_ts: u64::MAX,
            last_ts: 0,
            per_host: [0; HOSTS],
        }
    }
}

impl From<Record> for Summary {
    fn from(r: Record) -> Self {
        let mut per_host = [0; HOSTS];
        per_host[r.host] = 1;
        Summary {
            requests: 1,
            writes: u64::from(r.method != Method::Get),
            client_errors: u64::from((400..500).contains(&r.status)),
            server_errors: u64::from(r.status >= 500),
            bytes: r.bytes,
            latency_ms: r.latency_ms,
            slowest_ms: r.latency_ms,
            first_ts: r.ts,
            last_ts: r.ts,
            per_host,
        }
    }
}

impl Summary {
    fn merge(mut self, other: &Summary) -> Summary {
        self.requests += other.requests;
        self.writes += other.writes;
        self.client_errors += other.client_errors;
        self.server_errors += other.server_errors;
        self.bytes += other.bytes;
        self.latency_ms += other.latency_ms;
        self.slowest_ms = self.slowest_ms.max(other.slowest_ms);
        self.first_ts = self.first_ts.min(other.first_ts);
        self.last_ts = self.last_ts.max(other.last_ts);
        for (mine, theirs) in self.per_host.iter_mut().zip(&other.per_host) {
            *mine += theirs;
        }
        self
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (busiest, busiest_requests) = self
            .per_host
            .iter()
            .enumerate()
            .max_by_key(|&(_, &n)| n)
            .unwrap_or((0, &0));
        writeln!(
            f,
            "requests: {} over {} s ({} writes)",
            self.requests,
            self.last_ts.saturating_sub(self.first_ts),
            self.writes
        )?;
        writeln!(
            f,
            "errors:   {} client, {} server",
            self.client_errors, self.server_errors
        )?;
        writeln!(
            f,
            "traffic:  {:.1} MiB, mean latency {:.1} ms, slowest {} ms",
            self.bytes as f64 / (1024.0 * 1024.0),
            self.latency_ms as f64 / self.requests.max(1) as f64,
            self.slowest_ms
        )?;
        write!(
            f,
            "busiest:  web-{busiest:02} ({busiest_requests} requests)"
        )
    }
}

/// A 64-bit linear congruential generator (Knuth's MMIX constants): deterministic, so every
/// run parses the same corpus.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        // The high bits of an LCG are the random-looking ones.
        self.0 >> 33
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// `count` log lines with their fields in a random order.
fn generate_corpus(count: usize, seed: u64) -> Vec<String> {
    const METHODS: [&str; 4] = ["GET", "POST", "PUT", "DELETE"];
    const STATUSES: [u16; 8] = [200, 200, 200, 200, 201, 304, 404, 503];
    let mut rng = Lcg(seed);
    let mut ts = 1_700_000_000;
    (0..count)
        .map(|_| {
            ts += rng.below(3);
            let mut fields = [
                format!("ts={ts}"),
                format!("host=web-{:02}", rng.below(HOSTS as u64)),
                // Mostly reads.
                format!(
                    "method={}",
                    METHODS[(rng.below(16) as usize).saturating_sub(12)]
                ),
                format!("status={}", STATUSES[rng.below(8) as usize]),
                format!("bytes={}", rng.below(64 * 1024)),
                format!("latency_ms={}", 1 + rng.below(250)),
            ];
            fields.rotate_left(rng.below(6) as usize);
            fields.join(" ")
        })
        .collect()
}

fn millis(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}
