//! `chart.svg`: what a reader compares. Above, each policy's spillover summed over
//! the whole trace as it goes: a line per policy that stays readable over months,
//! where demand and capacity would be spikes on a flat line. Below, a zoom on the worst
//! hour (the hour with the most spillover, all policies but the oracle together):
//! demand and each policy's usable capacity, minute by minute. Draws only; the numbers
//! come from `Simulation`.
//!
//! What it must not do: compute anything the simulation does not hold.

use std::path::Path;

use chrono::TimeDelta;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::Simulation;

/// Points per series in the overview; longer traces are reduced to per-bucket maxima.
const OVERVIEW_POINTS: usize = 1_500;
/// One per policy, in report order (up to six: two of ours, three baselines, the oracle).
const COLORS: [RGBColor; 6] = [
    RGBColor(0, 114, 178),
    RGBColor(86, 180, 233),
    RGBColor(230, 159, 0),
    RGBColor(213, 94, 0),
    RGBColor(204, 121, 167),
    RGBColor(0, 158, 115),
];

pub fn draw(outcome: &Simulation, path: &Path) -> Result<(), String> {
    let root = SVGBackend::new(path, (1400, 900)).into_drawing_area();
    root.fill(&WHITE).map_err(|error| error.to_string())?;
    let (top, bottom) = root.split_vertically(520);
    let minutes = outcome.demand.concurrency.len();
    let worst = worst_hour(outcome);
    cumulative_spill(
        &top,
        outcome,
        &format!(
            "{}: spillover so far (unit-hours), {minutes} minutes",
            outcome.report.trace
        ),
    )?;
    panel(
        &bottom,
        outcome,
        worst.clone(),
        &format!(
            "worst hour: {} to {} UTC",
            (outcome.demand.start + TimeDelta::minutes(worst.start as i64))
                .format("%Y-%m-%d %H:%M"),
            (outcome.demand.start + TimeDelta::minutes(worst.end as i64)).format("%H:%M"),
        ),
    )?;
    root.present().map_err(|error| error.to_string())
}

/// Each policy's spillover summed from the start, at most [`OVERVIEW_POINTS`] points.
fn cumulative_spill<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    outcome: &Simulation,
    title: &str,
) -> Result<(), String> {
    let demand = &outcome.demand.concurrency;
    let bucket = demand.len().div_ceil(OVERVIEW_POINTS).max(1);
    let curves: Vec<Vec<(f64, f64)>> = outcome
        .usable
        .iter()
        .map(|usable| {
            let mut total = 0.0;
            let mut points = vec![(0.0, 0.0)];
            for (minute, (need, have)) in demand.iter().zip(usable).enumerate() {
                total += (need - f64::from(*have)).max(0.0) / 60.0;
                if (minute + 1) % bucket == 0 || minute + 1 == demand.len() {
                    points.push(((minute + 1) as f64 / 60.0, total));
                }
            }
            points
        })
        .collect();
    let top = (curves.iter().flatten())
        .map(|(_, value)| *value)
        .fold(0.01, f64::max)
        * 1.05;
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..demand.len() as f64 / 60.0, 0.0..top)
        .map_err(|error| error.to_string())?;
    chart
        .configure_mesh()
        .x_desc("hours from the start of the trace")
        .y_desc("spilled unit-hours")
        .draw()
        .map_err(|error| error.to_string())?;
    for ((policy, series), color) in outcome.report.policies.iter().zip(curves).zip(COLORS) {
        chart
            .draw_series(LineSeries::new(series, color.stroke_width(2)))
            .map_err(|error| error.to_string())?
            .label(format!(
                "{} ({:.1} unit-hours, {:.2} %)",
                policy.name, policy.spillover_unit_hours, policy.spillover_pct
            ))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], color.stroke_width(3)));
    }
    draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)
}

fn worst_hour(outcome: &Simulation) -> std::ops::Range<usize> {
    let minutes = outcome.demand.concurrency.len();
    let spill_at = |minute: usize| -> f64 {
        outcome.usable[..outcome.usable.len() - 1]
            .iter()
            .map(|usable| (outcome.demand.concurrency[minute] - f64::from(usable[minute])).max(0.0))
            .sum()
    };
    let spill: Vec<f64> = (0..minutes).map(spill_at).collect();
    let hour = 60.min(minutes);
    let mut window: f64 = spill[..hour].iter().sum();
    let (mut best, mut best_start) = (window, 0);
    for start in 1..=(minutes - hour) {
        window += spill[start + hour - 1] - spill[start - 1];
        if window > best {
            best = window;
            best_start = start;
        }
    }
    best_start..best_start + hour
}

fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    outcome: &Simulation,
    range: std::ops::Range<usize>,
    title: &str,
) -> Result<(), String> {
    let bucket = range.len().div_ceil(OVERVIEW_POINTS).max(1);
    let reduce = |values: &dyn Fn(usize) -> f64| -> Vec<(f64, f64)> {
        range
            .clone()
            .step_by(bucket)
            .map(|start| {
                let end = (start + bucket).min(range.end);
                let peak = (start..end).map(values).fold(0.0, f64::max);
                (start as f64 / 60.0, peak)
            })
            .collect()
    };
    let demand = reduce(&|minute| outcome.demand.concurrency[minute]);
    let capacities: Vec<Vec<(f64, f64)>> = outcome
        .usable
        .iter()
        .map(|usable| reduce(&|minute| f64::from(usable[minute])))
        .collect();
    let top = demand
        .iter()
        .chain(capacities.iter().flatten())
        .map(|(_, value)| *value)
        .fold(1.0, f64::max)
        * 1.05;
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(range.start as f64 / 60.0..range.end as f64 / 60.0, 0.0..top)
        .map_err(|error| error.to_string())?;
    chart
        .configure_mesh()
        .x_desc("hours from the start of the trace")
        .y_desc("concurrency")
        .draw()
        .map_err(|error| error.to_string())?;
    chart
        .draw_series(
            AreaSeries::new(demand, 0.0, RGBColor(200, 200, 200).mix(0.6)).border_style(BLACK),
        )
        .map_err(|error| error.to_string())?
        .label("demand")
        .legend(|(x, y)| {
            Rectangle::new(
                [(x, y - 5), (x + 16, y + 5)],
                RGBColor(200, 200, 200).filled(),
            )
        });
    for ((policy, series), color) in outcome.report.policies.iter().zip(capacities).zip(COLORS) {
        chart
            .draw_series(LineSeries::new(series, color.stroke_width(2)))
            .map_err(|error| error.to_string())?
            .label(format!(
                "{} (spill {:.2} %)",
                policy.name, policy.spillover_pct
            ))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], color.stroke_width(3)));
    }
    draw_legend(&mut chart, SeriesLabelPosition::UpperRight)
}

/// `frontier.svg`: spillover against cost, one curve per policy over the swept target
/// values, and the oracle's point: the whole trade-off, not one target value.
pub fn draw_frontier(frontier: &super::Frontier, trace: &str, path: &Path) -> Result<(), String> {
    let root = SVGBackend::new(path, (1000, 700)).into_drawing_area();
    root.fill(&WHITE).map_err(|error| error.to_string())?;
    let points = || {
        frontier
            .curves
            .iter()
            .flat_map(|curve| curve.points.iter())
            .chain(std::iter::once(&frontier.oracle))
    };
    let max_cost = points().map(|point| point.cost_usd).fold(1.0, f64::max) * 1.05;
    let max_spill = points()
        .map(|point| point.spillover_pct)
        .fold(0.1, f64::max)
        * 1.05;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("{trace}: spillover against cost over target values"),
            ("sans-serif", 22),
        )
        .margin(16)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..max_cost, 0.0..max_spill)
        .map_err(|error| error.to_string())?;
    chart
        .configure_mesh()
        .x_desc("provisioned concurrency cost, $")
        .y_desc("spillover, % of demand")
        .draw()
        .map_err(|error| error.to_string())?;
    for (curve, color) in frontier.curves.iter().zip(COLORS) {
        let series: Vec<(f64, f64)> = curve
            .points
            .iter()
            .map(|point| (point.cost_usd, point.spillover_pct))
            .collect();
        chart
            .draw_series(LineSeries::new(series.clone(), color.stroke_width(2)))
            .map_err(|error| error.to_string())?
            .label(curve.policy.clone())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], color.stroke_width(3)));
        chart
            .draw_series(
                series
                    .into_iter()
                    .map(|xy| Circle::new(xy, 4, color.filled())),
            )
            .map_err(|error| error.to_string())?;
    }
    let oracle = (frontier.oracle.cost_usd, frontier.oracle.spillover_pct);
    chart
        .draw_series(std::iter::once(Circle::new(oracle, 7, BLACK.filled())))
        .map_err(|error| error.to_string())?
        .label("oracle")
        .legend(|(x, y)| Circle::new((x + 8, y), 5, BLACK.filled()));
    draw_legend(&mut chart, SeriesLabelPosition::UpperRight)?;
    root.present().map_err(|error| error.to_string())
}

/// The legend of every chart: upper right, on a white box.
fn draw_legend<'a, DB: DrawingBackend + 'a>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    position: SeriesLabelPosition,
) -> Result<(), String> {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|error| error.to_string())
}
