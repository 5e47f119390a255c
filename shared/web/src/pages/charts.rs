//! Charts as inline SVG written on the server: horizontal bars with an optional target line,
//! and a line over the half-years toward a target and its deadline.
//! Small (a bar is one rect and two texts), sharp at any zoom, readable without script; the
//! same figures are in the page's tables for screen readers, so the SVG is one labelled image.

use maud::{Markup, html};

use jiazheng_core::indicators::Unit;

use super::figures;

pub struct Bar {
    pub label: String,
    pub value: Option<f64>,
}

pub struct Chart<'a> {
    /// Unique on the page: the SVG's title and description hang off it.
    pub id: &'a str,
    pub title: String,
    /// What the chart shows, for people who cannot see it.
    pub description: String,
    pub unit: Unit,
    pub bars: Vec<Bar>,
    /// A target drawn as a dashed line, with its label.
    pub reference: Option<(f64, String)>,
    /// Lines under the chart: which areas are left out (not reported), what a mark means.
    pub notes: Vec<String>,
}

const WIDTH: f64 = 520.0;
const LABEL_WIDTH: f64 = 132.0;
const VALUE_WIDTH: f64 = 64.0;
const TOP: f64 = 22.0;
const LABEL_CHARS: usize = 10;

impl Chart<'_> {
    pub fn render(&self) -> Markup {
        let row = if self.bars.len() > 30 { 15.0 } else { 22.0 };
        let height = TOP + row * self.bars.len() as f64 + 8.0;
        let plot = WIDTH - LABEL_WIDTH - VALUE_WIDTH;
        let largest = self
            .bars
            .iter()
            .filter_map(|b| b.value)
            .chain(self.reference.as_ref().map(|(v, _)| *v))
            .fold(0.0_f64, f64::max);
        let scale = match self.unit {
            Unit::Percent => 100.0_f64.max(largest),
            _ => largest,
        };
        let x = |v: f64| {
            if scale > 0.0 {
                LABEL_WIDTH + v / scale * plot
            } else {
                LABEL_WIDTH
            }
        };
        let title_id = format!("{}-title", self.id);
        let desc_id = format!("{}-desc", self.id);
        html! {
            figure {
                figcaption id=(title_id) { (self.title) }
                svg viewBox=(format!("0 0 {WIDTH} {height:.0}")) width="100%" role="img"
                    aria-labelledby=(title_id) aria-describedby=(desc_id) xmlns="http://www.w3.org/2000/svg" {
                    desc id=(desc_id) { (self.description) }
                    line.axis x1=(LABEL_WIDTH) x2=(LABEL_WIDTH) y1=(TOP - 4.0) y2=(height - 6.0) {}
                    @for (i, bar) in self.bars.iter().enumerate() {
                        @let y = TOP + row * i as f64;
                        text.l x=(LABEL_WIDTH - 6.0) y=(format!("{:.0}", y + row * 0.65)) { (short(&bar.label)) }
                        @if let Some(v) = bar.value {
                            rect x=(LABEL_WIDTH) y=(format!("{:.0}", y + 2.0)) width=(format!("{:.1}", x(v) - LABEL_WIDTH)) height=(format!("{:.0}", row - 5.0)) {}
                            text x=(format!("{:.1}", x(v) + 4.0)) y=(format!("{:.0}", y + row * 0.65)) { (figures::value(self.unit, v)) }
                        } @else {
                            text x=(LABEL_WIDTH + 4.0) y=(format!("{:.0}", y + row * 0.65)) { "—" }
                        }
                    }
                    @if let Some((v, label)) = &self.reference {
                        @let at = format!("{:.1}", x(*v));
                        line.ref x1=(at) x2=(at) y1=(TOP - 6.0) y2=(height - 4.0) {}
                        text.ref-label x=(at) y="12" text-anchor="middle" { (label) }
                    }
                }
                @for note in &self.notes { p.muted.note { (note) } }
            }
        }
    }
}

/// A line over the half-years toward a target: each period's value as a point (none where
/// nobody reported, so a gap never reads as a fall to zero), the target as a dashed line and
/// its deadline as a dashed upright at its period.
pub struct Line<'a> {
    pub id: &'a str,
    pub title: String,
    pub description: String,
    pub unit: Unit,
    /// The x axis: periods (through the deadline) with their values.
    pub points: Vec<(String, Option<f64>)>,
    pub target: Option<(f64, String)>,
    /// The deadline: its place on the x axis and its label.
    pub deadline: Option<(usize, String)>,
    pub notes: Vec<String>,
}

const LINE_HEIGHT: f64 = 240.0;
const LINE_LEFT: f64 = 64.0;
const LINE_RIGHT: f64 = 24.0;
const LINE_TOP: f64 = 28.0;
const LINE_BOTTOM: f64 = 36.0;

