//! The Bencher Metric Format (BMF), read as Bencher v0.6.12's `json` and
//! `magic` adapters read it (`lib/bencher_adapter`), with its measures as
//! Bencher creates them (`lib/bencher_json/src/project/measure/built_in.rs`).
//!
//! A BMF document is one JSON object: benchmark → measure → metric.
//!
//! ```json
//! {"tests::bench_a": {"latency": {"value": 3247.0, "lower_value": 1044.0, "upper_value": 5450.0}}}
//! ```
//!
//! Bencher's rules, each checked here:
//! - the document is one JSON object (whitespace around it only);
//! - a benchmark's key is 1 to 1024 bytes (a UUID, a slug or a name);
//! - a measure's key is 1 to 64 bytes with no leading or trailing
//!   whitespace (a UUID, a slug or a name);
//! - a metric is an object whose `value` is a number; `lower_value` and
//!   `upper_value` are numbers, `null` or absent; other fields are ignored;
//! - an empty object (no benchmarks, or a benchmark with no measures) is
//!   valid and has no results.
//!
//! `magic` tries each of Bencher's adapters in turn, BMF first; here only
//! BMF is read, so `magic` takes exactly what `json` takes and its error
//! says so.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::validate::Invalid;

mod measures;
pub use measures::*;

/// Longest benchmark name, in bytes (Bencher's `BenchmarkName`).
pub const BENCHMARK_MAX_BYTES: usize = 1024;
/// Longest measure name, in bytes (Bencher's `ResourceName`).
pub const MEASURE_MAX_BYTES: usize = 64;

/// How a report's results are read: the two of Bencher's adapters that read
/// the Bencher Metric Format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Adapter {
    /// Bencher's default: it tries every adapter; here, BMF only.
    #[default]
    Magic,
    /// The Bencher Metric Format.
    Json,
}

impl Adapter {
    /// The adapter's wire name (`magic` or `json`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Magic => "magic",
            Self::Json => "json",
        }
    }

    /// Parses `json` or `magic`; any other value (one of Bencher's other
    /// adapters too) is refused, naming it.
    pub fn parse(field: &str, value: &str) -> Result<Self, Invalid> {
        match value {
            "magic" => Ok(Self::Magic),
            "json" => Ok(Self::Json),
            other => Err(Invalid {
                field: field.to_owned(),
                rule: format!(
                    "the adapter `{}` is not supported here: only `json` and `magic` \
                     (the Bencher Metric Format) are",
                    short(other)
                ),
            }),
        }
    }
}

/// One measure's value for one benchmark (Bencher's `JsonNewMetric`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Metric {
    /// The value.
    pub value: f64,
    /// The lower bound, if given.
    pub lower_value: Option<f64>,
    /// The upper bound, if given.
    pub upper_value: Option<f64>,
}

/// One benchmark's metrics, by measure.
#[derive(Clone, Debug, PartialEq)]
pub struct BenchmarkResult {
    /// The benchmark's key as written in the BMF document.
    pub benchmark: String,
    /// Each measure's key as written, with its metric, sorted by key.
    pub measures: Vec<(String, Metric)>,
}

/// The results of one iteration, sorted by benchmark then measure.
type Results = BTreeMap<String, BTreeMap<String, Metric>>;

/// Parses one iteration of a job: the files named by `file_paths` (each a
/// BMF document; together one iteration) when the agent returned any, else
/// its stdout. `file_paths_given` only makes the error more precise when no
/// file came back (Bencher's agent skips a file it cannot read).
///
/// An iteration with no output at all (stdout absent or empty, and no
/// files) has no results, as in Bencher (whose agent sends no stdout when
/// the benchmark printed nothing). Two files holding the same benchmark and
/// measure are refused: Bencher keeps each file as an iteration of its own;
/// call this once a file to do the same.
pub fn parse_iteration(
    adapter: Adapter,
    stdout: Option<&str>,
    files: Option<&BTreeMap<String, String>>,
    file_paths_given: bool,
) -> Result<Vec<BenchmarkResult>, String> {
    if let Some(files) = files.filter(|files| !files.is_empty()) {
        let mut merged = Results::new();
        let mut from: BTreeMap<(String, String), &str> = BTreeMap::new();
        for (path, contents) in files {
            let what = format!("the file `{}`", short(path));
            for (benchmark, measures) in parse_document(adapter, contents, &what)? {
                let entry = merged.entry(benchmark.clone()).or_default();
                for (measure, metric) in measures {
                    let key = (benchmark.clone(), measure.clone());
                    if let Some(first) = from.insert(key, path) {
                        return Err(format!(
                            "the files `{}` and `{}` both hold the benchmark `{}` with the \
                             measure `{}`: give each benchmark's measure in one file",
                            short(first),
                            short(path),
                            short(&benchmark),
                            short(&measure)
                        ));
                    }
                    entry.insert(measure, metric);
                }
            }
        }
        return Ok(into_vec(merged));
    }
    match stdout.filter(|s| !s.is_empty()) {
        Some(stdout) => {
            let what = if file_paths_given {
                "stdout (none of the files named by `file_paths` came back, so stdout was \
                 read instead)"
            } else {
                "stdout"
            };
            parse_document(adapter, stdout, what).map(into_vec)
        }
        None => Ok(Vec::new()),
    }
}

