//! The bill model `audit` prices with: Lambda's published prices for provisioned
//! concurrency, duration on it and on demand, and requests, by architecture. What it
//! must not do: guess a Region's prices; the figures and their source are stated here
//! and in the report.

use serde::Serialize;

/// A month as AWS bills it: 730 hours.
pub const SECONDS_A_MONTH: f64 = 730.0 * 3600.0;

/// Prices of one architecture, in dollars.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rates {
    /// Provisioned concurrency, per GB-second configured.
    pub provisioned: f64,
    /// Duration on provisioned concurrency, per GB-second.
    pub duration_provisioned: f64,
    /// Duration on demand, per GB-second (the first pricing tier).
    pub duration_on_demand: f64,
    /// Requests, per million (the same on both).
    pub requests_per_million: f64,
}

impl Rates {
    /// The mean utilization below which on-demand costs less: provisioned capacity
    /// costs `provisioned` a GB-second used or not, and saves `duration_on_demand -
    /// duration_provisioned` on each GB-second it serves.
    pub fn break_even_utilization(&self) -> f64 {
        self.provisioned / (self.duration_on_demand - self.duration_provisioned)
    }
}

/// The prices of both architectures, and where they come from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Price {
    pub source: String,
    pub x86_64: Rates,
    pub arm64: Rates,
}

impl Price {
    /// Lambda's published prices in US East (N. Virginia), as listed on
    /// aws.amazon.com/lambda/pricing (read 2026-12-05).
    pub fn us_east_1() -> Self {
        Self {
            source: "AWS Lambda published prices, US East (N. Virginia), 2026-12-05".into(),
            x86_64: Rates {
                provisioned: 0.000_004_166_7,
                duration_provisioned: 0.000_009_722_2,
                duration_on_demand: 0.000_016_666_7,
                requests_per_million: 0.20,
            },
            arm64: Rates {
                provisioned: 0.000_003_333_4,
                duration_provisioned: 0.000_007_777_8,
                duration_on_demand: 0.000_013_333_4,
                requests_per_million: 0.20,
            },
        }
    }

    pub fn of(&self, arm64: bool) -> &Rates {
        if arm64 { &self.arm64 } else { &self.x86_64 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_demand_wins_below_sixty_percent_on_both_architectures() {
        let price = Price::us_east_1();
        for rates in [price.x86_64, price.arm64] {
            let break_even = rates.break_even_utilization();
            assert!((break_even - 0.6).abs() < 0.001, "{break_even}");
        }
    }
}
