//! The OData query options the emulator understands for events: extended property `$filter` with `Any()` and
//! `$expand=singleValueExtendedProperties($filter=...)`.
//!
//! Invariant: anything outside this small grammar is rejected with an error (400 upstream), never guessed at,
//! and no input panics the parser.

/// Why a query option was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    /// The text is outside the supported grammar.
    #[error("unsupported or malformed query option: {0}")]
    Unsupported(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Str(String),
    Open,
    Close,
    Colon,
    Equals,
}

fn tokenize(text: &str) -> Result<Vec<Token>, FilterError> {
    let err = || FilterError::Unsupported(text.to_string());
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            '(' => tokens.push(Token::Open),
            ')' => tokens.push(Token::Close),
            ':' => tokens.push(Token::Colon),
            '=' => tokens.push(Token::Equals),
            '\'' => {
                let mut s = String::new();
                loop {
                    match chars.next() {
                        Some('\'') if chars.peek() == Some(&'\'') => {
                            chars.next();
                            s.push('\'');
                        }
                        Some('\'') => break,
                        Some(c) => s.push(c),
                        None => return Err(err()),
                    }
                }
                tokens.push(Token::Str(s));
            }
            c if c.is_alphanumeric() || "/_.$".contains(c) => {
                let mut w = String::from(c);
                while let Some(&n) = chars.peek() {
                    if n.is_alphanumeric() || "/_.$".contains(n) {
                        w.push(n);
                        chars.next();
                    } else {
                        break;
                    }
                }
                tokens.push(Token::Word(w));
            }
            _ => return Err(err()),
        }
    }
    Ok(tokens)
}

struct Cursor {
    tokens: Vec<Token>,
    pos: usize,
    text: String,
}

impl Cursor {
    fn new(text: &str) -> Result<Self, FilterError> {
        Ok(Self { tokens: tokenize(text)?, pos: 0, text: text.to_string() })
    }
    fn err(&self) -> FilterError {
        FilterError::Unsupported(self.text.clone())
    }
    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }
    fn expect(&mut self, want: &Token) -> Result<(), FilterError> {
        (self.next().as_ref() == Some(want)).then_some(()).ok_or_else(|| self.err())
    }
    fn word(&mut self) -> Result<String, FilterError> {
        match self.next() {
            Some(Token::Word(w)) => Ok(w),
            _ => Err(self.err()),
        }
    }
    fn keyword(&mut self, want: &str) -> Result<(), FilterError> {
        let w = self.word()?;
        w.eq_ignore_ascii_case(want).then_some(()).ok_or_else(|| self.err())
    }
    fn string(&mut self) -> Result<String, FilterError> {
        match self.next() {
            Some(Token::Str(s)) => Ok(s),
            _ => Err(self.err()),
        }
    }
    fn done(&self) -> bool {
        self.pos >= self.tokens.len()
    }
    fn peek_word(&self, want: &str) -> bool {
        matches!(self.tokens.get(self.pos), Some(Token::Word(w)) if w.eq_ignore_ascii_case(want))
    }
}

/// `singleValueExtendedProperties/Any(ep: ep/id eq 'ID' [and ep/value eq 'V'])`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnyFilter {
    /// Property id to match (case-insensitive).
    pub id: String,
    /// Value to match exactly, if given.
    pub value: Option<String>,
}

/// Parses an `Any()` filter over extended properties.
pub fn parse_any_filter(text: &str) -> Result<AnyFilter, FilterError> {
    let mut c = Cursor::new(text)?;
    let head = c.word()?;
    let ok_head = head.eq_ignore_ascii_case("singleValueExtendedProperties/any");
    if !ok_head {
        return Err(c.err());
    }
    c.expect(&Token::Open)?;
    let var = c.word()?;
    c.expect(&Token::Colon)?;
    let mut id = None;
    let mut value = None;
    loop {
        let path = c.word()?;
        c.keyword("eq")?;
        let literal = c.string()?;
        match path.strip_prefix(&format!("{var}/")) {
            Some(p) if p.eq_ignore_ascii_case("id") && id.is_none() => id = Some(literal),
            Some(p) if p.eq_ignore_ascii_case("value") && value.is_none() => value = Some(literal),
            _ => return Err(c.err()),
        }
        if c.peek_word("and") {
            c.next();
            continue;
        }
        break;
    }
    c.expect(&Token::Close)?;
    if !c.done() {
        return Err(c.err());
    }
    let id = id.ok_or_else(|| c.err())?;
    Ok(AnyFilter { id, value })
}

/// Parses `singleValueExtendedProperties($filter=id eq 'A' or id eq 'B')` into the requested ids.
pub fn parse_expand(text: &str) -> Result<Vec<String>, FilterError> {
    let mut c = Cursor::new(text)?;
    c.keyword("singleValueExtendedProperties")?;
    c.expect(&Token::Open)?;
    c.keyword("$filter")?;
    c.expect(&Token::Equals)?;
    let mut ids = Vec::new();
    loop {
        c.keyword("id")?;
        c.keyword("eq")?;
        ids.push(c.string()?);
        if c.peek_word("or") {
            c.next();
            continue;
        }
        break;
    }
    c.expect(&Token::Close)?;
    if !c.done() {
        return Err(c.err());
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name BookingSystemId";

    #[test]
    fn an_any_filter_with_id_and_value_parses() {
        let f = parse_any_filter(&format!(
            "singleValueExtendedProperties/Any(ep: ep/id eq '{ID}' and ep/value eq 'it''s 42')"
        ))
        .expect("valid");
        assert_eq!(f.id, ID);
        assert_eq!(f.value.as_deref(), Some("it's 42"));
    }

    #[test]
    fn an_expand_with_two_ids_parses() {
        let ids =
            parse_expand(&format!("singleValueExtendedProperties($filter=id eq '{ID}' or id eq 'x')")).expect("valid");
        assert_eq!(ids, vec![ID.to_string(), "x".to_string()]);
    }

    #[test]
    fn malformed_filters_are_rejected_without_panicking() {
        for junk in [
            "",
            "(",
            "'",
            "singleValueExtendedProperties/Any(",
            "singleValueExtendedProperties/Any(ep: ep/id eq 'x'",
            "singleValueExtendedProperties/Any(ep: other/id eq 'x')",
            "singleValueExtendedProperties/Any(ep: ep/value eq 'x')",
            "singleValueExtendedProperties/Any(ep: ep/id eq 'x') and 1",
            "subject eq 'x'",
            "ä€𝄞",
        ] {
            assert!(parse_any_filter(junk).is_err(), "{junk:?}");
            assert!(parse_expand(junk).is_err(), "{junk:?}");
        }
    }
}
