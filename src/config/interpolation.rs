//! Which `$` the environment may replace: only `${VAR}` and its `${VAR:-default}` forms, and
//! `$$` for a literal `$`. A bare `$NAME` is text.
//!
//! The parser interpolates Docker Compose style, where a bare `$NAME` is a reference too. That
//! is wrong for a policy that carries JSON Schemas (and, with OpenAPI import, whole OpenAPI
//! documents): `"$ref": "#/$defs/address"` would silently become `#//address`. So before
//! parsing, every `$` in a value scalar that starts neither `${` nor `$$` is doubled, which the
//! parser turns back into the `$` as written; the same rule then holds in every value, tool
//! schemas included. Keys are left alone: the parser never interpolates them. The value
//! scalars are found with the parser's own event stream, so quoting, block scalars and flow
//! collections are told apart exactly as the loader will read them. The doubling moves
//! columns on its line, and [`Escapes::original`] moves them back so problems point at the
//! file as written.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ops::Range;

use granit_parser::{Event, Parser, ScanError};

use super::error::Source;

/// The `$` inserted while escaping, so locations can be mapped back to the file as written.
#[derive(Debug, Default)]
pub(super) struct Escapes {
    /// Per 1-based line, the 1-based character columns (in the escaped text) of inserted `$`.
    inserted: BTreeMap<u64, Vec<u64>>,
}

/// Doubles every bare `$` (one followed by neither `{` nor `$`) inside the value scalars of
/// `text`; `Err` when the text is not YAML the parser can read.
pub(super) fn escape_bare_dollars(text: &str) -> Result<(Cow<'_, str>, Escapes), ScanError> {
    let mut escapes = Escapes::default();
    if !text.contains('$') {
        return Ok((Cow::Borrowed(text), escapes));
    }
    let values = value_scalars(text)?;
    let mut escaped = String::with_capacity(text.len() + text.len() / 16);
    let mut values = values.into_iter().peekable();
    let (mut line, mut column) = (1_u64, 1_u64);
    let mut chars = text.chars().enumerate().peekable();
    while let Some((index, c)) = chars.next() {
        while values.next_if(|value| value.end <= index).is_some() {}
        let in_value = values.peek().filter(|value| value.contains(&index));
        if c == '$'
            && let Some(value) = in_value
        {
            let next = chars.peek().filter(|(next, _)| value.contains(next)).map(|(_, next)| *next);
            match next {
                // `$$` is already an escape: keep the pair together.
                Some('$') => {
                    chars.next();
                    escaped.push_str("$$");
                    column += 2;
                    continue;
                }
                Some('{') => {}
                _ => {
                    escaped.push('$');
                    escapes.inserted.entry(line).or_default().push(column);
                    column += 1;
                }
            }
        }
        escaped.push(c);
        if c == '\n' {
            (line, column) = (line + 1, 1);
        } else {
            column += 1;
        }
    }
    Ok((Cow::Owned(escaped), escapes))
}

/// One open collection while walking the events.
struct Frame {
    mapping: bool,
    /// In a mapping: the next node is a key.
    key_next: bool,
    /// This collection is (part of) a key.
    in_key: bool,
}

/// The character ranges of the scalars the parser reads as values (not keys, nor anything
/// inside a complex key), in source order.
fn value_scalars(text: &str) -> Result<Vec<Range<usize>>, ScanError> {
    let in_key = |stack: &[Frame]| stack.last().is_some_and(|frame| frame.in_key || (frame.mapping && frame.key_next));
    let node_done = |stack: &mut [Frame]| {
        if let Some(frame) = stack.last_mut().filter(|frame| frame.mapping) {
            frame.key_next = !frame.key_next;
        }
    };
    let mut stack: Vec<Frame> = Vec::new();
    let mut values = Vec::new();
    for event in Parser::new_from_str(text) {
        let (event, span) = event?;
        match event {
            Event::Scalar(..) => {
                if !in_key(&stack) {
                    values.push(span.start.index()..span.end.index());
                }
                node_done(&mut stack);
            }
            Event::Alias(_) | Event::UnresolvedAlias(_) => node_done(&mut stack),
            Event::SequenceStart(..) | Event::MappingStart(..) => {
                let frame =
                    Frame { mapping: matches!(event, Event::MappingStart(..)), key_next: true, in_key: in_key(&stack) };
                stack.push(frame);
            }
            Event::SequenceEnd | Event::MappingEnd => {
                stack.pop();
                node_done(&mut stack);
            }
            _ => {}
        }
    }
    values.sort_by_key(|range| range.start);
    Ok(values)
}

impl Escapes {
    /// `source` in the escaped text, as a location in the file as written.
    pub(super) fn original(&self, source: Source) -> Source {
        let Source::File { line, column } = source else { return source };
        let Some(inserted) = self.inserted.get(&line) else { return source };
        let before = inserted.iter().filter(|at| **at < column).count() as u64;
        Source::File { line, column: column - before }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escaped(text: &str) -> String {
        escape_bare_dollars(text).expect("yaml").0.into_owned()
    }

    #[test]
    fn only_bare_dollars_in_values_are_doubled() {
        let cases = [
            ("a: no dollar", "a: no dollar"),
            ("$ref: \"#/$defs/a\"", "$ref: \"#/$$defs/a\""),
            ("a: ${VAR} ${VAR:-$x}", "a: ${VAR} ${VAR:-$$x}"),
            ("a: $$ $$$ $", "a: $$ $$$$ $$"),
            ("a: '^[A-Z]+$'\nb: [$ref, {$k: $v}]", "a: '^[A-Z]+$$'\nb: [$$ref, {$k: $$v}]"),
            ("a: |\n  line $one\n  line $two\n", "a: |\n  line $$one\n  line $$two\n"),
            ("? [$k, {$j: $i}]\n: $v", "? [$k, {$j: $i}]\n: $$v"),
            ("# a comment with $HOME\na: 1", "# a comment with $HOME\na: 1"),
        ];
        for (text, expected) in cases {
            assert_eq!(escaped(text), expected, "{text:?}");
        }
    }

    #[test]
    fn columns_map_back_to_the_file_as_written() {
        let (escaped, escapes) = escape_bare_dollars("a: \"$x \u{e9}$y\"\nb: 1\nc: $z\nd: 2").expect("yaml");
        assert_eq!(escaped, "a: \"$$x \u{e9}$$y\"\nb: 1\nc: $$z\nd: 2");
        // `"` closes the first value at column 11 as written, column 13 once escaped.
        assert_eq!(escapes.original(Source::File { line: 1, column: 13 }), Source::File { line: 1, column: 11 });
        assert_eq!(escapes.original(Source::File { line: 1, column: 4 }), Source::File { line: 1, column: 4 });
        assert_eq!(escapes.original(Source::File { line: 3, column: 4 }), Source::File { line: 3, column: 4 });
        assert_eq!(escapes.original(Source::File { line: 3, column: 6 }), Source::File { line: 3, column: 5 });
        assert_eq!(escapes.original(Source::File { line: 4, column: 1 }), Source::File { line: 4, column: 1 });
        assert_eq!(escapes.original(Source::Document), Source::Document);
    }

    #[test]
    fn text_the_parser_cannot_read_is_an_error() {
        assert!(escape_bare_dollars("a: [$x").is_err());
    }
}
