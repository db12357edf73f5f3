//! The README and the end-to-end tests are kept in step: every `cnet` verb and every `--flag` the
//! README documents must be run by some end-to-end test (a file of `tests/tests/`), so a feature
//! added to the README without its test fails here. It reads files only (no root needed).
//!
//! This is a floor, not the proof: it checks that each verb and flag is *used* by a test, and the
//! tests themselves check what it does.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The text of every end-to-end test file but this one.
fn tests_text() -> String {
    let dir = workspace().join("tests/tests");
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
    let mut text = String::new();
    let mut files = 0;
    for entry in entries {
        let path = entry.unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display())).path();
        if path.extension().is_some_and(|x| x == "rs") && path.file_name().is_some_and(|n| n != "readme.rs") {
            text.push_str(&read(&path));
            files += 1;
        }
    }
    assert!(files >= 5, "found only {files} test files in {}", dir.display());
    text
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

/// Every `--flag` in `text`: two dashes, then a lowercase word.
fn flags(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (i, _) in text.match_indices("--") {
        let before = text[..i].chars().next_back();
        if before.is_some_and(|c| is_word_char(c) || c == '-') {
            continue;
        }
        let rest = &text[i + 2..];
        let word: String = rest.chars().take_while(|&c| is_word_char(c)).collect();
        if word.starts_with(|c: char| c.is_ascii_lowercase()) {
            found.insert(format!("--{word}"));
        }
    }
    found
}

/// Whether `text` holds `needle` as a whole word (not as the start of a longer flag or verb).
fn has_word(text: &str, needle: &str) -> bool {
    text.match_indices(needle).any(|(i, _)| {
        let after = text[i + needle.len()..].chars().next();
        let before = text[..i].chars().next_back();
        !after.is_some_and(is_word_char) && !before.is_some_and(|c| is_word_char(c) && c != '-')
    })
}

/// The code in a markdown text: fenced blocks and inline `spans`, one piece a line.
fn code_of(markdown: &str) -> String {
    let mut code = String::new();
    let mut fenced = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if fenced {
            code.push_str(line);
            code.push('\n');
        } else {
            for span in line.split('`').skip(1).step_by(2) {
                code.push_str(span);
                code.push('\n');
            }
        }
    }
    code
}

/// The verbs of every `cnet …` command the README shows: `ps`, `network prune`, `image import`…
fn verbs(readme: &str) -> BTreeSet<Vec<String>> {
    const GROUPS: [&str; 3] = ["network", "image", "node"];
    let mut found = BTreeSet::new();
    for (i, _) in readme.match_indices("cnet ") {
        if readme[..i].chars().next_back().is_some_and(is_word_char) {
            continue; // `cnetd `, `-cnet `
        }
        let words: Vec<&str> = readme[i + 5..].split_whitespace().take(2).collect();
        let Some(first) = words.first().map(|w| w.trim_end_matches(|c: char| !is_word_char(c))) else { continue };
        if first.is_empty() || !first.chars().all(|c| c.is_ascii_lowercase()) {
            continue;
        }
        let mut verb = vec![first.to_string()];
        if GROUPS.contains(&first)
            && let Some(second) = words.get(1).map(|w| w.trim_end_matches(|c: char| !is_word_char(c)))
            && second.chars().all(|c| c.is_ascii_lowercase())
            && !second.is_empty()
        {
            verb.push(second.to_string());
        }
        found.insert(verb);
    }
    found
}

#[test]
fn every_flag_in_the_readme_is_used_by_a_test() {
    let readme = read(&workspace().join("README.md"));
    let tests = tests_text();
    let documented = flags(&readme);
    assert!(documented.len() > 20, "the README's flags were not found: {documented:?}");
    let untested: Vec<&String> = documented.iter().filter(|f| !has_word(&tests, f)).collect();
    assert!(untested.is_empty(), "flags the README documents that no end-to-end test uses: {untested:?}");
}

#[test]
fn every_cnet_verb_in_the_readme_is_run_by_a_test() {
    let readme = read(&workspace().join("README.md"));
    let tests = tests_text();
    let documented = verbs(&code_of(&readme));
    assert!(documented.len() > 15, "the README's commands were not found: {documented:?}");
    let untested: Vec<String> = documented
        .iter()
        .filter(|verb| {
            // As the CLI's arguments in a test: `&["network", "prune", …` or `["ps"]`.
            let quoted: Vec<String> = verb.iter().map(|w| format!("\"{w}\"")).collect();
            let args = quoted.join(", ");
            !(tests.contains(&format!("[{args},")) || tests.contains(&format!("[{args}]")))
        })
        .map(|verb| verb.join(" "))
        .collect();
    assert!(untested.is_empty(), "cnet commands the README shows that no end-to-end test runs: {untested:?}");
}

#[test]
fn the_extractors_find_what_they_should() {
    let text = "cnet run -d --network n --ip-range x; cnetd --nft-table t; cnet network prune -f; see `cnet port C`.";
    assert_eq!(flags(text), ["--ip-range", "--network", "--nft-table"].map(String::from).into());
    let verbs: Vec<String> = verbs(text).into_iter().map(|v| v.join(" ")).collect();
    assert_eq!(verbs, ["network prune", "port", "run"]);
    assert!(has_word("args [\"--ip\", x]", "--ip"));
    assert!(!has_word("args [\"--ip-range\", x]", "--ip"));
    let markdown = "cnet itself is prose; `cnet port C` is code\n```sh\ncnet ps\n```\ncnet owns prose";
    assert_eq!(code_of(markdown), "cnet port C\ncnet ps\n");
}
