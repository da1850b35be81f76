//! A self-contained SVG line plot: test accuracy against labels, one line per strategy with a
//! band across seeds, and dashed lines at the accuracy thresholds.

/// One point of a curve: the mean over seeds and the range across them.
#[derive(Debug, Clone, Copy)]
pub struct Point {
    /// Labels.
    pub x: f64,
    /// Mean accuracy over seeds.
    pub mean: f64,
    /// Lowest accuracy across seeds.
    pub lo: f64,
    /// Highest accuracy across seeds.
    pub hi: f64,
}

/// One line: its name and points.
pub struct Series {
    /// Legend text.
    pub name: String,
    /// Points in x order.
    pub points: Vec<Point>,
}

const COLOURS: [&str; 10] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf",
];

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Round tick positions (steps of 1, 2 or 5 times a power of ten) covering [lo, hi], about
/// `target` of them.
fn ticks(lo: f64, hi: f64, target: f64) -> Vec<f64> {
    let raw = (hi - lo) / target;
    let mag = 10f64.powf(raw.log10().floor());
    let off = |s: &f64| ((hi - lo) / s - target).abs();
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .min_by(|a, b| off(a).total_cmp(&off(b)))
        .unwrap_or(mag);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step + 1e-9).floor() as i64;
    (first..=last).map(|i| i as f64 * step).collect()
}

/// A tick label: as many decimals as the step needs.
fn tick_label(v: f64, step: f64) -> String {
    let decimals = (-step.log10().floor()).max(0.0) as usize;
    format!("{v:.decimals$}")
}

/// The SVG document: `series` against labels, with a dashed line at each of `thresholds`.
pub fn svg(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    thresholds: &[f64],
) -> String {
    let (w, h) = (760.0, 500.0);
    let (left, right, top, bottom) = (70.0, 170.0, 40.0, 60.0);
    let all = series.iter().flat_map(|s| s.points.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for p in all {
        x0 = x0.min(p.x);
        x1 = x1.max(p.x);
        y0 = y0.min(p.lo);
        y1 = y1.max(p.hi);
    }
    if x0 > x1 {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    if x1 - x0 < 1e-9 {
        x1 = x0 + 1.0;
    }
    y0 = (y0 * 10.0).floor() / 10.0;
    y1 = ((y1 * 10.0).ceil() / 10.0).min(1.0).max(y0 + 0.1);
    let px = |x: f64| left + (x - x0) / (x1 - x0) * (w - left - right);
    let py = |y: f64| h - bottom - (y - y0) / (y1 - y0) * (h - top - bottom);
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"{w}\" height=\"{h}\" fill=\"white\"/>\n<text x=\"{}\" y=\"24\" text-anchor=\"middle\" font-size=\"14\">{}</text>\n",
        (left + w - right) / 2.0,
        escape(title)
    );
    // Grid and round ticks.
    let xt = ticks(x0, x1, 6.0);
    let x_step = xt.get(1).map_or(1.0, |b| b - xt[0]);
    for &x in &xt {
        out.push_str(&format!(
            "<line x1=\"{0:.1}\" y1=\"{top}\" x2=\"{0:.1}\" y2=\"{1}\" stroke=\"#eee\"/>\n<text x=\"{0:.1}\" y=\"{2}\" text-anchor=\"middle\">{3}</text>\n",
            px(x),
            h - bottom,
            h - bottom + 18.0,
            tick_label(x, x_step)
        ));
    }
    let yt = ticks(y0, y1, 6.0);
    let y_step = yt.get(1).map_or(0.1, |b| b - yt[0]);
    for &y in &yt {
        out.push_str(&format!(
            "<line x1=\"{left}\" y1=\"{0:.1}\" x2=\"{1}\" y2=\"{0:.1}\" stroke=\"#eee\"/>\n<text x=\"{2}\" y=\"{3:.1}\" text-anchor=\"end\">{4}</text>\n",
            py(y),
            w - right,
            left - 6.0,
            py(y) + 4.0,
            tick_label(y, y_step)
        ));
    }
    for &t in thresholds.iter().filter(|t| (y0..=y1).contains(*t)) {
        out.push_str(&format!(
            "<line x1=\"{left}\" y1=\"{0:.1}\" x2=\"{1}\" y2=\"{0:.1}\" stroke=\"#555\" stroke-dasharray=\"5,4\"/>\n<text x=\"{2}\" y=\"{3:.1}\" fill=\"#555\">{4}%</text>\n",
            py(t),
            w - right,
            w - right + 4.0,
            py(t) + 4.0,
            bald_core::Plain(t * 100.0)
        ));
    }
    out.push_str(&format!(
        "<line x1=\"{left}\" y1=\"{0}\" x2=\"{1}\" y2=\"{0}\" stroke=\"black\"/>\n<line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{0}\" stroke=\"black\"/>\n",
        h - bottom,
        w - right,
    ));
    out.push_str(&format!(
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n<text x=\"18\" y=\"{}\" text-anchor=\"middle\" transform=\"rotate(-90 18 {})\">{}</text>\n",
        (left + w - right) / 2.0,
        h - 18.0,
        escape(x_label),
        (top + h - bottom) / 2.0,
        (top + h - bottom) / 2.0,
        escape(y_label)
    ));
    for (i, s) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        if s.points.iter().any(|p| p.hi > p.lo) {
            let upper = s.points.iter().map(|p| (p.x, p.hi));
            let lower = s.points.iter().rev().map(|p| (p.x, p.lo));
            let pts: Vec<String> = upper
                .chain(lower)
                .map(|(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
                .collect();
            out.push_str(&format!(
                "<polygon fill=\"{colour}\" fill-opacity=\"0.15\" stroke=\"none\" points=\"{}\"/>\n",
                pts.join(" ")
            ));
        }
        let pts: Vec<String> = s
            .points
            .iter()
            .map(|p| format!("{:.1},{:.1}", px(p.x), py(p.mean)))
            .collect();
        out.push_str(&format!(
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>\n",
            pts.join(" ")
        ));
        let ly = top + 10.0 + 20.0 * i as f64;
        out.push_str(&format!(
            "<line x1=\"{0}\" y1=\"{ly}\" x2=\"{1}\" y2=\"{ly}\" stroke=\"{colour}\" stroke-width=\"3\"/>\n<text x=\"{2}\" y=\"{3}\">{4}</text>\n",
            w - right + 40.0,
            w - right + 62.0,
            w - right + 68.0,
            ly + 4.0,
            escape(&s.name)
        ));
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        assert_eq!(
            ticks(20.0, 150.0, 6.0),
            vec![20.0, 40.0, 60.0, 80.0, 100.0, 120.0, 140.0]
        );
        let y = ticks(0.3, 0.9, 6.0);
        assert_eq!(y.len(), 7);
        assert_eq!(tick_label(y[1], y[1] - y[0]), "0.4");
        assert_eq!(tick_label(150.0, 50.0), "150");
    }
}
