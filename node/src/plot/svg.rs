//! The SVG writer: a [`Scene`] in, a standalone SVG document (a `String`) out. Hand-written
//! XML: every text and attribute value is escaped ([`escape`]), characters XML 1.0 cannot
//! hold are replaced, and each series' shapes sit in one `<g class="series">` element named
//! by a `data-series` attribute, so the file can be checked (and restyled) by series.

use std::fmt::Write;

use super::layout::{Anchor, Item, Scene, Shape};

/// `text` safe inside XML character data and double-quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Control characters other than tab and newline are not allowed in XML 1.0.
            c if (c as u32) < 0x20 && c != '\t' && c != '\n' => out.push('\u{fffd}'),
            '\u{fffe}' | '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// A coordinate with at most two decimals.
fn n(v: f64) -> String {
    let r = (v * 100.0).round() / 100.0;
    let s = format!("{r:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".to_owned() } else { s.to_owned() }
}

fn shape(out: &mut String, s: &Shape) {
    // Writing to a String cannot fail.
    let _ = match s {
        Shape::Rect { x, y, w, h, fill } => {
            writeln!(out, r#"<rect x="{}" y="{}" width="{}" height="{}" fill="{}"/>"#, n(*x), n(*y), n(*w), n(*h), fill.hex())
        }
        Shape::Line { points, color, width, dash } => {
            let pts: Vec<String> = points.iter().map(|(x, y)| format!("{},{}", n(*x), n(*y))).collect();
            let dash = dash.map(|d| format!(r#" stroke-dasharray="{} {}""#, n(d), n(d))).unwrap_or_default();
            writeln!(
                out,
                r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="{}" stroke-linejoin="round" stroke-linecap="round"{dash}/>"#,
                pts.join(" "),
                color.hex(),
                n(*width)
            )
        }
        Shape::Circle { cx, cy, r, fill } => {
            writeln!(out, r#"<circle cx="{}" cy="{}" r="{}" fill="{}"/>"#, n(*cx), n(*cy), n(*r), fill.hex())
        }
        Shape::Text { x, y, text, scale, anchor, vertical, color } => {
            let anchor = match anchor {
                Anchor::Start => "start",
                Anchor::Middle => "middle",
                Anchor::End => "end",
            };
            let rotate = if *vertical { format!(r#" transform="rotate(-90 {} {})""#, n(*x), n(*y)) } else { String::new() };
            writeln!(
                out,
                r#"<text x="{}" y="{}" font-size="{}" text-anchor="{anchor}" fill="{}"{rotate}>{}</text>"#,
                n(*x),
                n(*y),
                10 * scale,
                color.hex(),
                escape(text)
            )
        }
    };
}

/// The scene as an SVG document.
pub fn render(scene: &Scene) -> String {
    let mut out = String::new();
    let _ = writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="DejaVu Sans Mono, Menlo, Consolas, monospace">"#,
        w = scene.width,
        h = scene.height
    );
    let _ = writeln!(out, "<title>{}</title>", escape(&scene.title));
    let mut open: Option<usize> = None;
    for Item { series, shape: s } in &scene.items {
        if *series != open {
            if open.is_some() {
                out.push_str("</g>\n");
            }
            if let Some(i) = series {
                let name = scene.series.get(*i).map_or("", String::as_str);
                let _ = writeln!(out, r#"<g class="series" data-series="{}">"#, escape(name));
            }
            open = *series;
        }
        shape(&mut out, s);
    }
    if open.is_some() {
        out.push_str("</g>\n");
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::chart::{Axis, Chart, Series, XAxis};
    use crate::plot::layout::layout;

    fn chart(title: &str, points: usize) -> Chart {
        Chart {
            title: title.into(),
            x: XAxis::Numeric(Axis::linear("height")),
            y: Axis::fixed("test accuracy", 0.0, 1.0),
            y2: Some(Axis::linear("ε")),
            series: vec![
                Series::new("a < b & c", (0..points).map(|i| (i as f64, 0.5 + i as f64 / 100.0)).collect()),
                Series::new("ε spent", (0..points).map(|i| (i as f64, i as f64 * 0.1)).collect()).on_right(),
            ],
        }
    }

    /// The `<g>` element of series `name`, by its escaped attribute.
    fn group<'a>(svg: &'a str, name: &str) -> Vec<&'a str> {
        let open = format!(r#"<g class="series" data-series="{}">"#, escape(name));
        let mut found = Vec::new();
        let mut rest = svg;
        while let Some(i) = rest.find(&open) {
            let after = &rest[i + open.len()..];
            let end = after.find("</g>").unwrap_or(after.len());
            found.push(&after[..end]);
            rest = &after[end..];
        }
        found
    }

    /// Checks that every tag opened is closed in order (a small well-formedness check).
    fn balanced(svg: &str) -> Result<(), String> {
        let mut stack: Vec<String> = Vec::new();
        let mut rest = svg;
        while let Some(i) = rest.find('<') {
            let tail = &rest[i + 1..];
            let end = tail.find('>').ok_or("unclosed '<'")?;
            let tag = &tail[..end];
            rest = &tail[end + 1..];
            if tag.starts_with('?') {
                continue;
            }
            if let Some(name) = tag.strip_prefix('/') {
                let top = stack.pop().ok_or(format!("</{name}> closes nothing"))?;
                if top != name {
                    return Err(format!("</{name}> closes <{top}>"));
                }
            } else if !tag.ends_with('/') {
                let name = tag.split_whitespace().next().ok_or("empty tag")?;
                stack.push(name.to_owned());
            }
            // Text between tags holds no raw '<' or '&' other than entities.
            let text_end = rest.find('<').unwrap_or(rest.len());
            let text = &rest[..text_end];
            for (j, _) in text.match_indices('&') {
                let entity = &text[j..];
                if !["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"].iter().any(|e| entity.starts_with(e)) {
                    return Err(format!("bare '&' in {text:?}"));
                }
            }
        }
        if stack.is_empty() { Ok(()) } else { Err(format!("unclosed {stack:?}")) }
    }

    #[test]
    fn one_marker_per_point_and_a_well_formed_document() {
        let svg = render(&layout(&chart("accuracy", 7)));
        assert!(svg.starts_with("<?xml"));
        assert_eq!(balanced(&svg), Ok(()));
        let g = group(&svg, "a < b & c").concat();
        assert_eq!(g.matches("<circle").count(), 7, "{g}");
        // The data polyline has 7 points (the legend swatch has 2).
        let counts: Vec<usize> = g
            .lines()
            .filter(|l| l.starts_with("<polyline"))
            .map(|l| l.split("points=\"").nth(1).and_then(|p| p.split('"').next()).map_or(0, |p| p.split(' ').count()))
            .collect();
        assert!(counts.contains(&7), "{counts:?}");
    }

    #[test]
    fn titles_and_names_are_escaped() {
        let svg = render(&layout(&chart("x < y & \"z\" \u{1}", 3)));
        assert_eq!(balanced(&svg), Ok(()));
        assert!(svg.contains("<title>x &lt; y &amp; &quot;z&quot; \u{fffd}</title>"), "{svg}");
        assert!(svg.contains(r#"data-series="a &lt; b &amp; c""#));
        assert!(svg.contains(">a &lt; b &amp; c</text>"));
        assert!(!svg.contains("a < b"));
    }

    #[test]
    fn long_series_have_no_markers() {
        let svg = render(&layout(&chart("many", 500)));
        assert_eq!(group(&svg, "a < b & c").concat().matches("<circle").count(), 0);
    }

    #[test]
    fn coordinates_are_short_numbers() {
        assert_eq!(n(1.0), "1");
        assert_eq!(n(1.256), "1.26");
        assert_eq!(n(-0.001), "0");
        assert_eq!(n(10.5), "10.5");
    }
}
