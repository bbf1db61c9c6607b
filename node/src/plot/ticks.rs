//! Axis bounds and tick marks. [`linear`] picks a step of 1, 2 or 5 times a power of ten
//! giving about the requested number of intervals and widens the data's range to whole
//! steps; [`log`] puts ticks at powers of ten (and at 2 and 5 times them over a short
//! span). Values enter as a data range, and leave as [`Ticks`]: the axis bounds, the tick
//! values and their labels. Pure functions, property-tested below.

/// The bounds of an axis and its tick marks.
#[derive(Clone, Debug, PartialEq)]
pub struct Ticks {
    /// The low end of the axis.
    pub lo: f64,
    /// The high end of the axis.
    pub hi: f64,
    /// The tick values, ascending, within `[lo, hi]`.
    pub values: Vec<f64>,
    /// The label of each tick.
    pub labels: Vec<String>,
}

/// The most ticks [`linear`] is asked for (more would not fit their labels).
const MAX_TARGET: usize = 20;

/// Nice ticks for data in `[min, max]`, about `target` intervals (at least 1, at most
/// [`MAX_TARGET`]). Non-finite bounds fall back to `[0, 1]`; a single value gets a range
/// around it.
pub fn linear(min: f64, max: f64, target: usize) -> Ticks {
    let target = target.clamp(1, MAX_TARGET);
    let (mut min, mut max) = if min.is_finite() && max.is_finite() { (min.min(max), min.max(max)) } else { (0.0, 1.0) };
    // Keep away from the ends of f64, where a step times a count overflows.
    min = min.max(-1e300);
    max = max.min(1e300);
    let magnitude = min.abs().max(max.abs());
    if max - min <= magnitude * 1e-12 {
        let pad = if magnitude == 0.0 { 1.0 } else { magnitude * 0.1 };
        min -= pad;
        max += pad;
    }
    let step = nice_step((max - min) / target as f64);
    let mut first = (min / step).floor();
    let mut last = (max / step).ceil();
    // Division rounds: make sure the whole steps still cover the data.
    if first * step > min {
        first -= 1.0;
    }
    if last * step < max {
        last += 1.0;
    }
    let count = (last - first) as usize + 1;
    let values: Vec<f64> = (0..count).map(|i| clean((first + i as f64) * step, step)).collect();
    let scientific = magnitude >= 1e6 || (magnitude > 0.0 && magnitude < 1e-3);
    // Plain labels show the step's decimals; scientific ones as many mantissa digits as
    // tell one tick from the next.
    let decimals = if scientific {
        (magnitude.log10().floor() - step.log10().floor()).clamp(0.0, 15.0) as usize
    } else {
        decimals_of(step)
    };
    let labels = values.iter().map(|v| format_tick(*v, decimals, scientific)).collect();
    Ticks { lo: first * step, hi: last * step, values, labels }
}

/// Ticks for a logarithmic axis over positive data in `[min, max]`: the axis runs from the
/// power of ten at or below `min` to the one at or above `max`. Non-positive or non-finite
/// bounds fall back to `[1, 10]`.
pub fn log(min: f64, max: f64) -> Ticks {
    let (min, max) = if min > 0.0 && max > 0.0 && min.is_finite() && max.is_finite() {
        (min.min(max), min.max(max))
    } else {
        (1.0, 10.0)
    };
    let lo_exp = min.log10().floor().max(-300.0) as i32;
    let mut hi_exp = max.log10().ceil().min(300.0) as i32;
    if hi_exp <= lo_exp {
        hi_exp = lo_exp + 1;
    }
    let decades = hi_exp - lo_exp;
    // Over a short span the decades alone are too few ticks: add 2 and 5 times each. Over
    // a long one, every few decades.
    let mantissas: &[f64] = if decades <= 2 { &[1.0, 2.0, 5.0] } else { &[1.0] };
    let every = (decades / 8 + 1).max(1);
    let mut values = Vec::new();
    let mut e = lo_exp;
    while e <= hi_exp {
        for m in mantissas {
            let v = m * 10f64.powi(e);
            if e < hi_exp || *m == 1.0 {
                values.push(v);
            }
        }
        e += every;
    }
    let (mut lo, mut hi) = (10f64.powi(lo_exp), 10f64.powi(hi_exp));
    // Over a short span, end the axis at the ticks around the data rather than at whole
    // decades (0.2 to 5 for data from 0.25 to 4), when that leaves two ticks or more.
    if decades <= 2 {
        let first = values.iter().rposition(|v| *v <= min * (1.0 + 1e-12)).unwrap_or(0);
        let last = values.iter().position(|v| *v >= max * (1.0 - 1e-12)).unwrap_or(values.len() - 1);
        if last > first {
            values = values[first..=last].to_vec();
            (lo, hi) = (values[0], values[values.len() - 1]);
        }
    }
    let labels = values.iter().map(|v| format_log_tick(*v)).collect();
    Ticks { lo, hi, values, labels }
}

