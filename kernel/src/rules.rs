//! Promotion rules as `promotion/rules.py` decides them, compiled from the validated document.
//!
//! Rules are authored, validated and watched in Python (pydantic); the kernel receives the plain
//! document (`dump_rules`) of a rule set that already passed validation, and only compiles it.

use serde_json::Value;

use crate::facts::Facts;

pub const DEFAULT_VARIANT: &str = "default";
const BUCKETS: u64 = 10_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Start,
    Stop,
    Nothing,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::Start => "START_PROMOTION",
            Action::Stop => "STOP_PROMOTION",
            Action::Nothing => "NONE",
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub enum Products {
    Cart,
    Viewed,
    Nothing,
}

/// A fact a condition may use (`rules.FACTS`).
#[derive(Clone, Copy, Debug)]
pub enum Fact {
    Events,
    DurationSeconds,
    CloseReason,
    Count(usize),
    CartItems,
    CartProducts,
    CartValue,
    CartProductIds,
    ViewedProducts,
    ViewedCategories,
    ProfileSessions,
    ProfilePurchases30d,
    ProfileDaysSincePurchase,
    ProfileTopCategories,
}

impl Fact {
    fn from_name(name: &str) -> Result<Fact, String> {
        Ok(match name {
            "events" => Fact::Events,
            "duration_seconds" => Fact::DurationSeconds,
            "close_reason" => Fact::CloseReason,
            "logins" => Fact::Count(0),
            "logouts" => Fact::Count(1),
            "product_views" => Fact::Count(2),
            "adds_to_cart" => Fact::Count(3),
            "removes_from_cart" => Fact::Count(4),
            "checkouts" => Fact::Count(5),
            "payments" => Fact::Count(6),
            "cart_items" => Fact::CartItems,
            "cart_products" => Fact::CartProducts,
            "cart_value" => Fact::CartValue,
            "cart_product_ids" => Fact::CartProductIds,
            "viewed_products" => Fact::ViewedProducts,
            "viewed_categories" => Fact::ViewedCategories,
            "profile_sessions" => Fact::ProfileSessions,
            "profile_purchases_30d" => Fact::ProfilePurchases30d,
            "profile_days_since_purchase" => Fact::ProfileDaysSincePurchase,
            "profile_top_categories" => Fact::ProfileTopCategories,
            other => return Err(format!("unknown fact {other:?}")),
        })
    }

