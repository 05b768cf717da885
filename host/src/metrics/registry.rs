//! The instruments: counters and fixed-bucket histograms on relaxed atomics, and the Prometheus
//! text exposition format (version 0.0.4) they are rendered in.
//!
//! Why not a registry crate: `prometheus-client`'s histogram takes a write lock per observation
//! and its families a read lock and a hash of the label set per lookup, and the OTel SDK sorts and
//! hashes attributes on every record; here every series is a handle resolved once, an observation
//! is three relaxed atomic adds, and the same values feed the OTLP export (`otlp.rs`), which
//! needs to read them back (neither crate exposes its histograms' buckets). The text format is
//! checked by `promtool check metrics` and by a real Prometheus scrape in the tests.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// A monotonic counter.
#[derive(Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.0.fetch_add(1, Relaxed);
    }

    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

/// Bucket upper bounds for request latencies: the OpenTelemetry semantic conventions' advice for
/// `http.server.request.duration`.
pub const HTTP_SECONDS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// Bucket upper bounds for host calls and instance starts, which take micro- to milliseconds.
pub const FAST_SECONDS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// The OpenTelemetry SDK's default explicit buckets, which Spin's histograms get through
/// `tracing-opentelemetry` (crates/telemetry/src/metrics.rs); the host's `spin_*` histograms use
/// them too so that a query over both runtimes sees the same buckets.
pub const OTEL_DEFAULT: &[f64] = &[
    0.0, 5.0, 10.0, 25.0, 50.0, 75.0, 100.0, 250.0, 500.0, 750.0, 1000.0, 2500.0, 5000.0, 7500.0,
    10000.0,
];

/// A histogram with fixed bucket bounds. Buckets are stored per bucket (not cumulative) so an
/// observation touches one of them; rendering accumulates.
pub struct Histogram {
    bounds: &'static [f64],
    /// One per bound, and one more for observations above the last (`+Inf`).
    buckets: Box<[AtomicU64]>,
    count: AtomicU64,
    /// The sum as `f64` bits, updated by compare-and-swap (uncontended in practice: series are
    /// per component and label set).
    sum: AtomicU64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum: AtomicU64::new(0f64.to_bits()),
        }
    }

    pub fn observe(&self, v: f64) {
        let i = self.bounds.partition_point(|b| *b < v);
        self.buckets[i].fetch_add(1, Relaxed);
        let _ = self
            .sum
            .fetch_update(Relaxed, Relaxed, |s| Some((f64::from_bits(s) + v).to_bits()));
        self.count.fetch_add(1, Relaxed);
    }

    pub fn observe_duration(&self, d: std::time::Duration) {
        self.observe(d.as_secs_f64());
    }

    pub fn count(&self) -> u64 {
        self.count.load(Relaxed)
    }

    pub fn sum(&self) -> f64 {
        f64::from_bits(self.sum.load(Relaxed))
    }

    pub fn bounds(&self) -> &'static [f64] {
        self.bounds
    }

    /// Per-bucket counts (not cumulative), the last one for `+Inf`, as OTLP wants them.
    pub fn bucket_counts(&self) -> Vec<u64> {
        self.buckets.iter().map(|b| b.load(Relaxed)).collect()
    }
}

/// Label names and values of one series, in order.
pub type Labels<'a> = &'a [(&'a str, &'a str)];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// One metric: its Prometheus name (what the Collector's exporter derives from the OTLP name
/// and unit: `_total` for counters, `_seconds`/`_bytes` for the unit), its OTLP name and unit.
pub struct Family {
    pub prom: &'static str,
    pub otel: &'static str,
    pub kind: Kind,
    pub unit: &'static str,
    pub help: &'static str,
}