/// The smallest of 1, 2, 5 times a power of ten that is at least `raw`.
fn nice_step(raw: f64) -> f64 {
    let raw = if raw.is_finite() && raw > 0.0 { raw } else { 1.0 };
    let power = 10f64.powf(raw.log10().floor());
    let fraction = raw / power;
    let nice = if fraction <= 1.0 + 1e-9 {
        1.0
    } else if fraction <= 2.0 + 1e-9 {
        2.0
    } else if fraction <= 5.0 + 1e-9 {
        5.0
    } else {
        10.0
    };
    nice * power
}

/// `v` with the rounding noise of `k · step` removed (and `-0` as `0`).
fn clean(v: f64, step: f64) -> f64 {
    let snapped = if v.abs() < step * 1e-9 { 0.0 } else { v };
    // Round to the step's decimal places when that is exact enough to matter.
    let decimals = decimals_of(step);
    if decimals <= 15 {
        let f = 10f64.powi(decimals as i32);
        let r = (snapped * f).round() / f;
        if r.is_finite() {
            return r + 0.0;
        }
    }
    snapped + 0.0
}

/// Decimal places that show every multiple of `step` exactly (a step is 1, 2 or 5 times a
/// power of ten).
fn decimals_of(step: f64) -> usize {
    let d = -(step.log10().floor());
    if d > 0.0 { (d as usize).min(20) } else { 0 }
}

fn format_tick(v: f64, decimals: usize, scientific: bool) -> String {
    if scientific && v != 0.0 {
        return trim_exponent(&format!("{v:.decimals$e}"));
    }
    format!("{v:.decimals$}")
}

fn format_log_tick(v: f64) -> String {
    if (1e-4..1e6).contains(&v) {
        // Enough decimals for 0.0002, none for 5000.
        let decimals = decimals_of(v).min(6);
        format!("{v:.decimals$}")
    } else {
        trim_exponent(&format!("{v:e}"))
    }
}

