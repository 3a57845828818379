//! The runner's messages as the channel explains and keeps them.

use super::*;

/// The most fields of a bad message that [`explain`] searches for the one
/// at fault.
const EXPLAIN_MAX_FIELDS: usize = 8;

/// Why `text` is not a runner message, naming the field at fault where one
/// is: serde loses the path inside a message tagged by `event`, so the field
/// is found as the one whose removal makes the message parse.
pub(super) fn explain(text: &str, e: &serde_json::Error) -> String {
    let e = e.to_string();
    let e = e.split(" at line ").next().unwrap_or(&e);
    // serde names a repeated field itself (a JSON object, as parsed below,
    // would keep only the last of the two and blame another field).
    if e.starts_with("duplicate field") {
        return e.to_owned();
    }
    // A message has at most three fields besides `event`: an object with
    // many is not worth the search (each try parses it again).
    if let Ok(serde_json::Value::Object(fields)) = serde_json::from_str(text)
        && fields.len() <= EXPLAIN_MAX_FIELDS
    {
        for key in fields.keys().filter(|k| *k != "event") {
            let mut rest = fields.clone();
            rest.remove(key);
            if serde_json::from_value::<RunnerMessage>(rest.into()).is_ok() {
                return format!("{key}: {e}");
            }
        }
    }
    format!("not a runner message: {e}")
}

/// A job's output as kept: its results, and the error if it failed.
pub(super) fn output(
    results: Vec<JsonIterationOutput>,
    error: Option<String>,
) -> serde_json::Value {
    serde_json::to_value(crate::types::JsonJobOutput { results, error }).unwrap_or_default()
}
