//! Where and how to reach the API, and the credential: an API token
//! (`--token`) or a Bencher API key (`--key`), as Bencher v0.6.12's CLI
//! takes them.

use clap::Args;
use reqwest::Url;

use super::DEFAULT_HOST;

/// The prefixes of Bencher's API keys: a user's, then a project's.
const KEY_PREFIXES: [&str; 2] = ["bencher_user_", "bencher_run_"];
/// The letters and digits after a key's prefix.
const KEY_BODY_LEN: usize = 30;

/// Where and how to reach the API. These flags go before or after the
/// subcommand.
#[derive(Args, Debug)]
#[clap(next_help_heading = "Backend")]
pub struct CliBackend {
    /// Backend host URL
    #[clap(long, value_name = "URL", env = "BENCHER_HOST", default_value = DEFAULT_HOST, global = true)]
    pub host: Url,

    /// User API token (JWT). Bencher prefers `--key`/`BENCHER_API_KEY` with a
    /// `bencher_user_*` API key; this server's admin token is a JWT
    #[clap(long, env = "BENCHER_API_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,

    /// Bencher API key. Either a user-scoped key (`bencher_user_*`) or a
    /// project-scoped key (`bencher_run_*`)
    #[clap(long, env = "BENCHER_API_KEY", hide_env_values = true, global = true)]
    pub key: Option<String>,

    /// Trust the CA certificates in this PEM file for an HTTPS host, besides
    /// the system's certificate store (for a private CA or a self-signed
    /// certificate)
    #[clap(long, value_name = "PATH", env = "BENCHER_CA_CERT", global = true)]
    pub ca_cert: Option<std::path::PathBuf>,

    /// Request timeout
    #[clap(long, value_name = "SECONDS", default_value = "15",
        value_parser = clap::value_parser!(u64).range(1..), global = true)]
    pub timeout: u64,
}

impl CliBackend {
    /// The bearer credential to send, and the flag it came from: `--token`
    /// or `--key` (one of them, the environment's included, as Bencher's CLI
    /// takes them), checked as Bencher's CLI checks them, before any
    /// request. The error (a usage error) names the flag and never repeats
    /// the value. (A clap group cannot say "one of": both flags are global.)
    pub fn credential(&self) -> Result<(&'static str, &str), String> {
        let token = self.token.as_deref().filter(|t| !t.is_empty());
        let key = self.key.as_deref().filter(|k| !k.is_empty());
        match (token, key) {
            (Some(_), Some(_)) => Err("--token (BENCHER_API_TOKEN) and --key (BENCHER_API_KEY) \
                 cannot be used together: give one credential"
                .to_owned()),
            (Some(token), None) if is_key(token) => Err(
                "--token: You supplied a Bencher API key to `--token`/`BENCHER_API_TOKEN`. \
                 Use `--key`/`BENCHER_API_KEY` instead."
                    .to_owned(),
            ),
            (Some(token), None) => Ok(("--token", token)),
            (None, Some(key)) => check_key(key).map(|()| ("--key", key)),
            (None, None) => Err("no API token or key: pass --token TOKEN (or set \
                 BENCHER_API_TOKEN) or --key KEY (or set BENCHER_API_KEY)"
                .to_owned()),
        }
    }
}

/// A Bencher API key: a prefix of [`KEY_PREFIXES`], then 30 letters and
/// digits.
fn is_key(value: &str) -> bool {
    check_key(value).is_ok()
}

/// Why `value` is not a Bencher API key, in words.
fn check_key(value: &str) -> Result<(), String> {
    let rule = format!(
        "a Bencher API key is `{}` or `{}` and then {KEY_BODY_LEN} letters and digits",
        KEY_PREFIXES[0], KEY_PREFIXES[1]
    );
    let Some(body) = KEY_PREFIXES.iter().find_map(|p| value.strip_prefix(p)) else {
        return Err(if is_jwt_shaped(value) {
            "--key: You supplied a JWT API token to `--key`/`BENCHER_API_KEY`. \
             Use `--token`/`BENCHER_API_TOKEN` instead."
                .to_owned()
        } else {
            format!("--key: {rule}")
        });
    };
    if body.len() == KEY_BODY_LEN && body.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(())
    } else {
        Err(format!("--key: {rule}"))
    }
}

/// Three non-empty base64url parts joined by dots.
fn is_jwt_shaped(value: &str) -> bool {
    let parts: Vec<&str> = value.split('.').collect();
    parts.len() == 3
        && parts.iter().all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const USER_KEY: &str = "bencher_user_aB3xY9mN2pQ7rS4tU8vW1zK5jL0fGh";
    const PROJECT_KEY: &str = "bencher_run_aB3xY9mN2pQ7rS4tU8vW1zK5jL0fGh";
    const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";

    fn backend(token: Option<&str>, key: Option<&str>) -> CliBackend {
        CliBackend {
            host: DEFAULT_HOST.parse().unwrap(),
            token: token.map(str::to_owned),
            key: key.map(str::to_owned),
            ca_cert: None,
            timeout: 15,
        }
    }

    #[test]
    fn a_token_or_a_key_is_the_credential() {
        assert_eq!(backend(Some(JWT), None).credential(), Ok(("--token", JWT)));
        assert_eq!(
            backend(Some(""), Some(USER_KEY)).credential(),
            Ok(("--key", USER_KEY))
        );
        assert_eq!(
            backend(None, Some(PROJECT_KEY)).credential(),
            Ok(("--key", PROJECT_KEY))
        );
    }

    #[test]
    fn each_flag_refuses_the_others_credential_without_repeating_it() {
        let err = backend(Some(USER_KEY), None).credential().unwrap_err();
        assert!(err.contains("Use `--key`/`BENCHER_API_KEY`"), "{err}");
        assert!(!err.contains(USER_KEY), "{err}");
        let err = backend(None, Some(JWT)).credential().unwrap_err();
        assert!(err.contains("Use `--token`/`BENCHER_API_TOKEN`"), "{err}");
        assert!(!err.contains(JWT), "{err}");
    }

    #[test]
    fn a_key_has_its_prefix_and_thirty_letters_and_digits() {
        for bad in [
            "bencher_user_short",
            "bencher_run_aB3xY9mN2pQ7rS4tU8vW1zK5jL0fG!",
            "bencher_runner_aB3xY9mN2pQ7rS4tU8vW1zK5jL0fGh",
            "garbage",
        ] {
            let err = backend(None, Some(bad)).credential().unwrap_err();
            assert!(err.starts_with("--key: a Bencher API key is"), "{err}");
        }
        let err = backend(None, None).credential().unwrap_err();
        assert!(err.contains("--token") && err.contains("--key"), "{err}");
        let err = backend(Some(JWT), Some(USER_KEY)).credential().unwrap_err();
        assert!(err.contains("cannot be used together"), "{err}");
    }
}
