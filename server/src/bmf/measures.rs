//! Bencher's built-in measures: the ones its server creates on first use
//! with their own name, slug and units (`QueryMeasure::get_or_create` in
//! v0.6.12, in its order), and the units of any other measure.

/// A measure's units when it is not one of Bencher's built-in measures.
pub const GENERIC_UNITS: &str = "Measure (units)";

/// One of Bencher's built-in measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BuiltInMeasure {
    /// The name a key may use.
    pub name: &'static str,
    /// The name the measure gets, when it differs from `name`.
    pub display: Option<&'static str>,
    /// Its slug.
    pub slug: &'static str,
    /// Its units.
    pub units: &'static str,
}

impl BuiltInMeasure {
    /// The name the measure is created with.
    pub fn display_name(&self) -> &'static str {
        self.display.unwrap_or(self.name)
    }
}

const NS: &str = "nanoseconds (ns)";
const S: &str = "seconds (s)";
const B: &str = "bytes (B)";
const PCT: &str = "percentage (%)";
const DB: &str = "decibels (dB)";

/// A built-in measure named as it is created.
const fn m(name: &'static str, slug: &'static str, units: &'static str) -> BuiltInMeasure {
    BuiltInMeasure {
        name,
        display: None,
        slug,
        units,
    }
}

/// A built-in measure created under another name than the one a key uses.
const fn d(
    name: &'static str,
    display: &'static str,
    slug: &'static str,
    units: &'static str,
) -> BuiltInMeasure {
    BuiltInMeasure {
        name,
        display: Some(display),
        slug,
        units,
    }
}

/// Bencher's built-in measures, in the order its server tries them. (Not
/// every measure Bencher's adapters know is here: Bencher v0.6.12 does not
/// create its .NET measures, nor some of Gungraun's, this way; those get
/// [`GENERIC_UNITS`] from a BMF document, as in Bencher.)
pub const BUILT_IN_MEASURES: &[BuiltInMeasure] = &[
    m("Latency", "latency", NS),
    m("Throughput", "throughput", "operations / second (ops/s)"),
    m("Build Time", "build-time", S),
    m("File Size", "file-size", B),
    m("Instructions", "instructions", "instructions"),
    m("L1 Accesses", "l1-accesses", "accesses"),
    m("L2 Accesses", "l2-accesses", "accesses"),
    m("RAM Accesses", "ram-accesses", "accesses"),
    m("Estimated Cycles", "estimated-cycles", "cycles"),
    m("Compute Jitter", "compute-jitter", PCT),
    m("Cache Jitter", "cache-jitter", PCT),
    m("I/O Jitter", "io-jitter", PCT),
    m("CPU Steal", "cpu-steal", PCT),
    m("Noise Score", "noise-score", DB),
    m("L1 Hits", "l1-hits", "hits"),
    m("L2 Hits", "l2-hits", "hits"),
    m("LL Hits", "ll-hits", "hits"),
    m("RAM Hits", "ram-hits", "hits"),
    m("Total read+write", "total-read-write", "reads/writes"),
    m("Ge", "global-bus-events", "events"),
    m("Dr", "dr", "reads"),
    m("Dw", "dw", "writes"),
    m("I1mr", "i1mr", "misses (reads)"),
    m("D1mr", "d1mr", "misses (reads)"),
    m("D1mw", "d1mw", "misses (writes)"),
    m("ILmr", "ilmr", "misses (reads)"),
    m("DLmr", "dlmr", "misses (reads)"),
    m("DLmw", "dlmw", "misses (writes)"),
    m("I1 Miss Rate", "i1-miss-rate", "misses (%)"),
    m("LLi Miss Rate", "lli-miss-rate", "misses (%)"),
    m("D1 Miss Rate", "d1-miss-rate", "misses (%)"),
    m("LLd Miss Rate", "lld-miss-rate", "misses (%)"),
    m("LL Miss Rate", "ll-miss-rate", "misses (%)"),
    m("L1 Hit Rate", "l1-hit-rate", "hits (%)"),
    m("LL Hit Rate", "ll-hit-rate", "hits (%)"),
    m("RAM Hit Rate", "ram-hit-rate", "hits (%)"),
    m("SysCount", "sys-count", "syscalls"),
    m("SysTime", "sys-time", "msec/usec/nsec"),
    m("SysCpuTime", "sys-cpu-time", "nsec"),
    m("Bc", "bc", "branches"),
    m("Bcm", "bcm", "branches"),
    m("Bi", "bi", "branches"),
    m("Bim", "bim", "branches"),
    m("ILdmr", "ildmr", "misses (reads)"),
    m("DLdmr", "dldmr", "misses (reads)"),
    m("DLdmw", "dldmw", "misses (writes)"),
    m("AcCost1", "accost1", "temporal locality count"),
    m("AcCost2", "accost2", "temporal locality count"),
    m("SpLoss1", "sploss1", "spatial loss count"),
    m("SpLoss2", "sploss2", "spatial loss count"),
    m("Total bytes", "total-bytes", B),
    m("Total blocks", "total-blocks", "blocks"),
    m("At t-gmax bytes", "at-t-gmax-bytes", B),
    m("At t-gmax blocks", "at-t-gmax-blocks", "blocks"),
    m("At t-end bytes", "at-t-end-bytes", B),
    m("At t-end blocks", "at-t-end-blocks", "blocks"),
    m("Reads bytes", "reads-bytes", B),
    m("Writes bytes", "writes-bytes", B),
    d("Errors", "Memcheck Errors", "memcheck-errors", "errors"),
    d(
        "Contexts",
        "Memcheck Contexts",
        "memcheck-contexts",
        "contexts",
    ),
    d(
        "Suppressed Errors",
        "Memcheck Suppressed Errors",
        "memcheck-suppressed-errors",
        "suppressed errors",
    ),
    d(
        "Suppressed Contexts",
        "Memcheck Suppressed Contexts",
        "memcheck-suppressed-contexts",
        "suppressed contexts",
    ),
    d("Errors", "Helgrind Errors", "helgrind-errors", "errors"),
    d(
        "Contexts",
        "Helgrind Contexts",
        "helgrind-contexts",
        "contexts",
    ),
    d(
        "Suppressed Errors",
        "Helgrind Suppressed Errors",
        "helgrind-suppressed-errors",
        "suppressed errors",
    ),
    d(
        "Suppressed Contexts",
        "Helgrind Suppressed Contexts",
        "helgrind-suppressed-contexts",
        "suppressed contexts",
    ),
    d("Errors", "DRD Errors", "drd-errors", "errors"),
    d("Contexts", "DRD Contexts", "drd-contexts", "contexts"),
    d(
        "Suppressed Errors",
        "DRD Suppressed Errors",
        "drd-suppressed-errors",
        "suppressed errors",
    ),
    d(
        "Suppressed Contexts",
        "DRD Suppressed Contexts",
        "drd-suppressed-contexts",
        "suppressed contexts",
    ),
];

/// The built-in measure a key names, matched exactly on its display name,
/// its name or its slug (the first that matches, in Bencher's order: so
/// `Errors` is Memcheck's).
pub fn built_in_measure(key: &str) -> Option<&'static BuiltInMeasure> {
    BUILT_IN_MEASURES
        .iter()
        .find(|m| m.display == Some(key) || m.name == key || m.slug == key)
}

/// The units of the measure a key names when it is created: a built-in
/// measure's own (`latency`: `nanoseconds (ns)`), else `Measure (units)`.
pub fn measure_units(key: &str) -> &'static str {
    built_in_measure(key).map_or(GENERIC_UNITS, |m| m.units)
}
