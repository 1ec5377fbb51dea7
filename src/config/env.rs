//! The environment over the file, by one naming rule: the key `limits.
//! rate_burst` is `HEARTH_LIMITS_RATE_BURST`, `server.bind` is
//! `HEARTH_SERVER_BIND`, and so on for every key whose value is a number, a
//! string, a boolean or a list of strings (tables and lists of tables, such
//! as `channels.namespaces` or `chat.crisis_resources`, only in the file).
//! The names are read off the configuration type itself, so a new setting
//! can be given from the environment without code here, and the table in
//! README.md is [`env_table`]'s output (a test keeps the two equal).
//!
//! Two values come only from the environment, so that a copied file cannot
//! carry them: `HEARTH_DEV` (development mode) and
//! `HEARTH_ASSISTANT_API_KEY`.

use toml::{Table, Value};

use super::{Config, ConfigError};

/// Names from before the rule, still read when the rule's name is unset.
const ALIASES: &[(&str, &str)] = &[
    ("HEARTH_SERVER_BIND", "HEARTH_BIND"),
    ("HEARTH_AUTH_SECRET", "HEARTH_JWT_SECRET"),
    ("HEARTH_PROGRESS_KIND", "HEARTH_PROGRESS"),
    ("HEARTH_BROKER_KIND", "HEARTH_BROKER"),
    ("HEARTH_CONVERSATIONS_KIND", "HEARTH_CONVERSATIONS"),
];

/// `HEARTH_*` names that are not settings of the file.
const ENV_ONLY: &[(&str, &str)] = &[
    (
        "HEARTH_DEV",
        "`1` or `true`: development mode (the shipped secret on any bind)",
    ),
    (
        "HEARTH_ASSISTANT_API_KEY",
        "the model's API key (never read from a file)",
    ),
];

/// The test suite's own variables (`HEARTH_TEST_SERVICES` and the like).
const TEST_PREFIX: &str = "HEARTH_TEST_";

#[derive(Debug, thiserror::Error)]
#[error("{name}: {why}")]
pub struct EnvError {
    pub name: String,
    pub why: String,
}

fn env_name(section: &str, key: &str) -> String {
    format!("HEARTH_{}_{}", section, key).to_ascii_uppercase()
}

/// Whether a value of this shape can be given as one variable.
fn settable(value: &Value) -> bool {
    match value {
        Value::Table(_) | Value::Datetime(_) => false,
        Value::Array(items) => items.iter().all(|item| !item.is_table()),
        _ => true,
    }
}

/// `text` as a value of the same type as `current`.
fn parse_like(current: &Value, text: &str) -> Result<Value, String> {
    match current {
        Value::String(_) => Ok(Value::String(text.to_string())),
        Value::Integer(_) => text
            .trim()
            .parse()
            .map(Value::Integer)
            .map_err(|_| format!("expected a whole number, got {text:?}")),
        Value::Float(_) => text
            .trim()
            .parse()
            .map(Value::Float)
            .map_err(|_| format!("expected a number, got {text:?}")),
        Value::Boolean(_) => match text.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Ok(Value::Boolean(true)),
            "false" | "0" | "no" => Ok(Value::Boolean(false)),
            _ => Err(format!("expected true or false, got {text:?}")),
        },
        // A TOML list as written in the file, or comma-separated strings.
        Value::Array(_) if text.trim_start().starts_with('[') => {
            toml::from_str::<Table>(&format!("list = {text}"))
                .ok()
                .and_then(|mut table| table.remove("list"))
                .ok_or_else(|| format!("expected a list, got {text:?}"))
        }
        Value::Array(_) => Ok(Value::Array(
            text.split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(|item| Value::String(item.to_string()))
                .collect(),
        )),
        Value::Table(_) | Value::Datetime(_) => Err("cannot be set from the environment".into()),
    }
}

/// The configuration as a TOML tree, every key present.
fn tree_of(config: &Config) -> Result<Table, ConfigError> {
    Table::try_from(config).map_err(|err| ConfigError::Invalid(format!("configuration: {err}")))
}