/// What walks the series: the Prometheus text writer and the OTLP request builder.
pub trait Visitor {
    fn family(&mut self, f: &'static Family);
    /// A counter's or a gauge's value.
    fn value(&mut self, labels: Labels<'_>, v: f64);
    fn histogram(&mut self, labels: Labels<'_>, h: &Histogram);
}

/// Writes Prometheus text, one metric family at a time.
pub struct TextWriter {
    out: String,
    current: &'static str,
}

impl Visitor for TextWriter {
    fn family(&mut self, f: &'static Family) {
        let kind = match f.kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        };
        self.current = f.prom;
        TextWriter::family(self, f.prom, kind, f.help);
    }

    fn value(&mut self, labels: Labels<'_>, v: f64) {
        let name = self.current;
        self.sample(name, labels, v);
    }

    fn histogram(&mut self, labels: Labels<'_>, h: &Histogram) {
        let name = self.current;
        TextWriter::histogram(self, name, labels, h);
    }
}

impl TextWriter {
    pub fn new() -> Self {
        Self {
            out: String::with_capacity(16 * 1024),
            current: "",
        }
    }

    pub fn finish(self) -> String {
        self.out
    }

    /// `# HELP` and `# TYPE` of a family; call once before its samples.
    pub fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    pub fn sample(&mut self, name: &str, labels: Labels<'_>, value: f64) {
        self.out.push_str(name);
        self.labels(labels, None);
        self.out.push(' ');
        self.value(value);
        self.out.push('\n');
    }

    /// The `_bucket`, `_sum` and `_count` lines of one histogram series.
    pub fn histogram(&mut self, name: &str, labels: Labels<'_>, h: &Histogram) {
        let counts = h.bucket_counts();
        let mut cumulative = 0u64;
        let bucket = format!("{name}_bucket");
        let mut le = String::new();
        for (i, n) in counts.iter().enumerate() {
            cumulative += n;
            le.clear();
            match h.bounds.get(i) {
                Some(b) => {
                    let _ = write!(le, "{}", PromFloat(*b));
                }
                None => le.push_str("+Inf"),
            }
            self.out.push_str(&bucket);
            self.labels(labels, Some(&le));
            let _ = writeln!(self.out, " {cumulative}");
        }
        // Read after the buckets: a concurrent observation may land between the reads, and a
        // count at least the `+Inf` bucket keeps the series consistent for Prometheus.
        let count = h.count().max(cumulative);
        self.sample(&format!("{name}_sum"), labels, h.sum());
        self.sample(&format!("{name}_count"), labels, count as f64);
    }

    fn labels(&mut self, labels: Labels<'_>, le: Option<&str>) {
        if labels.is_empty() && le.is_none() {
            return;
        }
        self.out.push('{');
        let mut first = true;
        for (k, v) in labels.iter().copied().chain(le.map(|le| ("le", le))) {
            if !first {
                self.out.push(',');
            }
            first = false;
            self.out.push_str(k);
            self.out.push_str("=\"");
            for c in v.chars() {
                match c {
                    '\\' => self.out.push_str("\\\\"),
                    '"' => self.out.push_str("\\\""),
                    '\n' => self.out.push_str("\\n"),
                    c => self.out.push(c),
                }
            }
            self.out.push('"');
        }
        self.out.push('}');
    }

    fn value(&mut self, v: f64) {
        let _ = write!(self.out, "{}", PromFloat(v));
    }
}

impl Default for TextWriter {
    fn default() -> Self {
        Self::new()
    }
}

fn escape_help(help: &str) -> String {
    help.replace('\\', "\\\\").replace('\n', "\\n")
}

/// A float as Prometheus writes it: integers without a fraction, `+Inf`, `NaN`.
struct PromFloat(f64);

impl std::fmt::Display for PromFloat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = self.0;
        if v.is_nan() {
            f.write_str("NaN")
        } else if v.is_infinite() {
            f.write_str(if v > 0.0 { "+Inf" } else { "-Inf" })
        } else if v.fract() == 0.0 && v.abs() < 1e15 {
            write!(f, "{}", v as i64)
        } else {
            write!(f, "{v}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_counts_each_observation_in_the_first_bucket_that_holds_it() {
        let h = Histogram::new(&[0.1, 1.0]);
        h.observe(0.05);
        h.observe(0.1); // `le` is inclusive
        h.observe(0.5);
        h.observe(7.0);
        assert_eq!(h.bucket_counts(), vec![2, 1, 1]);
        assert_eq!(h.count(), 4);
        assert!((h.sum() - 7.65).abs() < 1e-9);
    }

    #[test]
    fn histograms_render_cumulative_buckets_with_escaped_labels() {
        let h = Histogram::new(&[0.5, 1.0]);
        h.observe(0.25);
        h.observe(2.0);
        let mut w = TextWriter::new();
        w.family("x_seconds", "histogram", "a test");
        w.histogram("x_seconds", &[("route", "/a\"b\\c")], &h);
        let text = w.finish();
        assert!(text.contains("x_seconds_bucket{route=\"/a\\\"b\\\\c\",le=\"0.5\"} 1\n"), "{text}");
        assert!(text.contains("le=\"1\"} 1\n"), "{text}");
        assert!(text.contains("le=\"+Inf\"} 2\n"), "{text}");
        assert!(text.contains("x_seconds_sum{route=\"/a\\\"b\\\\c\"} 2.25\n"), "{text}");
        assert!(text.contains("x_seconds_count{route=\"/a\\\"b\\\\c\"} 2\n"), "{text}");
    }
}
