//! The indicator chart: SVG drawn by hand, inline in the page (no fonts crate, no script).
//!
//! A unit's figure for each stored period (one `circle` each, carrying `data-period` and
//! `data-value`, with a `title` for screen readers), the straight path from baseline to target
//! with the tolerance band on its losing side, the trend projected to the target date, and the
//! target. Pure: the page gathers the numbers, this only draws them.

use chrono::{Datelike, NaiveDate};
use maud::{html, Markup};
use tiendo_domain::Period;

use crate::i18n::Lang;

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 320.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 40.0;

/// One observed figure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub period: Period,
    /// Percent.
    pub value: f64,
}

/// The straight path from baseline to target.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Path {
    pub from: (NaiveDate, f64),
    pub to: (NaiveDate, f64),
    /// Percentage points on the losing side of the path still `at_risk`.
    pub tolerance: f64,
    /// Higher is better (the band lies below the path); otherwise above it.
    pub rising: bool,
}

/// What the chart shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Chart {
    pub points: Vec<Point>,
    pub path: Option<Path>,
    /// The trend line, from the first figure it was fitted to, to the target date.
    pub trend: Option<((NaiveDate, f64), (NaiveDate, f64))>,
    pub target: Option<(NaiveDate, f64)>,
}

/// Maps dates and values to the drawing.
struct Scale {
    x0: NaiveDate,
    days: f64,
    y_min: f64,
    y_max: f64,
}

impl Scale {
    fn of(chart: &Chart) -> Option<Scale> {
        let mut dates: Vec<NaiveDate> = chart.points.iter().map(|p| p.period.end()).collect();
        let mut values: Vec<f64> = chart.points.iter().map(|p| p.value).collect();
        if let Some(p) = chart.path {
            dates.extend([p.from.0, p.to.0]);
            let side = if p.rising { -p.tolerance } else { p.tolerance };
            values.extend([p.from.1, p.to.1, p.from.1 + side, p.to.1 + side]);
        }
        if let Some((a, b)) = chart.trend {
            dates.extend([a.0, b.0]);
            values.extend([a.1, b.1]);
        }
        if let Some(t) = chart.target {
            dates.push(t.0);
            values.push(t.1);
        }
        let (first, last) = (*dates.iter().min()?, *dates.iter().max()?);
        let (first, last) =
            if first == last { (first - chrono::Days::new(31), last + chrono::Days::new(31)) } else { (first, last) };
        let finite: Vec<f64> = values.into_iter().filter(|v| v.is_finite()).collect();
        let lo = finite.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let (mut y_min, mut y_max) = (((lo - 2.0) / 5.0).floor() * 5.0, ((hi + 2.0) / 5.0).ceil() * 5.0);
        y_min = y_min.max(0.0);
        y_max = y_max.min(100.0).max(y_min + 5.0);
        Some(Scale { x0: first, days: (last - first).num_days() as f64, y_min, y_max })
    }

    fn x(&self, d: NaiveDate) -> f64 {
        LEFT + (WIDTH - LEFT - RIGHT) * (d - self.x0).num_days() as f64 / self.days
    }

    fn y(&self, v: f64) -> f64 {
        let v = v.clamp(self.y_min, self.y_max);
        TOP + (HEIGHT - TOP - BOTTOM) * (1.0 - (v - self.y_min) / (self.y_max - self.y_min))
    }

    fn last(&self) -> NaiveDate {
        self.x0 + chrono::Days::new(self.days as u64)
    }
}

fn n(v: f64) -> String {
    format!("{v:.1}")
}

