//! The PNG writer: a [`Scene`] in, PNG bytes out. Shapes are rasterized here into an RGB
//! buffer — lines and markers anti-aliased by their distance to each pixel centre, text
//! from the bitmap font ([`super::font`]) — and the `png` crate only encodes the buffer.
//! No system font or native library is involved, so a PNG is the same on every machine.

use super::font;
use super::layout::{Anchor, Rgb, Scene, Shape};

/// An RGB picture being drawn.
#[derive(Clone, Debug)]
pub struct Canvas {
    width: usize,
    height: usize,
    rgb: Vec<u8>,
    /// Coverage of the shape being drawn, per pixel, so a polyline's overlapping segments
    /// blend once.
    cover: Vec<f32>,
}

impl Canvas {
    /// A white canvas.
    pub fn new(width: u32, height: u32) -> Self {
        let (width, height) = (width.max(1) as usize, height.max(1) as usize);
        Canvas { width, height, rgb: vec![0xff; width * height * 3], cover: vec![0.0; width * height] }
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width as u32
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height as u32
    }

    /// The colour of pixel `(x, y)` (`None` outside).
    pub fn pixel(&self, x: u32, y: u32) -> Option<Rgb> {
        let (x, y) = (x as usize, y as usize);
        (x < self.width && y < self.height).then(|| {
            let i = (y * self.width + x) * 3;
            Rgb(self.rgb[i], self.rgb[i + 1], self.rgb[i + 2])
        })
    }

    /// The pixels, row by row, three bytes each.
    pub fn rgb(&self) -> &[u8] {
        &self.rgb
    }

    fn blend(&mut self, x: usize, y: usize, c: Rgb, a: f32) {
        let i = (y * self.width + x) * 3;
        let a = a.clamp(0.0, 1.0);
        for (k, v) in [c.0, c.1, c.2].into_iter().enumerate() {
            let old = f32::from(self.rgb[i + k]);
            self.rgb[i + k] = (old + (f32::from(v) - old) * a).round() as u8;
        }
    }

    /// The pixel range `[lo, hi)` covering `[a, b]` on an axis of `len` pixels.
    fn span(a: f64, b: f64, len: usize) -> (usize, usize) {
        let lo = a.min(b).floor().max(0.0);
        let hi = (a.max(b).ceil() + 1.0).min(len as f64);
        if !(lo.is_finite() && hi.is_finite()) || hi <= lo {
            return (0, 0);
        }
        (lo as usize, hi as usize)
    }

    /// Adds a segment's coverage (a capsule of `width`) to the coverage buffer; returns the
    /// pixel box it touched.
    fn cover_segment(&mut self, (x0, y0): (f64, f64), (x1, y1): (f64, f64), width: f64) -> [usize; 4] {
        let r = width / 2.0;
        let (xa, xb) = Self::span(x0.min(x1) - r - 1.0, x0.max(x1) + r + 1.0, self.width);
        let (ya, yb) = Self::span(y0.min(y1) - r - 1.0, y0.max(y1) + r + 1.0, self.height);
        let (dx, dy) = (x1 - x0, y1 - y0);
        let len2 = dx * dx + dy * dy;
        for py in ya..yb {
            for px in xa..xb {
                let (cx, cy) = (px as f64 + 0.5, py as f64 + 0.5);
                let t = if len2 > 0.0 { (((cx - x0) * dx + (cy - y0) * dy) / len2).clamp(0.0, 1.0) } else { 0.0 };
                let (nx, ny) = (x0 + t * dx - cx, y0 + t * dy - cy);
                let d = (nx * nx + ny * ny).sqrt();
                let c = (r + 0.5 - d).clamp(0.0, 1.0) as f32;
                let cell = &mut self.cover[py * self.width + px];
                *cell = cell.max(c);
            }
        }
        [xa, xb, ya, yb]
    }

