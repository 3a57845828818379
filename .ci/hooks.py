"""Schemathesis hooks for .ci/schemathesis (registered by `hooks` in schemathesis.toml).

The fuzzer's one exception, and only that: a name's rule is "1 to 64 bytes
of UTF-8" (Bencher's: both generations of its CLI check the names they
read), and JSON Schema's `maxLength` counts characters, so openapi.json
states `maxLength: 64`, the closest bound it can, and the exact rule in the
description. A generated name of at most 64 characters can still be over 64
bytes (64 "é" are 128): valid by the schema, refused by the rule. Such cases
are dropped when they are meant to be accepted (positive ones); every other
field, and every name within 64 bytes, is generated from every alphabet.

`filter_case` is the hook every phase applies (coverage included, which
applies no per-part hook such as `filter_body`).
"""

import schemathesis
from schemathesis import GenerationMode

# server/src/validate.rs: NAME_MAX_BYTES.
NAME_MAX_BYTES = 64


def _name_over_64_bytes(container):
    """Whether a body or query has a `name` (a ResourceName: runners, specs,
    and the lists' `name` filter) that is over 64 bytes of UTF-8."""
    if not isinstance(container, dict):
        return False
    name = container.get("name")
    if not isinstance(name, str):
        return False
    return len(name.encode("utf-8", "surrogatepass")) > NAME_MAX_BYTES


@schemathesis.hook
def filter_case(context, case):
    meta = case.meta
    if meta is None or meta.generation.mode != GenerationMode.POSITIVE:
        return True
    return not (_name_over_64_bytes(case.body) or _name_over_64_bytes(case.query))
