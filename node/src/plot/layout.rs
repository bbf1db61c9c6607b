//! Layout: a [`Chart`] in, a [`Scene`] out — every rectangle, line, marker and piece of text
//! of the picture in pixel coordinates (origin top left, y down). The SVG and PNG writers
//! only draw a scene, so both formats show exactly the same chart.
//!
//! Text is measured with the bitmap font's metrics ([`super::font`]): a character at scale
//! `s` advances `6s` pixels and capitals are `7s` tall, which matches a monospace font of
//! `10s` pixels in an SVG viewer closely enough for margins and legends to fit.

use super::chart::{Chart, Scale, Series, Side, Stroke, XAxis};
use super::font;
use super::ticks::{self, Ticks};

/// A colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rgb(pub u8, pub u8, pub u8);

impl Rgb {
    /// `#rrggbb`.
    pub fn hex(self) -> String {
        format!("#{:02x}{:02x}{:02x}", self.0, self.1, self.2)
    }
}

/// The paper.
pub const BACKGROUND: Rgb = Rgb(0xff, 0xff, 0xff);
/// Axes, ticks and text.
const INK: Rgb = Rgb(0x22, 0x22, 0x22);
/// Grid lines.
const GRID: Rgb = Rgb(0xe4, 0xe4, 0xe4);
/// Series colours, in order (the "tableau 10" palette).
pub const PALETTE: [Rgb; 10] = [
    Rgb(0x1f, 0x77, 0xb4),
    Rgb(0xff, 0x7f, 0x0e),
    Rgb(0x2c, 0xa0, 0x2c),
    Rgb(0xd6, 0x27, 0x28),
    Rgb(0x94, 0x67, 0xbd),
    Rgb(0x8c, 0x56, 0x4b),
    Rgb(0xe3, 0x77, 0xc2),
    Rgb(0x7f, 0x7f, 0x7f),
    Rgb(0xbc, 0xbd, 0x22),
    Rgb(0x17, 0xbe, 0xcf),
];

/// Where a text's anchor point is along it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Anchor {
    /// At its start.
    Start,
    /// At its middle.
    Middle,
    /// At its end.
    End,
}

/// One thing to draw.
#[derive(Clone, Debug, PartialEq)]
pub enum Shape {
    /// A filled axis-aligned rectangle.
    Rect {
        /// Left edge.
        x: f64,
        /// Top edge.
        y: f64,
        /// Width.
        w: f64,
        /// Height.
        h: f64,
        /// Fill colour.
        fill: Rgb,
    },
    /// A polyline.
    Line {
        /// Its vertices, at least two.
        points: Vec<(f64, f64)>,
        /// Stroke colour.
        color: Rgb,
        /// Stroke width in pixels.
        width: f64,
        /// Dash and gap length, if dashed.
        dash: Option<f64>,
    },
    /// A filled circle (a marker).
    Circle {
        /// Centre x.
        cx: f64,
        /// Centre y.
        cy: f64,
        /// Radius.
        r: f64,
        /// Fill colour.
        fill: Rgb,
    },
    /// A line of text, its baseline through `(x, y)`.
    Text {
        /// Anchor x.
        x: f64,
        /// Anchor y (on the baseline).
        y: f64,
        /// The text.
        text: String,
        /// Font scale: the bitmap font's pixels are `scale` pixels wide.
        scale: u32,
        /// Where `(x, y)` is along the text.
        anchor: Anchor,
        /// Turned a quarter anticlockwise (reads bottom to top).
        vertical: bool,
        /// Colour.
        color: Rgb,
    },
}

/// A shape, and the series it draws (none for axes, grid, text).
#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    /// Index into [`Scene::series`].
    pub series: Option<usize>,
    /// What to draw.
    pub shape: Shape,
}

/// A laid-out chart.
#[derive(Clone, Debug, PartialEq)]
pub struct Scene {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// The chart's title (the SVG's `<title>`).
    pub title: String,
    /// Series names, by index.
    pub series: Vec<String>,
    /// Shapes in drawing order (the background first).
    pub items: Vec<Item>,
}