/// `1.50e6` → `1.5e6`, `2.00e-7` → `2e-7`.
fn trim_exponent(s: &str) -> String {
    match s.split_once('e') {
        Some((m, e)) if m.contains('.') => {
            let m = m.trim_end_matches('0').trim_end_matches('.');
            format!("{m}e{e}")
        }
        _ => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn unit_interval_in_fifths() {
        let t = linear(0.0, 1.0, 5);
        assert_eq!(t.values, vec![0.0, 0.2, 0.4, 0.6, 0.8, 1.0]);
        assert_eq!(t.labels, vec!["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]);
        assert_eq!((t.lo, t.hi), (0.0, 1.0));
    }

    #[test]
    fn heights_are_whole_numbers() {
        let t = linear(0.0, 20.0, 6);
        assert_eq!(t.labels, vec!["0", "5", "10", "15", "20"]);
    }

    #[test]
    fn a_single_value_gets_a_range_around_it() {
        let t = linear(3.0, 3.0, 5);
        assert!(t.lo < 3.0 && t.hi > 3.0, "{t:?}");
        let z = linear(0.0, 0.0, 5);
        assert!(z.lo < 0.0 && z.hi > 0.0, "{z:?}");
    }

    #[test]
    fn non_finite_bounds_fall_back_to_the_unit_interval() {
        let t = linear(f64::NAN, f64::INFINITY, 5);
        assert_eq!((t.lo, t.hi), (0.0, 1.0));
    }

    #[test]
    fn large_and_small_values_are_labelled_in_scientific_notation() {
        let t = linear(0.0, 3e7, 3);
        assert_eq!(t.labels.last().map(String::as_str), Some("3e7"));
        assert_eq!(t.labels.first().map(String::as_str), Some("0"));
        let s = linear(0.0, 2e-5, 2);
        assert!(s.labels.iter().all(|l| l == "0" || l.contains("e-")), "{:?}", s.labels);
    }

    #[test]
    fn log_ticks_over_the_privacy_budgets() {
        let t = log(0.25, 8.0);
        assert_eq!((t.lo, t.hi), (0.2, 10.0));
        assert_eq!(t.labels, vec!["0.2", "0.5", "1", "2", "5", "10"]);
        let one = log(1.0, 1.0);
        assert!(one.values.len() >= 2 && one.lo <= 1.0 && one.hi >= 1.0, "{one:?}");
        let wide = log(1e-3, 1e7);
        assert!(wide.values.len() <= 12, "{:?}", wide.labels);
        assert_eq!(wide.labels.first().map(String::as_str), Some("0.001"));
        assert_eq!(log(-1.0, 0.0), log(1.0, 10.0));
    }

    proptest! {
        #[test]
        fn linear_ticks_cover_the_data_in_equal_nice_steps(
            a in -1e9f64..1e9,
            span in 0.0f64..1e9,
            scale in -12i32..12,
            target in 1usize..12,
        ) {
            let f = 10f64.powi(scale) / 1e3;
            let (min, max) = (a * f, (a + span) * f);
            let t = linear(min, max, target);
            prop_assert!(t.values.len() >= 2, "{t:?}");
            prop_assert!(t.values.len() <= 2 * target + 3, "{} ticks for target {target}", t.values.len());
            prop_assert_eq!(t.values.len(), t.labels.len());
            prop_assert!(t.lo <= min && t.hi >= max, "[{}, {}] does not cover [{min}, {max}]", t.lo, t.hi);
            let step = t.values[1] - t.values[0];
            prop_assert!(step > 0.0);
            // The step is 1, 2 or 5 times a power of ten.
            let mantissa = step / 10f64.powf(step.log10().floor());
            prop_assert!([1.0, 2.0, 5.0, 10.0].iter().any(|m| (mantissa - m).abs() < 1e-6), "step {step}");
            for w in t.values.windows(2) {
                prop_assert!(((w[1] - w[0]) - step).abs() <= step * 1e-6, "{:?}", t.values);
            }
            // Ticks are whole multiples of the step, and labels are distinct.
            for v in &t.values {
                let k = v / step;
                prop_assert!((k - k.round()).abs() < 1e-6, "{v} is not a multiple of {step}");
            }
            let mut labels = t.labels.clone();
            labels.dedup();
            prop_assert_eq!(labels.len(), t.labels.len(), "{:?}", t.labels);
        }

        #[test]
        fn log_ticks_are_ascending_positive_and_cover_the_data(
            lo_exp in -20f64..20.0,
            decades in 0f64..30.0,
        ) {
            let min = 10f64.powf(lo_exp);
            let max = 10f64.powf(lo_exp + decades);
            let t = log(min, max);
            prop_assert!(t.lo <= min * (1.0 + 1e-12) && t.hi >= max * (1.0 - 1e-12), "{t:?}");
            prop_assert!(t.values.len() >= 2 && t.values.len() <= 40, "{:?}", t.labels);
            prop_assert!(t.values.iter().all(|v| *v > 0.0));
            prop_assert!(t.values.windows(2).all(|w| w[0] < w[1]));
            prop_assert!(t.values.iter().all(|v| *v >= t.lo * (1.0 - 1e-12) && *v <= t.hi * (1.0 + 1e-12)));
        }
    }
}
