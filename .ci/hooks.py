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
`env` is an object, and 3.0 has no `propertyNames`, so the variables'
names cannot be constrained by the schema (their values are, by
`additionalProperties`). The rule (non-empty, no `=`, no control
character, at most 4096 bytes: server/src/validate/jobs.rs, EnvVars and
Arg) is stated in the field's description, and positive cases with a name
that breaks it are dropped; names that keep it, and every value, are
generated from every alphabet.

`filter_case` is the hook every phase applies (coverage included, which
applies no per-part hook such as `filter_body`).
"""

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
    """Whether a body's `env` (a job's) has a variable name the server refuses."""
    if not isinstance(body, dict) or not isinstance(body.get("env"), dict):
        return False
    return any(
        not name
        or "=" in name
        or any(_control(c) for c in name)
        or len(name.encode("utf-8", "surrogatepass")) > ARG_MAX_BYTES
        for name in body["env"]
    )


@schemathesis.hook
def filter_case(context, case):
    meta = case.meta
    if meta is None or meta.generation.mode != GenerationMode.POSITIVE:
        return True
    return not (
        _name_over_64_bytes(case.body)
        or _name_over_64_bytes(case.query)
        or _bad_env_name(case.body)
    )
