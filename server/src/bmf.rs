//! TEMPORARY stand-in until the leaf branch lands (replaced on merge).

use std::collections::BTreeMap;

/// How a report's output becomes results.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Adapter {
    #[default]
    Magic,
    Json,
}

impl Adapter {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Magic => "magic",
            Self::Json => "json",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "magic" => Some(Self::Magic),
            "json" => Some(Self::Json),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Metric {
    pub value: f64,
    pub lower_value: Option<f64>,
    pub upper_value: Option<f64>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct BenchmarkResult {
    pub benchmark: String,
    pub measures: Vec<(String, Metric)>,
}

pub fn parse_iteration(
    _adapter: Adapter,
    stdout: Option<&str>,
    _files: Option<&BTreeMap<String, String>>,
    _file_paths_given: bool,
) -> Result<Vec<BenchmarkResult>, String> {
    let v: serde_json::Value = serde_json::from_str(stdout.unwrap_or("")).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for (b, ms) in v.as_object().ok_or("not an object")? {
        let mut measures = Vec::new();
        for (m, x) in ms.as_object().ok_or("not an object")? {
            measures.push((m.clone(), Metric { value: x["value"].as_f64().ok_or("no value")?, lower_value: x["lower_value"].as_f64(), upper_value: x["upper_value"].as_f64() }));
        }
        out.push(BenchmarkResult { benchmark: b.clone(), measures });
    }
    Ok(out)
}

pub fn parse_results(adapter: Adapter, results: &[String]) -> Result<Vec<Vec<BenchmarkResult>>, String> {
    results.iter().map(|r| parse_iteration(adapter, Some(r), None, false)).collect()
}

pub fn measure_units(_measure: &str) -> &'static str {
    "units"
}
