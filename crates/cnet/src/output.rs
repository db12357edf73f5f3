//! Rendering shared by all commands: Docker-style tables, Docker-style pretty JSON, ids.

use std::cmp::Ordering;

use serde::Serialize;

/// Docker's table writer: `tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)`. Every column but the
/// last is left-aligned and padded to its widest cell plus 3 spaces, and is at least 10 wide;
/// the last column is not padded.
#[derive(Debug, Clone, Default)]
pub struct Table {
    rows: Vec<Vec<String>>,
}

/// Minimum width of a padded column, padding included.
pub const TABLE_MIN_WIDTH: usize = 10;
/// Spaces after the widest cell of a column.
pub const TABLE_PADDING: usize = 3;

impl Table {
    pub fn new<I, S>(header: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut table = Self::default();
        table.row(header);
        table
    }

    pub fn row<I, S>(&mut self, cells: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.rows.push(cells.into_iter().map(Into::into).collect());
        self
    }

    /// The table, one `\n`-terminated line per row.
    pub fn render(&self) -> String {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let mut widths = vec![0usize; columns];
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let widths: Vec<usize> = widths.into_iter().map(|w| (w + TABLE_PADDING).max(TABLE_MIN_WIDTH)).collect();
        let mut out = String::new();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                out.push_str(cell);
                if i + 1 < row.len() {
                    let pad = widths[i] - cell.chars().count();
                    out.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push('\n');
        }
        out
    }
}

/// Docker shows the first 12 characters of an id unless `--no-trunc`.
pub fn short_id(id: &str) -> &str {
    match id.char_indices().nth(12) {
        Some((end, _)) => &id[..end],
        None => id,
    }
}

/// JSON indented with 4 spaces and a trailing newline, as `docker inspect` prints it.
pub fn pretty_json<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<String> {
    let mut buf = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, formatter);
    value.serialize(&mut ser)?;
    buf.push(b'\n');
    // serde_json only writes UTF-8.
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// Natural ordering (`net2` < `net10`), as Docker sorts `network ls` by name.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a, b);
    loop {
        match (a.is_empty(), b.is_empty()) {
            (true, true) => return Ordering::Equal,
            (true, false) => return Ordering::Less,
            (false, true) => return Ordering::Greater,
            _ => {}
        }
        let (ca, ra) = split_chunk(a);
        let (cb, rb) = split_chunk(b);
        let a_digits = ca.starts_with(|c: char| c.is_ascii_digit());
        let b_digits = cb.starts_with(|c: char| c.is_ascii_digit());
        let ord = if a_digits && b_digits {
            let ta = ca.trim_start_matches('0');
            let tb = cb.trim_start_matches('0');
            ta.len().cmp(&tb.len()).then_with(|| ta.cmp(tb)).then_with(|| ca.len().cmp(&cb.len()))
        } else {
            ca.cmp(cb)
        };
        if ord != Ordering::Equal {
            return ord;
        }
        a = ra;
        b = rb;
    }
}

/// Splits off the leading run of digits or of non-digits.
fn split_chunk(s: &str) -> (&str, &str) {
    let digits = s.starts_with(|c: char| c.is_ascii_digit());
    let end = s.find(|c: char| c.is_ascii_digit() != digits).unwrap_or(s.len());
    s.split_at(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_pads_to_widest_plus_three_with_min_ten() {
        let mut t = Table::new(["NETWORK ID", "NAME", "DRIVER", "SCOPE"]);
        t.row(["2f259bab93aa", "bridge", "bridge", "local"]);
        t.row(["a1b2c3d4e5f6", "my-long-network", "bridge", "local"]);
        t.row(["0123456789ab", "none", "null", "local"]);
        let expected = "\
NETWORK ID     NAME              DRIVER    SCOPE
2f259bab93aa   bridge            bridge    local
a1b2c3d4e5f6   my-long-network   bridge    local
0123456789ab   none              null      local
";
        assert_eq!(t.render(), expected);
    }

    #[test]
    fn header_only_table() {
        let t = Table::new(["NETWORK ID", "NAME", "DRIVER", "SCOPE"]);
        assert_eq!(t.render(), "NETWORK ID   NAME      DRIVER    SCOPE\n");
    }

    #[test]
    fn widths_count_characters_not_bytes() {
        let mut t = Table::new(["A", "B"]);
        t.row(["héllo-wörld", "x"]);
        let out = t.render();
        let first = out.lines().nth(1).unwrap();
        assert_eq!(first, "héllo-wörld   x");
        assert_eq!(out.lines().next().unwrap(), "A             B");
    }

    #[test]
    fn short_ids() {
        let id = "2f259bab93aaaf2f259bab93aaaf2f259bab93aaaf2f259bab93aaaf2f259bab";
        assert_eq!(short_id(id), "2f259bab93aa");
        assert_eq!(short_id("abc"), "abc");
    }

    #[test]
    fn natural_order() {
        let mut names = vec!["net10", "net2", "bridge", "net1", "Host", "net02", "none"];
        names.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(names, ["Host", "bridge", "net1", "net2", "net02", "net10", "none"]);
    }

    #[test]
    fn pretty_json_uses_four_spaces() {
        let v = serde_json::json!([{"a": {}}]);
        assert_eq!(pretty_json(&v).unwrap(), "[\n    {\n        \"a\": {}\n    }\n]\n");
    }
}
