//! `audit.svg`: the whole bill a month per function, as configured today against
//! managed by pc-autoscaler over the same history; functions with an unused config
//! are marked.
//! What it must not do: compute anything the report does not hold.

use std::path::Path;

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::AuditReport;

/// Bars at most: the most expensive functions today.
const MAX_FUNCTIONS: usize = 40;

pub fn write(report: &AuditReport, path: &Path) -> std::io::Result<()> {
    let mut functions: Vec<(&str, (f64, f64, bool))> =
        super::by_function(report).into_iter().collect();
    functions.sort_by(|left, right| right.1.0.total_cmp(&left.1.0));
    functions.truncate(MAX_FUNCTIONS);
    let rows = functions.len().max(1);
    let height = 120 + 28 * rows as u32;
    let top = functions
        .iter()
        .map(|(_, (now, managed, _))| now.max(*managed))
        .fold(1.0_f64, f64::max);
    let failed = |error: &dyn std::fmt::Display| std::io::Error::other(error.to_string());
    let root = SVGBackend::new(path, (960, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|error| failed(&error))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Provisioned concurrency, dollars a month",
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(10)
        .build_cartesian_2d(0.0..top * 1.1, 0.0..rows as f64)
        .map_err(|error| failed(&error))?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .disable_y_axis()
        .x_desc("$ a month")
        .draw()
        .map_err(|error| failed(&error))?;
    // Each function's name beside its bars, not as axis labels: plotters places those
    // where its tick spacing falls, which can skip a row.
    let names = functions
        .iter()
        .enumerate()
        .map(|(row, (name, (_, _, unused)))| {
            let name = crate::escape::printable(name).into_owned();
            let label = if *unused {
                format!("{name} (unused config)")
            } else {
                name
            };
            let style = ("sans-serif", 13).into_text_style(&root).pos(
                plotters::style::text_anchor::Pos::new(
                    plotters::style::text_anchor::HPos::Left,
                    plotters::style::text_anchor::VPos::Center,
                ),
            );
            Text::new(label, (0.0, row as f64 + 0.85), style)
        });
    chart.draw_series(names).map_err(|error| failed(&error))?;
    let today = RGBColor(200, 80, 60);
    let managed = RGBColor(60, 120, 200);
    draw_bars(
        &mut chart,
        &functions,
        (0.05, today, "as configured today"),
        |values| values.0,
    )
    .map_err(|error| failed(&error))?;
    draw_bars(
        &mut chart,
        &functions,
        (0.4, managed, "managed by pc-autoscaler"),
        |values| values.1,
    )
    .map_err(|error| failed(&error))?;
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .draw()
        .map_err(|error| failed(&error))?;
    root.present().map_err(|error| failed(&error))
}

type Chart<'a> = ChartContext<'a, SVGBackend<'a>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// One series of bars, a row per function, `offset` into its row, with its legend.
fn draw_bars(
    chart: &mut Chart<'_>,
    functions: &[(&str, (f64, f64, bool))],
    (offset, color, label): (f64, RGBColor, &str),
    pick: fn(&(f64, f64, bool)) -> f64,
) -> Result<(), String> {
    let bars = functions.iter().enumerate().map(|(row, (_, values))| {
        let low = row as f64 + offset;
        Rectangle::new([(0.0, low), (pick(values), low + 0.3)], color.filled())
    });
    chart
        .draw_series(bars)
        .map_err(|error| error.to_string())?
        .label(label)
        .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
    Ok(())
}
