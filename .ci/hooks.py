"""Schemathesis hooks for .ci/schemathesis (registered by `hooks` in schemathesis.toml).

The fuzzer's one exception, and only that: a name's rule is "1 to 64 bytes
of UTF-8" (Bencher's: both generations of its CLI check the names they
read), and JSON Schema's `maxLength` counts characters, so openapi.json
states `maxLength: 64`, the closest bound it can, and the exact rule in the
description. A generated name of at most 64 characters can still be over 64
bytes (64 "é" are 128): valid by the schema, refused by the rule. Such cases
are dropped when they are meant to be accepted (positive ones); every other
field, and every name within 64 bytes, is generated from every alphabet.

And its twin, for the one other rule OpenAPI 3.0 cannot state: a job's
`env` (`POST /v0/jobs`'s, and a run's `job`'s) is an object, and 3.0 has no `propertyNames`, so the variables'
names cannot be constrained by the schema (their values are, by
`additionalProperties`). The rule (non-empty, no `=`, no control
character, at most 4096 bytes: server/src/validate/jobs.rs, EnvVars and
Arg) is stated in the field's description, and positive cases with a name
that breaks it are dropped; names that keep it, and every value, are
generated from every alphabet.

And the third, for what no JSON Schema of OpenAPI 3.0 can state: a string
that holds a JSON document of a given shape (3.0 has no `contentSchema`).
A run's `results` are strings, each a Bencher Metric Format document
(server/src/bmf.rs; the field's description says so); positive cases with a
`results` item that is not one are dropped. Every other field of a run, and
every BMF document, is generated as before.

`filter_case` is the hook every phase applies (coverage included, which
applies no per-part hook such as `filter_body`).
"""

import json

import schemathesis
from schemathesis import GenerationMode

# server/src/validate/mod.rs: NAME_MAX_BYTES.
NAME_MAX_BYTES = 64
# server/src/validate/jobs.rs: ARG_MAX_BYTES.
ARG_MAX_BYTES = 4096


def _name_over_64_bytes(container):
    """Whether a body or query has a `name` (a ResourceName: runners, specs,
    and the lists' `name` filter) that is over 64 bytes of UTF-8."""
    if not isinstance(container, dict):
        return False
    name = container.get("name")
    if not isinstance(name, str):
        return False
    return len(name.encode("utf-8", "surrogatepass")) > NAME_MAX_BYTES


def _control(c):
    """Rust's char::is_control: the Cc category."""
    return ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F


def _bad_env_name(body):
    """Whether a body's `env` (a job's, or a run's job's) has a variable name
    the server refuses."""
    if isinstance(body, dict) and isinstance(body.get("job"), dict):
        return _bad_env_name(body["job"])
    if not isinstance(body, dict) or not isinstance(body.get("env"), dict):
        return False
    return any(
        not name
        or "=" in name
        or any(_control(c) for c in name)
        or len(name.encode("utf-8", "surrogatepass")) > ARG_MAX_BYTES
        for name in body["env"]
    )


# server/src/bmf.rs: a benchmark's name and a measure's, in bytes.
BENCHMARK_MAX_BYTES = 1024
MEASURE_MAX_BYTES = 64


def _number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_bmf(text):
    """Whether `text` is a Bencher Metric Format document bmf.rs accepts."""
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        return False
    if not isinstance(doc, dict):
        return False
    for benchmark, measures in doc.items():
        if not 1 <= len(benchmark.encode("utf-8", "surrogatepass")) <= BENCHMARK_MAX_BYTES:
            return False
        if not isinstance(measures, dict):
            return False
        for measure, metric in measures.items():
            if not 1 <= len(measure.strip().encode("utf-8", "surrogatepass")) <= MEASURE_MAX_BYTES:
                return False
            if not isinstance(metric, dict) or not _number(metric.get("value")):
                return False
            for bound in ("lower_value", "upper_value"):
                if metric.get(bound) is not None and not _number(metric[bound]):
                    return False
    return True


def _bad_results(body):
    """Whether a run's `results` has an item that is not a BMF document."""
    if not isinstance(body, dict) or not isinstance(body.get("results"), list):
        return False
    return any(not isinstance(r, str) or not _is_bmf(r) for r in body["results"])


@schemathesis.hook
def filter_case(context, case):
    meta = case.meta
    if meta is None or meta.generation.mode != GenerationMode.POSITIVE:
        return True
    return not (
        _name_over_64_bytes(case.body)
        or _name_over_64_bytes(case.query)
        or _bad_env_name(case.body)
        or _bad_results(case.body)
    )
