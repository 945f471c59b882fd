//! Chart geometry for the analytics dashboards: from the analytics REST API's numbers to
//! coordinates that `templates/charts.html` draws as SVG (no script, no CDN; labels are
//! escaped by the template like any other text).

use serde::Serialize;

/// Plot area margins (px): room for the y labels on the left and x labels below.
const LEFT: f64 = 48.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 24.0;

/// One labelled position on an axis.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Tick {
    /// Pixel position along the axis.
    pub pos: f64,
    /// What it reads.
    pub label: String,
}

/// One line of a line chart.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Line {
    /// Legend text.
    pub name: String,
    /// CSS class picking its colour (`s0`, `s1`…).
    pub class: String,
    /// SVG `points`.
    pub points: String,
    /// The largest value, as the legend shows it.
    pub max: String,
}

/// A line chart over time buckets.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LineChart {
    /// Width (px).
    pub width: f64,
    /// Height (px).
    pub height: f64,
    /// Left edge of the plot area.
    pub left: f64,
    /// Right edge of the plot area.
    pub right: f64,
    /// Top of the plot area.
    pub top: f64,
    /// Bottom of the plot area (the x axis).
    pub bottom: f64,
    /// The lines.
    pub lines: Vec<Line>,
    /// Labels under the x axis.
    pub x_ticks: Vec<Tick>,
    /// Labels left of the y axis, with grid lines.
    pub y_ticks: Vec<Tick>,
    /// Whether every value is zero (the page says "no calls" instead).
    pub empty: bool,
}

/// A round number at least `max` (1, 2 or 5 times a power of ten), so that axis labels
/// read well.
fn nice_ceiling(max: f64) -> f64 {
    if max <= 0.0 {
        return 1.0;
    }
    let magnitude = 10f64.powf(max.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|v| *v >= max)
        .unwrap_or(10.0 * magnitude)
}

fn label_number(v: f64) -> String {
    if v >= 1_000_000.0 {
        format!("{:.1}M", v / 1_000_000.0)
    } else if v >= 10_000.0 {
        format!("{:.0}k", v / 1_000.0)
    } else if v.fract().abs() < 1e-9 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// A line chart of `series` (name, one value per label) over `labels` (the time buckets,
/// oldest first).
pub fn line_chart(labels: &[String], series: &[(String, Vec<f64>)], width: f64, height: f64) -> LineChart {
    let (left, right, top, bottom) = (LEFT, width - RIGHT, TOP, height - BOTTOM);
    let max = series
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .fold(0.0f64, f64::max);
    let ceiling = nice_ceiling(max);
    let n = labels.len().max(1);
    let x = |i: usize| {
        if n == 1 {
            (left + right) / 2.0
        } else {
            left + (right - left) * i as f64 / (n - 1) as f64
        }
    };
    let y = |v: f64| bottom - (bottom - top) * (v / ceiling);
    let lines = series
        .iter()
        .enumerate()
        .map(|(k, (name, values))| Line {
            name: name.clone(),
            class: format!("s{}", k % 6),
            points: values
                .iter()
                .enumerate()
                .map(|(i, v)| format!("{:.1},{:.1}", x(i), y(*v)))
                .collect::<Vec<_>>()
                .join(" "),
            max: label_number(values.iter().copied().fold(0.0, f64::max)),
        })
        .collect();
    let step = (n / 6).max(1);
    let x_ticks = (0..n)
        .step_by(step)
        .filter_map(|i| {
            labels.get(i).map(|l| Tick {
                pos: x(i),
                label: l.clone(),
            })
        })
        .collect();
    let y_ticks = (0..=4)
        .map(|k| {
            let v = ceiling * f64::from(k) / 4.0;
            Tick {
                pos: y(v),
                label: label_number(v),
            }
        })
        .collect();
    LineChart {
        width,
        height,
        left,
        right,
        top,
        bottom,
        lines,
        x_ticks,
        y_ticks,
        empty: max <= 0.0,
    }
}

/// One bar of a bar chart.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Bar {
    /// What the bar is.
    pub label: String,
    /// Its value, as shown.
    pub value: String,
    /// Bar length (px).
    pub length: f64,
    /// Top of the bar's row (px).
    pub y: f64,
}

/// A horizontal bar chart (largest first, as given).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BarChart {
    /// Width (px).
    pub width: f64,
    /// Height (px).
    pub height: f64,
    /// Where bars start (labels are left of it).
    pub left: f64,
    /// Bar thickness (px).
    pub thickness: f64,
    /// The bars.
    pub bars: Vec<Bar>,
}

/// A bar chart of (label, value) pairs.
pub fn bar_chart(items: &[(String, f64)], width: f64) -> BarChart {
    let left = 160.0;
    let row = 26.0;
    let thickness = 18.0;
    let max = items.iter().map(|(_, v)| *v).fold(0.0f64, f64::max).max(1.0);
    let room = width - left - 60.0;
    let bars = items
        .iter()
        .enumerate()
        .map(|(i, (label, v))| Bar {
            label: label.clone(),
            value: label_number(*v),
            length: (room * v / max).max(1.0),
            y: row * i as f64 + 4.0,
        })
        .collect();
    BarChart {
        width,
        height: row * items.len() as f64 + 8.0,
        left,
        thickness,
        bars,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_are_round_and_points_fill_the_plot() {
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(7.0), 10.0);
        assert_eq!(nice_ceiling(120.0), 200.0);
        assert_eq!(nice_ceiling(0.3), 0.5);
        let labels: Vec<String> = (0..3).map(|i| format!("10:0{i}")).collect();
        let c = line_chart(&labels, &[("2xx".into(), vec![0.0, 5.0, 10.0])], 400.0, 200.0);
        assert!(!c.empty);
        let points: Vec<&str> = c.lines[0].points.split(' ').collect();
        assert_eq!(points[0], format!("{LEFT:.1},{:.1}", 200.0 - BOTTOM));
        assert_eq!(
            points[2],
            format!("{:.1},{TOP:.1}", 400.0 - RIGHT),
            "the maximum touches the top"
        );
        assert_eq!(c.y_ticks.last().map(|t| t.label.as_str()), Some("10"));
        assert!(line_chart(&labels, &[("x".into(), vec![0.0; 3])], 400.0, 200.0).empty);
    }

    #[test]
    fn bars_scale_to_the_largest() {
        let c = bar_chart(&[("a".into(), 10.0), ("b".into(), 5.0)], 500.0);
        assert_eq!(c.bars[0].length, 2.0 * c.bars[1].length);
        assert_eq!(c.bars[1].value, "5");
    }
}
