//! Errors of this crate. Every message names the offending field or token, says what is wrong
//! and what would be right, so that it can be shown to a template author or an API client as is.

use std::fmt;
use std::path::PathBuf;

/// One rule a manifest breaks, at a JSON path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// JSON path of the offending field, with the layer id after a layer index, e.g.
    /// ``layers[3] (`greeting`).font_size``; empty for the manifest as a whole.
    pub path: String,
    /// What is wrong and what is allowed, e.g. `0 is out of range 4..=512`.
    pub message: String,
}

impl Problem {
    /// A problem at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Why a template bundle could not be loaded, validated or resolved.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// `template.json` could not be read from the bundle folder.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file that could not be read.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// `template.json` is not JSON, or does not have the manifest's shape (unknown field, wrong
    /// type, missing field).
    #[error(
        "template.json line {line} column {column}: {}{message}",
        path_prefix(path)
    )]
    Json {
        /// JSON path where parsing stopped, e.g. ``layers[3] (`greeting`).font_size``; may be
        /// empty.
        path: String,
        /// 1-based line where parsing stopped.
        line: usize,
        /// 1-based column where parsing stopped.
        column: usize,
        /// What the parser expected.
        message: String,
    },
    /// The manifest parsed but breaks rules; every problem found is listed, one per line.
    #[error("{}", Problems::new("template", .0))]
    Invalid(Vec<Problem>),
    /// A timeline was asked for in a language the template does not declare.
    #[error("language `{lang}` is not one of the template's languages ({})", available.join(", "))]
    UnknownLanguage {
        /// The language asked for.
        lang: String,
        /// The template's `languages`.
        available: Vec<String>,
    },
    /// A text layer uses a token that has no value in the map given to
    /// [`resolve`](crate::resolve).
    #[error("{layer}: token `{token}` has no value; resolve recipient values with `resolve_tokens` first")]
    MissingToken {
        /// The layer, as ``layers[3] (`greeting`)``.
        layer: String,
        /// The token without a value.
        token: String,
    },
}

impl TemplateError {
    /// The individual problems: the list of [`TemplateError::Invalid`], or this error as a
    /// single problem (with the JSON path where there is one).
    pub fn problems(&self) -> Vec<Problem> {
        match self {
            TemplateError::Invalid(problems) => problems.clone(),
            TemplateError::Json {
                path,
                line,
                column,
                message,
            } => vec![Problem::new(
                path.clone(),
                format!("{message} (template.json line {line} column {column})"),
            )],
            TemplateError::MissingToken { layer, token } => vec![Problem::new(
                layer.clone(),
                format!("token `{token}` has no value"),
            )],
            other => vec![Problem::new("", other.to_string())],
        }
    }
}

fn path_prefix(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!("{path}: ")
    }
}

/// A list of [`Problem`]s as one message about a `subject` (`template`, `campaign`, …):
/// `invalid <subject>` for none, `invalid <subject>: <problem>` for one, and a count followed by
/// one indented line per problem for several. Every crate that reports problems formats them
/// with this, so that the CLI and the APIs print them alike.
#[derive(Debug, Clone, Copy)]
pub struct Problems<'a> {
    subject: &'a str,
    problems: &'a [Problem],
}

impl<'a> Problems<'a> {
    /// The list `problems` about `subject`.
    pub fn new(subject: &'a str, problems: &'a [Problem]) -> Problems<'a> {
        Problems { subject, problems }
    }
}

impl fmt::Display for Problems<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let subject = self.subject;
        match self.problems {
            [] => write!(f, "invalid {subject}"),
            [one] => write!(f, "invalid {subject}: {one}"),
            many => {
                write!(f, "invalid {subject}, {} problems:", many.len())?;
                for problem in many {
                    write!(f, "\n  {problem}")?;
                }
                Ok(())
            }
        }
    }
}

/// A recipient value that cannot be used, or a request for a language the template lacks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The request names a language the template does not declare.
    #[error("unknown language `{lang}` (template languages: {})", available.join(", "))]
    UnknownLanguage {
        /// The language asked for.
        lang: String,
        /// The template's `languages`.
        available: Vec<String>,
    },
    /// The request carries a value for a token the template does not declare.
    #[error("unknown token `{name}` (template tokens: {})", list_or_none(declared))]
    UnknownToken {
        /// The undeclared name.
        name: String,
        /// The template's token names.
        declared: Vec<String>,
    },
    /// The value is longer than the token's `max_length` (counted after sanitizing).
    #[error("token `{name}`: {length} characters, at most {max} allowed")]
    TooLong {
        /// The token.
        name: String,
        /// Characters (Unicode scalar values) in the sanitized value.
        length: usize,
        /// The token's `max_length`.
        max: usize,
    },
    /// A `code` token holds a character other than ASCII letters, digits, `-` and `_`.
    #[error(
        "token `{name}`: may hold only ASCII letters, digits, '-' and '_' (found {})",
        first_offender(value)
    )]
    NotCode {
        /// The token.
        name: String,
        /// The sanitized value.
        value: String,
    },
    /// A `number` token does not hold a decimal number.
    #[error("token `{name}`: a {}-character value that is not a decimal number such as `42` or `-3.5`", value.chars().count())]
    NotNumber {
        /// The token.
        name: String,
        /// The sanitized value.
        value: String,
    },
    /// A required token is missing or empty and the template has no fallback for the language.
    #[error("token `{name}` is required and has no fallback for language `{lang}`")]
    Required {
        /// The token.
        name: String,
        /// The request's language.
        lang: String,
    },
}

impl TokenError {
    /// The token the error is about, if any (none for [`TokenError::UnknownLanguage`]).
    pub fn token(&self) -> Option<&str> {
        match self {
            TokenError::UnknownLanguage { .. } => None,
            TokenError::UnknownToken { name, .. }
            | TokenError::TooLong { name, .. }
            | TokenError::NotCode { name, .. }
            | TokenError::NotNumber { name, .. }
            | TokenError::Required { name, .. } => Some(name),
        }
    }
}

/// Describes the first character a `code` token may not hold, without quoting the value (it is
/// recipient data).
fn first_offender(value: &str) -> String {
    value
        .chars()
        .enumerate()
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        .map(|(i, c)| format!("U+{:04X} at position {}", u32::from(c), i + 1))
        .unwrap_or_else(|| "an empty value".to_owned())
}

fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

/// A colour string that is not `#RRGGBB` or `#RRGGBBAA`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a colour; write `#RRGGBB` or `#RRGGBBAA` in hex, e.g. `#ff8800` or `#00000080`"
)]
pub struct ColorError(pub String);
