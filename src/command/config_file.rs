//! `serve`'s config file: every `serve` flag is a TOML key of the same name (`cache-mb = 64`,
//! or `cache_mb`), read from `--config FILE` (env `STATHOOK_CONFIG`), else from
//! [`DEFAULT_CONFIG`] when it exists. A flag or an environment variable overrides the file,
//! which overrides the defaults: the file's values are given to clap as the flags that were
//! neither passed nor set in the environment, so clap's parsers check them as they check
//! flags. An unknown key or a value of the wrong type stops the start with the key and its
//! line. `stathook config show` prints the result and where each value came from. Owns no
//! state; reads one file.

use crate::cli::Cli;
use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, CommandFactory, FromArgMatches};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Read when it exists and no `--config` is given (the Debian package puts it there).
pub const DEFAULT_CONFIG: &str = "/etc/stathook/stathook.toml";

/// Where a value of `serve` came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Default,
    File,
    Env,
    Flag,
}

impl Source {
    fn name(self) -> &'static str {
        match self {
            Source::Default => "default",
            Source::File => "file",
            Source::Env => "env",
            Source::Flag => "flag",
        }
    }
}

/// The command line, with a config file's values filled in for `serve` and `config show`;
/// for `config show`, also what to print. Clap's own errors (and `--help`) exit as clap does.
pub fn parse(argv: Vec<OsString>) -> Result<(Cli, Option<String>), String> {
    let matches = Cli::command().get_matches_from(argv.clone());
    let (serve, show) = match matches.subcommand() {
        Some(("serve", m)) => (m, false),
        Some(("config", c)) => match c.subcommand() {
            Some(("show", m)) => (m, true),
            _ => return from_matches(&matches).map(|c| (c, None)),
        },
        _ => return from_matches(&matches).map(|c| (c, None)),
    };
    let path = serve.get_one::<PathBuf>("config").cloned().or_else(|| {
        Path::new(DEFAULT_CONFIG)
            .exists()
            .then(|| DEFAULT_CONFIG.into())
    });
    let (final_matches, from_file) = match &path {
        None => (matches, BTreeMap::new()),
        Some(path) => {
            let (extra, from_file) = file_args(path, serve)?;
            let mut all = argv;
            all.extend(extra);
            let m = Cli::command().try_get_matches_from(all).map_err(|e| {
                let text = e.to_string();
                let key = from_file
                    .iter()
                    .find(|(k, _)| text.contains(&format!("--{}", k.replace('_', "-"))));
                match key {
                    Some((k, line)) => format!(
                        "{}, line {line}: key `{}`: {}",
                        path.display(),
                        k.replace('_', "-"),
                        text.lines()
                            .next()
                            .unwrap_or("")
                            .trim_start_matches("error: ")
                    ),
                    None => text,
                }
            })?;
            (m, from_file)
        }
    };
    let cli = from_matches(&final_matches)?;
    if !show {
        return Ok((cli, None));
    }
    let sub = match final_matches.subcommand() {
        Some(("config", c)) => c.subcommand().map(|(_, m)| m),
        _ => None,
    }
    .ok_or("BUG: config show without its matches")?;
    Ok((cli, Some(show_text(sub, &from_file, path.as_deref()))))
}

fn from_matches(m: &ArgMatches) -> Result<Cli, String> {
    Cli::from_arg_matches(m).map_err(|e| e.to_string())
}

/// The `serve` flags a config file gives (only those neither passed nor in the
/// environment), and the line of each key taken from the file.
fn file_args(
    path: &Path,
    given: &ArgMatches,
) -> Result<(Vec<OsString>, BTreeMap<String, usize>), String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the config file {}: {e}", path.display()))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e| format!("{} is not valid TOML: {e}", path.display()))?;
    let serve = Cli::command();
    let serve = serve
        .find_subcommand("serve")
        .ok_or("BUG: no serve command")?;
    let mut extra = Vec::new();
    let mut from_file = BTreeMap::new();
    for (key, value) in &table {
        let line = line_of(&text, key);
        let id = key.replace('-', "_");
        let arg = serve
            .get_arguments()
            .find(|a| a.get_id() == id.as_str() && id != "config" && id != "help");
        let Some(arg) = arg else {
            return Err(format!(
                "{}, line {line}: unknown key `{key}`; the keys are serve's flags without the -- (stathook serve --help)",
                path.display()
            ));
        };
        if matches!(
            given.value_source(&id),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        ) {
            continue;
        }
        let flag = OsString::from(format!("--{}", id.replace('_', "-")));
        let wrong = |want: &str| {
            format!(
                "{}, line {line}: key `{key}` must be {want}, not {}",
                path.display(),
                value.type_str()
            )
        };
        let is_switch = matches!(arg.get_action(), ArgAction::SetTrue);
        let values: Vec<String> = match value {
            toml::Value::Boolean(b) if is_switch => {
                if *b {
                    extra.push(flag);
                }
                from_file.insert(id, line);
                continue;
            }
            _ if is_switch => return Err(wrong("true or false")),
            toml::Value::String(s) => vec![s.clone()],
            toml::Value::Integer(i) => vec![i.to_string()],
            toml::Value::Float(f) => vec![f.to_string()],
            toml::Value::Array(items) if matches!(arg.get_action(), ArgAction::Append) => items
                .iter()
                .map(|v| match v {
                    toml::Value::String(s) => Ok(s.clone()),
                    _ => Err(wrong("an array of strings")),
                })
                .collect::<Result<_, _>>()?,
            _ => return Err(wrong("a string or a number")),
        };
        for v in values {
            extra.push(flag.clone());
            extra.push(v.into());
        }
        from_file.insert(id, line);
    }
    Ok((extra, from_file))
}

