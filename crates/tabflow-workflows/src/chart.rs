//! Charts in reports: a step's details may carry a `chart` (a [`Chart`]: bars with labels and
//! values, an optional cut-off line) that the report draws as inline SVG in its HTML file (no
//! script, no external file) and as a table in Markdown and CSV. Two workflows make one: the
//! cleanup's histogram of days since last view with the cut-off ([`days_histogram`]), and
//! license reclamation's licenses freed by type.
//!
//! Pure: the same chart always draws the same SVG, and every text in it is escaped.

use serde::{Deserialize, Serialize};

/// A bar chart (`kind` `bars`) or a histogram (`kind` `histogram`: equal-width bins, a
/// cut-off line between them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chart {
    pub kind: String,
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub bars: Vec<Bar>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cutoff: Option<Cutoff>,
    /// One line under the chart (what the marked bars mean).
    #[serde(default)]
    pub note: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bar {
    pub label: String,
    pub value: u64,
    /// Drawn in the warning colour (past the cut-off; what the plan acts on).
    #[serde(default)]
    pub marked: bool,
}

/// A vertical line across the plot at `position`, measured in bar slots from the left edge
/// (2.0 = between the second and the third bar).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cutoff {
    pub position: f64,
    pub label: String,
}

/// At most this many day bins (the last one holds everything older).
const MAX_BINS: usize = 12;

/// A histogram of ages in days (`None` = never viewed, a bar of its own at the right) with
/// the cut-off at `cutoff_days`. The bin width divides the cut-off when it can, so the line
/// falls between two bins and every bin is entirely on one side of it; bins at or past the
/// cut-off are marked.
pub fn days_histogram(title: &str, what: &str, ages: &[Option<i64>], cutoff_days: i64) -> Chart {
    let cutoff_days = cutoff_days.max(1);
    // Bins per cut-off: the first of these that divides it (1 always does).
    let k = [3, 2, 4, 6, 5, 1].into_iter().find(|k| cutoff_days % k == 0).unwrap_or(1);
    let width = cutoff_days / k;
    let oldest = ages.iter().flatten().copied().max().unwrap_or(0).max(0);
    let needed = usize::try_from(oldest / width + 1).unwrap_or(MAX_BINS);
    let bins = needed.clamp(k as usize + 1, MAX_BINS.max(k as usize + 1));
    let mut counts = vec![0u64; bins];
    let mut never = 0u64;
    for a in ages {
        match a {
            Some(d) => {
                let i = usize::try_from(d.max(&0) / width).unwrap_or(bins - 1).min(bins - 1);
                counts[i] += 1;
            }
            None => never += 1,
        }
    }
    let mut bars: Vec<Bar> = counts
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            let from = i as i64 * width;
            let label = if i + 1 == bins {
                format!("≥{from}")
            } else if width == 1 {
                from.to_string()
            } else {
                format!("{from}–{}", from + width - 1)
            };
            Bar { label, value: n, marked: from >= cutoff_days }
        })
        .collect();
    bars.push(Bar { label: "never".into(), value: never, marked: true });
    Chart {
        kind: "histogram".into(),
        title: title.into(),
        x_label: "days since last view".into(),
        y_label: what.into(),
        bars,
        cutoff: Some(Cutoff { position: k as f64, label: format!("cut-off: {cutoff_days} days") }),
        note: format!(
            "Each bar counts {what} by days since their last view ({width}-day bins; the last bin holds older ones); marked bars are past the cut-off of {cutoff_days} days or never viewed."
        ),
    }
}

// ------------------------------------------------------------------------------ SVG

const W: f64 = 720.0;
const H: f64 = 300.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 28.0;
const BOTTOM: f64 = 64.0;

/// The top of the y axis: the largest value rounded up to a step of 1, 2 or 5 × 10ⁿ (four or
/// five ticks), and the step.
fn y_scale(max: u64) -> (u64, u64) {
    let max = max.max(1);
    let mut step = 1u64;
    loop {
        for m in [1, 2, 5] {
            let s = step * m;
            if max.div_ceil(s) <= 5 {
                return (max.div_ceil(s) * s, s);
            }
        }
        step *= 10;
    }
}

/// Text safe in SVG element content and attribute values (inline in HTML).
fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

fn n(x: f64) -> String {
    format!("{:.1}", x)
}

impl Chart {
    /// The plot's geometry: (slot width, bar width, pixels per unit of value, y-axis top,
    /// tick step).
    fn geometry(&self) -> (f64, f64, f64, u64, u64) {
        let slots = self.bars.len().max(1) as f64;
        let slot = (W - LEFT - RIGHT) / slots;
        let bar = if self.kind == "histogram" { slot - 2.0 } else { (slot * 0.6).min(90.0) };
        let (top, step) = y_scale(self.bars.iter().map(|b| b.value).max().unwrap_or(0));
        (slot, bar, (H - TOP - BOTTOM) / top as f64, top, step)
    }

