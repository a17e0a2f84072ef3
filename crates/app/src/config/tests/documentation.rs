//! `.env.example` and the README's configuration table say what [`settings`] says: the
//! same keys, each once, with the same defaults.

use std::collections::BTreeSet;

use auth_domain::settings::{DefaultValue, Setting};

use super::config_with;
use crate::config::settings;

fn repository_file(name: &str) -> String {
    let path = format!("{}/../../{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

fn setting(key: &str) -> &'static Setting {
    settings()
        .find(|setting| setting.key == key)
        .unwrap_or_else(|| panic!("{key} is not in config::settings()"))
}

fn known_keys() -> BTreeSet<&'static str> {
    settings().map(|setting| setting.key).collect()
}

/// The texts between backticks in `cell`.
fn quoted(cell: &str) -> Vec<&str> {
    cell.split('`').skip(1).step_by(2).collect()
}

/// `.env.example` lists the settings as `# KEY=value` lines (the value without spaces);
/// other comment lines are prose.
fn env_example() -> Vec<(String, String)> {
    repository_file(".env.example")
        .lines()
        .filter_map(|line| {
            let line = line.trim_start_matches('#').trim();
            let (key, value) = line.split_once('=')?;
            let is_key = !key.is_empty()
                && key
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
            let is_value = !value.contains(char::is_whitespace);
            (is_key && is_value).then(|| (key.to_owned(), value.to_owned()))
        })
        .collect()
}

/// The README's configuration table (`| key | default | meaning |`): each row's keys (the
/// quoted names of its first cell) and its default cell, as written.
fn readme_table() -> Vec<(Vec<String>, String)> {
    let readme = repository_file("README.md");
    let mut lines = readme
        .lines()
        .skip_while(|line| !line.starts_with("| key | default | meaning |"));
    assert!(
        lines.next().is_some(),
        "the README has a configuration table"
    );
    lines
        .skip(1)
        .take_while(|line| line.starts_with('|'))
        .map(|row| {
            let mut cells = row.split('|').skip(1).map(str::trim);
            let keys = quoted(cells.next().unwrap_or_default())
                .into_iter()
                .map(str::to_owned)
                .collect();
            (keys, cells.next().unwrap_or_default().to_owned())
        })
        .collect()
}

#[test]
fn env_example_lists_each_key_of_the_settings_once() {
    let listed: Vec<String> = env_example().into_iter().map(|(key, _)| key).collect();
    let unique: BTreeSet<&str> = listed.iter().map(String::as_str).collect();
    assert_eq!(unique.len(), listed.len(), "a key listed twice: {listed:?}");
    assert_eq!(unique, known_keys());
}

#[test]
fn env_example_shows_each_default_of_the_settings() {
    for (key, value) in env_example() {
        match setting(&key).default {
            DefaultValue::Unset => assert_eq!(value, "", "{key} has no default"),
            DefaultValue::Computed(_) => {
                assert!(!value.is_empty(), "{key}: an example of its default");
            }
            literal => assert_eq!(
                Some(value),
                literal.literal(),
                ".env.example shows another default for {key}"
            ),
        }
    }
}

#[test]
fn env_example_values_are_valid_and_mean_the_defaults() {
    let example = env_example();
    let all: Vec<(&str, &str)> = example
        .iter()
        .filter(|(key, value)| key != "SECRET_KEY" && !value.is_empty())
        .map(|(key, value)| (key.as_str(), value.as_str()))
        .collect();
    config_with(&all).expect("the example values are valid together");

    // A default that depends on the build, the machine or another key is only an example.
    let base = format!("{:?}", config_with(&[]).expect("defaults"));
    for (key, value) in &all {
        if let DefaultValue::Computed(_) = setting(key).default {
            continue;
        }
        let with = format!("{:?}", config_with(&[(key, value)]).expect("valid"));
        assert_eq!(
            with, base,
            ".env.example shows {key}={value}, not the default"
        );
    }
}

#[test]
fn the_readme_table_lists_each_key_of_the_settings_once() {
    let listed: Vec<String> = readme_table()
        .into_iter()
        .flat_map(|(keys, _)| keys)
        .collect();
    let unique: BTreeSet<&str> = listed.iter().map(String::as_str).collect();
    assert_eq!(unique.len(), listed.len(), "a key listed twice: {listed:?}");
    assert_eq!(unique, known_keys());
}

/// A row of fixed defaults quotes them in the order of its keys (`HOST`, `PORT`:
/// `` `127.0.0.1`, `5000` ``), perhaps followed by words; a row with no default starts
/// with "none"; a default worked out at start-up is said in the words of the settings.
#[test]
fn the_readme_table_shows_each_default_of_the_settings() {
    for (keys, cell) in readme_table() {
        let defaults: Vec<DefaultValue> = keys.iter().map(|key| setting(key).default).collect();
        let literals: Option<Vec<String>> = defaults.iter().map(|d| d.literal()).collect();
        match (literals, defaults.as_slice()) {
            (Some(literals), _) => {
                let shown = quoted(&cell);
                assert!(
                    shown.len() >= literals.len() && shown[..literals.len()] == literals,
                    "the README shows `{cell}` for {keys:?}, whose defaults are {literals:?}"
                );
            }
            (None, [DefaultValue::Unset]) => {
                assert!(
                    cell.starts_with("none"),
                    "{keys:?} has no default: `{cell}`"
                );
            }
            (None, [DefaultValue::Computed(words)]) => {
                assert_eq!(cell, *words, "the README's default for {keys:?}");
            }
            (None, _) => panic!("{keys:?}: a row mixes fixed and other defaults"),
        }
    }
}