    /// Blends `color` by the coverage buffer inside `area` and clears it.
    fn flush(&mut self, area: [usize; 4], color: Rgb) {
        let [xa, xb, ya, yb] = area;
        for py in ya..yb {
            for px in xa..xb {
                let i = py * self.width + px;
                let c = self.cover[i];
                if c > 0.0 {
                    self.cover[i] = 0.0;
                    self.blend(px, py, color, c);
                }
            }
        }
    }

    /// Strokes a polyline (dashed: alternating `dash` pixels drawn and skipped).
    pub fn polyline(&mut self, points: &[(f64, f64)], color: Rgb, width: f64, dash: Option<f64>) {
        let mut area = [usize::MAX, 0, usize::MAX, 0];
        let mut grow = |a: [usize; 4]| {
            if a[0] < a[1] && a[2] < a[3] {
                area = [area[0].min(a[0]), area[1].max(a[1]), area[2].min(a[2]), area[3].max(a[3])];
            }
        };
        // Distance along the line so far, for dashes.
        let mut along = 0.0;
        for w in points.windows(2) {
            let (p, q) = (w[0], w[1]);
            if !(p.0.is_finite() && p.1.is_finite() && q.0.is_finite() && q.1.is_finite()) {
                continue;
            }
            let len = ((q.0 - p.0).powi(2) + (q.1 - p.1).powi(2)).sqrt();
            match dash {
                Some(d) if d > 0.0 && len > 0.0 => {
                    let mut t = 0.0;
                    while t < len {
                        let phase = (along + t) % (2.0 * d);
                        let run = if phase < d { d - phase } else { 2.0 * d - phase };
                        let end = (t + run).min(len);
                        if phase < d {
                            let at = |s: f64| (p.0 + (q.0 - p.0) * s / len, p.1 + (q.1 - p.1) * s / len);
                            grow(self.cover_segment(at(t), at(end), width));
                        }
                        t = end;
                    }
                }
                _ => grow(self.cover_segment(p, q, width)),
            }
            along += len;
        }
        if area[0] < area[1] {
            self.flush(area, color);
        }
    }

    /// Fills a circle.
    pub fn circle(&mut self, cx: f64, cy: f64, r: f64, color: Rgb) {
        let (xa, xb) = Self::span(cx - r - 1.0, cx + r + 1.0, self.width);
        let (ya, yb) = Self::span(cy - r - 1.0, cy + r + 1.0, self.height);
        for py in ya..yb {
            for px in xa..xb {
                let d = ((px as f64 + 0.5 - cx).powi(2) + (py as f64 + 0.5 - cy).powi(2)).sqrt();
                let c = (r + 0.5 - d).clamp(0.0, 1.0) as f32;
                if c > 0.0 {
                    self.blend(px, py, color, c);
                }
            }
        }
    }

    /// Fills a rectangle, edges blended by the fraction of each pixel they cover.
    pub fn rect(&mut self, x: f64, y: f64, w: f64, h: f64, color: Rgb) {
        let (x1, y1) = (x + w, y + h);
        let (xa, xb) = Self::span(x, x1, self.width);
        let (ya, yb) = Self::span(y, y1, self.height);
        for py in ya..yb {
            let fy = ((py as f64 + 1.0).min(y1) - (py as f64).max(y)).clamp(0.0, 1.0);
            for px in xa..xb {
                let fx = ((px as f64 + 1.0).min(x1) - (px as f64).max(x)).clamp(0.0, 1.0);
                let c = (fx * fy) as f32;
                if c > 0.0 {
                    self.blend(px, py, color, c);
                }
            }
        }
    }

