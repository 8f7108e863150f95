//! Checks a spec's text and names must pass before they reach the YAML parser or the file
//! system: the parser's cost grows faster than linearly with nesting (100k nested `[` took
//! 41 s), and a spec's `name` becomes a folder under `reports/`.

/// The greatest nesting depth of YAML `text`: flow brackets (`[`, `{`) outside quotes and
/// comments, plus block levels (deeper indentation, and `- ` items that open a sequence on
/// the same line). It over-counts rather than under-counts, so that no text the parser would
/// nest deeply gets past it: brackets inside a block scalar count, a quote opens a quoted
/// scalar only where one can start (after a space, `[`, `{` or `,`: the quote in `la"ers` is
/// a letter), and a quoted scalar is taken to end with its line. Real specs nest about six
/// deep.
pub fn yaml_depth(text: &str) -> usize {
    let mut deepest = 0;
    let mut flow = 0usize;
    // Indentation of each open block level.
    let mut indents: Vec<usize> = Vec::new();
    for line in text.lines() {
        let content = line.trim_start_matches(' ');
        let indent = line.len() - content.len();
        let mut block = 0;
        if flow == 0 && !content.is_empty() && !content.starts_with('#') {
            while indents.last().is_some_and(|&i| i > indent) {
                indents.pop();
            }
            if indents.last() != Some(&indent) {
                indents.push(indent);
            }
            // `- - - x` nests a sequence per dash on one line.
            let mut rest = content;
            while let Some(after) = rest.strip_prefix('-') {
                if !(after.is_empty() || after.starts_with(' ')) {
                    break;
                }
                block += 1;
                rest = after.trim_start_matches(' ');
            }
        }
        deepest = deepest.max(indents.len() + block + flow);
        let mut quote: Option<char> = None;
        let mut escaped = false;
        // `''` inside single quotes is a quote, not the end and a new start.
        let mut closed_single = false;
        let mut previous = ' ';
        for c in line.chars() {
            let reopens = std::mem::take(&mut closed_single) && c == '\'';
            match (quote, c) {
                (Some('"'), _) if escaped => escaped = false,
                (Some('"'), '\\') => escaped = true,
                (Some('"'), '"') => quote = None,
                (Some('\''), '\'') => {
                    quote = None;
                    closed_single = true;
                }
                (Some(_), _) => {}
                (None, '\'') if reopens => quote = Some(c),
                (None, '"' | '\'') if matches!(previous, ' ' | '\t' | '[' | '{' | ',') => {
                    quote = Some(c)
                }
                (None, '#') if previous == ' ' || previous == '\t' => break,
                (None, '[' | '{') => {
                    flow += 1;
                    deepest = deepest.max(indents.len() + block + flow);
                }
                (None, ']' | '}') => flow = flow.saturating_sub(1),
                _ => {}
            }
            previous = c;
        }
    }
    deepest
}

/// Whether `name` can name a folder of its own under `reports/`: letters, digits, `.`, `_`
/// and `-`, starting with a letter, digit or `_` (so never `.`, `..`, a hidden folder or a
/// path), at most 100 characters.
pub fn is_plain_name(name: &str) -> bool {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    first_ok
        && name.len() <= 100
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// `name` made plain: each other character becomes `_` (for names taken from file stems,
/// which the user chose for the file system already).
pub fn plain_name(name: &str) -> String {
    let mut plain: String = name
        .chars()
        .take(100)
        .map(
            |c| match c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                true => c,
                false => '_',
            },
        )
        .collect();
    if !is_plain_name(&plain) {
        plain.insert(0, '_');
        plain.truncate(100);
    }
    plain
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_flow_block_and_dash_nesting() {
        assert_eq!(yaml_depth("a: 1\nb: 2\n"), 1);
        assert_eq!(yaml_depth("a:\n  b:\n    c: [1, [2, {d: 3}]]\n"), 6);
        assert_eq!(yaml_depth(&"[".repeat(100_000)), 100_001);
        assert_eq!(yaml_depth(&format!("x: {}", "- ".repeat(500))), 1);
        assert_eq!(yaml_depth(&format!("{}1", "- ".repeat(500))), 501);
        // Brackets in quotes and comments do not nest.
        assert_eq!(yaml_depth("a: \"[[[[\" # [[[[\nb: '{{{'\n"), 1);
        assert_eq!(yaml_depth("a: \"\\\"[[\" 'it''s [['\n"), 1);
    }

    /// Found by the fuzzer: a quote inside a word hid 20,000 nested `{a:` from the guard, and
    /// the parser took 5 s over them.
    #[test]
    fn a_quote_that_does_not_start_a_scalar_hides_nothing() {
        let nested = "{a: ".repeat(100);
        assert_eq!(yaml_depth(&format!("la\"ers:\n  - {nested}\n")), 103);
        // An escaped backslash ends before the quote; a quote left open ends with its line.
        assert_eq!(yaml_depth(&format!("x: \"\\\\\" {nested}\n")), 101);
        assert_eq!(yaml_depth(&format!("x: |\n  \"\ny: {nested}\n")), 101);
    }

    #[test]
    fn a_seed_spec_is_shallow() {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../specs/vae.yaml"))
                .unwrap();
        let depth = yaml_depth(&text);
        assert!((3..=10).contains(&depth), "{depth}");
    }

    #[test]
    fn names_are_not_paths() {
        for good in ["cnn", "mnist_mlp-2", "v1.2", "_x"] {
            assert!(is_plain_name(good), "{good}");
        }
        for bad in [
            "",
            ".",
            "..",
            "../../escaped",
            "/tmp/x",
            "a/b",
            ".hidden",
            "a b",
            "é",
        ] {
            assert!(!is_plain_name(bad), "{bad}");
        }
        assert_eq!(plain_name("my spec"), "my_spec");
        assert_eq!(plain_name(".hidden"), "_.hidden");
        assert!(is_plain_name(&plain_name(&"x".repeat(300))));
    }
}