    /// The x position of the cut-off line in the SVG's coordinates.
    pub fn cutoff_x(&self) -> Option<f64> {
        let (slot, ..) = self.geometry();
        self.cutoff.as_ref().map(|c| LEFT + c.position * slot)
    }

    /// The chart as one inline `<svg>` (a `<figure>` with its caption): axes with ticks and
    /// titles, a `rect.bar` per bar (`data-label`, `data-value`, a `<title>` tooltip, the
    /// value above it), the cut-off as `line.cutoff` with its label.
    pub fn svg(&self) -> String {
        let (slot, bar_w, per, top, step) = self.geometry();
        let base = H - BOTTOM;
        let mut o = String::new();
        o.push_str(&format!(
            "<figure class=\"chart {}\">\n<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {W} {H}\" width=\"{W}\" height=\"{H}\" role=\"img\" aria-label=\"{}\">\n",
            esc(&self.kind),
            esc(&self.title)
        ));
        o.push_str(&format!("<title>{}</title>\n", esc(&self.title)));
        // Grid and y ticks.
        let mut v = 0;
        while v <= top {
            let y = base - v as f64 * per;
            o.push_str(&format!(
                "<line class=\"grid\" x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#d0d7de\" stroke-width=\"1\"/>\n<text class=\"tick\" x=\"{}\" y=\"{}\" text-anchor=\"end\" font-size=\"12\" fill=\"#57606a\">{v}</text>\n",
                n(LEFT),
                n(y),
                n(W - RIGHT),
                n(y),
                n(LEFT - 6.0),
                n(y + 4.0)
            ));
            v += step;
        }
        for (i, b) in self.bars.iter().enumerate() {
            let x = LEFT + i as f64 * slot + (slot - bar_w) / 2.0;
            let h = b.value as f64 * per;
            let fill = if b.marked { "#e8590c" } else { "#4c78a8" };
            o.push_str(&format!(
                "<rect class=\"bar{}\" data-label=\"{}\" data-value=\"{}\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{fill}\"><title>{}: {}</title></rect>\n",
                if b.marked { " marked" } else { "" },
                esc(&b.label),
                b.value,
                n(x),
                n(base - h),
                n(bar_w),
                n(h),
                esc(&b.label),
                b.value
            ));
            let cx = LEFT + (i as f64 + 0.5) * slot;
            o.push_str(&format!(
                "<text class=\"value\" x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"12\" fill=\"#1f2328\">{}</text>\n",
                n(cx),
                n(base - h - 4.0),
                b.value
            ));
            o.push_str(&format!(
                "<text class=\"label\" x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"{}\" fill=\"#1f2328\">{}</text>\n",
                n(cx),
                n(base + 16.0),
                if slot < 60.0 { 10 } else { 12 },
                esc(&b.label)
            ));
        }
        // Axes and their titles.
        o.push_str(&format!(
            "<line class=\"axis x\" x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#1f2328\" stroke-width=\"1\"/>\n<line class=\"axis y\" x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#1f2328\" stroke-width=\"1\"/>\n",
            n(LEFT),
            n(base),
            n(W - RIGHT),
            n(base),
            n(LEFT),
            n(TOP - 8.0),
            n(LEFT),
            n(base)
        ));
        o.push_str(&format!(
            "<text class=\"axis-title x\" x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"13\" fill=\"#1f2328\">{}</text>\n",
            n(LEFT + (W - LEFT - RIGHT) / 2.0),
            n(H - 12.0),
            esc(&self.x_label)
        ));
        o.push_str(&format!(
            "<text class=\"axis-title y\" x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"13\" fill=\"#1f2328\" transform=\"rotate(-90 {} {})\">{}</text>\n",
            n(16.0),
            n(TOP + (base - TOP) / 2.0),
            n(16.0),
            n(TOP + (base - TOP) / 2.0),
            esc(&self.y_label)
        ));
        if let (Some(c), Some(x)) = (&self.cutoff, self.cutoff_x()) {
            o.push_str(&format!(
                "<line class=\"cutoff\" x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#cf222e\" stroke-width=\"2\" stroke-dasharray=\"6 4\"/>\n<text class=\"cutoff-label\" x=\"{}\" y=\"{}\" font-size=\"12\" fill=\"#cf222e\">{}</text>\n",
                n(x),
                n(TOP - 8.0),
                n(x),
                n(base),
                n(x + 4.0),
                n(TOP - 12.0),
                esc(&c.label)
            ));
        }
        o.push_str("</svg>\n");
        o.push_str(&format!("<figcaption>{}", esc(&self.title)));
        if !self.note.is_empty() {
            o.push_str(&format!(" — {}", esc(&self.note)));
        }
        o.push_str("</figcaption>\n</figure>\n");
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The (x, y, width, height, label, value) of each `rect.bar` in an SVG.
    fn bars(svg: &str) -> Vec<(f64, f64, f64, f64, String, u64)> {
        let attr = |tag: &str, a: &str| -> String {
            let k = format!(" {a}=\"");
            let i = tag.find(&k).unwrap() + k.len();
            tag[i..i + tag[i..].find('"').unwrap()].to_string()
        };
        svg.split("<rect ")
            .skip(1)
            .map(|t| {
                let t = &t[..t.find('>').unwrap()];
                let f = |a: &str| attr(t, a).parse::<f64>().unwrap();
                (f("x"), f("y"), f("width"), f("height"), attr(t, "data-label"), attr(t, "data-value").parse().unwrap())
            })
            .collect()
    }

    #[test]
    fn histogram_bins_ages_and_puts_the_cutoff_between_bins() {
        // 90-day cut-off: 30-day bins, the line after the third.
        let ages = [Some(0), Some(29), Some(30), Some(89), Some(90), Some(200), Some(5000), None, None];
        let c = days_histogram("Workbooks", "workbooks", &ages, 90);
        let got: Vec<(&str, u64, bool)> = c.bars.iter().map(|b| (b.label.as_str(), b.value, b.marked)).collect();
        assert_eq!(got[..4], [("0–29", 2, false), ("30–59", 1, false), ("60–89", 1, false), ("90–119", 1, true)]);
        assert_eq!(got[6], ("180–209", 1, true));
        assert_eq!(got[11], ("≥330", 1, true), "older ones go to the last bin");
        assert_eq!(got[12], ("never", 2, true));
        assert_eq!(c.bars.iter().map(|b| b.value).sum::<u64>(), ages.len() as u64);
        assert_eq!(c.cutoff.as_ref().unwrap().position, 3.0);
        // A cut-off of 7 days (prime): 7-day bins, the line after the first.
        let c = days_histogram("x", "workbooks", &[Some(3), Some(8)], 7);
        assert_eq!(c.cutoff.as_ref().unwrap().position, 1.0);
        assert_eq!((c.bars[0].value, c.bars[1].value, c.bars[1].marked), (1, 1, true));
        // Nothing viewed recently: still two bins on each side of the line and a never bar.
        let c = days_histogram("x", "workbooks", &[], 90);
        assert_eq!(c.bars.len(), 5);
    }

    #[test]
    fn svg_bars_match_the_data_and_the_cutoff_sits_between_bins() {
        let ages: Vec<Option<i64>> = (0..40).map(|i| Some(i * 9)).chain([None, None, None]).collect::<Vec<_>>();
        let c = days_histogram("Days since last view", "workbooks", &ages, 90);
        let svg = c.svg();
        let b = bars(&svg);
        assert_eq!(b.len(), c.bars.len());
        let base = H - BOTTOM;
        let max = c.bars.iter().map(|b| b.value).max().unwrap() as f64;
        let tallest = b.iter().map(|x| x.3).fold(0.0, f64::max);
        for ((x, y, w, h, label, value), bar) in b.iter().zip(&c.bars) {
            assert_eq!((label, *value), (&bar.label, bar.value));
            // Heights are proportional to the values, standing on the x axis.
            assert!((h / tallest - bar.value as f64 / max).abs() < 0.01, "{label}: {h} vs {value}");
            assert!((y + h - base).abs() < 0.11);
            assert!(*w > 10.0 && *x >= LEFT);
        }
        // The line is between the last bin under the cut-off and the first past it.
        let x = c.cutoff_x().unwrap();
        assert!(svg.contains(&format!("<line class=\"cutoff\" x1=\"{}\"", n(x))));
        let (under, past) = (&b[2], &b[3]);
        assert!(under.0 + under.2 <= x && x <= past.0, "{under:?} {x} {past:?}");
        assert!(svg.contains("cut-off: 90 days") && svg.contains(">days since last view<"));
        assert!(!svg.contains("<script"));
    }

    #[test]
    fn svg_escapes_every_text() {
        let c = Chart {
            kind: "bars".into(),
            title: "<script>alert(1)</script>".into(),
            x_label: "a&b".into(),
            y_label: "\"q\"".into(),
            bars: vec![Bar { label: "<img src=x onerror=alert(1)>".into(), value: 3, marked: false }],
            cutoff: Some(Cutoff { position: 0.5, label: "</svg><script>".into() }),
            note: "<b>".into(),
        };
        let s = c.svg();
        assert!(!s.contains("<script") && !s.contains("<img") && !s.contains("<b>"));
        assert!(s.contains("&lt;script&gt;alert(1)&lt;/script&gt;") && s.contains("a&amp;b"));
        assert_eq!(s.matches("</svg>").count(), 1);
    }

    #[test]
    fn y_axis_tops_are_round() {
        assert_eq!(y_scale(0), (1, 1));
        assert_eq!(y_scale(3), (3, 1));
        assert_eq!(y_scale(7), (8, 2));
        assert_eq!(y_scale(23), (25, 5));
        assert_eq!(y_scale(167), (200, 50));
    }
}