    /// Draws `text` with its baseline through `(x, y)`, each font pixel a `scale`-pixel
    /// square; `vertical` turns it a quarter anticlockwise about the anchor.
    pub fn text(&mut self, (x, y): (f64, f64), text: &str, scale: u32, anchor: Anchor, vertical: bool, color: Rgb) {
        let s = f64::from(scale.max(1));
        let w = f64::from(font::text_width(text)) * s;
        let start = match anchor {
            Anchor::Start => 0.0,
            Anchor::Middle => -w / 2.0,
            Anchor::End => -w,
        };
        let (x, y) = (x.round(), y.round());
        for (k, c) in text.chars().enumerate() {
            let rows = font::glyph(c);
            let pen = (start + (k as f64) * f64::from(font::ADVANCE) * s).round();
            for (gy, bits) in rows.iter().enumerate() {
                for gx in 0..font::GLYPH_WIDTH {
                    if bits & (1 << (font::GLYPH_WIDTH - 1 - gx)) == 0 {
                        continue;
                    }
                    // Along the text (u) and down from the baseline (v), in pixels.
                    let u = pen + f64::from(gx) * s;
                    let v = (gy as f64 - f64::from(font::CAP_HEIGHT)) * s;
                    let (px, py) = if vertical { (x + v, y - u - s) } else { (x + u, y + v) };
                    self.rect(px, py, s, s, color);
                }
            }
        }
    }

    /// Draws every shape of `scene`, in order.
    pub fn draw(&mut self, scene: &Scene) {
        for item in &scene.items {
            match &item.shape {
                Shape::Rect { x, y, w, h, fill } => self.rect(*x, *y, *w, *h, *fill),
                Shape::Line { points, color, width, dash } => self.polyline(points, *color, *width, *dash),
                Shape::Circle { cx, cy, r, fill } => self.circle(*cx, *cy, *r, *fill),
                Shape::Text { x, y, text, scale, anchor, vertical, color } => {
                    self.text((*x, *y), text, *scale, *anchor, *vertical, *color);
                }
            }
        }
    }
}

/// The scene rasterized.
pub fn rasterize(scene: &Scene) -> Canvas {
    let mut canvas = Canvas::new(scene.width, scene.height);
    canvas.draw(scene);
    canvas
}

