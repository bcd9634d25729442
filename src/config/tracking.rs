//! `[target.tracking]`: the metric, its target, the scale-in window and cooldowns, and
//! what is learnt from history, each key's default and range from [`super::keys`].
//!
//! What it must not do: hold checks of other sections, or learn anything itself (the
//! policy does).

use std::ops::Range;

use toml::Spanned;

use super::checker::Checker;
use super::keys;
use super::model::*;
use super::raw::*;

pub(super) fn tracking(checker: &mut Checker<'_>, raw: RawTracking) -> Option<TrackingConfig> {
    let metric = metric(checker, &raw);
    let target = aim(checker, &raw, metric.as_ref());
    // CloudWatch publishes one datapoint a minute: a shorter window makes every
    // dip a scale-in (4,210 writes a week instead of 513 on the shared ELB trace).
    let scale_in_window =
        checker.delta_or_default(&raw.scale_in_window, &keys::TRACKING_SCALE_IN_WINDOW);
    let scale_out_cooldown =
        checker.delta_or_default(&raw.scale_out_cooldown, &keys::TRACKING_SCALE_OUT_COOLDOWN);
    let scale_in_cooldown =
        checker.delta_or_default(&raw.scale_in_cooldown, &keys::TRACKING_SCALE_IN_COOLDOWN);
    let stale_after = checker.delta_or_default(&raw.stale_after, &keys::TRACKING_STALE_AFTER);
    let max_scale_in_step = raw
        .max_scale_in_step
        .and_then(|step| step_limit(checker, &step));
    let missing_data = raw
        .missing_data
        .as_ref()
        .and_then(|value| {
            checker.one_of(
                value,
                &[("hold", MissingData::Hold), ("zero", MissingData::Zero)],
            )
        })
        .unwrap_or(MissingData::Hold);
    let mut mode = |value: &Option<Spanned<String>>| {
        value
            .as_ref()
            .and_then(|value| {
                checker.one_of(
                    value,
                    &[
                        ("off", ForecastMode::Off),
                        ("observe", ForecastMode::Observe),
                        ("on", ForecastMode::On),
                    ],
                )
            })
            // The best policy by default (it was "off" before 0.2).
            .unwrap_or(ForecastMode::On)
    };
    let history_by_default = raw.forecast.is_none() && raw.choose_window.is_none();
    let forecast = mode(&raw.forecast);
    let choose_window = mode(&raw.choose_window);
    let forecast_horizon =
        checker.delta_or_default(&raw.forecast_horizon, &keys::TRACKING_FORECAST_HORIZON);
    Some(TrackingConfig {
        forecast,
        forecast_horizon,
        choose_window,
        history_by_default,
        metric: metric?,
        target: target?,
        scale_in_window,
        scale_out_cooldown,
        scale_in_cooldown,
        max_scale_in_step,
        missing_data,
        stale_after,
        disable_scale_in: raw.disable_scale_in.unwrap_or(false),
    })
}

/// A utilization target: above 0 and at most 1 (NaN is neither).
fn is_utilization(value: f64) -> bool {
    value > 0.0 && value <= 1.0
}

fn custom_metric(
    checker: &mut Checker<'_>,
    raw: &RawCustomMetric,
    span: Range<usize>,
) -> Option<MetricKind> {
    let mut required = |value: &Option<Spanned<String>>, key: &str| match value {
        Some(text) if !text.get_ref().is_empty() => Some(text.get_ref().clone()),
        _ => {
            checker.error(span.clone(), format!("the custom metric needs `{key}`"));
            None
        }
    };
    let namespace = required(&raw.namespace, "namespace");
    let name = required(&raw.name, "name");
    let stat = match &raw.stat {
        None => Some("Average".to_owned()),
        Some(stat) => {
            let text = stat.get_ref();
            let percentile = text
                .strip_prefix('p')
                .and_then(|number| number.parse::<f64>().ok())
                .is_some_and(|p| p > 0.0 && p < 100.0);
            if percentile
                || ["Average", "Maximum", "Minimum", "Sum", "SampleCount"].contains(&text.as_str())
            {
                Some(text.clone())
            } else {
                checker.error(
                    stat.span(),
                    format!("`{text}` is not a CloudWatch statistic (Average, Maximum, Minimum, Sum, SampleCount or pNN)"),
                );
                None
            }
        }
    };
    Some(MetricKind::Custom(CustomMetric {
        namespace: namespace?,
        name: name?,
        dimensions: raw.dimensions.clone(),
        stat: stat?,
    }))
}

