//! A plain table for people: a header, then one row per item, columns aligned.

use std::fmt::Write as _;

/// Renders `rows` under `header`, columns separated by two spaces and padded to the widest
/// cell (in characters). Control characters in a cell become `?`: what a store holds must
/// not drive the operator's terminal.
pub(crate) fn render<const N: usize>(header: [&str; N], rows: &[[String; N]]) -> String {
    let clean = |cell: &str| -> String {
        cell.chars()
            .map(|c| if c.is_control() { '?' } else { c })
            .collect()
    };
    let header = header.map(str::to_owned);
    let rows: Vec<[String; N]> = std::iter::once(&header)
        .chain(rows)
        .map(|row| row.clone().map(|cell| clean(&cell)))
        .collect();
    let mut widths = [0; N];
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (i, (cell, width)) in row.iter().zip(widths).enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            let _ = write!(line, "{cell:<width$}");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_aligned_to_the_widest_cell() {
        let table = render(
            ["ID", "EMAIL"],
            &[
                ["1".to_owned(), "ada@example.com".to_owned()],
                ["22".to_owned(), "é@x.io".to_owned()],
            ],
        );
        assert_eq!(table, "ID  EMAIL\n1   ada@example.com\n22  é@x.io\n");
    }

    #[test]
    fn control_characters_never_reach_the_terminal() {
        let table = render(["UA"], &[["evil\u{1b}[2J".to_owned()]]);
        assert_eq!(table, "UA\nevil?[2J\n");
    }
}
