//! Unit tests of the Bencher Metric Format's rules.
use super::*;
use uuid::Uuid;

fn metric(value: f64, lower_value: Option<f64>, upper_value: Option<f64>) -> Metric {
    Metric {
        value,
        lower_value,
        upper_value,
    }
}

fn one(text: &str) -> Result<Vec<BenchmarkResult>, String> {
    parse_iteration(Adapter::Json, Some(text), None, false)
}

fn err(text: &str) -> String {
    one(text).expect_err(text)
}

#[test]
fn adapters() {
    assert_eq!(Adapter::default(), Adapter::Magic);
    for adapter in [Adapter::Magic, Adapter::Json] {
        assert_eq!(Adapter::parse("adapter", adapter.as_str()), Ok(adapter));
    }
    let e = Adapter::parse("settings.adapter", "rust_bench").unwrap_err();
    assert_eq!(e.field, "settings.adapter");
    assert!(
        e.rule.contains("`rust_bench`") && e.rule.contains("only `json` and `magic`"),
        "{e}"
    );
    assert!(Adapter::parse("adapter", "JSON").is_err());
}

#[test]
fn a_document_sorted_by_benchmark_then_measure() {
    let results = one(r#"
        {"b": {"throughput": {"value": 2, "lower_value": null, "extra": "ignored"},
               "latency": {"value": 1.5, "lower_value": 1, "upper_value": 2.5}},
         "a": {"latency": {"value": -3e2}}}
        "#)
    .unwrap();
    assert_eq!(
        results,
        vec![
            BenchmarkResult {
                benchmark: "a".into(),
                measures: vec![("latency".into(), metric(-300.0, None, None))],
            },
            BenchmarkResult {
                benchmark: "b".into(),
                measures: vec![
                    ("latency".into(), metric(1.5, Some(1.0), Some(2.5))),
                    ("throughput".into(), metric(2.0, None, None)),
                ],
            },
        ]
    );
}

#[test]
fn empty_documents_have_no_results() {
    assert_eq!(one("{}").unwrap(), vec![]);
    assert_eq!(
        one(r#"{"b": {}}"#).unwrap(),
        vec![BenchmarkResult {
            benchmark: "b".into(),
            measures: vec![]
        }]
    );
}

#[test]
fn a_repeated_key_keeps_its_last_value() {
    let results = one(r#"{"b": {"m": {"value": 1}, "m": {"value": 2}}}"#).unwrap();
    assert_eq!(
        results[0].measures,
        vec![("m".into(), metric(2.0, None, None))]
    );
}

#[test]
fn only_one_json_object() {
    for (text, says) in [
        ("[]", "one JSON object of benchmarks, got an array"),
        ("1", "got a number"),
        ("\"x\"", "got a string"),
        ("null", "got null"),
        ("{} {}", "trailing characters"),
        ("{\"b\": {}} done", "trailing characters"),
        ("bench 1 ns/iter", "expected value"),
        ("", "EOF"),
    ] {
        let e = parse_results(Adapter::Json, &[text.to_owned()]).unwrap_err();
        assert!(
            e.starts_with("results[0] is not Bencher Metric Format JSON: ") && e.contains(says),
            "{text}: {e}"
        );
    }
}

#[test]
fn magic_says_it_reads_only_bmf() {
    let e = parse_iteration(
        Adapter::Magic,
        Some("test a ... bench: 1 ns/iter"),
        None,
        false,
    )
    .unwrap_err();
    assert!(
        e.contains("`magic` adapter here reads only the Bencher Metric Format"),
        "{e}"
    );
    assert!(!err("x").contains("magic"));
}

#[test]
fn benchmark_names() {
    let ok = |name: &str| one(&format!(r#"{{"{name}": {{}}}}"#)).is_ok();
    assert!(ok("a"));
    assert!(ok(" tests::bench a "));
    assert!(ok(&"é".repeat(512)));
    assert!(!ok(""));
    assert!(!ok(&"a".repeat(1025)));
    let e = err(&format!(r#"{{"{}": {{}}}}"#, "a".repeat(1025)));
    assert!(
        e.contains("a benchmark's name must be 1 to 1024 bytes, got 1025 bytes"),
        "{e}"
    );
    let e = err(r#"{"b": [1]}"#);
    assert!(
        e.contains("the benchmark `b` must be an object of measures, got an array"),
        "{e}"
    );
}

#[test]
fn measure_names() {
    let ok = |name: &str| one(&format!(r#"{{"b": {{"{name}": {{"value": 1}}}}}}"#)).is_ok();
    assert!(ok("latency"));
    assert!(ok("Latency (ns)"));
    assert!(ok(&"m".repeat(64)));
    assert!(ok(&Uuid::new_v4().to_string()));
    for bad in [
        "",
        " latency",
        "latency ",
        "\\t",
        &"m".repeat(65),
        &"é".repeat(33),
    ] {
        assert!(!ok(bad), "{bad:?}");
    }
    let e = err(r#"{"b": {" m": {"value": 1}}}"#);
    assert!(
        e.contains("the benchmark `b`, measure ` m`: a measure's name must not start or end"),
        "{e}"
    );
}

#[test]
fn metrics() {
    for (metric, says) in [
        (
            "1",
            "the metric must be an object with a numeric `value`, got a number",
        ),
        ("{}", "`value` is missing: it must be a number"),
        (r#"{"value": null}"#, "`value` must be a number, got null"),
        (
            r#"{"value": "1"}"#,
            "`value` must be a number, got a string",
        ),
        (
            r#"{"value": 1, "lower_value": "0"}"#,
            "`lower_value` must be a number or null",
        ),
        (
            r#"{"value": 1, "upper_value": true}"#,
            "`upper_value` must be a number or null, got a boolean",
        ),
    ] {
        let e = err(&format!(r#"{{"b": {{"m": {metric}}}}}"#));
        assert!(
            e.contains("the benchmark `b`, measure `m`: ") && e.contains(says),
            "{metric}: {e}"
        );
    }
    // Out of f64's range: serde_json refuses it, as Bencher's parse does.
    assert!(err(r#"{"b": {"m": {"value": 1e400}}}"#).contains("out of range"));
    let big = one(r#"{"b": {"m": {"value": 18446744073709551616}}}"#).unwrap();
    assert_eq!(big[0].measures[0].1.value, 18446744073709551616.0);
}

#[test]
fn long_names_are_cut_in_messages() {
    let e = err(&format!(r#"{{"{}\n": 1}}"#, "x".repeat(200)));
    assert!(
        e.contains(&format!("`{}…` must be an object", "x".repeat(80))),
        "{e}"
    );
}

#[test]
fn an_iteration_reads_its_files_else_stdout() {
    let stdout = Some(r#"{"from-stdout": {}}"#);
    let files: BTreeMap<String, String> = [
        (
            "/b.json".to_owned(),
            r#"{"x": {"m2": {"value": 2}}}"#.to_owned(),
        ),
        (
            "/a.json".to_owned(),
            r#"{"x": {"m1": {"value": 1}}, "y": {}}"#.to_owned(),
        ),
    ]
    .into();
    let merged = parse_iteration(Adapter::Magic, stdout, Some(&files), true).unwrap();
    assert_eq!(
        merged,
        vec![
            BenchmarkResult {
                benchmark: "x".into(),
                measures: vec![
                    ("m1".into(), metric(1.0, None, None)),
                    ("m2".into(), metric(2.0, None, None)),
                ],
            },
            BenchmarkResult {
                benchmark: "y".into(),
                measures: vec![]
            },
        ]
    );
    // No file came back: stdout.
    let empty = BTreeMap::new();
    let from_stdout = parse_iteration(Adapter::Json, stdout, Some(&empty), true).unwrap();
    assert_eq!(from_stdout[0].benchmark, "from-stdout");
    // No output at all: no results, as in Bencher.
    assert_eq!(
        parse_iteration(Adapter::Json, None, None, false),
        Ok(vec![])
    );
    assert_eq!(
        parse_iteration(Adapter::Json, Some(""), None, true),
        Ok(vec![])
    );
}

#[test]
fn an_iterations_errors_name_their_source() {
    let e = parse_iteration(Adapter::Json, Some("nope"), None, true).unwrap_err();
    assert!(
        e.starts_with("stdout (none of the files named by `file_paths` came back"),
        "{e}"
    );
    let e = parse_iteration(Adapter::Json, Some("nope"), None, false).unwrap_err();
    assert!(e.starts_with("stdout is not Bencher"), "{e}");
    let files: BTreeMap<String, String> = [("/out.json".to_owned(), "[]".to_owned())].into();
    let e = parse_iteration(Adapter::Json, None, Some(&files), true).unwrap_err();
    assert!(e.starts_with("the file `/out.json` is not Bencher"), "{e}");
}

#[test]
fn two_files_may_not_hold_the_same_measure() {
    let files: BTreeMap<String, String> = [
        (
            "/a.json".to_owned(),
            r#"{"x": {"m": {"value": 1}}}"#.to_owned(),
        ),
        (
            "/b.json".to_owned(),
            r#"{"x": {"m": {"value": 2}}}"#.to_owned(),
        ),
    ]
    .into();
    let e = parse_iteration(Adapter::Json, None, Some(&files), true).unwrap_err();
    assert_eq!(
        e,
        "the files `/a.json` and `/b.json` both hold the benchmark `x` with the measure `m`: \
         give each benchmark's measure in one file"
    );
}

#[test]
fn a_runs_results_are_one_document_an_iteration() {
    let results = parse_results(
        Adapter::Json,
        &[r#"{"a": {"m": {"value": 1}}}"#.into(), "{}".into()],
    )
    .unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0][0].benchmark, "a");
    assert!(results[1].is_empty());
    let e = parse_results(Adapter::Json, &["{}".into(), "{\"\": {}}".into()]).unwrap_err();
    assert!(
        e.starts_with("results[1] is not Bencher Metric Format JSON: "),
        "{e}"
    );
}

#[test]
fn built_in_measures_and_their_units() {
    assert_eq!(measure_units("latency"), "nanoseconds (ns)");
    assert_eq!(measure_units("Latency"), "nanoseconds (ns)");
    assert_eq!(measure_units("throughput"), "operations / second (ops/s)");
    assert_eq!(measure_units("file-size"), "bytes (B)");
    assert_eq!(measure_units("Noise Score"), "decibels (dB)");
    assert_eq!(measure_units("LATENCY"), GENERIC_UNITS);
    // Bencher v0.6.12 does not create its .NET measures on first use.
    assert_eq!(measure_units("allocated"), "Measure (units)");
    assert_eq!(built_in_measure("Errors").unwrap().slug, "memcheck-errors");
    assert_eq!(built_in_measure("DRD Errors").unwrap().slug, "drd-errors");
    assert_eq!(
        built_in_measure("helgrind-contexts")
            .unwrap()
            .display_name(),
        "Helgrind Contexts"
    );
    for m in BUILT_IN_MEASURES {
        assert!(m.display_name().len() <= MEASURE_MAX_BYTES && m.units.len() <= 64);
    }
}
