//! The fast path of reading the config: one pass over the bytes that
//! checks the JSON and finds the top-level `store` and each entry of
//! `registries` (its key and where its value is), without building
//! anything. A `get` on a warm cache pays for this pass over every byte of
//! the file, so it is written to cost a few instructions a byte: serde_json,
//! which the fallback uses, spends about ten.
//!
//! It decides nothing alone. When it accepts a document, serde_json would
//! accept it with the same structure (the `config_skim` fuzz target holds
//! it to that); when it refuses one, the caller parses again with
//! serde_json, whose error (or success, if this pass was too strict) is the
//! answer. So the messages people see are serde_json's.

/// What the pass found: spans into the text.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Skimmed {
    /// The value of `store`, if present.
    pub store: Option<(usize, usize)>,
    /// Each entry of `registries`: the key's contents (between the quotes)
    /// and the value.
    pub registries: Vec<((usize, usize), (usize, usize))>,
}

/// serde_json's nesting limit; deeper documents take the slow path.
const MAX_DEPTH: usize = 128;

/// Bytes that end the fast scan of a string: the quote, the backslash and
/// the control characters JSON forbids inside strings.
const STOPS: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = true;
        b += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
};

struct Scanner<'a> {
    bytes: &'a [u8],
    at: usize,
}

/// Any refusal: the caller asks serde_json why.
struct Refused;

type Step<T = ()> = Result<T, Refused>;

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.at += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Step {
        self.skip_whitespace();
        if self.peek() != Some(byte) {
            return Err(Refused);
        }
        self.at += 1;
        Ok(())
    }

    /// A string, the scanner on its opening quote; the span of its
    /// contents and whether it has escapes.
    fn string(&mut self) -> Step<((usize, usize), bool)> {
        self.at += 1;
        let start = self.at;
        let mut escaped = false;
        loop {
            while self.at < self.bytes.len() && !STOPS[usize::from(self.bytes[self.at])] {
                self.at += 1;
            }
            match self.peek() {
                Some(b'"') => {
                    self.at += 1;
                    return Ok(((start, self.at - 1), escaped));
                }
                Some(b'\\') => {
                    escaped = true;
                    self.at += 1;
                    match self.peek() {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.at += 1,
                        // \u escapes (surrogates included) are left to the
                        // slow path, which checks their pairing.
                        _ => return Err(Refused),
                    }
                }
                _ => return Err(Refused),
            }
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.at;
        while let Some(b'0'..=b'9') = self.peek() {
            self.at += 1;
        }
        self.at - start
    }

    fn number(&mut self) -> Step {
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.peek() {
            Some(b'0') => self.at += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(Refused),
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            if self.digits() == 0 {
                return Err(Refused);
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.at += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.at += 1;
            }
            if self.digits() == 0 {
                return Err(Refused);
            }
        }
        Ok(())
    }

    fn literal(&mut self, word: &[u8]) -> Step {
        if self.bytes[self.at..].starts_with(word) {
            self.at += word.len();
            Ok(())
        } else {
            Err(Refused)
        }
    }

    /// Any value; the scanner ends just after it.
    fn value(&mut self, depth: usize) -> Step {
        if depth > MAX_DEPTH {
            return Err(Refused);
        }
        self.skip_whitespace();
        match self.peek() {
            Some(b'{') => self.members(depth, |_, _, scanner| scanner.value(depth + 1)),
            Some(b'[') => {
                self.at += 1;
                self.skip_whitespace();
                if self.peek() == Some(b']') {
                    self.at += 1;
                    return Ok(());
                }
                loop {
                    self.value(depth + 1)?;
                    self.skip_whitespace();
                    match self.peek() {
                        Some(b',') => self.at += 1,
                        Some(b']') => {
                            self.at += 1;
                            return Ok(());
                        }
                        _ => return Err(Refused),
                    }
                }
            }
            Some(b'"') => self.string().map(drop),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            _ => self.number(),
        }
    }

    /// An object, the scanner on `{`: `member(key, escaped, scanner)` reads
    /// each value.
    fn members(
        &mut self,
        depth: usize,
        mut member: impl FnMut((usize, usize), bool, &mut Self) -> Step,
    ) -> Step {
        if depth > MAX_DEPTH {
            return Err(Refused);
        }
        self.expect(b'{')?;
        self.skip_whitespace();
        if self.peek() == Some(b'}') {
            self.at += 1;
            return Ok(());
        }
        loop {
            self.skip_whitespace();
            if self.peek() != Some(b'"') {
                return Err(Refused);
            }
            let (key, escaped) = self.string()?;
            self.expect(b':')?;
            member(key, escaped, self)?;
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b'}') => {
                    self.at += 1;
                    return Ok(());
                }
                _ => return Err(Refused),
            }
        }
    }

    /// A value's span, whitespace before it skipped.
    fn spanned_value(&mut self, depth: usize) -> Step<(usize, usize)> {
        self.skip_whitespace();
        let start = self.at;
        self.value(depth)?;
        Ok((start, self.at))
    }
}

