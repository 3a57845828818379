//! `--config FILE`: serve's settings in a TOML file, one key for each flag
//! of `serve` (the flag's name with `_` for `-`). The command line and the
//! environment override the file, and the file overrides the defaults. An
//! unknown key and a bad value are each one `error:` line naming them.
//! `runners-server config` prints the settings in effect, secrets hidden.

use std::ffi::OsString;
use std::io::Write as _;
use std::path::Path;

use anyhow::{Context as _, bail};
use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory as _, FromArgMatches as _};

use crate::args::Cli;

/// The settings that are numbers (of seconds, of connections, of writes).
const NUMBERS: [&str; 9] = [
    "max_connections",
    "tls_handshake_timeout",
    "request_timeout",
    "idle_timeout",
    "shutdown_timeout",
    "write_queue",
    "heartbeat_timeout",
    "job_timeout_grace",
    "registry_token_ttl",
];

/// The id of `--config` itself, which the file cannot set.
const CONFIG: &str = "config";

/// The command line, with the `--config` file (if any) under it: `args` as
/// given, and `serve`'s (or `config`'s) settings merged with the file; and
/// the matches they were read from.
pub(crate) fn parse() -> anyhow::Result<(Cli, ArgMatches)> {
    let argv: Vec<OsString> = std::env::args_os().collect();
    let matches = Cli::command().get_matches_from(&argv);
    let unchanged = |m: ArgMatches| Ok((Cli::from_arg_matches(&m)?, m));
    let Some((sub, serve)) = serve_matches(&matches) else {
        return unchanged(matches);
    };
    let Some(file) = serve.get_one::<std::path::PathBuf>(CONFIG) else {
        return unchanged(matches);
    };
    let settings = read(file)?;
    // The file's values for what neither the command line nor the
    // environment set, given as flags before the command line's own.
    let mut from_file = Vec::new();
    for (key, value) in settings {
        let source = serve.value_source(&key);
        if matches!(
            source,
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        ) {
            continue;
        }
        from_file.push(OsString::from(format!(
            "--{}={value}",
            key.replace('_', "-")
        )));
    }
    let mut merged: Vec<OsString> = vec![argv[0].clone()];
    let rest = match sub {
        Some(name) => {
            let at = argv
                .iter()
                .position(|a| a == name)
                .unwrap_or(argv.len() - 1);
            merged.extend(argv[1..=at].iter().cloned());
            &argv[at + 1..]
        }
        None => &argv[1..],
    };
    merged.extend(from_file);
    merged.extend(rest.iter().cloned());
    unchanged(Cli::command().get_matches_from(merged))
}

/// The matches of `serve`'s settings: the default command's, `serve`'s or
/// `config`'s, with the subcommand's name as given.
fn serve_matches(matches: &ArgMatches) -> Option<(Option<&'static str>, &ArgMatches)> {
    match matches.subcommand() {
        None => Some((None, matches)),
        Some(("serve", m)) => Some((Some("serve"), m)),
        Some(("config", m)) => Some((Some("config"), m)),
        Some(_) => None,
    }
}

/// The keys and values of the file, each checked: a key is one of
/// `serve`'s flags; a value is a string, an integer or a float that the
/// flag takes.
fn read(file: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read the config file {}", file.display()))?;
    let table: toml::Table = toml::from_str(&text).map_err(|e| {
        let first = e.to_string().lines().next().unwrap_or_default().to_owned();
        anyhow::anyhow!("{}: not TOML: {first}", file.display())
    })?;
    let command = Cli::command();
    let serve = command.find_subcommand("serve").expect("a serve command");
    let keys: Vec<&str> = serve
        .get_arguments()
        .map(|a| a.get_id().as_str())
        .filter(|id| *id != CONFIG && !matches!(*id, "help" | "version"))
        .collect();
    let mut settings = Vec::new();
    for (key, value) in table {
        if !keys.contains(&key.as_str()) {
            bail!(
                "{}: unknown key `{key}` (the keys are serve's flags: {})",
                file.display(),
                keys.join(", ")
            );
        }
        let value = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(n) => n.to_string(),
            toml::Value::Float(f) => f.to_string(),
            other => bail!(
                "{}: key `{key}`: must be a string or a number, not a TOML {}",
                file.display(),
                other.type_str()
            ),
        };
        // The flag's own rule, alone, so that its error names the key.
        let flag = format!("--{}={value}", key.replace('_', "-"));
        match Cli::command().try_get_matches_from(["runners-server", "serve", &flag]) {
            Ok(_) => {}
            // A flag that needs another (`tls_cert`, `tls_key`): checked
            // with the whole command line.
            Err(e) if e.kind() == clap::error::ErrorKind::MissingRequiredArgument => {}
            Err(e) => {
                let text = e.to_string();
                let first = text.lines().next().unwrap_or_default();
                bail!(
                    "{}: key `{key}`: {}",
                    file.display(),
                    first.trim_start_matches("error: ")
                );
            }
        }
        settings.push((key, value));
    }
    Ok(settings)
}

/// `runners-server config`: every setting of `serve` in effect (the file,
/// the environment and the flags over the defaults), as TOML that
/// `--config` takes back; a PostgreSQL URL's password hidden.
pub(crate) fn print(matches: &ArgMatches) -> anyhow::Result<()> {
    let (_, serve) = serve_matches(matches).expect("`config` takes serve's flags");
    let command = Cli::command();
    let serve_command = command.find_subcommand("serve").expect("a serve command");
    for arg in serve_command.get_arguments() {
        let id = arg.get_id().as_str();
        if matches!(id, CONFIG | "help" | "version") {
            continue;
        }
        let raw = serve
            .get_raw(id)
            .and_then(|mut v| v.next())
            .map(|v| v.to_string_lossy().into_owned());
        match raw {
            None => out!("# {id} = (not set)"),
            Some(value) if id == "db" => {
                let shown = runners_server::store::db_shown(Path::new(&value));
                out!("{id} = {}", serde_json::to_string(&shown)?)
            }
            // A number where the flag takes one; any other value a string
            // (a path such as `007` stays one).
            Some(value) if NUMBERS.contains(&id) && value.parse::<f64>().is_ok() => {
                out!("{id} = {value}")
            }
            Some(value) => out!("{id} = {}", serde_json::to_string(&value)?),
        }
    }
    Ok(())
}
