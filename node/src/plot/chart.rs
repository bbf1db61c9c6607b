//! The chart model: what a chart shows, before any pixel is placed. A [`Chart`] is a title,
//! an x axis (numbers, linear or logarithmic, or named categories), a left y axis, an
//! optional right y axis and series of `(x, y)` points, each drawn against one of the two
//! y axes. Callers (the devnet's history, a CSV table) build one; [`super::layout`] turns
//! it into shapes for the SVG and PNG writers.
//!
//! Non-finite coordinates are gaps: a line breaks there and no marker or bar is drawn.

/// A chart, ready for [`super::layout::layout`].
#[derive(Clone, Debug, PartialEq)]
pub struct Chart {
    /// The title above the plot area.
    pub title: String,
    /// The horizontal axis.
    pub x: XAxis,
    /// The left vertical axis.
    pub y: Axis,
    /// The right vertical axis, for series with [`Side::Right`].
    pub y2: Option<Axis>,
    /// The data, drawn in order (later series on top).
    pub series: Vec<Series>,
}

/// The horizontal axis.
#[derive(Clone, Debug, PartialEq)]
pub enum XAxis {
    /// A numeric axis; series are drawn as lines with markers.
    Numeric(Axis),
    /// Named categories at x = 0, 1, 2, …; series are drawn as grouped bars.
    Categories {
        /// The axis label.
        label: String,
        /// One name per category, in order.
        names: Vec<String>,
    },
}

/// A numeric axis.
#[derive(Clone, Debug, PartialEq)]
pub struct Axis {
    /// The axis label.
    pub label: String,
    /// Fixed bounds; `None` fits the data with nice round bounds.
    pub range: Option<(f64, f64)>,
    /// Linear or logarithmic.
    pub scale: Scale,
}

impl Axis {
    /// A linear axis fitted to the data.
    pub fn linear(label: impl Into<String>) -> Self {
        Axis { label: label.into(), range: None, scale: Scale::Linear }
    }

    /// A linear axis over `[lo, hi]` whatever the data.
    pub fn fixed(label: impl Into<String>, lo: f64, hi: f64) -> Self {
        Axis { label: label.into(), range: Some((lo, hi)), scale: Scale::Linear }
    }
}

/// How values map to positions along an axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scale {
    /// Equal steps of value, equal distances.
    Linear,
    /// Equal ratios, equal distances (positive values only).
    Log,
}

/// Which y axis a series is drawn against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The left axis.
    Left,
    /// The right axis ([`Chart::y2`]).
    Right,
}

/// How a line is stroked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stroke {
    /// A solid line with a marker at each point (markers left out on long series).
    Solid,
    /// A dashed line without markers (references such as a budget, or secondary values).
    Dashed,
}

/// One named series of points.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// The name shown in the legend.
    pub name: String,
    /// The points, in drawing order; for categories, x is the category index.
    pub points: Vec<(f64, f64)>,
    /// The y axis it is drawn against.
    pub side: Side,
    /// How its line is drawn (ignored for bars).
    pub stroke: Stroke,
}

impl Series {
    /// A solid series against the left axis.
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Series { name: name.into(), points, side: Side::Left, stroke: Stroke::Solid }
    }

    /// The same series against the right axis.
    pub fn on_right(mut self) -> Self {
        self.side = Side::Right;
        self
    }

    /// The same series, dashed.
    pub fn dashed(mut self) -> Self {
        self.stroke = Stroke::Dashed;
        self
    }

    /// The points whose coordinates are both finite.
    pub fn finite_points(&self) -> impl Iterator<Item = (f64, f64)> + '_ {
        self.points.iter().copied().filter(|(x, y)| x.is_finite() && y.is_finite())
    }
}