/// Skims a config document. `None`: ask serde_json.
pub(super) fn config(text: &str) -> Option<Skimmed> {
    let mut scanner = Scanner { bytes: text.as_bytes(), at: 0 };
    let mut store = None;
    let mut registries: Option<Vec<_>> = None;
    let outcome = scanner.members(0, |key, escaped, scanner| {
        // Top-level keys are known words: anything escaped, unknown or
        // repeated is the slow path's to explain.
        match (&text.as_bytes()[key.0..key.1], escaped) {
            (b"store", false) if store.is_none() => {
                store = Some(scanner.spanned_value(1)?);
                Ok(())
            }
            (b"registries", false) if registries.is_none() => {
                let mut found = Vec::new();
                scanner.skip_whitespace();
                scanner.members(1, |key, escaped, scanner| {
                    if escaped {
                        // Unescaping is the slow path's job.
                        return Err(Refused);
                    }
                    found.push((key, scanner.spanned_value(2)?));
                    Ok(())
                })?;
                registries = Some(found);
                Ok(())
            }
            _ => Err(Refused),
        }
    });
    scanner.skip_whitespace();
    match outcome {
        Ok(()) if scanner.at == text.len() => {
            Some(Skimmed { store, registries: registries.unwrap_or_default() })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spans(text: &str) -> Option<Vec<(&str, &str)>> {
        config(text).map(|s| s.registries.iter().map(|(k, v)| (&text[k.0..k.1], &text[v.0..v.1])).collect())
    }

    #[test]
    fn entries_are_found_with_their_keys_and_values() {
        let text =
            r#" {"store": "file", "registries": {"a.example": {"x": [1, -2.5e3, true, null]}, "b": {} } } "#;
        assert_eq!(spans(text).unwrap(), [("a.example", r#"{"x": [1, -2.5e3, true, null]}"#), ("b", "{}")]);
        assert_eq!(config(text).unwrap().store.map(|(a, b)| &text[a..b]), Some("\"file\""));
    }

    #[test]
    fn malformed_documents_go_to_the_slow_path() {
        for bad in [
            r#"{"registries": {"a": {},}}"#,
            r#"{"registries": {"a": {} "b": {}}}"#,
            r#"{"registries": {"a": 01}}"#,
            r#"{"registries": {"a": tru}}"#,
            r#"{"registries": {"a": "line
break"}}"#,
            r#"{"registries": {}} x"#,
            r#"{"registries": {"a": "\q"}}"#,
            r#"{"unknown": 1}"#,
            r#"{"store": 1, "store": 2}"#,
            r#"[]"#,
            "",
        ] {
            assert!(config(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn what_is_accepted_serde_json_accepts_too() {
        for good in [r#"{}"#, r#"{"registries": {}}"#, r#"{"registries": {"a": {"b": "c\"\\\/d"}}}"#] {
            assert!(config(good).is_some(), "{good}");
            assert!(serde_json::from_str::<serde_json::Value>(good).is_ok(), "{good}");
        }
    }
}
