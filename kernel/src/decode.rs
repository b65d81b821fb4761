//! Decoding of plainly valid records, as `promotion.decoding.decode_many` accepts them.
//!
//! A record is either vouched for here (it is valid, and the event is exactly what the Python
//! decoder would build) or left to the Python decoder, which alone decides every rejection and
//! its wording. Anything unusual (escapes, duplicate keys, numbers of the wrong kind, a leap
//! second) is left to Python: doubt costs speed on rare records, never a different answer.

use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};

use crate::event::{Event, Kind, MAX_MS};
use crate::timefmt::parse_rfc3339_ms;

/// Identifiers longer than this (in characters) are refused (`decoding.MAX_ID_LENGTH`).
pub const MAX_ID_LENGTH: usize = 256;
const MAX_QUANTITY: u64 = 1_000_000;

/// The event of a plainly valid record, or None when the Python decoder must judge it.
pub fn decode_plain(raw: &[u8], max_bytes: usize) -> Option<Event> {
    if raw.len() > max_bytes || raw.contains(&b'\\') {
        return None;
    }
    let text = std::str::from_utf8(raw).ok()?;
    let mut de = serde_json::Deserializer::from_str(text);
    let record = de.deserialize_map(RecordVisitor).ok()?;
    de.end().ok()?;
    record.into_event()
}

#[derive(Default)]
struct Record<'a> {
    event_id: Option<&'a str>,
    user_id: Option<&'a str>,
    kind: Option<Kind>,
    ts: Option<i64>,
    source: Option<&'a str>,
    product_id: Option<Option<&'a str>>,
    category: Option<Option<&'a str>>,
    price: Option<Option<f64>>,
    quantity: Option<Option<i64>>,
}

impl<'a> Record<'a> {
    fn into_event(self) -> Option<Event> {
        let kind = self.kind?;
        let product_id = self.product_id.flatten();
        if product_id.is_none() && kind.needs_product() {
            return None;
        }
        Some(Event {
            ts: self.ts?,
            event_id: self.event_id?.into(),
            user_id: self.user_id?.into(),
            kind,
            source: self.source?.into(),
            product_id: product_id.map(Into::into),
            category: self.category.flatten().map(Into::into),
            price: self.price.flatten(),
            quantity: self.quantity.flatten().unwrap_or(1),
        })
    }
}

/// Any failure only means "not vouched for"; the message is never shown.
fn doubt<E: de::Error>() -> E {
    E::custom("left to the Python decoder")
}

fn set_once<T, E: de::Error>(slot: &mut Option<T>, value: T) -> Result<(), E> {
    if slot.is_some() {
        return Err(doubt()); // a repeated key: Python decides which value counts
    }
    *slot = Some(value);
    Ok(())
}

fn valid_id(text: &str) -> bool {
    // A character takes at least one byte: only long texts need counting.
    !text.is_empty() && (text.len() <= MAX_ID_LENGTH || text.chars().count() <= MAX_ID_LENGTH)
}

struct RecordVisitor;

impl<'de> Visitor<'de> for RecordVisitor {
    type Value = Record<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an event object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Record<'de>, A::Error> {
        let mut r = Record::default();
        while let Some(key) = map.next_key::<&'de str>()? {
            match key {
                "event_id" => set_once(&mut r.event_id, map.next_value_seed(Id)?)?,
                "user_id" => set_once(&mut r.user_id, map.next_value_seed(Id)?)?,
                "source" => set_once(&mut r.source, map.next_value_seed(Id)?)?,
                "type" => {
                    let name = map.next_value_seed(Id)?;
                    set_once(&mut r.kind, Kind::from_name(name).ok_or_else(doubt)?)?
                }
                "ts" => set_once(&mut r.ts, map.next_value_seed(Timestamp)?)?,
                "product_id" => set_once(&mut r.product_id, map.next_value_seed(OptionalId)?)?,
                "category" => set_once(&mut r.category, map.next_value_seed(OptionalId)?)?,
                "price" => set_once(&mut r.price, map.next_value_seed(Price)?)?,
                "quantity" => set_once(&mut r.quantity, map.next_value_seed(Quantity)?)?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(r)
    }
}

/// A string of 1..=256 characters.
struct Id;

impl<'de> de::DeserializeSeed<'de> for Id {
    type Value = &'de str;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<&'de str, D::Error> {
        d.deserialize_any(IdVisitor { nullable: false }).and_then(|v| v.ok_or_else(doubt))
    }
}

/// null, or a string of 1..=256 characters.
struct OptionalId;

impl<'de> de::DeserializeSeed<'de> for OptionalId {
    type Value = Option<&'de str>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<&'de str>, D::Error> {
        d.deserialize_any(IdVisitor { nullable: true })
    }
}

struct IdVisitor {
    nullable: bool,
}

