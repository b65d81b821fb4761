//! What rules see of a closed session (`promotion/facts.py`), and the notification it produces
//! (`promotion/notifications.py`, `promotion/records.py`), encoded as orjson encodes it.

use crate::profiles::{round_to, ProfileFacts};
use crate::rules::{Decision, Fact, Products, Scalar, DEFAULT_VARIANT};
use crate::sessions::{CloseReason, Session};
use crate::timefmt::format_ms;

/// Python's `math.fsum`: the correctly rounded sum (Shewchuk's partials, CPython's final
/// rounding); an intermediate overflow gives infinity, as `facts.cart_value` does.
pub fn fsum(values: impl Iterator<Item = f64>) -> f64 {
    let mut partials: Vec<f64> = Vec::new();
    let mut special = 0.0;
    for mut x in values {
        if !x.is_finite() {
            special += x;
            continue;
        }
        let mut i = 0;
        for j in 0..partials.len() {
            let mut y = partials[j];
            if x.abs() < y.abs() {
                std::mem::swap(&mut x, &mut y);
            }
            let hi = x + y;
            let lo = y - (hi - x);
            if lo != 0.0 {
                partials[i] = lo;
                i += 1;
            }
            x = hi;
        }
        if !x.is_finite() {
            return f64::INFINITY; // intermediate overflow (every term here is >= 0)
        }
        partials.truncate(i);
        partials.push(x);
    }
    if special != 0.0 || special.is_nan() {
        return special;
    }
    let mut n = partials.len();
    let mut hi = 0.0;
    if n > 0 {
        n -= 1;
        hi = partials[n];
        let mut lo = 0.0;
        while n > 0 {
            let x = hi;
            n -= 1;
            let y = partials[n];
            hi = x + y;
            let yr = hi - x;
            lo = y - yr;
            if lo != 0.0 {
                break;
            }
        }
        if n > 0 && ((lo < 0.0 && partials[n - 1] < 0.0) || (lo > 0.0 && partials[n - 1] > 0.0)) {
            let y = lo * 2.0;
            let x = hi + y;
            let yr = x - hi;
            if y == yr {
                hi = x;
            }
        }
    }
    hi
}

/// Quantity times last seen price (0 when none), summed exactly, to the cent.
pub fn cart_value(session: &Session) -> f64 {
    let price = |product: &str| session.prices().iter().find(|(p, _)| &**p == product).map_or(0.0, |(_, x)| *x);
    round_to(fsum(session.cart().iter().map(|(p, qty)| *qty as f64 * price(p))), 2)
}

pub struct Facts<'a> {
    pub user_id: &'a str,
    pub session: &'a Session,
    pub reason: CloseReason,
    pub cart_value: f64,
    pub profile: ProfileFacts,
}

impl Facts<'_> {
    pub fn scalar(&self, fact: Fact) -> Scalar {
        let s = self.session;
        Scalar::Number(match fact {
            Fact::Events => f64::from(s.events),
            Fact::DurationSeconds => (s.end - s.start) as f64 / 1000.0,
            Fact::CloseReason => return Scalar::Text(self.reason.name().to_owned()),
            Fact::Count(i) => f64::from(s.type_counts[i]),
            Fact::CartItems => s.cart().iter().map(|(_, q)| *q).sum::<i64>() as f64,
            Fact::CartProducts => s.cart().len() as f64,
            Fact::CartValue => self.cart_value,
            Fact::ProfileSessions => self.profile.sessions as f64,
            Fact::ProfilePurchases30d => self.profile.purchases_30d as f64,
            Fact::ProfileDaysSincePurchase => self.profile.days_since_purchase,
            Fact::CartProductIds | Fact::ViewedProducts | Fact::ViewedCategories | Fact::ProfileTopCategories => f64::NAN,
        })
    }

    pub fn set_contains(&self, fact: Fact, value: &str) -> bool {
        let s = self.session;
        match fact {
            Fact::CartProductIds => s.cart().iter().any(|(p, _)| &**p == value),
            Fact::ViewedProducts => s.viewed.iter().any(|p| &**p == value),
            Fact::ViewedCategories => s.categories.iter().any(|c| &**c == value),
            Fact::ProfileTopCategories => self.profile.top_categories.iter().any(|c| &**c == value),
            _ => false,
        }
    }

    pub fn products(&self, products: Products) -> Vec<&str> {
        let s = self.session;
        let mut out: Vec<&str> = match products {
            Products::Cart => s.cart().iter().map(|(p, _)| &**p).collect(),
            Products::Viewed => s.viewed.iter().map(|p| &**p).filter(|p| !s.cart().iter().any(|(c, _)| &**c == *p)).collect(),
            Products::Nothing => Vec::new(),
        };
        out.sort_unstable();
        out
    }
}

