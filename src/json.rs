//! The house rules for JSON that comes from outside: it must be an object
//! (serde would read `["host","user","pw"]` as a positional record), and an
//! error message names the problem and the position but never quotes a
//! value, which may be a secret.

use serde::de::DeserializeOwned;

/// Why a JSON document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason} (line {line}, column {column})")]
pub struct JsonError {
    /// What is wrong, in words that quote no value.
    pub reason: String,
    /// 1-based line of the problem.
    pub line: usize,
    /// 1-based column of the problem.
    pub column: usize,
}

impl JsonError {
    pub(crate) fn from_serde(e: &serde_json::Error, text: &[u8]) -> JsonError {
        if let Some((line, column, closing)) = comma_before_closing(e, text) {
            let reason = format!("a trailing comma? JSON allows no comma before the closing {closing}");
            return JsonError { reason, line, column };
        }
        let (line, column) = position_of_error(e, text);
        JsonError { reason: describe_error(e), line, column }
    }
}

/// Parses `bytes` as a JSON object into `T`.
///
/// # Errors
/// Not JSON, not an object, or not of `T`'s shape.
pub fn from_object_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, JsonError> {
    require_object(bytes)?;
    serde_json::from_slice(bytes).map_err(|e| JsonError::from_serde(&e, bytes))
}

/// Refuses a document whose first value is not an object.
///
/// # Errors
/// The first non-whitespace byte is not `{`.
pub fn require_object(bytes: &[u8]) -> Result<(), JsonError> {
    let Some(at) = bytes.iter().position(|b| !b.is_ascii_whitespace()) else {
        return Err(JsonError { reason: "empty input; expected a JSON object".into(), line: 1, column: 1 });
    };
    if bytes[at] == b'{' {
        return Ok(());
    }
    let (line, column) = line_column(bytes, at);
    Err(JsonError { reason: "expected a JSON object {…}".into(), line, column })
}

/// serde_json's message without the parts that quote values ("invalid
/// type: string \"hunter2\", expected …" keeps only what was expected) and
/// without its own position suffix.
pub fn describe_error(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    let msg = msg.split(" at line ").next().unwrap_or(&msg);
    if msg.starts_with("invalid type") || msg.starts_with("invalid value") {
        match msg.rsplit_once(", expected ") {
            Some((_, expected)) => format!("wrong type of value, expected {expected}"),
            None => "wrong type of value".to_owned(),
        }
    } else {
        msg.to_owned()
    }
}

/// Where a parse error is. serde_json reports a trailing comma where it
/// noticed it, at the closing bracket, often on the next line; a person
/// looks for the comma, so point at it.
fn position_of_error(e: &serde_json::Error, text: &[u8]) -> (usize, usize) {
    let (line, column) = (e.line().max(1), e.column().max(1));
    if !e.to_string().starts_with("trailing comma") {
        return (line, column);
    }
    let offset = offset_of(text, line, column);
    match text[..offset.min(text.len())].iter().rposition(|&b| b == b',') {
        Some(comma) => line_column(text, comma),
        None => (line, column),
    }
}

/// A comma right before a closing `}` or `]`, which serde_json reports in
/// words that do not say so when it skips a value unparsed ("key must be
/// a string", "expected value"): where the comma is, and the bracket.
fn comma_before_closing(e: &serde_json::Error, text: &[u8]) -> Option<(usize, usize, char)> {
    let message = e.to_string();
    let known = ["trailing comma", "key must be a string", "expected value"];
    if !known.iter().any(|k| message.starts_with(k)) {
        return None;
    }
    let offset = offset_of(text, e.line().max(1), e.column().max(1));
    let closing = match text.get(offset) {
        Some(b'}') => '}',
        Some(b']') => ']',
        _ => return None,
    };
    let comma = text[..offset].iter().rposition(|b| !b.is_ascii_whitespace())?;
    if text[comma] != b',' {
        return None;
    }
    let (line, column) = line_column(text, comma);
    Some((line, column, closing))
}

/// The byte offset of a 1-based line and column.
pub fn offset_of(text: &[u8], line: usize, column: usize) -> usize {
    let line_start = if line <= 1 {
        0
    } else {
        text.iter().enumerate().filter(|(_, b)| **b == b'\n').nth(line - 2).map_or(text.len(), |(i, _)| i + 1)
    };
    (line_start + column.saturating_sub(1)).min(text.len())
}

/// The 1-based line and column of a byte offset.
pub fn line_column(text: &[u8], offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
    (line, offset - line_start + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Pair {
        a: String,
        b: String,
    }

    #[test]
    fn an_array_is_not_a_positional_record() {
        let err = from_object_slice::<Pair>(br#"["x","y"]"#).unwrap_err();
        assert!(err.reason.contains("expected a JSON object"), "{err}");
    }

    #[test]
    fn an_object_is_read() {
        assert!(from_object_slice::<Pair>(br#" {"a":"x","b":"y"}"#).is_ok());
    }

    #[test]
    fn errors_never_quote_values() {
        let err = from_object_slice::<Pair>(br#"{"a": 1, "b": "hunter2"}"#).unwrap_err();
        assert!(!err.to_string().contains("hunter2"));
        let e = serde_json::from_str::<u64>("\"hunter2\"").unwrap_err();
        assert!(!describe_error(&e).contains("hunter2"));
    }

    #[test]
    fn a_trailing_comma_is_reported_where_the_comma_is() {
        let text = b"{\n  \"a\": \"x\",\n  \"b\": \"y\",\n}\n";
        let err = from_object_slice::<Pair>(text).unwrap_err();
        assert_eq!((err.line, err.column), (3, 11), "{err}");
    }

    #[test]
    fn a_trailing_comma_inside_a_value_skipped_unparsed_is_called_one() {
        // A RawValue is skipped, not parsed: serde_json then says "key must
        // be a string" at the brace.
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Raw<'a> {
            #[serde(borrow)]
            r: &'a serde_json::value::RawValue,
        }
        let text = b"{\n  \"r\": {\n    \"a\": \"x\",\n  }\n}\n";
        let e = serde_json::from_slice::<Raw<'_>>(text).unwrap_err();
        let err = JsonError::from_serde(&e, text);
        assert!(err.reason.starts_with("a trailing comma?") && err.reason.ends_with('}'), "{err}");
        assert_eq!((err.line, err.column), (3, 13), "{err}");
    }

    #[test]
    fn a_trailing_comma_in_a_list_is_called_one() {
        let text = b"{\"a\": \"x\", \"b\": [\"y\",]}";
        let e = serde_json::from_slice::<serde_json::Value>(text).unwrap_err();
        assert!(
            JsonError::from_serde(&e, text)
                .reason
                .contains("trailing comma? JSON allows no comma before the closing ]")
        );
    }

    #[test]
    fn a_missing_key_is_not_taken_for_a_trailing_comma() {
        let text = b"{\"a\": 1, 2}";
        let e = serde_json::from_slice::<serde_json::Value>(text).unwrap_err();
        assert_eq!(JsonError::from_serde(&e, text).reason, "key must be a string");
    }

    #[test]
    fn offsets_and_positions_round_trip() {
        let text = b"ab\ncd\nef";
        assert_eq!(line_column(text, offset_of(text, 2, 2)), (2, 2));
        assert_eq!(line_column(text, 0), (1, 1));
    }
}