/// Scale of tick labels, axis labels and the legend.
const TEXT: u32 = 2;
/// Scale of the title.
const TITLE: u32 = 3;
/// Margin around everything.
const PAD: f64 = 16.0;
/// Length of a tick mark.
const TICK: f64 = 6.0;
/// Space between a tick mark and its label, or between two blocks of text.
const GAP: f64 = 6.0;
/// Default size of a numeric chart.
const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 540.0;
/// Smallest plot area height.
const MIN_PLOT_HEIGHT: f64 = 240.0;
/// Largest picture side (a bar chart grows with its categories).
const MAX_SIDE: f64 = 8192.0;
/// Width of one bar, and the gap between groups of bars.
const BAR: f64 = 10.0;
const BAR_GAP: f64 = 14.0;
/// Longest category label, in characters (longer ones are cut with `…`).
const MAX_LABEL_CHARS: usize = 40;
/// Markers are drawn on series of at most this many points.
const MAX_MARKED_POINTS: usize = 80;
/// Stroke width of a solid series, and of a dashed one.
const LINE_WIDTH: f64 = 2.5;
const DASHED_WIDTH: f64 = 2.0;
/// Dash length of dashed lines.
const DASH: f64 = 7.0;
/// Marker radius.
const MARKER: f64 = 3.5;
/// Width of a legend swatch.
const SWATCH: f64 = 26.0;

/// Width in pixels of `text` at `scale`.
fn width_of(text: &str, scale: u32) -> f64 {
    f64::from(font::text_width(text) * scale)
}

/// Capital height at `scale`.
fn cap(scale: u32) -> f64 {
    f64::from(font::CAP_HEIGHT * scale)
}

/// Full cell height (descenders included) at `scale`.
fn line_height(scale: u32) -> f64 {
    f64::from(font::GLYPH_HEIGHT * scale)
}

/// `text`, cut to `max` characters with an ellipsis.
fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut s: String = text.chars().take(max.saturating_sub(1)).collect();
    s.push('…');
    s
}

/// The data range of the series on `side` (`None` without a finite point).
fn y_extent<'a>(series: impl Iterator<Item = &'a Series>, side: Side) -> Option<(f64, f64)> {
    series
        .filter(|s| s.side == side)
        .flat_map(Series::finite_points)
        .map(|(_, y)| y)
        .fold(None, |acc, y| Some(acc.map_or((y, y), |(lo, hi): (f64, f64)| (lo.min(y), hi.max(y)))))
}

/// The ticks of a y axis: its fixed range, else the data's (with 0 for bars).
fn y_ticks(range: Option<(f64, f64)>, scale: Scale, extent: Option<(f64, f64)>, with_zero: bool, target: usize) -> Ticks {
    if let Some((lo, hi)) = range {
        let mut t = ticks::linear(lo, hi, target);
        // A fixed range is kept as given, ticks outside it dropped.
        if lo.is_finite() && hi.is_finite() && lo < hi {
            t.lo = lo;
            t.hi = hi;
            let keep: Vec<bool> = t.values.iter().map(|v| *v >= lo - (hi - lo) * 1e-9 && *v <= hi + (hi - lo) * 1e-9).collect();
            t.labels = t.labels.iter().zip(&keep).filter(|(_, k)| **k).map(|(l, _)| l.clone()).collect();
            t.values = t.values.iter().zip(&keep).filter(|(_, k)| **k).map(|(v, _)| *v).collect();
        }
        return t;
    }
    let (lo, hi) = extent.unwrap_or((0.0, 1.0));
    match scale {
        Scale::Log => ticks::log(lo, hi),
        Scale::Linear if with_zero => ticks::linear(lo.min(0.0), hi.max(0.0), target),
        Scale::Linear => ticks::linear(lo, hi, target),
    }
}

/// Maps values along an axis to pixels.
#[derive(Clone, Copy, Debug)]
struct Mapping {
    lo: f64,
    hi: f64,
    from: f64,
    to: f64,
    log: bool,
}

impl Mapping {
    fn new(t: &Ticks, from: f64, to: f64, scale: Scale) -> Self {
        let log = scale == Scale::Log;
        let (lo, hi) = if log { (t.lo.log10(), t.hi.log10()) } else { (t.lo, t.hi) };
        Mapping { lo, hi, from, to, log }
    }

    /// The pixel of `v` (`None` for a value the axis cannot show: non-finite, or not
    /// positive on a log axis).
    fn at(&self, v: f64) -> Option<f64> {
        let v = if self.log {
            if v <= 0.0 {
                return None;
            }
            v.log10()
        } else {
            v
        };
        if !v.is_finite() {
            return None;
        }
        let span = self.hi - self.lo;
        let f = if span > 0.0 { (v - self.lo) / span } else { 0.5 };
        let p = self.from + f * (self.to - self.from);
        p.is_finite().then_some(p)
    }
}