fn step_limit(checker: &mut Checker<'_>, step: &Spanned<RawStep>) -> Option<StepLimit> {
    let invalid = "max_scale_in_step must be a percentage such as \"50%\" or a count of at least 1";
    match step.get_ref() {
        RawStep::Count(count) => match u32::try_from(*count) {
            Ok(count) if count >= 1 => Some(StepLimit::Count(count)),
            _ => {
                checker.error(step.span(), invalid);
                None
            }
        },
        RawStep::Text(text) => match text
            .strip_suffix('%')
            .and_then(|number| number.trim().parse::<f64>().ok())
        {
            Some(percent) if percent > 0.0 && percent <= 100.0 => {
                Some(StepLimit::Fraction(percent / 100.0))
            }
            _ => {
                checker.error(step.span(), invalid);
                None
            }
        },
    }
}

/// The metric tracked, and its custom definition when it is `custom`.
fn metric(checker: &mut Checker<'_>, raw: &RawTracking) -> Option<MetricKind> {
    let custom = raw
        .custom
        .as_ref()
        .map(|custom| (custom.span(), custom.get_ref()));
    let metric = match &raw.metric {
        None => {
            let span = raw.target.as_ref().map(Spanned::span).unwrap_or(0..0);
            checker.error(
                span,
                "tracking needs `metric` (\"concurrency\", \"utilization\" or \"custom\")",
            );
            None
        }
        Some(metric) => match metric.get_ref().as_str() {
            "concurrency" => Some(MetricKind::Concurrency),
            "utilization" => Some(MetricKind::Utilization),
            "custom" => match &custom {
                Some((_, custom)) => custom_metric(checker, custom, metric.span()),
                None => {
                    checker.error(
                        metric.span(),
                        "metric = \"custom\" needs a `custom = { namespace, name, dimensions, stat }` table",
                    );
                    None
                }
            },
            other => {
                checker.error(
                    metric.span(),
                    format!("`{other}` is not one of \"concurrency\", \"utilization\", \"custom\""),
                );
                None
            }
        },
    };
    if let (Some((span, _)), Some(kind)) = (&custom, &metric)
        && !matches!(kind, MetricKind::Custom(_))
    {
        checker.error(
            span.clone(),
            "`custom` is only used with metric = \"custom\"",
        );
    }
    metric
}

/// The value to aim for: a utilization, or a custom metric's value per unit.
fn aim(checker: &mut Checker<'_>, raw: &RawTracking, metric: Option<&MetricKind>) -> Option<f64> {
    match &raw.target {
        None => {
            let span = raw.metric.as_ref().map(Spanned::span).unwrap_or(0..0);
            checker.error(span, "tracking needs `target`, the value to aim for");
            None
        }
        Some(target) => {
            let value = *target.get_ref();
            let custom = matches!(metric, Some(MetricKind::Custom(_)));
            if custom && !(value.is_finite() && value > 0.0) {
                checker.error(
                    target.span(),
                    format!(
                        "target {value} must be above 0 (the metric value per unit of capacity)"
                    ),
                );
                None
            } else if !custom && !is_utilization(value) {
                checker.error(
                    target.span(),
                    format!("target {value} is out of range: a utilization above 0 and at most 1, e.g. 0.7"),
                );
                None
            } else {
                Some(value)
            }
        }
    }
}