impl<'de> Visitor<'de> for IdVisitor {
    type Value = Option<&'de str>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an identifier")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        if valid_id(v) {
            Ok(Some(v))
        } else {
            Err(doubt())
        }
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        if self.nullable {
            Ok(None)
        } else {
            Err(doubt())
        }
    }
}

/// Integer epoch milliseconds in range, or an RFC 3339 string this crate can read for sure.
struct Timestamp;

impl<'de> de::DeserializeSeed<'de> for Timestamp {
    type Value = i64;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<i64, D::Error> {
        d.deserialize_any(TimestampVisitor)
    }
}

struct TimestampVisitor;

impl<'de> Visitor<'de> for TimestampVisitor {
    type Value = i64;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a timestamp")
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
        if v <= MAX_MS as u64 {
            Ok(v as i64)
        } else {
            Err(doubt())
        }
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<i64, E> {
        parse_rfc3339_ms(v).ok_or_else(doubt)
    }
}

/// null, or a finite number >= 0 (an integer is read as Python's float(int) reads it).
struct Price;

impl<'de> de::DeserializeSeed<'de> for Price {
    type Value = Option<f64>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<f64>, D::Error> {
        d.deserialize_any(PriceVisitor)
    }
}

struct PriceVisitor;

impl<'de> Visitor<'de> for PriceVisitor {
    type Value = Option<f64>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a price")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        if v <= (1 << 53) {
            Ok(Some(v as f64))
        } else {
            Err(doubt())
        }
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        if v == 0 {
            Ok(Some(0.0))
        } else {
            Err(doubt())
        }
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        if v.is_finite() && v >= 0.0 {
            Ok(Some(v))
        } else {
            Err(doubt())
        }
    }
}

/// null (meaning 1), or an integer in 1..=1,000,000.
struct Quantity;

impl<'de> de::DeserializeSeed<'de> for Quantity {
    type Value = Option<i64>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<i64>, D::Error> {
        d.deserialize_any(QuantityVisitor)
    }
}

struct QuantityVisitor;

impl<'de> Visitor<'de> for QuantityVisitor {
    type Value = Option<i64>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a quantity")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        if (1..=MAX_QUANTITY).contains(&v) {
            Ok(Some(v as i64))
        } else {
            Err(doubt())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::decode_plain;
    use crate::event::Kind;

    fn d(text: &str) -> Option<crate::event::Event> {
        decode_plain(text.as_bytes(), 65_536)
    }

    #[test]
    fn vouches_for_plain_records() {
        let e = d(r#"{"event_id":"e1","user_id":"u","type":"add_to_cart","ts":5,"source":"cart","product_id":"p","price":2,"quantity":3,"x":[1,{"y":null}]}"#).unwrap();
        assert_eq!((e.ts, &*e.user_id, e.kind, e.price, e.quantity), (5, "u", Kind::AddToCart, Some(2.0), 3));
        let e = d(r#" {"event_id":"e","user_id":"u","type":"login","ts":"1970-01-01T00:00:01Z","source":"a","category":null} "#).unwrap();
        assert_eq!((e.ts, e.category, e.quantity), (1_000, None, 1));
    }

    #[test]
    fn leaves_doubtful_records_to_python() {
        for text in [
            r#"{"event_id":"e","user_id":"u","type":"login","ts":5,"source":"a","ts":6}"#,
            r#"{"event_id":"e","user_id":"u","type":"login","ts":5.0,"source":"a"}"#,
            r#"{"event_id":"e","user_id":"u","type":"login","ts":true,"source":"a"}"#,
            r#"{"event_id":"e","user_id":"u","type":"product_view","ts":5,"source":"a"}"#,
            r#"{"event_id":"e","user_id":"u","type":"login","ts":5,"source":"a","quantity":0}"#,
            r#"{"event_id":"e","user_id":"u","type":"login","ts":5,"source":"a","quantity":2.0}"#,
            r#"{"event_id":"e","user_id":"u","type":"login","ts":5,"source":"a","price":-1}"#,
            r#"{"event_id":"","user_id":"u","type":"login","ts":5,"source":"a"}"#,
            r#"{"event_id":"\u0065","user_id":"u","type":"login","ts":5,"source":"a"}"#,
            r#"{"event_id":"e","user_id":"u","type":"nap","ts":5,"source":"a"}"#,
            r#"{"event_id":"e","user_id":"u","type":"login","ts":5}"#,
            r#"{"event_id":"e","user_id":"u","type":"login","ts":5,"source":"a"} x"#,
            r#"[1]"#,
            "",
        ] {
            assert!(d(text).is_none(), "{text}");
        }
        let long = format!(r#"{{"event_id":"{}","user_id":"u","type":"login","ts":5,"source":"a"}}"#, "é".repeat(257));
        assert!(d(&long).is_none());
        assert!(decode_plain(br#"{"event_id":"e","user_id":"u","type":"login","ts":5,"source":"a"}"#, 10).is_none());
    }
}