/// Legend entries wrapped into rows no wider than `room`: the x offset of each entry from
/// the row start, by row.
fn legend_rows(names: &[String], room: f64) -> Vec<Vec<(usize, f64)>> {
    let mut rows: Vec<Vec<(usize, f64)>> = Vec::new();
    let mut x = 0.0;
    for (i, name) in names.iter().enumerate() {
        let w = SWATCH + GAP + width_of(name, TEXT);
        if rows.is_empty() || (x > 0.0 && x + w > room) {
            rows.push(Vec::new());
            x = 0.0;
        }
        if let Some(row) = rows.last_mut() {
            row.push((i, x));
        }
        x += w + 5.0 * GAP;
    }
    rows
}

/// Lays `chart` out.
pub fn layout(chart: &Chart) -> Scene {
    let bars = matches!(chart.x, XAxis::Categories { .. });
    let names: Vec<String> = chart.series.iter().map(|s| shorten(&s.name, 60)).collect();
    let categories: Vec<String> = match &chart.x {
        XAxis::Categories { names, .. } => names.iter().map(|n| shorten(n, MAX_LABEL_CHARS)).collect(),
        XAxis::Numeric(_) => Vec::new(),
    };
    let x_label = match &chart.x {
        XAxis::Numeric(a) => a.label.clone(),
        XAxis::Categories { label, .. } => label.clone(),
    };
    let has_right = chart.y2.is_some() && chart.series.iter().any(|s| s.side == Side::Right);

    // Width: fixed for lines; for bars, room for every group.
    let group = (chart.series.len().max(1) as f64) * BAR + BAR_GAP;
    let width = if bars { (categories.len() as f64 * group + 2.0 * 160.0).clamp(WIDTH, MAX_SIDE) } else { WIDTH };
    // A title too long for its size is drawn smaller, and cut only if that is still too
    // long.
    let title_room = |scale: u32| ((width - 2.0 * PAD) / f64::from(font::ADVANCE * scale)) as usize;
    let title_scale = if chart.title.chars().count() <= title_room(TITLE) { TITLE } else { TEXT };
    let title = shorten(&chart.title, title_room(title_scale));

    // Top: title and legend.
    let rows = legend_rows(&names, width - 2.0 * PAD);
    let row_h = line_height(TEXT) + GAP;
    let legend_top = PAD + line_height(TITLE) + GAP;
    let plot_top = legend_top + rows.len() as f64 * row_h + GAP;

    // Bottom: tick labels (category labels turn vertical when they do not fit) and the
    // axis label.
    // The plot's width is known only after the y axis labels; guess their room.
    let slot_guess = (width - 2.0 * PAD - 160.0) / categories.len().max(1) as f64;
    let vertical_categories = bars && categories.iter().any(|c| width_of(c, TEXT) > slot_guess - 4.0);
    let tick_labels_h = if vertical_categories {
        categories.iter().map(|c| width_of(c, TEXT)).fold(0.0, f64::max)
    } else {
        line_height(TEXT)
    };
    let bottom = TICK + GAP + tick_labels_h + GAP + line_height(TEXT) + PAD;
    let height = (HEIGHT.max(plot_top + MIN_PLOT_HEIGHT + bottom)).min(MAX_SIDE);
    let plot_bottom = height - bottom;
    let plot_h = (plot_bottom - plot_top).max(1.0);

    // The y axes, then the side margins their labels need.
    let target_y = ((plot_h / 45.0) as usize).max(2);
    let left = y_ticks(chart.y.range, chart.y.scale, y_extent(chart.series.iter(), Side::Left), bars, target_y);
    let right = match (&chart.y2, has_right) {
        (Some(a), true) => Some((a, y_ticks(a.range, a.scale, y_extent(chart.series.iter(), Side::Right), false, target_y))),
        _ => None,
    };
    let label_w = |t: &Ticks| t.labels.iter().map(|l| width_of(l, TEXT)).fold(0.0, f64::max);
    let axis_label_room = |label: &str| if label.is_empty() { 0.0 } else { cap(TEXT) + 2.0 * GAP };
    let plot_left = PAD + axis_label_room(&chart.y.label) + label_w(&left) + GAP + TICK;
    let plot_right = match &right {
        Some((a, t)) => width - (PAD + axis_label_room(&a.label) + label_w(t) + GAP + TICK),
        None => width - PAD - 40.0,
    };
    let plot_w = (plot_right - plot_left).max(1.0);
    let ymap = Mapping::new(&left, plot_bottom, plot_top, chart.y.scale);
    let y2map = right.as_ref().map(|(a, t)| Mapping::new(t, plot_bottom, plot_top, a.scale));

    let mut items = vec![Item { series: None, shape: Shape::Rect { x: 0.0, y: 0.0, w: width, h: height, fill: BACKGROUND } }];
    let mut push = |series: Option<usize>, shape: Shape| items.push(Item { series, shape });
    let text = |x: f64, y: f64, t: &str, scale: u32, anchor: Anchor, vertical: bool| Shape::Text {
        x,
        y,
        text: t.to_owned(),
        scale,
        anchor,
        vertical,
        color: INK,
    };
    let line = |points: Vec<(f64, f64)>, color: Rgb, width: f64| Shape::Line { points, color, width, dash: None };

    // Horizontal grid and the left axis's ticks and labels.
    for (v, l) in left.values.iter().zip(&left.labels) {
        let Some(y) = ymap.at(*v) else { continue };
        push(None, line(vec![(plot_left, y), (plot_right, y)], GRID, 1.0));
        push(None, line(vec![(plot_left - TICK, y), (plot_left, y)], INK, 1.0));
        push(None, text(plot_left - TICK - GAP, y + cap(TEXT) / 2.0, l, TEXT, Anchor::End, false));
    }
    if let (Some((a, t)), Some(m)) = (&right, &y2map) {
        for (v, l) in t.values.iter().zip(&t.labels) {
            let Some(y) = m.at(*v) else { continue };
            push(None, line(vec![(plot_right, y), (plot_right + TICK, y)], INK, 1.0));
            push(None, text(plot_right + TICK + GAP, y + cap(TEXT) / 2.0, l, TEXT, Anchor::Start, false));
        }
        if !a.label.is_empty() {
            let x = width - PAD;
            push(None, text(x, (plot_top + plot_bottom) / 2.0, &shorten(&a.label, (plot_h / 12.0) as usize), TEXT, Anchor::Middle, true));
        }
    }
    if !chart.y.label.is_empty() {
        let x = PAD + cap(TEXT);
        push(None, text(x, (plot_top + plot_bottom) / 2.0, &shorten(&chart.y.label, (plot_h / 12.0) as usize), TEXT, Anchor::Middle, true));
    }

    // The x axis, and the data.
    let label_baseline = plot_bottom + TICK + GAP + cap(TEXT);
    match &chart.x {
        XAxis::Numeric(axis) => {
            let extent = chart
                .series
                .iter()
                .flat_map(Series::finite_points)
                .map(|(x, _)| x)
                .fold(None, |acc, x| Some(acc.map_or((x, x), |(lo, hi): (f64, f64)| (lo.min(x), hi.max(x)))));
            let target_x = ((plot_w / 110.0) as usize).max(2);
            let xt = y_ticks(axis.range, axis.scale, extent, false, target_x);
            let xmap = Mapping::new(&xt, plot_left, plot_right, axis.scale);
            for (v, l) in xt.values.iter().zip(&xt.labels) {
                let Some(x) = xmap.at(*v) else { continue };
                push(None, line(vec![(x, plot_top), (x, plot_bottom)], GRID, 1.0));
                push(None, line(vec![(x, plot_bottom), (x, plot_bottom + TICK)], INK, 1.0));
                push(None, text(x, label_baseline, l, TEXT, Anchor::Middle, false));
            }
            for (i, s) in chart.series.iter().enumerate() {
                let color = PALETTE[i % PALETTE.len()];
                let m = if s.side == Side::Right { y2map.unwrap_or(ymap) } else { ymap };
                let placed: Vec<Option<(f64, f64)>> =
                    s.points.iter().map(|(x, y)| Some((xmap.at(*x)?, m.at(*y)?))).collect();
                // A gap breaks the line.
                for run in placed.split(Option::is_none) {
                    let pts: Vec<(f64, f64)> = run.iter().flatten().copied().collect();
                    if pts.len() >= 2 {
                        let shape = match s.stroke {
                            Stroke::Solid => line(pts, color, LINE_WIDTH),
                            Stroke::Dashed => Shape::Line { points: pts, color, width: DASHED_WIDTH, dash: Some(DASH) },
                        };
                        push(Some(i), shape);
                    }
                }
                let marked = placed.iter().flatten().count();
                if s.stroke == Stroke::Solid && marked <= MAX_MARKED_POINTS {
                    for (cx, cy) in placed.iter().flatten() {
                        push(Some(i), Shape::Circle { cx: *cx, cy: *cy, r: MARKER, fill: color });
                    }
                }
            }
        }
        XAxis::Categories { .. } => {
            let n = categories.len().max(1) as f64;
            let slot = plot_w / n;
            let bar = (slot * 0.8 / chart.series.len().max(1) as f64).min(4.0 * BAR);
            let zero = ymap.at(0.0f64.clamp(left.lo, left.hi)).unwrap_or(plot_bottom);
            for (c, name) in categories.iter().enumerate() {
                let centre = plot_left + (c as f64 + 0.5) * slot;
                push(None, line(vec![(centre, plot_bottom), (centre, plot_bottom + TICK)], INK, 1.0));
                if vertical_categories {
                    let x = centre + cap(TEXT) / 2.0;
                    push(None, text(x, plot_bottom + TICK + GAP, name, TEXT, Anchor::End, true));
                } else {
                    push(None, text(centre, label_baseline, name, TEXT, Anchor::Middle, false));
                }
                let group_w = bar * chart.series.len() as f64;
                for (i, s) in chart.series.iter().enumerate() {
                    let color = PALETTE[i % PALETTE.len()];
                    for (x, y) in s.finite_points() {
                        if x != c as f64 {
                            continue;
                        }
                        let Some(top) = ymap.at(y) else { continue };
                        let x0 = centre - group_w / 2.0 + i as f64 * bar;
                        let (y0, h) = if top <= zero { (top, zero - top) } else { (zero, top - zero) };
                        push(Some(i), Shape::Rect { x: x0, y: y0, w: (bar - 1.0).max(1.0), h: h.max(1.0), fill: color });
                    }
                }
            }
        }
    }

    // Axis lines over the data's ends.
    push(None, line(vec![(plot_left, plot_top), (plot_left, plot_bottom), (plot_right, plot_bottom)], INK, 1.5));
    if right.is_some() {
        push(None, line(vec![(plot_right, plot_top), (plot_right, plot_bottom)], INK, 1.5));
    }
    if !x_label.is_empty() {
        let y = height - PAD - (line_height(TEXT) - cap(TEXT));
        push(None, text((plot_left + plot_right) / 2.0, y, &shorten(&x_label, (plot_w / 12.0) as usize), TEXT, Anchor::Middle, false));
    }

    // Title and legend.
    push(None, text(width / 2.0, PAD + cap(TITLE), &title, title_scale, Anchor::Middle, false));
    for (r, row) in rows.iter().enumerate() {
        let row_w = row.last().map_or(0.0, |(i, x)| x + SWATCH + GAP + width_of(&names[*i], TEXT));
        let start = (width - row_w) / 2.0;
        let baseline = legend_top + r as f64 * row_h + cap(TEXT);
        let mid = baseline - cap(TEXT) / 2.0;
        for (i, x) in row {
            let s = &chart.series[*i];
            let color = PALETTE[i % PALETTE.len()];
            let x = start + x;
            if bars {
                push(Some(*i), Shape::Rect { x: x + SWATCH / 2.0 - 6.0, y: mid - 6.0, w: 12.0, h: 12.0, fill: color });
            } else if s.stroke == Stroke::Dashed {
                push(Some(*i), Shape::Line { points: vec![(x, mid), (x + SWATCH, mid)], color, width: DASHED_WIDTH, dash: Some(DASH) });
            } else {
                push(Some(*i), line(vec![(x, mid), (x + SWATCH, mid)], color, LINE_WIDTH));
            }
            push(None, text(x + SWATCH + GAP, baseline, &names[*i], TEXT, Anchor::Start, false));
        }
    }

    Scene {
        width: width.round() as u32,
        height: height.round() as u32,
        title: chart.title.clone(),
        series: chart.series.iter().map(|s| s.name.clone()).collect(),
        items,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::chart::{Axis, Chart, Series, XAxis};

    fn two_axes() -> Chart {
        Chart {
            title: "t".into(),
            x: XAxis::Numeric(Axis::linear("height")),
            y: Axis::fixed("accuracy", 0.0, 1.0),
            y2: Some(Axis::linear("ε")),
            series: vec![
                Series::new("accuracy", vec![(0.0, 0.5), (1.0, 0.9), (2.0, f64::NAN), (3.0, 0.95)]),
                Series::new("ε", vec![(0.0, 0.0), (3.0, 2.0)]).on_right(),
            ],
        }
    }

    fn series_shapes(scene: &Scene, i: usize) -> Vec<&Shape> {
        scene.items.iter().filter(|it| it.series == Some(i)).map(|it| &it.shape).collect()
    }

    #[test]
    fn everything_is_inside_the_picture() {
        let scene = layout(&two_axes());
        let (w, h) = (f64::from(scene.width), f64::from(scene.height));
        for it in &scene.items {
            let pts: Vec<(f64, f64)> = match &it.shape {
                Shape::Rect { x, y, w, h, .. } => vec![(*x, *y), (x + w, y + h)],
                Shape::Line { points, .. } => points.clone(),
                Shape::Circle { cx, cy, .. } => vec![(*cx, *cy)],
                Shape::Text { x, y, .. } => vec![(*x, *y)],
            };
            for (x, y) in pts {
                assert!(x.is_finite() && y.is_finite() && (0.0..=w).contains(&x) && (0.0..=h).contains(&y), "{it:?}");
            }
        }
    }

    #[test]
    fn a_gap_breaks_the_line_and_has_no_marker() {
        let scene = layout(&two_axes());
        let shapes = series_shapes(&scene, 0);
        let lines = shapes.iter().filter(|s| matches!(s, Shape::Line { .. })).count();
        let markers = shapes.iter().filter(|s| matches!(s, Shape::Circle { .. })).count();
        // One line from 0 to 1 and the legend swatch; the lone point after the gap has a
        // marker only.
        assert_eq!(lines, 2);
        assert_eq!(markers, 3);
    }

    #[test]
    fn the_right_axis_maps_its_own_range() {
        let scene = layout(&two_axes());
        let eps: Vec<(f64, f64)> = series_shapes(&scene, 1)
            .iter()
            .filter_map(|s| match s {
                Shape::Line { points, .. } if points.len() == 2 && points[0].1 != points[1].1 => Some(points.clone()),
                _ => None,
            })
            .flatten()
            .collect();
        let acc_top = series_shapes(&scene, 0)
            .iter()
            .filter_map(|s| match s {
                Shape::Circle { cy, .. } => Some(*cy),
                _ => None,
            })
            .fold(f64::INFINITY, f64::min);
        // ε = 2 is the top of its axis, above accuracy 0.95 on the left.
        assert_eq!(eps.len(), 2);
        assert!(eps[1].1 < acc_top, "{eps:?} vs {acc_top}");
    }

    #[test]
    fn bars_grow_from_zero_and_the_picture_with_the_categories() {
        let names: Vec<String> = (0..60).map(|i| format!("rule-{i} / attack")).collect();
        let chart = Chart {
            title: "bars".into(),
            x: XAxis::Categories { label: "".into(), names: names.clone() },
            y: Axis::linear("accuracy (%)"),
            y2: None,
            series: vec![Series::new("a", (0..60).map(|i| (f64::from(i), 50.0)).collect())],
        };
        let scene = layout(&chart);
        assert!(scene.width > 960);
        let bars: Vec<&Shape> = series_shapes(&scene, 0).into_iter().filter(|s| matches!(s, Shape::Rect { .. })).collect();
        // 60 bars and one legend swatch.
        assert_eq!(bars.len(), 61);
        // Long labels turn vertical.
        assert!(scene.items.iter().any(|it| matches!(&it.shape, Shape::Text { vertical: true, text, .. } if text.starts_with("rule-"))));
    }

    #[test]
    fn a_long_title_is_drawn_smaller_before_it_is_cut() {
        let title_of = |t: &str| {
            let mut c = two_axes();
            c.title = t.into();
            layout(&c)
                .items
                .into_iter()
                .find_map(|it| match it.shape {
                    // The title's baseline is the first below the top margin.
                    Shape::Text { text, scale, y, .. } if y == PAD + cap(TITLE) => Some((text, scale)),
                    _ => None,
                })
                .expect("a title")
        };
        assert_eq!(title_of("short title"), ("short title".to_owned(), TITLE));
        let sixty = "x".repeat(60);
        assert_eq!(title_of(&sixty), (sixty.clone(), TEXT));
        let long = "y".repeat(200);
        let (cut, scale) = title_of(&long);
        assert_eq!(scale, TEXT);
        assert!(cut.ends_with('…') && cut.chars().count() < 200);
    }

    #[test]
    fn long_category_labels_are_cut() {
        assert_eq!(shorten("abcdef", 4), "abc…");
        assert_eq!(shorten("abc", 4), "abc");
    }
}
