//! Reading a plan file: YAML → `Plan` (serde-saphyr), with its errors turned into `Problem`s.

use std::borrow::Cow;

use serde_saphyr::{Error as YamlError, MessageFormatter, UserMessageFormatter};

use crate::error::Problem;
use crate::model::Plan;

/// Parse the YAML text into a `Plan` (no semantic checks).
pub(crate) fn from_yaml(text: &str) -> Result<Plan, Problem> {
    let options = serde_saphyr::options! { with_snippet: false };
    serde_saphyr::from_str_with_options(text, options).map_err(|e| problem(&e, text))
}

/// Where `topology.servers` is written (for problems about the server list as a whole).
pub(crate) fn servers_location(text: &str) -> Option<(usize, usize)> {
    use crate::Spanned;
    use serde::de::IgnoredAny;
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct Doc {
        topology: Option<Spanned<Topology>>,
    }
    #[derive(Deserialize)]
    struct Topology {
        servers: Option<Spanned<IgnoredAny>>,
    }

    let options = serde_saphyr::options! { with_snippet: false };
    let doc: Doc = serde_saphyr::from_str_with_options(text, options).ok()?;
    let topology = doc.topology?;
    match &topology.servers {
        Some(servers) => servers.location(),
        None => topology.location(),
    }
}

fn problem(err: &YamlError, text: &str) -> Problem {
    let (line, column) = err
        .location()
        .map(|l| {
            (
                usize::try_from(l.line()).unwrap_or(0),
                usize::try_from(l.column()).unwrap_or(0),
            )
        })
        .unwrap_or((0, 0));
    Problem::new(line, column, message(err, text))
}

/// The innermost error: the one that says what is wrong.
fn original(err: &YamlError) -> &YamlError {
    match err {
        YamlError::WithSnippet { error, .. } | YamlError::AliasError { error, .. } => {
            original(error)
        }
        other => other,
    }
}

fn message(err: &YamlError, text: &str) -> String {
    let err = original(err);
    match err {
        YamlError::SerdeUnknownField {
            field, expected, ..
        } => {
            format!("unknown key `{field}`, expected {}", one_of(expected))
        }
        YamlError::SerdeUnknownVariant {
            variant, expected, ..
        } => {
            format!("unknown value `{variant}`, expected {}", one_of(expected))
        }
        YamlError::SerdeMissingField { field, .. } => format!("missing key `{field}`"),
        YamlError::DuplicateMappingKey { key: Some(key), .. } => format!("duplicate key `{key}`"),
        YamlError::DuplicateMappingKey { key: None, .. } => "duplicate key".to_string(),
        YamlError::InvalidScalar { ty, location } => {
            let expected = describe_expected(ty);
            match written(text, location) {
                Some(found) => format!("expected {expected}, found `{found}`"),
                None => format!("expected {expected}"),
            }
        }
        YamlError::Message { msg, location } if msg == "invalid IPv4 address syntax" => {
            match written(text, location) {
                Some(found) => {
                    format!("invalid IPv4 address `{found}`; expected an address like 198.18.0.20")
                }
                None => "invalid IPv4 address; expected an address like 198.18.0.20".to_string(),
            }
        }
        YamlError::ExpectedMappingEndAfterEnumVariantValue { .. } => {
            "a workload step has exactly one key, its kind (e.g. `exec`)".to_string()
        }
        YamlError::UnknownAnchor { .. } => "alias to an unknown anchor".to_string(),
        YamlError::SerdeInvalidType {
            unexpected,
            expected,
            ..
        } => {
            format!(
                "expected {}, found {}",
                describe_expected(expected),
                describe_found(unexpected)
            )
        }
        YamlError::SerdeInvalidValue {
            unexpected,
            expected,
            ..
        } => {
            format!(
                "invalid value {}, expected {}",
                describe_found(unexpected),
                describe_expected(expected)
            )
        }
        YamlError::Unexpected { expected, .. } => {
            format!("expected {}", describe_expected(expected))
        }
        YamlError::Eof { .. } if text.trim().is_empty() => {
            "the file is empty; a plan starts with `version: 1`".to_string()
        }
        other => UserMessageFormatter.format_message(other).into_owned(),
    }
}

/// The scalar as written at `location`, if it is short and on one line.
fn written<'t>(text: &'t str, location: &serde_saphyr::Location) -> Option<&'t str> {
    let span = location.span();
    let start = usize::try_from(span.byte_offset()?).ok()?;
    let end = start.checked_add(usize::try_from(span.byte_len()?).ok()?)?;
    text.get(start..end)
        .filter(|s| !s.is_empty() && s.chars().count() <= 60 && !s.contains(['\n', '\r']))
}

fn one_of(expected: &[&str]) -> String {
    match expected {
        [] => "nothing here".to_string(),
        [one] => format!("`{one}`"),
        many => {
            let quoted: Vec<String> = many.iter().map(|k| format!("`{k}`")).collect();
            format!("one of {}", quoted.join(", "))
        }
    }
}

/// Rust and parser words for what was expected, in plan-writer words.
fn describe_expected(expected: &str) -> Cow<'_, str> {
    Cow::Borrowed(match expected {
        "u8" => "a whole number from 0 to 255",
        "u16" => "a whole number from 0 to 65535",
        "u32" => "a whole number from 0 to 4294967295",
        "u64" | "usize" => "a whole number from 0 to 18446744073709551615",
        "u128" => "a whole number of 0 or more",
        "i8" => "a whole number from -128 to 127",
        "i16" => "a whole number from -32768 to 32767",
        "i32" => "a whole number from -2147483648 to 2147483647",
        "i64" | "isize" => "a whole number from -9223372036854775808 to 9223372036854775807",
        "i128" | "an integer" => "a whole number",
        "f32" | "f64" => "a number",
        "bool" => "true or false",
        "char" => "a single character",
        "string" | "a string" | "string scalar" => "a string",
        "scalar" => "a single value",
        "sequence start" | "seq" | "a sequence" => "a list",
        "mapping start" | "map" | "a map" => "a mapping of keys to values",
        "struct Plan" => "a plan: a mapping with keys `version`, `name`, `topology`, ...",
        other => {
            if let Some(name) = other.strip_prefix("struct ") {
                return Cow::Owned(format!("a mapping (a {name})"));
            }
            if let Some(name) = other.strip_prefix("enum ") {
                return Cow::Owned(format!("one of the {name} values"));
            }
            other
        }
    })
}

fn describe_found(unexpected: &str) -> Cow<'_, str> {
    match unexpected {
        "sequence" | "seq" => Cow::Borrowed("a list"),
        "map" | "mapping" => Cow::Borrowed("a mapping"),
        "unit value" | "null" | "unit" => Cow::Borrowed("nothing (null)"),
        other => Cow::Borrowed(other),
    }
}