/// A JSON string as orjson writes it: `"` and `\` escaped, control characters as \b \t \n \f \r
/// or \u00xx, everything else as UTF-8.
pub fn json_string(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    for &b in text.as_bytes() {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\r' => out.extend_from_slice(b"\\r"),
            0..=0x1f => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 15)]);
            }
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

/// A UUID-formatted digest of the session's identity and the decision (`notification_id`).
pub fn notification_id(facts: &Facts, decision: &Decision, rules_version: &str) -> String {
    let s = facts.session;
    let mut key = String::new();
    for (i, part) in [
        facts.user_id,
        &s.start.to_string(),
        &s.first_event_id,
        &s.end.to_string(),
        &s.events.to_string(),
        decision.action.name(),
        decision.rule,
        rules_version,
    ]
    .iter()
    .enumerate()
    {
        if i > 0 {
            key.push('\x1f');
        }
        key.push_str(part);
    }
    if decision.variant != DEFAULT_VARIANT {
        key.push('\x1f');
        key.push_str(decision.variant);
    }
    let h = blake2b_simd::Params::new().hash_length(16).hash(key.as_bytes()).to_hex();
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

/// The notification as one JSON line (`orjson.dumps(build_notification(...))`).
pub fn notification_json(facts: &Facts, decision: &Decision, rules_version: &str, id: &str) -> Vec<u8> {
    let s = facts.session;
    let mut out = Vec::with_capacity(320);
    out.extend_from_slice(b"{\"notification_id\":");
    json_string(&mut out, id);
    out.extend_from_slice(b",\"user_id\":");
    json_string(&mut out, facts.user_id);
    out.extend_from_slice(b",\"action\":");
    json_string(&mut out, decision.action.name());
    out.extend_from_slice(b",\"products\":[");
    for (i, p) in facts.products(decision.products).iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        json_string(&mut out, p);
    }
    out.extend_from_slice(b"],\"rule\":");
    json_string(&mut out, decision.rule);
    out.extend_from_slice(b",\"rules_version\":");
    json_string(&mut out, rules_version);
    out.extend_from_slice(b",\"variant\":");
    json_string(&mut out, decision.variant);
    out.extend_from_slice(b",\"session\":{\"start\":\"");
    out.extend_from_slice(format_ms(s.start).as_bytes());
    out.extend_from_slice(b"\",\"end\":\"");
    out.extend_from_slice(format_ms(s.end).as_bytes());
    out.extend_from_slice(b"\",\"events\":");
    out.extend_from_slice(s.events.to_string().as_bytes());
    out.extend_from_slice(b",\"close_reason\":\"");
    out.extend_from_slice(facts.reason.name().as_bytes());
    out.extend_from_slice(b"\"}}");
    out
}

#[cfg(test)]
mod tests {
    use super::{fsum, json_string};

    #[test]
    fn fsum_is_exact() {
        assert_eq!(fsum([0.1, 0.2, 0.3].into_iter()), 0.6);
        assert_eq!(fsum([1e16, 1.0, 1.0].into_iter()), 1.0000000000000002e16);
        assert_eq!(fsum([1e308, 1e308].into_iter()), f64::INFINITY);
        assert_eq!(fsum(std::iter::empty()), 0.0);
    }

    #[test]
    fn strings_are_escaped_as_orjson_escapes_them() {
        let mut out = Vec::new();
        json_string(&mut out, "a\u{1}\u{1f}\u{7f}\"\\/\u{2028}é\u{8}\t\n\u{c}\r\u{0}");
        assert_eq!(out, "\"a\\u0001\\u001f\u{7f}\\\"\\\\/\u{2028}é\\b\\t\\n\\f\\r\\u0000\"".as_bytes());
    }
}
