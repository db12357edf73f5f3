//! Where things are in the file's text, for errors: serde gives positions for syntax errors only.

/// The 1-based line of a node's key (`  r1:`) under `nodes:`, or 0.
pub fn of_node(text: &str, node: &str) -> usize {
    let nodes = of_key(text, "nodes", 0);
    find_from(text, nodes, |l| key_of(l) == Some(node))
}

/// The 1-based line of the `index`-th item (0-based) of the `links:` list, or 0.
pub fn of_link(text: &str, index: usize) -> usize {
    let links = of_key(text, "links", 0);
    if links == 0 {
        return 0;
    }
    let lines: Vec<&str> = text.lines().collect();
    let indent = lines.get(links).map(|l| l.len() - l.trim_start().len());
    let mut seen = 0;
    for (i, line) in lines.iter().enumerate().skip(links) {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let here = line.len() - trimmed.len();
        if Some(here) < indent {
            break;
        }
        if (trimmed.starts_with("- ") || trimmed == "-") && Some(here) == indent {
            if seen == index {
                return i + 1;
            }
            seen += 1;
        }
    }
    0
}

/// The 1-based line of a network's key under the top-level `networks:`, or 0.
pub fn of_network(text: &str, network: &str) -> usize {
    let networks = of_top_key(text, "networks");
    find_from(text, networks, |l| key_of(l) == Some(network))
}

/// The 1-based line of the first `key:` at or after line `from` (1-based; 0 = the start), or 0.
fn of_key(text: &str, key: &str, from: usize) -> usize {
    find_from(text, from, |l| key_of(l) == Some(key))
}

/// The 1-based line of a top-level (unindented) `key:`, or 0.
fn of_top_key(text: &str, key: &str) -> usize {
    find_from(text, 0, |l| !l.starts_with([' ', '\t']) && key_of(l) == Some(key))
}

fn find_from(text: &str, from: usize, found: impl Fn(&str) -> bool) -> usize {
    if from == 0 && !text.is_empty() {
        return text.lines().position(found).map_or(0, |i| i + 1);
    }
    text.lines().enumerate().skip(from).find(|(_, l)| found(l)).map_or(0, |(i, _)| i + 1)
}

/// The mapping key a line starts with (`  r1:` and `  "r1": x` give `r1`).
fn key_of(line: &str) -> Option<&str> {
    let trimmed = line.trim_start().trim_start_matches("- ");
    let (key, _) = trimmed.split_once(':')?;
    Some(key.trim().trim_matches(|c| c == '"' || c == '\''))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "name: t
topology:
  nodes:
    r1:
      kind: linux
    \"r2\":
      kind: linux
  links:
    - endpoints: [\"r1:eth1\", \"r2:eth1\"]
    # a comment
    - endpoints:
        - r1:eth2
        - r2:eth2
networks:
  lan:
    driver: bridge
";

    #[test]
    fn lines_of_nodes_links_and_networks() {
        assert_eq!(of_node(TEXT, "r1"), 4);
        assert_eq!(of_node(TEXT, "r2"), 6);
        assert_eq!(of_node(TEXT, "r3"), 0);
        assert_eq!(of_link(TEXT, 0), 9);
        assert_eq!(of_link(TEXT, 1), 11);
        assert_eq!(of_link(TEXT, 2), 0);
        assert_eq!(of_network(TEXT, "lan"), 15);
    }
}