/// The line where `key` is set (1 when not found: a quoted or dotted key).
fn line_of(text: &str, key: &str) -> usize {
    text.lines()
        .position(|l| {
            let l = l.trim_start();
            l.strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        })
        .map_or(1, |i| i + 1)
}

/// `config show`: every `serve` value as a TOML line, with its source; secrets masked.
fn show_text(m: &ArgMatches, from_file: &BTreeMap<String, usize>, path: Option<&Path>) -> String {
    let serve = Cli::command();
    let serve = serve.find_subcommand("serve").cloned().unwrap_or_default();
    let mut out = match path {
        Some(p) => format!("# config file: {}\n", p.display()),
        None => format!("# config file: none ({DEFAULT_CONFIG} does not exist)\n"),
    };
    for arg in serve.get_arguments() {
        let id = arg.get_id().as_str();
        if id == "config" || id == "help" {
            continue;
        }
        let source = match m.value_source(id) {
            _ if from_file.contains_key(id) => Source::File,
            Some(ValueSource::CommandLine) => Source::Flag,
            Some(ValueSource::EnvVariable) => Source::Env,
            _ => Source::Default,
        };
        let raw: Vec<String> = m
            .get_raw(id)
            .map(|v| v.map(|s| s.to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        // Forward URLs may hold basic auth, forward headers tokens.
        let secret = ["token", "password", "secret", "forward_header"]
            .iter()
            .any(|s| id.contains(s))
            || id == "forward";
        let value = if secret && !raw.is_empty() {
            "\"********\"".to_owned()
        } else if matches!(arg.get_action(), ArgAction::SetTrue) {
            (raw.first().map(String::as_str) == Some("true")).to_string()
        } else if matches!(arg.get_action(), ArgAction::Append) {
            let items: Vec<String> = raw.iter().map(|v| toml_str(v)).collect();
            format!("[{}]", items.join(", "))
        } else {
            match raw.first() {
                Some(v) => toml_str(v),
                None => {
                    out.push_str(&format!("# {} (not set)\n", id.replace('_', "-")));
                    continue;
                }
            }
        };
        out.push_str(&format!(
            "{} = {value}  # {}\n",
            id.replace('_', "-"),
            source.name()
        ));
    }
    out
}

/// A value as TOML: a whole number bare, anything else a string.
fn toml_str(s: &str) -> String {
    match s.parse::<i64>() {
        Ok(n) => n.to_string(),
        Err(_) => toml::Value::String(s.to_owned()).to_string(),
    }
}

/// Keys whose default depends on the machine: the example says how it is chosen, so the
/// packaged file is the same wherever it is built.
const MACHINE_DEFAULTS: &[(&str, &str)] =
    &[("http-threads", "default: half the cores, at least 1")];

/// `--set KEY=VALUE` pairs for [`example_text`].
pub fn parse_settings(set: &[String]) -> Result<Vec<(String, String)>, String> {
    set.iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().replace('_', "-"), v.into())),
            _ => Err(format!("--set {kv:?}: expected KEY=VALUE")),
        })
        .collect()
}

