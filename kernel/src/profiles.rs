//! Cross-session profiles with a time-to-live in event time, as `promotion/profiles.py` keeps them.

use serde::{Deserialize, Serialize};

pub const DAY_MS: i64 = 86_400_000;
const PURCHASE_WINDOW_MS: i64 = 30 * DAY_MS;
const INTEREST_HALF_LIFE_MS: f64 = 7.0 * DAY_MS as f64;
const TOP_CATEGORIES: usize = 3;
const REBASE_HALF_LIVES: f64 = 64.0;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Profile {
    pub last_ts: i64,
    pub sessions: i64,
    pub purchases: Vec<i64>,
    /// category -> score as of `interest_ts`, in insertion order.
    #[serde(with = "pairs")]
    pub interest: Vec<(Box<str>, f64)>,
    pub interest_ts: i64,
}

/// The profile as a session starting at some time sees it (`profiles.ProfileFacts`).
#[derive(Clone, Debug, Default)]
pub struct ProfileFacts {
    pub sessions: i64,
    pub purchases_30d: i64,
    pub days_since_purchase: f64,
    pub top_categories: Vec<Box<str>>,
}

impl ProfileFacts {
    pub fn none() -> ProfileFacts {
        ProfileFacts { sessions: 0, purchases_30d: 0, days_since_purchase: -1.0, top_categories: Vec::new() }
    }
}

/// Python's `round(x, digits)`: the nearest decimal, ties to even on the exact binary value.
pub fn round_to(x: f64, digits: usize) -> f64 {
    if !x.is_finite() {
        return x;
    }
    format!("{x:.digits$}").parse().unwrap_or(x)
}

impl Profile {
    fn decayed(&self, at_ms: i64) -> Vec<(Box<str>, f64)> {
        let elapsed = at_ms - self.interest_ts;
        if elapsed <= 0 {
            return self.interest.clone();
        }
        let factor = 0.5f64.powf(elapsed as f64 / INTEREST_HALF_LIFE_MS);
        self.interest.iter().map(|(c, s)| (c.clone(), s * factor)).collect()
    }

    /// The profile as seen by a session that starts at `at_ms`.
    pub fn facts(&self, at_ms: i64) -> ProfileFacts {
        let recent: Vec<i64> = self.purchases.iter().copied().filter(|ts| at_ms - ts <= PURCHASE_WINDOW_MS).collect();
        let since = match recent.iter().max() {
            Some(&last) => (at_ms - last) as f64 / DAY_MS as f64,
            None => -1.0,
        };
        let mut interest = self.decayed(at_ms);
        interest.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap_or(std::cmp::Ordering::Equal).then_with(|| a.0.cmp(&b.0)));
        ProfileFacts {
            sessions: self.sessions,
            purchases_30d: recent.len() as i64,
            days_since_purchase: round_to(since, 3),
            top_categories: interest.into_iter().take(TOP_CATEGORIES).map(|(c, _)| c).collect(),
        }
    }

    /// Fold a closed session into the profile (sessions close in event-time order per user).
    pub fn record_session(&mut self, end_ms: i64, paid: bool, categories: &[Box<str>]) {
        if end_ms > self.last_ts {
            self.last_ts = end_ms;
        }
        self.sessions += 1;
        if paid || !self.purchases.is_empty() {
            self.purchases.retain(|ts| end_ms - ts <= PURCHASE_WINDOW_MS);
            if paid {
                self.purchases.push(end_ms);
            }
        }
        if categories.is_empty() {
            return;
        }
        let weight;
        if self.interest.is_empty() {
            self.interest_ts = end_ms;
            weight = 1.0;
        } else {
            let half_lives = (end_ms - self.interest_ts) as f64 / INTEREST_HALF_LIFE_MS;
            if half_lives > REBASE_HALF_LIVES {
                self.interest = self.decayed(end_ms);
                self.interest_ts = end_ms;
                weight = 1.0;
            } else {
                weight = 2.0f64.powf(half_lives);
            }
        }
        for category in categories {
            match self.interest.iter_mut().find(|(c, _)| c == category) {
                Some((_, score)) => *score += weight,
                None => self.interest.push((category.clone(), weight)),
            }
        }
        if self.interest.len() > 16 {
            let floor = 0.05 * weight; // forget faded interests, keep the profile small
            self.interest.retain(|(_, s)| *s >= floor);
        }
    }
}

mod pairs {
    use serde::de::{Deserializer, MapAccess, Visitor};
    use serde::ser::{SerializeMap, Serializer};
    use std::fmt;

    pub fn serialize<S: Serializer>(v: &[(Box<str>, f64)], s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(v.len()))?;
        for (k, x) in v {
            map.serialize_entry(&**k, x)?;
        }
        map.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(Box<str>, f64)>, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Vec<(Box<str>, f64)>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of scores")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, f64>()? {
                    out.push((k.into_boxed_str(), v));
                }
                Ok(out)
            }
        }
        d.deserialize_map(V)
    }
}

#[cfg(test)]
mod tests {
    use super::round_to;

    #[test]
    fn rounds_like_python() {
        assert_eq!(round_to(0.0625, 3), 0.062);
        assert_eq!(round_to(2.675, 2), 2.67);
        assert_eq!(round_to(0.0005, 3), 0.001);
        assert_eq!(round_to(-1.0, 3), -1.0);
    }
}
