//! A small bitmap font for the PNG writer: 5 × 9 pixel glyphs (a 7-row body and two rows
//! for descenders) for printable ASCII and the few other characters learnchain's labels
//! use (ε, σ, δ, α, ·, ×, ≤, ≥, →, ±, …, dashes). Any other character draws as a box.
//!
//! Glyphs are written below as rows of `#` (ink) and `.` (paper), parsed at compile time by
//! a `const fn`, so a malformed glyph is a build error. Data enters as a `char`
//! ([`glyph`]) and leaves as nine row bitmasks (bit 4 = leftmost column).

/// Width of a glyph in font pixels.
pub(crate) const GLYPH_WIDTH: u32 = 5;
/// Height of a glyph cell in font pixels (7 body rows, 2 descender rows).
pub(crate) const GLYPH_HEIGHT: u32 = 9;
/// Rows above the baseline: the height of a capital letter.
pub(crate) const CAP_HEIGHT: u32 = 7;
/// Horizontal advance from one glyph to the next, in font pixels.
pub(crate) const ADVANCE: u32 = 6;

/// One glyph: nine rows, bit 4 the leftmost column.
pub(crate) type Rows = [u8; GLYPH_HEIGHT as usize];

/// Parses rows of 5 `#`/`.` separated by single spaces (7 rows, or 9 with descenders).
const fn rows(s: &str) -> Rows {
    let b = s.as_bytes();
    let mut out = [0u8; GLYPH_HEIGHT as usize];
    let mut row = 0;
    let mut col = 0;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b' ' => {
                assert!(col == 5, "a glyph row must have 5 columns");
                row += 1;
                col = 0;
            }
            c => {
                assert!(c == b'#' || c == b'.', "glyph rows are made of '#' and '.'");
                assert!(col < 5 && row < GLYPH_HEIGHT as usize, "glyph too large");
                if c == b'#' {
                    out[row] |= 1 << (4 - col);
                }
                col += 1;
            }
        }
        i += 1;
    }
    assert!(col == 5 && (row == 6 || row == 8), "a glyph has 7 or 9 rows");
    out
}