/// The canvas as a PNG file (8-bit RGB).
pub fn encode_png(canvas: &Canvas) -> Result<Vec<u8>, png::EncodingError> {
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, canvas.width(), canvas.height());
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_compression(png::Compression::Balanced);
        let mut writer = encoder.write_header()?;
        writer.write_image_data(canvas.rgb())?;
        writer.finish()?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::chart::{Axis, Chart, Series, XAxis};
    use crate::plot::layout::{BACKGROUND, PALETTE, layout};

    fn decode(bytes: &[u8]) -> (u32, u32, Vec<u8>) {
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().expect("a PNG header");
        let size = reader.output_buffer_size().expect("a buffer size");
        let mut buf = vec![0; size];
        let info = reader.next_frame(&mut buf).expect("a frame");
        assert_eq!(info.color_type, png::ColorType::Rgb);
        buf.truncate(info.buffer_size());
        (info.width, info.height, buf)
    }

    #[test]
    fn a_thick_line_covers_its_centre_and_fades_at_its_edges() {
        let mut c = Canvas::new(40, 20);
        let red = Rgb(255, 0, 0);
        c.polyline(&[(2.0, 10.0), (38.0, 10.0)], red, 3.0, None);
        assert_eq!(c.pixel(20, 9), Some(red));
        assert_eq!(c.pixel(20, 10), Some(red));
        assert_eq!(c.pixel(20, 3), Some(BACKGROUND));
        // Just outside the stroke, a blend of red and white.
        let edge = c.pixel(20, 11).expect("inside");
        assert!(edge.0 == 255 && edge.1 > 0 && edge.1 < 255, "{edge:?}");
    }

    #[test]
    fn joints_of_a_polyline_blend_once() {
        let blue = Rgb(0, 0, 200);
        let mut c = Canvas::new(40, 40);
        c.polyline(&[(5.0, 20.0), (20.0, 20.3), (35.0, 20.6)], blue, 2.0, None);
        // Pixel (20, 21) is at the edge of both segments; the second covers more of it.
        // Blended once, it is what the second segment alone draws there.
        let mut second = Canvas::new(40, 40);
        second.polyline(&[(20.0, 20.3), (35.0, 20.6)], blue, 2.0, None);
        let joint = c.pixel(20, 21);
        assert_ne!(joint, Some(BACKGROUND));
        assert_ne!(joint, Some(blue));
        assert_eq!(joint, second.pixel(20, 21));
    }

    #[test]
    fn dashes_leave_gaps() {
        let mut c = Canvas::new(60, 10);
        let ink = Rgb(0, 0, 0);
        c.polyline(&[(0.0, 5.0), (60.0, 5.0)], ink, 2.0, Some(10.0));
        assert_eq!(c.pixel(5, 5), Some(ink));
        assert_eq!(c.pixel(15, 5), Some(BACKGROUND));
        assert_eq!(c.pixel(25, 5), Some(ink));
    }

    #[test]
    fn text_draws_ink_in_its_box_both_ways() {
        let mut c = Canvas::new(100, 100);
        let ink = Rgb(0, 0, 0);
        c.text((10.0, 30.0), "H", 2, Anchor::Start, false, ink);
        // H's left stem: font column 0, rows 0..7 → x 10..12, y 16..30.
        assert_eq!(c.pixel(10, 17), Some(ink));
        assert_eq!(c.pixel(10, 29), Some(ink));
        assert_eq!(c.pixel(10, 31), Some(BACKGROUND));
        let mut v = Canvas::new(100, 100);
        v.text((50.0, 80.0), "H", 2, Anchor::Start, true, ink);
        // Turned: the stem runs left of the baseline x, the text runs up from y.
        assert!((36..50).any(|x| v.pixel(x, 79) == Some(ink)));
        assert!((0..100).all(|x| v.pixel(x, 81) == Some(BACKGROUND)));
    }

    #[test]
    fn png_decodes_to_the_chart_with_the_line_where_the_data_is() {
        let chart = Chart {
            title: "accuracy".into(),
            x: XAxis::Numeric(Axis::linear("height")),
            y: Axis::fixed("test accuracy", 0.0, 1.0),
            y2: None,
            series: vec![Series::new("flat", vec![(0.0, 0.5), (10.0, 0.5)])],
        };
        let scene = layout(&chart);
        let canvas = rasterize(&scene);
        let bytes = encode_png(&canvas).expect("encode");
        let (w, h, rgb) = decode(&bytes);
        assert_eq!((w, h), (scene.width, scene.height));
        assert_eq!(rgb.len(), (w * h * 3) as usize);
        assert_eq!(rgb, canvas.rgb());
        // The series' last marker is at (x of 10, y of 0.5) (the first is under the left
        // axis): find it in the scene, then check the pixel there has the series' colour.
        let (cx, cy) = scene
            .items
            .iter()
            .rev()
            .find_map(|it| match &it.shape {
                Shape::Circle { cx, cy, .. } if it.series == Some(0) => Some((*cx, *cy)),
                _ => None,
            })
            .expect("a marker");
        let at = |x: f64, y: f64| {
            let i = ((y as usize) * w as usize + x as usize) * 3;
            Rgb(rgb[i], rgb[i + 1], rgb[i + 2])
        };
        assert_eq!(at(cx, cy), PALETTE[0]);
        // Half way along the line, still the line; well above it, background or grid.
        let mid = cx - 200.0;
        assert_eq!(at(mid, cy), PALETTE[0]);
        assert_ne!(at(mid, cy - 40.0), PALETTE[0]);
        // Some pixels of every colour class: background, ink, series.
        let pixels: Vec<Rgb> = rgb.chunks(3).map(|p| Rgb(p[0], p[1], p[2])).collect();
        assert!(pixels.contains(&BACKGROUND));
        assert!(pixels.iter().filter(|p| **p == PALETTE[0]).count() > 500);
    }
}