    pub fn is_profile(self) -> bool {
        matches!(
            self,
            Fact::ProfileSessions | Fact::ProfilePurchases30d | Fact::ProfileDaysSincePurchase | Fact::ProfileTopCategories
        )
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Scalar {
    Number(f64),
    Text(String),
}

#[derive(Clone, Copy, Debug)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Clone, Debug)]
pub enum Condition {
    All(Vec<Condition>),
    Any(Vec<Condition>),
    NoneOf(Vec<Condition>),
    Compare { fact: Fact, op: Op, value: Scalar },
    Member { fact: Fact, members: Vec<Scalar>, negate: bool },
    Contains { fact: Fact, value: String },
}

impl Condition {
    fn test(&self, facts: &mut Facts) -> bool {
        match self {
            Condition::All(parts) => parts.iter().all(|p| p.test(facts)),
            Condition::Any(parts) => parts.iter().any(|p| p.test(facts)),
            Condition::NoneOf(parts) => !parts.iter().any(|p| p.test(facts)),
            Condition::Compare { fact, op, value } => {
                let got = facts.scalar(*fact);
                match (&got, value) {
                    (Scalar::Number(a), Scalar::Number(b)) => match op {
                        Op::Eq => a == b,
                        Op::Ne => a != b,
                        Op::Lt => a < b,
                        Op::Le => a <= b,
                        Op::Gt => a > b,
                        Op::Ge => a >= b,
                    },
                    (Scalar::Text(a), Scalar::Text(b)) => match op {
                        Op::Eq => a == b,
                        Op::Ne => a != b,
                        _ => false, // refused by validation
                    },
                    _ => matches!(op, Op::Ne), // a string is never equal to a number
                }
            }
            Condition::Member { fact, members, negate } => {
                let got = facts.scalar(*fact);
                members.contains(&got) != *negate
            }
            Condition::Contains { fact, value } => facts.set_contains(*fact, value),
        }
    }

    fn uses_profile(&self) -> bool {
        match self {
            Condition::All(p) | Condition::Any(p) | Condition::NoneOf(p) => p.iter().any(Condition::uses_profile),
            Condition::Compare { fact, .. } | Condition::Member { fact, .. } | Condition::Contains { fact, .. } => fact.is_profile(),
        }
    }
}

/// `blake2b(salt \x1f user_id, 8 bytes)` as a big-endian integer, mod 10000 (`rules.bucket`).
pub fn bucket(user_id: &str, salt: &str) -> u64 {
    let mut key = Vec::with_capacity(salt.len() + 1 + user_id.len());
    key.extend_from_slice(salt.as_bytes());
    key.push(0x1f);
    key.extend_from_slice(user_id.as_bytes());
    let digest = blake2b_simd::Params::new().hash_length(8).hash(&key);
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(digest.as_bytes());
    u64::from_be_bytes(bytes) % BUCKETS
}

#[derive(Clone, Debug)]
pub struct Audience {
    offset: f64,
    percent: f64,
    salt: String,
}

impl Audience {
    pub fn includes(&self, user_id: &str) -> bool {
        let position = bucket(user_id, &self.salt) as f64;
        self.offset * 100.0 <= position && position < (self.offset + self.percent) * 100.0
    }
}

#[derive(Clone, Debug)]
pub struct Rule {
    pub name: String,
    pub action: Action,
    pub products: Products,
    audience: Option<Audience>,
    when: Option<Condition>,
}

pub struct Decision<'a> {
    pub action: Action,
    pub rule: &'a str,
    pub products: Products,
    pub variant: &'a str,
}

/// A compiled rule set: the main rules and the variants, each in evaluation order.
#[derive(Clone, Debug)]
pub struct RuleSet {
    pub version: String,
    rules: Vec<Rule>,
    variants: Vec<(String, Audience, Vec<Rule>)>,
    pub uses_profile: bool,
}

impl RuleSet {
    /// First matching rule's decision; None when it says NONE or nothing matches.
    pub fn decide(&self, facts: &mut Facts) -> Option<Decision<'_>> {
        let (variant, rules) = self
            .variants
            .iter()
            .find(|(_, audience, _)| audience.includes(facts.user_id))
            .map(|(name, _, rules)| (name.as_str(), rules))
            .unwrap_or((DEFAULT_VARIANT, &self.rules));
        for rule in rules {
            if let Some(audience) = &rule.audience {
                if !audience.includes(facts.user_id) {
                    continue;
                }
            }
            if rule.when.as_ref().map_or(true, |c| c.test(facts)) {
                if rule.action == Action::Nothing {
                    return None;
                }
                return Some(Decision { action: rule.action, rule: &rule.name, products: rule.products, variant });
            }
        }
        None
    }

    /// Compile a validated rules document (the JSON of `promotion.rules.dump_rules`).
    pub fn from_document(document: &[u8]) -> Result<RuleSet, String> {
        let doc: Value = serde_json::from_slice(document).map_err(|e| e.to_string())?;
        let version = text(&doc, "version")?.to_owned();
        let rules = rule_list(doc.get("rules").ok_or("missing rules")?)?;
        let mut variants = Vec::new();
        if let Some(Value::Array(items)) = doc.get("variants") {
            for v in items {
                let audience = audience(v.get("audience").ok_or("variant without audience")?)?;
                variants.push((text(v, "name")?.to_owned(), audience, rule_list(v.get("rules").ok_or("variant without rules")?)?));
            }
        }
        let uses_profile = rules.iter().chain(variants.iter().flat_map(|v| v.2.iter())).any(|r| r.when.as_ref().is_some_and(Condition::uses_profile));
        Ok(RuleSet { version, rules, variants, uses_profile })
    }
}