/// Printable ASCII, `' '` to `'~'` in order.
const ASCII: [Rows; 95] = [
    rows("..... ..... ..... ..... ..... ..... ....."), // space
    rows("..#.. ..#.. ..#.. ..#.. ..#.. ..... ..#.."), // !
    rows(".#.#. .#.#. ..... ..... ..... ..... ....."), // "
    rows(".#.#. .#.#. ##### .#.#. ##### .#.#. .#.#."), // #
    rows("..#.. .#### #.#.. .###. ..#.# ####. ..#.."), // $
    rows("##... ##..# ...#. ..#.. .#... #..## ...##"), // %
    rows(".##.. #..#. #.#.. .#... #.#.# #..#. .##.#"), // &
    rows("..#.. ..#.. ..... ..... ..... ..... ....."), // '
    rows("...#. ..#.. .#... .#... .#... ..#.. ...#."), // (
    rows(".#... ..#.. ...#. ...#. ...#. ..#.. .#..."), // )
    rows("..... ..#.. #.#.# .###. #.#.# ..#.. ....."), // *
    rows("..... ..#.. ..#.. ##### ..#.. ..#.. ....."), // +
    rows("..... ..... ..... ..... ..... .##.. ..#.. .#... ....."), // ,
    rows("..... ..... ..... ##### ..... ..... ....."), // -
    rows("..... ..... ..... ..... ..... .##.. .##.."), // .
    rows("..... ....# ...#. ..#.. .#... #.... ....."), // /
    rows(".###. #...# #..## #.#.# ##..# #...# .###."), // 0
    rows("..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###."), // 1
    rows(".###. #...# ....# ...#. ..#.. .#... #####"), // 2
    rows("##### ...#. ..#.. ...#. ....# #...# .###."), // 3
    rows("...#. ..##. .#.#. #..#. ##### ...#. ...#."), // 4
    rows("##### #.... ####. ....# ....# #...# .###."), // 5
    rows("..##. .#... #.... ####. #...# #...# .###."), // 6
    rows("##### ....# ...#. ..#.. .#... .#... .#..."), // 7
    rows(".###. #...# #...# .###. #...# #...# .###."), // 8
    rows(".###. #...# #...# .#### ....# ...#. .##.."), // 9
    rows("..... .##.. .##.. ..... .##.. .##.. ....."), // :
    rows("..... .##.. .##.. ..... .##.. ..#.. .#..."), // ;
    rows("...#. ..#.. .#... #.... .#... ..#.. ...#."), // <
    rows("..... ..... ##### ..... ##### ..... ....."), // =
    rows(".#... ..#.. ...#. ....# ...#. ..#.. .#..."), // >
    rows(".###. #...# ....# ...#. ..#.. ..... ..#.."), // ?
    rows(".###. #...# ....# .##.# #.#.# #.#.# .###."), // @
    rows(".###. #...# #...# ##### #...# #...# #...#"), // A
    rows("####. #...# #...# ####. #...# #...# ####."), // B
    rows(".###. #...# #.... #.... #.... #...# .###."), // C
    rows("###.. #..#. #...# #...# #...# #..#. ###.."), // D
    rows("##### #.... #.... ####. #.... #.... #####"), // E
    rows("##### #.... #.... ####. #.... #.... #...."), // F
    rows(".###. #...# #.... #.### #...# #...# .####"), // G
    rows("#...# #...# #...# ##### #...# #...# #...#"), // H
    rows(".###. ..#.. ..#.. ..#.. ..#.. ..#.. .###."), // I
    rows("..### ...#. ...#. ...#. ...#. #..#. .##.."), // J
    rows("#...# #..#. #.#.. ##... #.#.. #..#. #...#"), // K
    rows("#.... #.... #.... #.... #.... #.... #####"), // L
    rows("#...# ##.## #.#.# #.#.# #...# #...# #...#"), // M
    rows("#...# #...# ##..# #.#.# #..## #...# #...#"), // N
    rows(".###. #...# #...# #...# #...# #...# .###."), // O
    rows("####. #...# #...# ####. #.... #.... #...."), // P
    rows(".###. #...# #...# #...# #.#.# #..#. .##.#"), // Q
    rows("####. #...# #...# ####. #.#.. #..#. #...#"), // R
    rows(".#### #.... #.... .###. ....# ....# ####."), // S
    rows("##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#.."), // T
    rows("#...# #...# #...# #...# #...# #...# .###."), // U
    rows("#...# #...# #...# #...# #...# .#.#. ..#.."), // V
    rows("#...# #...# #...# #.#.# #.#.# #.#.# .#.#."), // W
    rows("#...# #...# .#.#. ..#.. .#.#. #...# #...#"), // X
    rows("#...# #...# .#.#. ..#.. ..#.. ..#.. ..#.."), // Y
    rows("##### ....# ...#. ..#.. .#... #.... #####"), // Z
    rows(".###. .#... .#... .#... .#... .#... .###."), // [
    rows("..... #.... .#... ..#.. ...#. ....# ....."), // backslash
    rows(".###. ...#. ...#. ...#. ...#. ...#. .###."), // ]
    rows("..#.. .#.#. #...# ..... ..... ..... ....."), // ^
    rows("..... ..... ..... ..... ..... ..... ..... ##### ....."), // _
    rows(".#... ..#.. ..... ..... ..... ..... ....."), // `
    rows("..... ..... .###. ....# .#### #...# .####"), // a
    rows("#.... #.... #.##. ##..# #...# #...# ####."), // b
    rows("..... ..... .###. #.... #.... #...# .###."), // c
    rows("....# ....# .##.# #..## #...# #...# .####"), // d
    rows("..... ..... .###. #...# ##### #.... .###."), // e
    rows("..##. .#..# .#... ###.. .#... .#... .#..."), // f
    rows("..... ..... .#### #...# #...# #...# .#### ....# .###."), // g
    rows("#.... #.... #.##. ##..# #...# #...# #...#"), // h
    rows("..#.. ..... .##.. ..#.. ..#.. ..#.. .###."), // i
    rows("...#. ..... ..##. ...#. ...#. ...#. ...#. #..#. .##.."), // j
    rows("#.... #.... #..#. #.#.. ##... #.#.. #..#."), // k
    rows(".##.. ..#.. ..#.. ..#.. ..#.. ..#.. .###."), // l
    rows("..... ..... ##.#. #.#.# #.#.# #.#.# #.#.#"), // m
    rows("..... ..... #.##. ##..# #...# #...# #...#"), // n
    rows("..... ..... .###. #...# #...# #...# .###."), // o
    rows("..... ..... ####. #...# #...# #...# ####. #.... #...."), // p
    rows("..... ..... .#### #...# #...# #...# .#### ....# ....#"), // q
    rows("..... ..... #.##. ##..# #.... #.... #...."), // r
    rows("..... ..... .###. #.... .###. ....# ####."), // s
    rows(".#... .#... ###.. .#... .#... .#..# ..##."), // t
    rows("..... ..... #...# #...# #...# #..## .##.#"), // u
    rows("..... ..... #...# #...# #...# .#.#. ..#.."), // v
    rows("..... ..... #...# #...# #.#.# #.#.# .#.#."), // w
    rows("..... ..... #...# .#.#. ..#.. .#.#. #...#"), // x
    rows("..... ..... #...# #...# #...# #...# .#### ....# .###."), // y
    rows("..... ..... ##### ...#. ..#.. .#... #####"), // z
    rows("...#. ..#.. ..#.. .#... ..#.. ..#.. ...#."), // {
    rows("..#.. ..#.. ..#.. ..#.. ..#.. ..#.. ..#.."), // |
    rows(".#... ..#.. ..#.. ...#. ..#.. ..#.. .#..."), // }
    rows("..... ..... .#... #.#.# ...#. ..... ....."), // ~
];

