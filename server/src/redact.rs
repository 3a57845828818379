//! The request log never shows a credential, even one a client put where it
//! does not belong (`?key=bencher_runner_…` in a URL, which dropshot logs
//! with the request, or a project key as the username that Docker's clients
//! send to the token endpoint as `?account=`): a drain in front of the
//! log's writer replaces every runner, project and user key and every
//! JWT-shaped token in a record's values.

use std::fmt::{self, Write as _};

use slog::{BorrowedKV, Drain, KV, Key, OwnedKVList, Record, RecordStatic, Serializer};

/// What each credential begins with: a runner key, a project key, a user
/// key, a JWT (`{"` in base64url).
const CREDENTIALS: [&str; 4] = ["bencher_runner_", "bencher_run_", "bencher_user_", "eyJ"];

/// Whether `text` holds a credential.
fn has_credential(text: &str) -> bool {
    CREDENTIALS.iter().any(|p| text.contains(p))
}
/// What a credential is replaced by.
const REDACTED: &str = "[redacted]";

/// Whether `text` needs [`redact`]: a credential, or a control character
/// (a newline in a client's text would forge a line of the log).
fn needs_redacting(text: &str) -> bool {
    has_credential(text) || text.contains(char::is_control)
}

/// `text` with each credential in it replaced and each control character
/// escaped (`\n`, `\u{1b}`), or `None` if it has neither.
pub fn redact(text: &str) -> Option<String> {
    if !needs_redacting(text) {
        return None;
    }
    if text.contains(char::is_control) {
        let escaped: String = text
            .chars()
            .flat_map(|c| {
                let escape = c.is_control().then(|| c.escape_default());
                escape
                    .into_iter()
                    .flatten()
                    .chain((!c.is_control()).then_some(c))
            })
            .collect();
        return Some(redact(&escaped).unwrap_or(escaped));
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    loop {
        let next = CREDENTIALS
            .iter()
            .filter_map(|p| rest.find(p).map(|i| (i, *p)))
            .min();
        let Some((at, prefix)) = next else {
            out.push_str(rest);
            return Some(out);
        };
        out.push_str(&rest[..at]);
        out.push_str(REDACTED);
        let after = &rest[at + prefix.len()..];
        let secret = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
            .unwrap_or(after.len());
        rest = &after[secret..];
    }
}

/// A drain that hands `D` each record with its credentials replaced.
pub struct Redact<D>(pub D);

/// Whether any of a record's values holds a credential: one buffer for
/// all, so that a record without one (nearly all) costs no allocation.
#[derive(Default)]
struct Detect {
    text: String,
    found: bool,
}

impl Serializer for Detect {
    fn emit_arguments(&mut self, _: Key, val: &fmt::Arguments<'_>) -> slog::Result {
        if !self.found {
            self.text.clear();
            let _ = self.text.write_fmt(*val);
            self.found = needs_redacting(&self.text);
        }
        Ok(())
    }
}

/// A record's values, as text, each with its credentials replaced.
struct Collect(Vec<(Key, String)>);

impl Serializer for Collect {
    fn emit_arguments(&mut self, key: Key, val: &fmt::Arguments<'_>) -> slog::Result {
        let mut text = String::new();
        let _ = text.write_fmt(*val);
        let text = redact(&text).unwrap_or(text);
        self.0.push((key, text));
        Ok(())
    }
}

/// Values to log in place of a record's own.
struct Values(Vec<(Key, String)>);

impl KV for Values {
    fn serialize(&self, _: &Record<'_>, serializer: &mut dyn Serializer) -> slog::Result {
        // In the order they were collected: the order the writer prints.
        for (key, value) in &self.0 {
            serializer.emit_str(key.clone(), value)?;
        }
        Ok(())
    }
}

impl<D: Drain> Drain for Redact<D> {
    type Ok = D::Ok;
    type Err = D::Err;

    fn log(&self, record: &Record<'_>, values: &OwnedKVList) -> Result<D::Ok, D::Err> {
        // The record's own values, then its logger's (dropshot puts the
        // request's `uri` there), each in the order slog emits them.
        let mut detect = Detect::default();
        let _ = record.kv().serialize(record, &mut detect);
        let _ = values.serialize(record, &mut detect);
        // Most messages are static text: no copy to look at them.
        let message = match record.msg().as_str() {
            Some(text) => std::borrow::Cow::Borrowed(text),
            None => std::borrow::Cow::Owned(record.msg().to_string()),
        };
        let clean = redact(&message);
        if !detect.found && clean.is_none() {
            return self.0.log(record, values);
        }
        let mut collected = Collect(Vec::new());
        let _ = record.kv().serialize(record, &mut collected);
        let _ = values.serialize(record, &mut collected);
        let kv = Values(collected.0);
        let message = clean.unwrap_or_else(|| message.into_owned());
        let statics = RecordStatic {
            location: record.location(),
            tag: record.tag(),
            level: record.level(),
        };
        let args = format_args!("{message}");
        // Every value is in `kv` now: the logger's own are not given again.
        let none = OwnedKVList::from(slog::o!());
        self.0
            .log(&Record::new(&statics, &args, BorrowedKV(&kv)), &none)
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn credentials_are_replaced_and_the_rest_kept() {
        assert_eq!(redact("/v0/runners"), None);
        assert_eq!(
            redact("/v0/runners/a/channel?key=bencher_runner_abcDEF123&x=1").as_deref(),
            Some("/v0/runners/a/channel?key=[redacted]&x=1")
        );
        assert_eq!(
            redact("?token=eyJhbGciOi.eyJzdWIi.sig-_x and eyJ").as_deref(),
            Some("?token=[redacted] and [redacted]")
        );
        assert_eq!(
            redact("/v0/auth/oci/token?account=bencher_run_ab12&scope=x bencher_user_Z9")
                .as_deref(),
            Some("/v0/auth/oci/token?account=[redacted]&scope=x [redacted]")
        );
        // A client's newline cannot start a line of the log.
        assert_eq!(
            redact("scope `x\nDec 08 WARN forged\u{1b}[31m`").as_deref(),
            Some("scope `x\\nDec 08 WARN forged\\u{1b}[31m`")
        );
    }
}
