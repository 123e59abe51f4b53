//! The report's SVG charts, drawn with plotters: a comparison's bars with the ratios and
//! the goal, latency percentiles, and cost against size.

use std::path::Path;

use plotters::prelude::*;

type Res = Result<(), Box<dyn std::error::Error>>;

const MMF: RGBColor = RGBColor(31, 119, 180);
const OTHER: RGBColor = RGBColor(170, 170, 170);
const GOAL: RGBColor = RGBColor(214, 39, 40);
const FONT: &str = "sans-serif";

/// One bar: a contestant, its median time in ns, whether it is mmf's, and its label.
pub struct Bar {
    /// The contestant's name.
    pub name: String,
    /// Median time of one iteration, ns.
    pub ns: f64,
    /// mmf's own contestant (drawn in colour).
    pub ours: bool,
    /// What to print after the name: the time and the ratios.
    pub note: String,
}

/// A time unit for an axis whose largest value is `max_ns`: (divisor, name).
pub fn unit(max_ns: f64) -> (f64, &'static str) {
    match max_ns {
        x if x >= 1e9 => (1e9, "s"),
        x if x >= 1e6 => (1e6, "ms"),
        x if x >= 1e3 => (1e3, "µs"),
        _ => (1.0, "ns"),
    }
}

/// Horizontal bars of median times, each labelled, with a red dash across a bar where a
/// goal would put that bar's time (`goals`: bar index and time in ns).
pub fn bars(path: &Path, title: &str, bars: &[Bar], goals: &[(usize, f64)]) -> Res {
    let n = bars.len();
    let height = 90 + 46 * n as u32;
    let root = SVGBackend::new(path, (900, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let max = bars.iter().map(|b| b.ns).chain(goals.iter().map(|g| g.1)).fold(0.0, f64::max);
    let (div, unit) = unit(max);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FONT, 17))
        .margin(12)
        .x_label_area_size(38)
        .y_label_area_size(8)
        .build_cartesian_2d(0f64..max / div * 1.9, 0f64..n as f64)?;
    let desc = match goals.is_empty() {
        true => format!("median time per iteration ({unit}); shorter is faster"),
        false => format!(
            "median time per iteration ({unit}); shorter is faster; red dash: where the goal puts that bar"
        ),
    };
    chart
        .configure_mesh()
        .disable_y_mesh()
        .disable_y_axis()
        .light_line_style(WHITE)
        .x_desc(desc)
        .x_labels(8)
        .draw()?;
    let row = |i: usize| (n - 1 - i) as f64;
    chart.draw_series(bars.iter().enumerate().map(|(i, b)| {
        let color = if b.ours { MMF } else { OTHER };
        Rectangle::new([(0.0, row(i) + 0.15), (b.ns / div, row(i) + 0.85)], color.filled())
    }))?;
    for &(i, ns) in goals {
        let x = ns / div;
        chart.draw_series(DashedLineSeries::new(
            [(x, row(i) + 0.02), (x, row(i) + 0.98)],
            5,
            3,
            GOAL.stroke_width(3),
        ))?;
    }
    chart.draw_series(bars.iter().enumerate().map(|(i, b)| {
        let text = format!("{}  {}", b.name, b.note);
        let x = goals.iter().filter(|g| g.0 == i).map(|g| g.1).fold(b.ns, f64::max) / div;
        Text::new(text, (x + max / div * 0.012, row(i) + 0.62), (FONT, 13))
    }))?;
    root.present()?;
    Ok(())
}