impl Config {
    /// Sets every key the environment names (see the module's text).
    /// Every unusable value is reported, all at once.
    pub fn apply_env(
        &mut self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<(), ConfigError> {
        let mut tree = tree_of(self)?;
        let mut problems = Vec::new();
        let mut changed = false;
        for (section, keys) in tree.iter_mut() {
            let Some(keys) = keys.as_table_mut() else {
                continue;
            };
            for (key, current) in keys.iter_mut().filter(|(_, value)| settable(value)) {
                let name = env_name(section, key);
                let alias = ALIASES
                    .iter()
                    .find(|(canonical, _)| *canonical == name)
                    .and_then(|(_, alias)| lookup(alias));
                let Some(text) = lookup(&name).or(alias) else {
                    continue;
                };
                match parse_like(current, &text) {
                    Ok(value) => {
                        *current = value;
                        changed = true;
                    }
                    Err(why) => problems.push(EnvError { name, why }.to_string()),
                }
            }
        }
        if !problems.is_empty() {
            return Err(ConfigError::Invalid(problems.join("; ")));
        }
        if changed {
            let dev = self.server.dev;
            let api_key = self.assistant.api_key.take();
            *self = tree
                .try_into()
                .map_err(|err: toml::de::Error| ConfigError::Invalid(err.message().to_string()))?;
            self.server.dev = dev;
            self.assistant.api_key = api_key;
        }
        if matches!(lookup("HEARTH_DEV").as_deref(), Some("1" | "true")) {
            self.server.dev = true;
        }
        if let Some(key) = lookup("HEARTH_ASSISTANT_API_KEY").filter(|key| !key.is_empty()) {
            self.assistant.api_key = Some(key);
        }
        Ok(())
    }
}

/// `HEARTH_*` names among `names` that set nothing: a typo would otherwise
/// go unnoticed.
pub fn unknown_env_names<'a>(names: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let known = known_names();
    names
        .filter(|name| name.starts_with("HEARTH_") && !name.starts_with(TEST_PREFIX))
        .filter(|name| !known.iter().any(|k| k == name))
        .collect()
}

fn known_names() -> Vec<String> {
    let mut known: Vec<String> = settable_keys()
        .into_iter()
        .map(|(name, _, _)| name)
        .collect();
    known.extend(ALIASES.iter().map(|(_, alias)| alias.to_string()));
    known.extend(ENV_ONLY.iter().map(|(name, _)| name.to_string()));
    known
}

/// (variable, key, default) for every key that can be set.
fn settable_keys() -> Vec<(String, String, String)> {
    let Ok(tree) = tree_of(&Config::default()) else {
        return Vec::new();
    };
    let mut keys = Vec::new();
    for (section, values) in &tree {
        let Some(values) = values.as_table() else {
            continue;
        };
        for (key, value) in values.iter().filter(|(_, value)| settable(value)) {
            keys.push((
                env_name(section, key),
                format!("{section}.{key}"),
                value.to_string(),
            ));
        }
    }
    keys
}