/// `config example`: every `serve` key with its help and default, commented out, except the
/// keys in `set`, which are written with their value. Reading it back gives the defaults (a
/// test checks it), so a user uncomments only what they change.
pub fn example_text(set: &[(String, String)]) -> Result<String, String> {
    let serve = Cli::command();
    let serve = serve.find_subcommand("serve").cloned().unwrap_or_default();
    let mut out = String::from(
        "# stathook serve's configuration (stathook serve --config FILE).\n\
         # Every key is a `stathook serve` flag without the `--`; a flag or its STATHOOK_*\n\
         # environment variable overrides the key. Lines starting with # are the defaults.\n\
         # `stathook config show --config FILE` prints what the server would run with.\n",
    );
    let mut unused: Vec<&str> = set.iter().map(|(k, _)| k.as_str()).collect();
    for arg in serve.get_arguments() {
        let id = arg.get_id().as_str();
        if id == "config" || id == "help" {
            continue;
        }
        let key = id.replace('_', "-");
        out.push('\n');
        let help = arg
            .get_long_help()
            .or(arg.get_help())
            .map(|h| h.to_string())
            .unwrap_or_default();
        for line in help.lines() {
            wrap_comment(&mut out, line);
        }
        if let Some(env) = arg.get_env() {
            out.push_str(&format!("# (environment: {})\n", env.to_string_lossy()));
        }
        let defaults: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|v| v.to_string_lossy().into_owned())
            .collect();
        let default = if let Some(says) = MACHINE_DEFAULTS.iter().find(|(k, _)| *k == key) {
            format!(" ({})", says.1)
        } else if matches!(arg.get_action(), ArgAction::SetTrue) {
            "false".to_owned()
        } else if matches!(arg.get_action(), ArgAction::Append) {
            let items: Vec<String> = defaults.iter().map(|v| toml_str(v)).collect();
            format!("[{}]", items.join(", "))
        } else {
            match defaults.first() {
                Some(v) => toml_str(v),
                None => " (not set)".to_owned(),
            }
        };
        let line = match set.iter().find(|(k, _)| *k == key) {
            Some((_, value)) => {
                unused.retain(|k| *k != key);
                format!("{key} = {}", toml_str(value))
            }
            None => format!("# {key} = {default}"),
        };
        out.push_str(&line);
        out.push('\n');
    }
    match unused.first() {
        Some(k) => Err(format!(
            "--set {k}: not a serve key (stathook serve --help)"
        )),
        None => Ok(out),
    }
}

/// `line` as `# ` comment lines of at most 96 characters, broken at spaces.
fn wrap_comment(out: &mut String, line: &str) {
    let mut current = String::from("#");
    for word in line.split_whitespace() {
        if current.len() > 1 && current.len() + 1 + word.len() > 96 {
            out.push_str(&current);
            out.push('\n');
            current = String::from("#");
        }
        current.push(' ');
        current.push_str(word);
    }
    out.push_str(&current);
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Debian package's conffile (packaging/stathook.toml) is the example with the
    /// package's data dir, so it cannot drift from the flags.
    #[test]
    fn the_packaged_config_is_the_example_with_the_package_s_data_dir() {
        let want =
            example_text(&parse_settings(&["data-dir=/var/lib/stathook".into()]).unwrap()).unwrap();
        let have = include_str!("../../packaging/stathook.toml");
        assert!(
            have == want,
            "packaging/stathook.toml is stale; regenerate it with \
             `stathook config example --set data-dir=/var/lib/stathook > packaging/stathook.toml`"
        );
    }

    #[test]
    fn the_example_uncommented_gives_the_defaults_and_names_every_key() {
        let text = example_text(&[]).unwrap();
        let serve = Cli::command();
        let serve = serve.find_subcommand("serve").cloned().unwrap();
        let mut keys = 0;
        for arg in serve.get_arguments() {
            let key = arg.get_id().as_str().replace('_', "-");
            if key == "config" || key == "help" {
                continue;
            }
            keys += 1;
            assert!(
                text.contains(&format!("\n# {key} = ")),
                "{key} is missing from the example"
            );
        }
        // Each commented `# key = value` line, uncommented, is valid TOML of the right type:
        // read back through the same path as a real file, it changes nothing.
        let uncommented: String = text
            .lines()
            .filter_map(|l| l.strip_prefix("# "))
            .filter(|l| l.split_once(" = ").is_some_and(|(k, _)| !k.contains(' ')))
            .filter(|l| !l.contains(" =  ("))
            .map(|l| format!("{l}\n"))
            .collect();
        let table: toml::Table = uncommented.parse().expect("valid TOML");
        let without_value = text.matches(" =  (").count();
        assert_eq!(table.len() + without_value, keys, "{table:?}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, &uncommented).unwrap();
        let argv: Vec<OsString> = ["stathook", "config", "show", "--config"]
            .iter()
            .map(OsString::from)
            .chain([path.clone().into_os_string()])
            .collect();
        let (_, shown) = parse(argv).expect("the uncommented example is accepted");
        let shown = shown.unwrap();
        for (key, value) in &table {
            let line = format!("{key} = {value}  # file");
            assert!(shown.contains(&line), "{line:?} not in:\n{shown}");
        }
    }

    #[test]
    fn a_setting_that_is_not_a_key_is_refused() {
        let err = example_text(&parse_settings(&["cache=1".into()]).unwrap()).unwrap_err();
        assert!(err.contains("cache"), "{err}");
        assert!(parse_settings(&["novalue".into()]).is_err());
    }
}