/// p50 / p99 / p99.9 of each contestant as grouped bars on a logarithmic time axis.
pub fn percentiles(path: &Path, title: &str, rows: &[(String, [f64; 3])]) -> Res {
    let n = rows.len();
    let root = SVGBackend::new(path, (900, 460)).into_drawing_area();
    root.fill(&WHITE)?;
    let lo = rows.iter().flat_map(|r| r.1).fold(f64::MAX, f64::min).max(1.0) / 2.0;
    let hi = rows.iter().flat_map(|r| r.1).fold(0.0, f64::max) * 3.0;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FONT, 17))
        .margin(12)
        .x_label_area_size(70)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..n as f64, (lo..hi).log_scale())?;
    let names: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n * 2 + 1)
        .x_label_formatter(&|x| {
            let i = (x - 0.5).round();
            if (x - 0.5 - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < names.len() {
                names[i as usize].clone()
            } else {
                String::new()
            }
        })
        .y_desc("round-trip time (ns, log scale)")
        .draw()?;
    let shades = [MMF.mix(0.45), MMF.mix(0.75), MMF.mix(1.0)];
    for (k, label) in ["p50", "p99", "p99.9"].iter().enumerate() {
        let style = shades[k].filled();
        chart
            .draw_series(rows.iter().enumerate().map(|(i, r)| {
                let x0 = i as f64 + 0.12 + k as f64 * 0.26;
                Rectangle::new([(x0, lo), (x0 + 0.24, r.1[k])], style)
            }))?
            .label(*label)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], style));
    }
    chart.configure_series_labels().border_style(BLACK).background_style(WHITE).draw()?;
    root.present()?;
    Ok(())
}

/// A line of a scaling chart: the contestant, whether it is mmf's, its (x, y) points.
pub type Series = (String, bool, Vec<(f64, f64)>);

/// One line per contestant: `y` against `x` (logarithmic: base 2 for bytes, else 10).
pub fn scaling(path: &Path, title: &str, (x_desc, y_desc): (&str, &str), series: &[Series]) -> Res {
    let root = SVGBackend::new(path, (900, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let points = series.iter().flat_map(|s| s.2.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, 0.0f64, f64::MAX, 0.0f64);
    for &(x, y) in points {
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
    }
    if x0 >= x1 || y0 > y1 || y0 <= 0.0 {
        return Ok(());
    }
    let bytes = x_desc.contains("bytes");
    // Sizes in bytes step by powers of two, counts by powers of ten.
    let base = if bytes { 2.0 } else { 10.0 };
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FONT, 17))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d((x0 / 1.5..x1 * 1.5).log_scale().base(base), 0.0..y1 * 1.2)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_label_formatter(&|x| human(*x, bytes))
        .y_label_formatter(&|y| short(*y))
        .draw()?;
    // mmf's lines in blues, the others in other colours.
    let ours_palette = [MMF, RGBColor(23, 190, 207), RGBColor(10, 50, 110)];
    let palette = [RGBColor(255, 127, 14), RGBColor(44, 160, 44), RGBColor(148, 103, 189)];
    let (mut n_ours, mut n_others) = (0, 0);
    for (name, ours, pts) in series {
        let color = if *ours {
            n_ours += 1;
            ours_palette[(n_ours - 1) % ours_palette.len()]
        } else {
            n_others += 1;
            palette[(n_others - 1) % palette.len()]
        };
        chart
            .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)).point_size(3))?
            .label(name.clone())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], color.stroke_width(2)));
    }
    chart.configure_series_labels().border_style(BLACK).background_style(WHITE).draw()?;
    root.present()?;
    Ok(())
}

/// `y` for an axis label, with as many decimals as its size needs.
fn short(y: f64) -> String {
    match y.abs() {
        a if a >= 100.0 || a == 0.0 => format!("{y:.0}"),
        a if a >= 1.0 => format!("{y:.1}"),
        a if a >= 0.01 => format!("{y:.2}"),
        _ => format!("{y:.4}"),
    }
}

/// `x` for an axis label: `16 MiB` for bytes, `10k` / `1M` for counts.
fn human(x: f64, bytes: bool) -> String {
    let units: &[(f64, &str)] = if bytes {
        &[(1_073_741_824.0, " GiB"), (1_048_576.0, " MiB"), (1024.0, " KiB"), (1.0, " B")]
    } else {
        &[(1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, "")]
    };
    let (div, unit) = units.iter().find(|(d, _)| x >= *d).copied().unwrap_or((1.0, ""));
    let v = x / div;
    if (v - v.round()).abs() < 0.05 { format!("{v:.0}{unit}") } else { format!("{v:.1}{unit}") }
}