/// The markdown table of every variable, as README.md shows it.
pub fn env_table() -> String {
    let mut table = String::from("| variable | setting | default |\n|---|---|---|\n");
    for (name, key, default) in settable_keys() {
        let alias = ALIASES
            .iter()
            .find(|(canonical, _)| *canonical == name)
            .map(|(_, alias)| format!(" (or `{alias}`)"))
            .unwrap_or_default();
        let default = default.replace('|', "\\|");
        table.push_str(&format!("| `{name}`{alias} | `{key}` | `{default}` |\n"));
    }
    for (name, meaning) in ENV_ONLY {
        table.push_str(&format!("| `{name}` | {meaning} | |\n"));
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |key| {
            pairs
                .iter()
                .find(|(name, _)| name == key)
                .map(|(_, value)| value.clone())
        }
    }

    #[test]
    fn every_kind_of_key_follows_the_one_rule() {
        let mut config = Config::default();
        config
            .apply_env(env(&[
                ("HEARTH_SERVER_BIND", "0.0.0.0:9000"),
                ("HEARTH_LIMITS_RATE_BURST", "7"),
                ("HEARTH_LIMITS_RATE_PER_SECOND", "2.5"),
                ("HEARTH_SAFETY_MODEL_CHECK", "true"),
                (
                    "HEARTH_SERVER_ALLOWED_ORIGINS",
                    "https://a.example, https://b.example",
                ),
                ("HEARTH_CHANNELS_RECOVERY_MAX_BYTES", "1024"),
                ("HEARTH_PROGRESS_PATH", "/var/lib/hearth/p.db"),
            ]))
            .expect("applies");
        assert_eq!(config.server.bind, "0.0.0.0:9000");
        assert_eq!(config.limits.rate_burst, 7);
        assert_eq!(config.limits.rate_per_second, 2.5);
        assert!(config.safety.model_check);
        assert_eq!(
            config.server.allowed_origins,
            ["https://a.example", "https://b.example"]
        );
        assert_eq!(config.channels.recovery_max_bytes, 1024);
        assert_eq!(
            config.progress.path,
            std::path::PathBuf::from("/var/lib/hearth/p.db")
        );
        // What was not named keeps its value; the tables stay whole.
        assert_eq!(config.limits.max_connections, 100_000);
        assert_eq!(config.channels, {
            let mut rules = Config::default().channels;
            rules.recovery_max_bytes = 1024;
            rules
        });
    }

    #[test]
    fn old_names_still_work_and_the_rule_wins() {
        let mut config = Config::default();
        config
            .apply_env(env(&[
                ("HEARTH_BIND", "0.0.0.0:1"),
                ("HEARTH_JWT_SECRET", "old-name-secret-0123456789abcdef01"),
                ("HEARTH_BROKER", "redis"),
                ("HEARTH_BROKER_KIND", "memory"),
            ]))
            .expect("applies");
        assert_eq!(config.server.bind, "0.0.0.0:1");
        assert_eq!(config.auth.secret, "old-name-secret-0123456789abcdef01");
        assert_eq!(config.broker.kind, "memory");
    }

    #[test]
    fn env_only_values_and_bad_values() {
        let mut config = Config::default();
        config
            .apply_env(env(&[
                ("HEARTH_DEV", "1"),
                ("HEARTH_ASSISTANT_API_KEY", "sk-test"),
            ]))
            .expect("applies");
        assert!(config.server.dev);
        assert_eq!(config.assistant.api_key.as_deref(), Some("sk-test"));
        let Err(ConfigError::Invalid(problems)) = Config::default().apply_env(env(&[
            ("HEARTH_LIMITS_RATE_BURST", "many"),
            ("HEARTH_SAFETY_MODEL_CHECK", "perhaps"),
        ])) else {
            panic!("bad values were accepted");
        };
        assert!(problems.contains("HEARTH_LIMITS_RATE_BURST"), "{problems}");
        assert!(problems.contains("HEARTH_SAFETY_MODEL_CHECK"), "{problems}");
    }

    #[test]
    fn the_safety_model_check_needs_a_model_and_a_sane_deadline() {
        let mut config = Config::default();
        config
            .apply_env(env(&[
                ("HEARTH_SAFETY_MODEL_CHECK", "true"),
                ("HEARTH_SAFETY_MODEL_CHECK_DEADLINE_MS", "300"),
            ]))
            .expect("applies");
        assert!(config.safety.model_check);
        assert_eq!(config.safety.model_check_deadline_ms, 300);
        assert!(
            config.validate().is_err(),
            "the built-in assistant has no model"
        );
        config.assistant.kind = "openai".into();
        config.assistant.model = "m".into();
        assert!(config.validate().is_ok());
        config.safety.model_check_deadline_ms = 0;
        assert!(config.validate().is_err());
    }

    #[test]
    fn typos_are_found() {
        let names = [
            "HEARTH_SERVER_BIND",
            "HEARTH_SERVR_BIND",
            "HEARTH_DEV",
            "HEARTH_TEST_SERVICES",
            "PATH",
        ];
        assert_eq!(
            unknown_env_names(names.iter().copied()),
            ["HEARTH_SERVR_BIND"]
        );
    }

    #[test]
    fn readme_lists_every_variable() {
        let readme = include_str!("../../README.md");
        let table = env_table();
        assert!(
            readme.contains(&table),
            "README.md's environment table is out of date; it should read:\n{table}"
        );
    }
}