/// Most values (a benchmark's measure in one iteration) in one report
/// (**beyond** Bencher, which takes any): a report is kept and read whole.
pub const METRICS_MAX: usize = 10_000;

/// Whether `results` hold at most [`METRICS_MAX`] values, or how many they
/// hold.
pub fn check_size(results: &[Vec<BenchmarkResult>]) -> Result<(), String> {
    let metrics: usize = results
        .iter()
        .flatten()
        .map(|result| result.measures.len())
        .sum();
    if metrics > METRICS_MAX {
        Err(format!(
            "{metrics} values (a benchmark's measure in an iteration), more than the \
             {METRICS_MAX} a report holds"
        ))
    } else {
        Ok(())
    }
}

/// Parses the `results` of a run without a job (Bencher's
/// `JsonNewRun.results`): one BMF document an iteration.
pub fn parse_results(
    adapter: Adapter,
    results: &[String],
) -> Result<Vec<Vec<BenchmarkResult>>, String> {
    results
        .iter()
        .enumerate()
        .map(|(i, result)| parse_document(adapter, result, &format!("results[{i}]")).map(into_vec))
        .collect()
}

fn into_vec(results: Results) -> Vec<BenchmarkResult> {
    results
        .into_iter()
        .map(|(benchmark, measures)| BenchmarkResult {
            benchmark,
            measures: measures.into_iter().collect(),
        })
        .collect()
}

/// Parses one BMF document; `what` names it in the error ("stdout", "the
/// file `…`", "results[0]").
fn parse_document(adapter: Adapter, text: &str, what: &str) -> Result<Results, String> {
    let not_bmf = |why: String| {
        let magic = match adapter {
            Adapter::Magic => {
                " (the `magic` adapter here reads only the Bencher Metric Format, not \
                 Bencher's other adapters' outputs)"
            }
            Adapter::Json => "",
        };
        format!("{what} is not Bencher Metric Format JSON{magic}: {why}")
    };
    let document: Value = serde_json::from_str(text).map_err(|e| not_bmf(e.to_string()))?;
    let Value::Object(benchmarks) = document else {
        return Err(not_bmf(format!(
            "it must be one JSON object of benchmarks, got {}",
            kind(&document)
        )));
    };
    let mut results = Results::new();
    for (benchmark, measures) in benchmarks {
        check_benchmark(&benchmark).map_err(&not_bmf)?;
        let Value::Object(measures) = measures else {
            return Err(not_bmf(format!(
                "the benchmark `{}` must be an object of measures, got {}",
                short(&benchmark),
                kind(&measures)
            )));
        };
        let mut metrics = BTreeMap::new();
        for (measure, metric) in measures {
            let at = |why: String| {
                not_bmf(format!(
                    "the benchmark `{}`, measure `{}`: {why}",
                    short(&benchmark),
                    short(&measure)
                ))
            };
            check_measure(&measure).map_err(at)?;
            let metric = parse_metric(&metric).map_err(at)?;
            metrics.insert(measure, metric);
        }
        results.insert(benchmark, metrics);
    }
    Ok(results)
}

/// A benchmark's key: 1 to 1024 bytes (any UUID, slug or name is).
fn check_benchmark(key: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > BENCHMARK_MAX_BYTES {
        return Err(format!(
            "a benchmark's name must be 1 to {BENCHMARK_MAX_BYTES} bytes, got {} bytes{}",
            key.len(),
            if key.is_empty() {
                String::new()
            } else {
                format!(" (`{}`)", short(key))
            }
        ));
    }
    Ok(())
}

/// A measure's key: a UUID, or 1 to 64 bytes with no leading or trailing
/// whitespace (every UUID form also is).
fn check_measure(key: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > MEASURE_MAX_BYTES {
        return Err(format!(
            "a measure's name must be 1 to {MEASURE_MAX_BYTES} bytes, got {} bytes",
            key.len()
        ));
    }
    if key.trim() != key {
        return Err("a measure's name must not start or end with whitespace".to_owned());
    }
    Ok(())
}

fn parse_metric(metric: &Value) -> Result<Metric, String> {
    let Value::Object(fields) = metric else {
        return Err(format!(
            "the metric must be an object with a numeric `value`, got {}",
            kind(metric)
        ));
    };
    let number = |name: &str, required: bool| -> Result<Option<f64>, String> {
        match fields.get(name) {
            None | Some(Value::Null) if !required => Ok(None),
            None => Err(format!("`{name}` is missing: it must be a number")),
            Some(Value::Number(n)) => Ok(n.as_f64()),
            Some(other) => Err(format!(
                "`{name}` must be a number{}, got {}",
                if required { "" } else { " or null" },
                kind(other)
            )),
        }
    };
    Ok(Metric {
        value: number("value", true)?.unwrap_or_default(),
        lower_value: number("lower_value", false)?,
        upper_value: number("upper_value", false)?,
    })
}

/// What a JSON value is, for a message.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `text` escaped and cut to 80 characters, to quote in a message.
fn short(text: &str) -> String {
    let mut out: String = text.chars().take(80).collect::<String>();
    if out.len() < text.len() {
        out.push('…');
    }
    out.escape_debug().to_string()
}

#[cfg(test)]
mod tests;
