//! How a command prints what it found: text for people (the default), or JSON or YAML documents for
//! scripts, whose fields are the serialized types named in `--help` and the README.

use serde::Serialize;

/// `-o`/`--output`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    #[default]
    Text,
    Json,
    Yaml,
}

/// Prints `value` as a JSON or YAML document; `text` renders it for people.
pub fn print<T: Serialize>(
    format: Format,
    value: &T,
    text: impl FnOnce(&T) -> String,
) -> Result<(), String> {
    let rendered = match format {
        Format::Text => text(value),
        Format::Json => serde_json::to_string_pretty(value)
            .map(|json| json + "\n")
            .map_err(|e| format!("cannot render JSON: {e}"))?,
        Format::Yaml => {
            serde_norway::to_string(value).map_err(|e| format!("cannot render YAML: {e}"))?
        }
    };
    print!("{rendered}");
    Ok(())
}
