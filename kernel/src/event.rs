//! The event model: one user action, normalised to epoch milliseconds (`promotion/events.py`).

use serde::{Deserialize, Serialize};

/// Event types, in the fixed order of per-type counters (`EVENT_TYPES`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Login,
    Logout,
    ProductView,
    AddToCart,
    RemoveFromCart,
    CheckoutStart,
    PaymentComplete,
}

pub const KINDS: [Kind; 7] = [
    Kind::Login,
    Kind::Logout,
    Kind::ProductView,
    Kind::AddToCart,
    Kind::RemoveFromCart,
    Kind::CheckoutStart,
    Kind::PaymentComplete,
];

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Login => "login",
            Kind::Logout => "logout",
            Kind::ProductView => "product_view",
            Kind::AddToCart => "add_to_cart",
            Kind::RemoveFromCart => "remove_from_cart",
            Kind::CheckoutStart => "checkout_start",
            Kind::PaymentComplete => "payment_complete",
        }
    }

    pub fn from_name(name: &str) -> Option<Kind> {
        Some(match name {
            "login" => Kind::Login,
            "logout" => Kind::Logout,
            "product_view" => Kind::ProductView,
            "add_to_cart" => Kind::AddToCart,
            "remove_from_cart" => Kind::RemoveFromCart,
            "checkout_start" => Kind::CheckoutStart,
            "payment_complete" => Kind::PaymentComplete,
            _ => return None,
        })
    }

    pub fn index(self) -> usize {
        self as usize
    }

    /// Types that make no sense without a product.
    pub fn needs_product(self) -> bool {
        matches!(self, Kind::ProductView | Kind::AddToCart | Kind::RemoveFromCart)
    }
}

/// A validated user action.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub ts: i64,
    pub event_id: Box<str>,
    pub user_id: Box<str>,
    pub kind: Kind,
    pub source: Box<str>,
    pub product_id: Option<Box<str>>,
    pub category: Option<Box<str>>,
    pub price: Option<f64>,
    pub quantity: i64,
}

impl Event {
    /// Session order: by ts, then event_id (ids are unique among a user's held events).
    pub fn order_key(&self) -> (i64, &str) {
        (self.ts, &self.event_id)
    }
}

/// Below any real timestamp: "no progress yet" (`watermark.NO_TIME`).
pub const NO_TIME: i64 = -(1 << 62);
/// 9999-12-31T23:59:59.999Z (`timefmt.MAX_MS`).
pub const MAX_MS: i64 = 253_402_300_799_999;
