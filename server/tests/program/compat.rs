//! No silent breaking change: `openapi.json` against the document of every
//! released version (`openapi/VERSION.json`), compared by drift. A change
//! that would break a client built from a released document fails the test,
//! naming it, unless it is listed, with the reason it is safe, in
//! `openapi/accepted-changes.txt`.

use std::path::Path;

use drift::ChangeClass;

/// One line of `accepted-changes.txt`: `VERSION | PATH | MESSAGE | reason`.
struct Accepted {
    version: String,
    path: String,
    message: String,
}

fn accepted(root: &Path) -> Vec<Accepted> {
    let text = std::fs::read_to_string(root.join("openapi/accepted-changes.txt")).unwrap();
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let parts: Vec<&str> = l.split(" | ").collect();
            assert!(parts.len() == 4, "VERSION | PATH | MESSAGE | reason: {l}");
            Accepted {
                version: parts[0].trim().to_owned(),
                path: parts[1].trim().to_owned(),
                message: parts[2].trim().to_owned(),
            }
        })
        .collect()
}

/// For a change to an object schema of `#/components/schemas`, which
/// fields it removes and which it makes required, so the message names them.
fn fields(old: &serde_json::Value, new: &serde_json::Value, at: &str, at_new: &str) -> String {
    let component = |at: &str| {
        at.strip_prefix("#/components/schemas/")
            .and_then(|rest| rest.split([' ', '/']).next())
            .map(str::to_owned)
    };
    let (Some(old_name), Some(new_name)) = (component(at), component(at_new)) else {
        return String::new();
    };
    let old = old["components"]["schemas"][&old_name].clone();
    let new = new["components"]["schemas"][&new_name].clone();
    let keys = |s: &serde_json::Value, key: &str| -> Vec<String> {
        match &s[key] {
            serde_json::Value::Object(map) => map.keys().cloned().collect(),
            serde_json::Value::Array(items) => items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        }
    };
    let removed: Vec<String> = keys(&old, "properties")
        .into_iter()
        .filter(|p| !keys(&new, "properties").contains(p))
        .collect();
    let required: Vec<String> = keys(&new, "required")
        .into_iter()
        .filter(|p| !keys(&old, "required").contains(p))
        .collect();
    let mut out = String::new();
    if !removed.is_empty() {
        out.push_str(&format!(" (removed: {})", removed.join(", ")));
    }
    if !required.is_empty() {
        out.push_str(&format!(" (now required: {})", required.join(", ")));
    }
    out
}

/// The changes from `old` to `new` that could break a client built from
/// `old`: `(path, message)`.
fn breaking(old: &serde_json::Value, new: &serde_json::Value) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for change in drift::compare(old, new).expect("both documents are OpenAPI") {
        for info in &change.changes {
            if matches!(
                info.class,
                ChangeClass::BackwardIncompatible
                    | ChangeClass::Incompatible
                    | ChangeClass::Unhandled
            ) {
                for path in &change.paths {
                    let at = format!("{}/{}", path.old, info.old_subpath);
                    let at = at.trim_end_matches('/').to_owned();
                    let at_new = format!("{}/{}", path.new, info.new_subpath);
                    let message = format!("{}{}", info.message, fields(old, new, &at, &at_new));
                    found.push((at, message));
                }
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

#[test]
fn openapi_json_breaks_no_client_of_a_released_version() {
    let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    let current: serde_json::Value =
        serde_json::from_str(&runners_server::api::openapi_document()).unwrap();
    let accepted = accepted(root);
    let mut failures = Vec::new();
    let mut released = 0;
    for entry in std::fs::read_dir(root.join("openapi")).unwrap() {
        let path = entry.unwrap().path();
        let Some(version) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".json"))
        else {
            continue;
        };
        released += 1;
        let old: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for (at, message) in breaking(&old, &current) {
            let ok = accepted
                .iter()
                .any(|a| a.version == version && a.path == at && a.message == message);
            if !ok {
                failures.push(format!("{version} | {at} | {message}"));
            }
        }
    }
    assert!(released > 0, "no released document under openapi/");
    assert!(
        failures.is_empty(),
        "openapi.json would break clients of a released version:\n{}\n\
         Undo the change, or (if it is safe) add the line with its reason to \
         openapi/accepted-changes.txt",
        failures.join("\n")
    );
}

/// The comparison itself catches what it must: a removed response field
/// and a new required request field.
#[test]
fn removing_a_field_or_requiring_one_is_caught_and_named() {
    let current: serde_json::Value =
        serde_json::from_str(&runners_server::api::openapi_document()).unwrap();
    let mut removed = current.clone();
    let runner = &mut removed["components"]["schemas"]["JsonRunner"];
    runner["properties"]
        .as_object_mut()
        .unwrap()
        .remove("last_heartbeat");
    let found = breaking(&current, &removed);
    assert!(
        found
            .iter()
            .any(|(at, m)| at.contains("JsonRunner") && m.contains("removed: last_heartbeat")),
        "a removed response field, named: {found:?}"
    );

    let mut required = current.clone();
    let new_runner = &mut required["components"]["schemas"]["JsonNewRunner"];
    new_runner["properties"]["owner"] = serde_json::json!({ "type": "string" });
    new_runner["required"]
        .as_array_mut()
        .unwrap()
        .push("owner".into());
    let found = breaking(&current, &required);
    assert!(
        found
            .iter()
            .any(|(at, m)| at.contains("JsonNewRunner") || m.contains("owner")),
        "a new required request field: {found:?}"
    );
}
