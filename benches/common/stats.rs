//! Samples, summary statistics and the timing loops every workload uses.

use std::time::Instant;

/// A summary of many timed runs. All figures are in seconds per run.
#[derive(Clone, Debug)]
pub struct Stats {
    pub n: usize,
    pub median: f64,
    pub p10: f64,
    pub p90: f64,
}

impl Stats {
    /// Summarises `samples` (seconds). Panics on an empty slice.
    pub fn from_samples(samples: &[f64]) -> Stats {
        assert!(!samples.is_empty(), "no samples to summarise");
        let mut s = samples.to_vec();
        s.sort_by(f64::total_cmp);
        Stats { n: s.len(), median: quantile(&s, 0.5), p10: quantile(&s, 0.1), p90: quantile(&s, 0.9) }
    }

    /// The same summary with every figure multiplied by `factor` (per run to per item, say).
    pub fn scaled(&self, factor: f64) -> Stats {
        Stats { n: self.n, median: self.median * factor, p10: self.p10 * factor, p90: self.p90 * factor }
    }

    /// "412 µs (398–455)": the median, then p10–p90 in the same unit.
    pub fn spread(&self) -> String {
        let unit = TimeUnit::for_value(self.median);
        format!("{} ({}–{})", unit.show(self.median, true), unit.show(self.p10, false), unit.show(self.p90, false))
    }
}

/// Linear interpolation between closest ranks of a sorted slice (numpy's default).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// How many runs to time, after how many untimed ones.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    pub warmup: usize,
    pub iters: usize,
}

/// Times `iters` calls of `f` after `warmup` untimed ones.
pub fn measure(label: &str, plan: Plan, mut f: impl FnMut()) -> Stats {
    let mut all = measure_interleaved(&[label], plan, |_| f());
    all.remove(0)
}

/// Times several variants side by side: each round runs every variant once, in
/// turn, so that drift in the machine's speed affects them all alike. `f(i)` runs
/// variant `i` once. Returns one `Stats` per label.
pub fn measure_interleaved(labels: &[&str], plan: Plan, mut f: impl FnMut(usize)) -> Vec<Stats> {
    eprint!("  {:<44}", labels.join(" | "));
    for _ in 0..plan.warmup {
        for i in 0..labels.len() {
            f(i);
        }
    }
    let mut samples = vec![Vec::with_capacity(plan.iters); labels.len()];
    for _ in 0..plan.iters {
        for (i, s) in samples.iter_mut().enumerate() {
            let t = Instant::now();
            f(i);
            s.push(t.elapsed().as_secs_f64());
        }
    }
    let stats: Vec<Stats> = samples.iter().map(|s| Stats::from_samples(s)).collect();
    let medians: Vec<String> = stats.iter().map(|s| fmt_time(s.median)).collect();
    eprintln!(" median {} (n = {})", medians.join(" | "), plan.iters);
    stats
}

/// A duration for people: three significant figures, in s, ms, µs or ns.
pub fn fmt_time(secs: f64) -> String {
    TimeUnit::for_value(secs).show(secs, true)
}

#[derive(Clone, Copy)]
struct TimeUnit {
    scale: f64,
    name: &'static str,
}

impl TimeUnit {
    fn for_value(secs: f64) -> TimeUnit {
        let (scale, name) = match secs.abs() {
            s if s >= 1.0 => (1.0, "s"),
            s if s >= 1e-3 => (1e3, "ms"),
            s if s >= 1e-6 => (1e6, "µs"),
            _ => (1e9, "ns"),
        };
        TimeUnit { scale, name }
    }

    fn show(self, secs: f64, with_unit: bool) -> String {
        let v = fmt_sig3(secs * self.scale);
        if with_unit { format!("{v} {}", self.name) } else { v }
    }
}

/// A ratio for people: "4.72×", "23.4×", "150×".
pub fn fmt_ratio(r: f64) -> String {
    if r.is_finite() { format!("{}×", fmt_sig3(r)) } else { "—".into() }
}

/// A number for people: no decimals from 100, one from 10, else two ("150", "23.4", "4.72").
pub fn fmt_sig3(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// "200 000": digits in groups of three.
pub fn fmt_int(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

/// "1.23 GB/s (1.10–1.30)", "5.61 M ops/s (…)": `per_run` units per run at the
/// median, p90 and p10 times (the slowest runs give the lowest rate).
pub fn fmt_rate(s: &Stats, per_run: f64, unit: &str) -> String {
    let r = |secs: f64| per_run / secs;
    let (scale, prefix) = match r(s.median) {
        x if x >= 1e9 => (1e9, "G"),
        x if x >= 1e6 => (1e6, "M"),
        x if x >= 1e3 => (1e3, "k"),
        _ => (1.0, ""),
    };
    let sep = if unit == "B/s" || prefix.is_empty() { "" } else { " " };
    let num = |secs: f64| fmt_sig3(r(secs) / scale);
    format!("{} {prefix}{sep}{unit} ({}–{})", num(s.median), num(s.p90), num(s.p10))
}