fn text<'a>(v: &'a Value, key: &str) -> Result<&'a str, String> {
    v.get(key).and_then(Value::as_str).ok_or_else(|| format!("missing {key:?}"))
}

fn number(v: &Value) -> Result<f64, String> {
    v.as_f64().ok_or_else(|| format!("not a number: {v}"))
}

fn audience(v: &Value) -> Result<Audience, String> {
    Ok(Audience {
        offset: v.get("offset").map(number).transpose()?.unwrap_or(0.0),
        percent: number(v.get("percent").ok_or("audience without percent")?)?,
        salt: v.get("salt").and_then(Value::as_str).unwrap_or("").to_owned(),
    })
}

fn rule_list(v: &Value) -> Result<Vec<Rule>, String> {
    let items = v.as_array().ok_or("rules must be a list")?;
    let mut indexed = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let action = match text(item, "action")? {
            "START_PROMOTION" => Action::Start,
            "STOP_PROMOTION" => Action::Stop,
            "NONE" => Action::Nothing,
            other => return Err(format!("unknown action {other:?}")),
        };
        let products = match item.get("promote").and_then(Value::as_str) {
            Some("cart") => Products::Cart,
            Some("viewed") => Products::Viewed,
            Some("none") => Products::Nothing,
            Some(other) => return Err(format!("unknown promote {other:?}")),
            None if action == Action::Start => Products::Cart,
            None => Products::Nothing,
        };
        let priority = item.get("priority").and_then(Value::as_i64).unwrap_or(0);
        let rule = Rule {
            name: text(item, "name")?.to_owned(),
            action,
            products,
            audience: item.get("audience").map(audience).transpose()?,
            when: item.get("when").map(condition).transpose()?,
        };
        indexed.push((priority, i, rule));
    }
    indexed.sort_by_key(|(priority, i, _)| (-priority, *i));
    Ok(indexed.into_iter().map(|(_, _, rule)| rule).collect())
}

fn scalar(v: &Value) -> Result<Scalar, String> {
    match v {
        Value::String(s) => Ok(Scalar::Text(s.clone())),
        other => Ok(Scalar::Number(number(other)?)),
    }
}

fn condition(v: &Value) -> Result<Condition, String> {
    for (key, make) in [("all", Condition::All as fn(Vec<Condition>) -> Condition), ("any", Condition::Any), ("none", Condition::NoneOf)] {
        if let Some(parts) = v.get(key) {
            let parts = parts.as_array().ok_or("a list of conditions")?;
            return Ok(make(parts.iter().map(condition).collect::<Result<_, _>>()?));
        }
    }
    let fact = Fact::from_name(text(v, "fact")?)?;
    let value = v.get("value").ok_or("comparison without value")?;
    Ok(match text(v, "op")? {
        "in" | "not_in" => Condition::Member {
            fact,
            members: value.as_array().ok_or("'in' needs a list")?.iter().map(scalar).collect::<Result<_, _>>()?,
            negate: text(v, "op")? == "not_in",
        },
        "contains" => Condition::Contains { fact, value: value.as_str().ok_or("'contains' needs a string")?.to_owned() },
        op => Condition::Compare {
            fact,
            op: match op {
                "==" => Op::Eq,
                "!=" => Op::Ne,
                "<" => Op::Lt,
                "<=" => Op::Le,
                ">" => Op::Gt,
                ">=" => Op::Ge,
                other => return Err(format!("unknown op {other:?}")),
            },
            value: scalar(value)?,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::bucket;

    #[test]
    fn buckets_are_those_of_python() {
        // hashlib.blake2b(b"s\x1fu1", digest_size=8), big-endian, mod 10000
        assert_eq!(bucket("u1", "s"), 9_132);
    }
}
