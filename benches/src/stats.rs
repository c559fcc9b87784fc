//! Small statistics shared by the benchmarks.

/// The `p`th percentile of sorted values (nearest rank); 0 when empty.
pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// A distribution summarised: percentiles, max and mean.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Dist {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

impl Dist {
    pub fn of(mut values: Vec<f64>) -> Dist {
        values.sort_by(|a, b| a.total_cmp(b));
        Dist {
            p50: percentile(&values, 50.0),
            p95: percentile(&values, 95.0),
            p99: percentile(&values, 99.0),
            p999: percentile(&values, 99.9),
            max: values.last().copied().unwrap_or(0.0),
            mean: values.iter().sum::<f64>() / values.len().max(1) as f64,
        }
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "p50": self.p50, "p95": self.p95, "p99": self.p99, "p99_9": self.p999,
            "max": self.max, "mean": self.mean,
        })
    }
}