impl Line<'_> {
    pub fn render(&self) -> Markup {
        let largest = self
            .points
            .iter()
            .filter_map(|(_, v)| *v)
            .chain(self.target.as_ref().map(|(v, _)| *v))
            .fold(0.0_f64, f64::max);
        let scale = match self.unit {
            Unit::Percent => 100.0_f64.max(largest),
            _ if largest > 0.0 => largest * 1.1,
            _ => 1.0,
        };
        let plot_w = WIDTH - LINE_LEFT - LINE_RIGHT;
        let plot_h = LINE_HEIGHT - LINE_TOP - LINE_BOTTOM;
        let step = plot_w / (self.points.len().max(2) - 1) as f64;
        let x = |i: usize| LINE_LEFT + step * i as f64;
        let y = |v: f64| LINE_TOP + plot_h * (1.0 - v / scale);
        // Consecutive values are joined; a period without one breaks the line.
        let mut segments: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
        for (i, (_, value)) in self.points.iter().enumerate() {
            match value {
                Some(v) => segments.last_mut().map_or((), |s| s.push((x(i), y(*v)))),
                None => segments.push(Vec::new()),
            }
        }
        let every = self.points.len().div_ceil(8).max(1);
        let title_id = format!("{}-title", self.id);
        let desc_id = format!("{}-desc", self.id);
        let bottom = LINE_HEIGHT - LINE_BOTTOM;
        html! {
            figure {
                figcaption id=(title_id) { (self.title) }
                svg.line viewBox=(format!("0 0 {WIDTH} {LINE_HEIGHT}")) width="100%" role="img"
                    aria-labelledby=(title_id) aria-describedby=(desc_id) xmlns="http://www.w3.org/2000/svg" {
                    desc id=(desc_id) { (self.description) }
                    line.axis x1=(LINE_LEFT) x2=(LINE_LEFT) y1=(LINE_TOP) y2=(bottom) {}
                    line.axis x1=(LINE_LEFT) x2=(WIDTH - LINE_RIGHT) y1=(bottom) y2=(bottom) {}
                    text.l x=(LINE_LEFT - 6.0) y=(format!("{:.0}", LINE_TOP + 4.0)) { (figures::value(self.unit, scale)) }
                    text.l x=(LINE_LEFT - 6.0) y=(format!("{:.0}", bottom + 4.0)) { (figures::value(self.unit, 0.0)) }
                    @for (i, (label, _)) in self.points.iter().enumerate() {
                        @if i % every == 0 {
                            text x=(format!("{:.1}", x(i))) y=(format!("{:.0}", bottom + 18.0)) text-anchor="middle" { (label) }
                        }
                    }
                    @if let Some((v, label)) = &self.target {
                        @let at = format!("{:.1}", y(*v));
                        line.ref x1=(LINE_LEFT) x2=(WIDTH - LINE_RIGHT) y1=(at) y2=(at) {}
                        text.ref-label x=(LINE_LEFT + 4.0) y=(format!("{:.1}", y(*v) - 5.0)) { (label) }
                    }
                    @if let Some((i, label)) = &self.deadline {
                        @let at = format!("{:.1}", x(*i));
                        line.ref x1=(at) x2=(at) y1=(LINE_TOP - 10.0) y2=(bottom) {}
                        text.ref-label x=(format!("{:.1}", x(*i) - 4.0)) y=(format!("{:.0}", LINE_TOP - 14.0)) text-anchor="end" { (label) }
                    }
                    @for segment in segments.iter().filter(|s| s.len() > 1) {
                        polyline.trend points=(segment.iter().map(|(px, py)| format!("{px:.1},{py:.1}")).collect::<Vec<_>>().join(" ")) {}
                    }
                    @for (i, (label, value)) in self.points.iter().enumerate() {
                        @if let Some(v) = value {
                            circle.point cx=(format!("{:.1}", x(i))) cy=(format!("{:.1}", y(*v))) r="4" {
                                title { (label) ": " (figures::value(self.unit, *v)) }
                            }
                        }
                    }
                }
                @for note in &self.notes { p.muted.note { (note) } }
            }
        }
    }
}

/// Long names are cut so the label column stays narrow; the tables give them in full.
fn short(label: &str) -> String {
    if label.chars().count() <= LABEL_CHARS {
        label.to_string()
    } else {
        let mut s: String = label.chars().take(LABEL_CHARS - 1).collect();
        s.push('…');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_plot_and_the_target_line_sits_at_its_value() {
        let chart = Chart {
            id: "c",
            title: "覆盖率".into(),
            description: "test".into(),
            unit: Unit::Percent,
            bars: vec![
                Bar {
                    label: "甲".into(),
                    value: Some(50.0),
                },
                Bar {
                    label: "乙".into(),
                    value: None,
                },
            ],
            reference: Some((90.0, "90%".into())),
            notes: vec!["未报送：丙".into()],
        }
        .render()
        .into_string();
        let plot = WIDTH - LABEL_WIDTH - VALUE_WIDTH;
        // 50% of a 0–100 scale is half the plot.
        assert!(
            chart.contains(&format!("width=\"{:.1}\"", plot / 2.0)),
            "{chart}"
        );
        assert!(chart.contains(&format!("x1=\"{:.1}\"", LABEL_WIDTH + plot * 0.9)));
        assert!(chart.contains("50.0%"));
        assert!(chart.contains("—"));
        assert_eq!(chart.matches("<rect").count(), 1);
        assert!(chart.contains("未报送：丙"));
    }
}