/// The chart as inline SVG, titled `title`; empty when there is nothing to draw.
pub fn render(chart: &Chart, lang: Lang, title: &str) -> Markup {
    let Some(s) = Scale::of(chart) else { return html! {} };
    let t = lang.text();
    let years: Vec<NaiveDate> =
        (s.x0.year() + 1..=s.last().year()).filter_map(|y| NaiveDate::from_ymd_opt(y, 1, 1)).collect();
    let span = s.y_max - s.y_min;
    let step = if span <= 25.0 {
        5.0
    } else if span <= 50.0 {
        10.0
    } else {
        20.0
    };
    let y_ticks: Vec<f64> = (0..).map(|i| s.y_min + step * i as f64).take_while(|v| *v <= s.y_max + 1e-9).collect();
    let series: Vec<String> =
        chart.points.iter().map(|p| format!("{},{}", n(s.x(p.period.end())), n(s.y(p.value)))).collect();
    html! {
        svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox={ "0 0 " (WIDTH) " " (HEIGHT) }
            role="img" aria-labelledby="chart-title chart-desc" {
            title id="chart-title" { (title) }
            desc id="chart-desc" { (t.chart_desc) }
            g class="grid" {
                @for v in &y_ticks {
                    line x1=(n(LEFT)) x2=(n(WIDTH - RIGHT)) y1=(n(s.y(*v))) y2=(n(s.y(*v))) {}
                    text class="tick" x=(n(LEFT - 6.0)) y=(n(s.y(*v) + 4.0)) text-anchor="end" { (format!("{v:.0}")) }
                }
                @for d in &years {
                    line x1=(n(s.x(*d))) x2=(n(s.x(*d))) y1=(n(TOP)) y2=(n(HEIGHT - BOTTOM)) {}
                    text class="tick" x=(n(s.x(*d))) y=(n(HEIGHT - BOTTOM + 16.0)) text-anchor="middle" { (d.year()) }
                }
                text class="axis" x=(n(LEFT - 44.0)) y=(n(TOP + 4.0)) { "%" }
            }
            @if let Some(p) = chart.path {
                @let side = if p.rising { -p.tolerance } else { p.tolerance };
                polygon class="band" points={
                    (n(s.x(p.from.0))) "," (n(s.y(p.from.1))) " "
                    (n(s.x(p.to.0))) "," (n(s.y(p.to.1))) " "
                    (n(s.x(p.to.0))) "," (n(s.y(p.to.1 + side))) " "
                    (n(s.x(p.from.0))) "," (n(s.y(p.from.1 + side)))
                } {}
                line class="path" x1=(n(s.x(p.from.0))) y1=(n(s.y(p.from.1))) x2=(n(s.x(p.to.0))) y2=(n(s.y(p.to.1))) {}
            }
            @if let Some((a, b)) = chart.trend {
                line class="trend" x1=(n(s.x(a.0))) y1=(n(s.y(a.1))) x2=(n(s.x(b.0))) y2=(n(s.y(b.1))) {}
            }
            @if series.len() > 1 {
                polyline class="series" points=(series.join(" ")) {}
            }
            @for p in &chart.points {
                circle class="point" data-period=(p.period.to_string()) data-value=(format!("{:.4}", p.value))
                    cx=(n(s.x(p.period.end()))) cy=(n(s.y(p.value))) r="4" {
                    title { (p.period.to_string()) ": " (lang.percent(p.value)) }
                }
            }
            @if let Some((d, v)) = chart.target {
                @let (x, y) = (s.x(d), s.y(v));
                path class="target" d={ "M" (n(x)) "," (n(y - 7.0)) " L" (n(x + 7.0)) "," (n(y)) " L" (n(x)) "," (n(y + 7.0)) " L" (n(x - 7.0)) "," (n(y)) " Z" } {
                    title { (t.target) ": " (lang.percent(v)) " (" (lang.date(d)) ")" }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn chart() -> Chart {
        Chart {
            points: ["2024-01", "2024-02", "2024-03"]
                .iter()
                .zip([70.0, 71.0, 72.5])
                .map(|(p, v)| Point { period: p.parse().unwrap(), value: v })
                .collect(),
            path: Some(Path {
                from: (d("2023-02-13"), 66.2),
                to: (d("2025-12-31"), 80.0),
                tolerance: 1.0,
                rising: true,
            }),
            trend: Some(((d("2024-01-31"), 70.0), (d("2025-12-31"), 95.0))),
            target: Some((d("2025-12-31"), 80.0)),
        }
    }

    #[test]
    fn every_figure_is_one_point_carrying_its_period() {
        let svg = render(&chart(), Lang::Vi, "Điện thoại").into_string();
        assert_eq!(svg.matches("<circle").count(), 3);
        for p in ["2024-01", "2024-02", "2024-03"] {
            assert_eq!(svg.matches(&format!("data-period=\"{p}\"")).count(), 1, "{p}");
        }
        assert!(svg.contains("class=\"path\"") && svg.contains("class=\"band\"") && svg.contains("class=\"trend\""));
        assert!(svg.contains("class=\"target\""));
        assert!(svg.contains("72,5 %"), "titles speak the page's language");
    }

    #[test]
    fn the_scale_keeps_everything_inside_the_drawing() {
        let c = chart();
        let s = Scale::of(&c).unwrap();
        // 66.2 − 1 (the band) and 95 (the trend) fit: 60..100.
        assert_eq!((s.y_min, s.y_max), (60.0, 100.0));
        for date in [d("2023-02-13"), d("2025-12-31")] {
            let x = s.x(date);
            assert!((LEFT..=WIDTH - RIGHT).contains(&x), "{x}");
        }
        assert_eq!(s.y(100.0), TOP);
        assert_eq!(s.y(60.0), HEIGHT - BOTTOM);
    }

    #[test]
    fn nothing_to_draw_draws_nothing_and_one_figure_still_has_room() {
        assert_eq!(render(&Chart::default(), Lang::En, "x").into_string(), "");
        let one = Chart { points: vec![Point { period: "2024".parse().unwrap(), value: 50.0 }], ..Chart::default() };
        let svg = render(&one, Lang::En, "x").into_string();
        assert_eq!(svg.matches("data-period=\"2024\"").count(), 1);
        assert!(!svg.contains("NaN"));
    }
}