/// The characters beyond ASCII that labels use.
const EXTRA: [(char, Rows); 14] = [
    ('ε', rows("..... ..... .###. #.... .##.. #.... .###.")),
    ('σ', rows("..... ..... .#### #..#. #...# #...# .###.")),
    ('δ', rows(".###. .#... ..#.. .###. #...# #...# .###.")),
    ('α', rows("..... ..... .##.# #..#. #..#. #..#. .##.#")),
    ('·', rows("..... ..... ..... ..#.. ..... ..... .....")),
    ('×', rows("..... #...# .#.#. ..#.. .#.#. #...# .....")),
    ('≤', rows("...#. ..#.. .#... ..#.. ...#. ..... #####")),
    ('≥', rows(".#... ..#.. ...#. ..#.. .#... ..... #####")),
    ('→', rows("..... ..#.. ...#. ##### ...#. ..#.. .....")),
    ('±', rows("..#.. ..#.. ##### ..#.. ..#.. ..... #####")),
    ('…', rows("..... ..... ..... ..... ..... ..... #.#.#")),
    ('—', rows("..... ..... ..... ##### ..... ..... .....")),
    ('–', rows("..... ..... ..... ##### ..... ..... .....")),
    ('−', rows("..... ..... ..... ##### ..... ..... .....")),
];

/// What a character without a glyph draws as.
const MISSING: Rows = rows("##### #...# #...# #...# #...# #...# #####");

/// The glyph of `c` (a box for characters the font does not have).
pub(crate) fn glyph(c: char) -> Rows {
    let code = c as u32;
    if (0x20..=0x7e).contains(&code) {
        return ASCII[(code - 0x20) as usize];
    }
    EXTRA.iter().find(|(e, _)| *e == c).map_or(MISSING, |(_, r)| *r)
}

/// Width in font pixels of `text` drawn with [`ADVANCE`] per character (no trailing gap).
pub(crate) fn text_width(text: &str) -> u32 {
    let n = text.chars().count() as u32;
    (n * ADVANCE).saturating_sub(ADVANCE - GLYPH_WIDTH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_printable_ascii_character_has_ink_except_space() {
        for c in '!'..='~' {
            assert!(glyph(c).iter().any(|r| *r != 0), "{c:?} is blank");
        }
        assert!(glyph(' ').iter().all(|r| *r == 0));
    }

    #[test]
    fn distinct_characters_look_different() {
        let all: Vec<char> = ('!'..='~').chain(EXTRA.iter().map(|(c, _)| *c)).collect();
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                // The dashes and the minus sign are meant to look alike.
                let dashes = ['-', '—', '–', '−'];
                if dashes.contains(a) && dashes.contains(b) {
                    continue;
                }
                assert_ne!(glyph(*a), glyph(*b), "{a:?} and {b:?} share a glyph");
            }
        }
    }

    #[test]
    fn unknown_characters_draw_as_a_box() {
        assert_eq!(glyph('龍'), MISSING);
        assert_ne!(glyph('ε'), MISSING);
        assert_ne!(glyph('A'), MISSING);
    }

    #[test]
    fn text_width_counts_characters_not_bytes() {
        assert_eq!(text_width(""), 0);
        assert_eq!(text_width("a"), GLYPH_WIDTH);
        assert_eq!(text_width("εε"), ADVANCE + GLYPH_WIDTH);
    }
}
