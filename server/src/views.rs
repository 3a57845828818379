//! The HTTP edge of the store's model: the wire views (`Json*`) made from
//! the store's rows, and the store's new items and change sets made from
//! request bodies. A field renamed on the wire changes only this file.

use crate::store::model::{NewRunner, NewSpec, RunnerChanges, RunnerRow, SpecChanges, SpecRow};
use crate::types::{
    JsonNewRunner, JsonNewSpec, JsonRunner, JsonSpec, JsonUpdateRunner, JsonUpdateSpec,
};

/// `From<$from> for $to`, field by field under the same names: a struct
/// literal, so the compiler checks that every field of `$to` is given.
macro_rules! same_fields {
    ($from:ty => $to:ty { $($field:ident),* $(,)? }) => {
        impl From<$from> for $to {
            fn from(value: $from) -> Self {
                Self { $($field: value.$field),* }
            }
        }
    };
}

same_fields!(RunnerRow => JsonRunner {
    uuid, name, slug, specs, archived, last_heartbeat, created, modified
});
same_fields!(SpecRow => JsonSpec {
    uuid, name, slug, architecture, os, cpu, memory, disk, network, sandbox, fallback, archived,
    created, modified
});
same_fields!(JsonNewRunner => NewRunner { name, slug });
same_fields!(JsonUpdateRunner => RunnerChanges { name, slug, archived });
same_fields!(JsonNewSpec => NewSpec {
    name, slug, architecture, os, cpu, memory, disk, network, sandbox, fallback
});
same_fields!(JsonUpdateSpec => SpecChanges { name, slug, archived, fallback });
