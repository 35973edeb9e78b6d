//! Decoding internally tagged enums (`{"type": "OrderFilled", ...fields}`) without buffering.
//!
//! serde's derive for `#[serde(tag = "type")]` first copies every field into an intermediate
//! tree, because the tag may come anywhere in the object, then decodes the variant from that
//! copy: twice the work of a plain struct, on every record every stage reads. Our encoder
//! writes the tag first, so [`deserialize`] reads it and decodes the variant's fields straight
//! from the input. An object whose tag comes later (written by another producer) is buffered
//! as JSON and decoded from that: slower, same result, but for a serde quirk: a number as the
//! tag (the variant's index) is taken only when it comes first. A second tag is an error
//! either way, as with the derive.
//!
//! The enum supplies its variants' decoding through [`ExternallyTagged`]: a serde *remote*
//! derive of the same enum without `tag`. `internally_tagged_enum!` writes both from one
//! definition, so they cannot drift apart.

use serde::de::value::MapAccessDeserializer;
use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, IgnoredAny, MapAccess, VariantAccess, Visitor,
};
use std::fmt;
use std::marker::PhantomData;

/// Defines an enum that travels internally tagged, tag first: the enum with the given
/// attributes and serde's `Serialize` (`#[serde(tag = ..., rename_all_fields = "camelCase")]`),
/// a `Deserialize` through [`deserialize`], and the remote derive that decodes its variants.
/// Variants are struct-like or wrap one type; serde attributes on fields apply to both.
macro_rules! internally_tagged_enum {
    (
        tag = $tag:literal, remote = $remote:literal;
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $(
                $(#[$vmeta:meta])*
                $variant:ident
                $( ( $inner:ty ) )?
                $( { $( $(#[$fmeta:meta])* $field:ident : $fty:ty ),* $(,)? } )?
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(serde::Serialize)]
        #[serde(tag = $tag, rename_all_fields = "camelCase")]
        $vis enum $name {
            $(
                $(#[$vmeta])*
                $variant $( ( $inner ) )? $( { $( $(#[$fmeta])* $field : $fty ),* } )?
            ),*
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                $crate::tagged::deserialize(d, $tag)
            }
        }

        const _: () = {
            // The variants as serde decodes them, externally tagged. A remote derive constructs
            // and matches the real enum's variants (its `Serialize` half only checks that).
            #[derive(serde::Serialize, serde::Deserialize)]
            #[serde(remote = $remote, rename_all_fields = "camelCase")]
            enum Variants {
                $(
                    $(#[$vmeta])*
                    $variant $( ( $inner ) )? $( { $( $(#[$fmeta])* $field : $fty ),* } )?
                ),*
            }

            impl<'de> $crate::tagged::ExternallyTagged<'de> for $name {
                fn deserialize_external<D: serde::Deserializer<'de>>(
                    d: D,
                ) -> Result<Self, D::Error> {
                    Variants::deserialize(d)
                }
            }
        };
    };
}
pub(crate) use internally_tagged_enum;

/// Decoding of an enum in serde's externally tagged form (`{"Variant": {...fields}}`).
pub trait ExternallyTagged<'de>: Sized {
    fn deserialize_external<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error>;
}

/// Decodes `T` from an object whose field `tag` names the variant, as
/// `#[serde(tag = "...")]` would.
pub fn deserialize<'de, T, D>(d: D, tag: &'static str) -> Result<T, D::Error>
where
    T: for<'a> ExternallyTagged<'a>,
    D: Deserializer<'de>,
{
    d.deserialize_map(TaggedVisitor {
        tag,
        marker: PhantomData,
    })
}

struct TaggedVisitor<T> {
    tag: &'static str,
    marker: PhantomData<T>,
}

impl<'de, T: for<'a> ExternallyTagged<'a>> Visitor<'de> for TaggedVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "an object with a `{}` field", self.tag)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<T, A::Error> {
        match map.next_key_seed(FirstKeySeed(self.tag))? {
            None => Err(de::Error::missing_field(self.tag)),
            Some(FirstKey::IsTag) => T::deserialize_external(TagFirst {
                map: RestOf { map, tag: self.tag },
            }),
            Some(FirstKey::Other(key)) => buffered(self.tag, key, map),
        }
    }
}

/// The first key of the object: the tag, or another one (kept for the slow path).
enum FirstKey {
    IsTag,
    Other(String),
}

/// Reads the first key, comparing it with the tag's name without copying it.
struct FirstKeySeed(&'static str);

impl<'de> DeserializeSeed<'de> for FirstKeySeed {
    type Value = FirstKey;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<FirstKey, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for FirstKeySeed {
    type Value = FirstKey;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<FirstKey, E> {
        Ok(if key == self.0 {
            FirstKey::IsTag
        } else {
            FirstKey::Other(key.to_owned())
        })
    }
}

/// The rest of an object whose tag was its first field: the tag's value names the variant and
/// the remaining fields are the variant's.
struct TagFirst<A> {
    map: A,
}

impl<'de, A: MapAccess<'de>> Deserializer<'de> for TagFirst<A> {
    type Error = A::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, A::Error> {
        visitor.visit_enum(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct enum
        identifier ignored_any
    }
}

impl<'de, A: MapAccess<'de>> EnumAccess<'de> for TagFirst<A> {
    type Error = A::Error;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(
        mut self,
        seed: V,
    ) -> Result<(V::Value, Self), A::Error> {
        let variant = self.map.next_value_seed(seed)?;
        Ok((variant, self))
    }
}

impl<'de, A: MapAccess<'de>> VariantAccess<'de> for TagFirst<A> {
    type Error = A::Error;

    fn unit_variant(mut self) -> Result<(), A::Error> {
        while self.map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(())
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value, A::Error> {
        seed.deserialize(MapAccessDeserializer::new(self.map))
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        _len: usize,
        _visitor: V,
    ) -> Result<V::Value, A::Error> {
        Err(de::Error::custom(
            "tuple variants cannot be internally tagged",
        ))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        visitor.visit_map(self.map)
    }
}

/// The fields after the tag, refusing a second tag (the variant's own decoding would ignore it
/// as unknown, and the object would mean two things).
struct RestOf<A> {
    map: A,
    tag: &'static str,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for RestOf<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        self.map.next_key_seed(NotTag {
            tag: self.tag,
            seed,
        })
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.map.next_value_seed(seed)
    }

    fn size_hint(&self) -> Option<usize> {
        self.map.size_hint()
    }
}

/// A key, handed on to `seed` unless it is the tag again.
struct NotTag<K> {
    tag: &'static str,
    seed: K,
}

impl<'de, K: DeserializeSeed<'de>> DeserializeSeed<'de> for NotTag<K> {
    type Value = K::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<K::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de, K: DeserializeSeed<'de>> Visitor<'de> for NotTag<K> {
    type Value = K::Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<K::Value, E> {
        if key == self.tag {
            return Err(E::duplicate_field(self.tag));
        }
        self.seed.deserialize(de::value::StrDeserializer::new(key))
    }

    fn visit_borrowed_str<E: de::Error>(self, key: &'de str) -> Result<K::Value, E> {
        if key == self.tag {
            return Err(E::duplicate_field(self.tag));
        }
        self.seed
            .deserialize(de::value::BorrowedStrDeserializer::new(key))
    }
}

/// The slow path: the whole object as a JSON value, rewritten to `{"Variant": {...rest}}` and
/// decoded from its text, so that every field is read by serde_json as on the fast path (a
/// number in a `Value` would reach a field's decoder differently).
fn buffered<'de, T, A>(tag: &'static str, first: String, mut map: A) -> Result<T, A::Error>
where
    T: for<'a> ExternallyTagged<'a>,
    A: MapAccess<'de>,
{
    use serde_json::{Map, Value};
    let mut fields = Map::new();
    fields.insert(first, map.next_value::<Value>()?);
    while let Some((k, v)) = map.next_entry::<String, Value>()? {
        if fields.contains_key(&k) {
            return Err(de::Error::custom(format_args!("duplicate field `{k}`")));
        }
        fields.insert(k, v);
    }
    let variant = match fields.remove(tag) {
        Some(Value::String(v)) => v,
        Some(other) => {
            return Err(de::Error::invalid_type(
                unexpected(&other),
                &"a variant name",
            ))
        }
        None => return Err(de::Error::missing_field(tag)),
    };
    let external = Value::Object(Map::from_iter([(variant, Value::Object(fields))]));
    let text = serde_json::to_string(&external).map_err(de::Error::custom)?;
    let mut json = serde_json::Deserializer::from_str(&text);
    T::deserialize_external(&mut json).map_err(de::Error::custom)
}

fn unexpected(v: &serde_json::Value) -> de::Unexpected<'_> {
    use serde_json::Value;
    match v {
        Value::Null => de::Unexpected::Unit,
        Value::Bool(b) => de::Unexpected::Bool(*b),
        Value::Number(_) => de::Unexpected::Other("a number"),
        Value::String(s) => de::Unexpected::Str(s),
        Value::Array(_) => de::Unexpected::Seq,
        Value::Object(_) => de::Unexpected::Map,
    }
}

#[cfg(test)]
mod tests {
    use crate::events::{CancelReason, Event, ExpireReason, Fill, Reservation};
    use crate::ids::{AccountId, Asset, OrderId, Symbol, Timestamp, TradeId};
    use crate::instrument::TradingStatus;
    use crate::order::{Liquidity, NewOrder, OrderType, RejectReason, Side, TimeInForce};
    use crate::venue::{Source, VenueCommand};
    use rust_decimal::Decimal;
    use serde_json::Value;

    fn order() -> NewOrder {
        NewOrder {
            order_id: OrderId(9),
            client_order_id: Some("c-1".into()),
            account: AccountId(3),
            symbol: Symbol::new("BTC/USD"),
            side: Side::Sell,
            order_type: OrderType::Limit,
            time_in_force: TimeInForce::Gtd,
            post_only: true,
            price: Some(Decimal::new(4_500_001, 2)),
            stop_price: None,
            quantity: Decimal::new(15, 1),
            expire_at: Some(Timestamp(99)),
            created_at: Timestamp(5),
        }
    }

    /// One of every variant, optional fields both set and absent.
    fn every_event() -> Vec<Event> {
        let (a, o, s) = (AccountId(3), OrderId(9), Symbol::new("BTC/USD"));
        let d = |v: i64, scale: u32| Decimal::new(v, scale);
        let reservation = Reservation {
            asset: Asset::new("USD"),
            amount: d(450_001, 2),
            per_unit: d(4_500_001, 2),
            fee_rate: Some(d(2, 3)),
        };
        vec![
            Event::Deposit {
                account: a,
                asset: Asset::new("BTC"),
                amount: d(100, 8),
                reference: "d-1".into(),
            },
            Event::OrderCreated(order()),
            Event::KillSwitchSet {
                account: a,
                on: true,
                change: 7,
            },
            Event::GlobalKillSwitchSet {
                on: true,
                change: 8,
                partition: 3,
            },
            Event::InstrumentStatusSet {
                symbol: Symbol::new("BTC/USD"),
                status: TradingStatus::CancelOnly,
                change: 9,
                partition: 1,
            },
            Event::CancelAfterSet {
                account: a,
                deadline: Some(Timestamp(1_700_000_060_000)),
                change: 10,
            },
            Event::CancelAfterSet {
                account: a,
                deadline: None,
                change: 11,
            },
            Event::CancelAfterTriggered {
                account: a,
                change: 10,
            },
            Event::WithdrawalRequested {
                account: a,
                asset: Asset::new("BTC"),
                amount: d(15, 1),
                reference: "wd-9".into(),
            },
            Event::WithdrawalDecided {
                account: a,
                asset: Asset::new("BTC"),
                amount: d(15, 1),
                reference: "wd-9".into(),
                approved: false,
                reason: Some(RejectReason::InsufficientBalance),
            },
            Event::WithdrawalDecided {
                account: a,
                asset: Asset::new("BTC"),
                amount: d(15, 1),
                reference: "wd-10".into(),
                approved: true,
                reason: None,
            },
            Event::CancelRequested {
                account: a,
                order_id: o,
                reason: None,
            },
            Event::CancelRequested {
                account: a,
                order_id: o,
                reason: Some(CancelReason::CancelAfter),
            },
            Event::AmendRequested {
                account: a,
                order_id: o,
                amend_id: 2,
                price: None,
                quantity: Some(d(1, 0)),
            },
            Event::RiskValidated {
                account: a,
                order_id: o,
                symbol: s.clone(),
                approved: true,
                reason: None,
                reservation: Some(reservation.clone()),
                protection_price: Some(d(47_000, 0)),
            },
            Event::RiskValidated {
                account: a,
                order_id: o,
                symbol: s.clone(),
                approved: false,
                reason: Some(RejectReason::PriceOffTick),
                reservation: None,
                protection_price: None,
            },
            Event::AmendValidated {
                account: a,
                order_id: o,
                amend_id: 2,
                approved: true,
                reason: None,
                reservation: Some(reservation),
            },
            Event::OrderAccepted {
                account: a,
                order_id: o,
                symbol: s.clone(),
            },
            Event::OrderFilled(Fill {
                account: a,
                order_id: o,
                symbol: s.clone(),
                side: Side::Sell,
                trade_id: TradeId(7),
                price: d(4_500_001, 2),
                quantity: d(5, 1),
                liquidity: Liquidity::Maker,
                fee: d(225, 2),
                base: Asset::new("BTC"),
                quote: Asset::new("USD"),
                cumulative_quantity: d(5, 1),
                leaves_quantity: d(10, 1),
                fee_account: AccountId(1),
                at: None,
            }),
            Event::OrderAmended {
                account: a,
                order_id: o,
                amend_id: 2,
                price: d(45_000, 0),
                quantity: d(1, 0),
                leaves_quantity: d(5, 1),
                kept_priority: false,
            },
            Event::AmendRejected {
                account: a,
                order_id: o,
                amend_id: 3,
                reason: RejectReason::QuantityOffStep,
            },
            Event::OrderCanceled {
                account: a,
                order_id: o,
                reason: CancelReason::UserRequested,
                leaves_quantity: d(5, 1),
            },
            Event::OrderExpired {
                account: a,
                order_id: o,
                reason: ExpireReason::GtdExpired,
                leaves_quantity: d(5, 1),
            },
            Event::OrderRejected {
                account: a,
                order_id: o,
                reason: RejectReason::InstrumentHalted,
            },
            Event::CancelRejected {
                account: a,
                order_id: o,
                reason: RejectReason::InstrumentHalted,
            },
            Event::Trade {
                symbol: s.clone(),
                trade_id: TradeId(7),
                price: d(4_500_001, 2),
                quantity: d(5, 1),
                taker_side: Side::Buy,
                at: Timestamp(6),
            },
            Event::BookChanged {
                symbol: s.clone(),
                seq: 12,
                side: Side::Buy,
                price: d(4_500_001, 2),
                quantity: Decimal::ZERO,
            },
            Event::TradingStatusChanged {
                symbol: s.clone(),
                status: TradingStatus::Halted,
                change: Some(9),
                at: Timestamp(7),
            },
            Event::TradingStatusChanged {
                symbol: s,
                status: TradingStatus::Trading,
                change: None,
                at: Timestamp(8),
            },
        ]
    }

    fn every_command() -> Vec<VenueCommand> {
        let (a, o, s) = (AccountId(3), OrderId(9), Symbol::new("BTC/USD"));
        let source = Source {
            partition: 1,
            offset: 40,
        };
        vec![
            VenueCommand::Submit {
                source,
                order: order(),
                protection_price: Some(Decimal::new(47_000, 0)),
                fee_rate_cap: Some(Decimal::new(2, 3)),
            },
            VenueCommand::Cancel {
                source,
                symbol: s.clone(),
                account: a,
                order_id: o,
                reason: None,
            },
            VenueCommand::Cancel {
                source,
                symbol: s.clone(),
                account: a,
                order_id: o,
                reason: Some(CancelReason::CancelAfter),
            },
            VenueCommand::Amend {
                source,
                symbol: s.clone(),
                account: a,
                order_id: o,
                amend_id: 4,
                price: Some(Decimal::new(45_000, 0)),
                quantity: None,
                fee_rate_cap: None,
            },
            VenueCommand::Tick { symbol: s.clone() },
            VenueCommand::SetStatus {
                source: Source {
                    partition: 1,
                    offset: 12,
                },
                symbol: s,
                status: TradingStatus::Halted,
                change: 13,
            },
        ]
    }

    /// The same object with its tag moved from first to last, as another producer may write it.
    fn tag_last(json: &str) -> String {
        let Value::Object(fields) = serde_json::from_str::<Value>(json).unwrap() else {
            panic!("{json} is not an object")
        };
        let tag = fields["type"].clone();
        let mut moved: serde_json::Map<String, Value> =
            fields.into_iter().filter(|(k, _)| k != "type").collect();
        moved.insert("type".into(), tag);
        serde_json::to_string(&moved).unwrap()
    }

    fn round_trips<T>(values: Vec<T>)
    where
        T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
    {
        for v in values {
            let json = serde_json::to_string(&v).unwrap();
            assert!(json.starts_with(r#"{"type":""#), "{json}");
            assert_eq!(serde_json::from_str::<T>(&json).unwrap(), v, "{json}");
            let late = tag_last(&json);
            assert!(!late.starts_with(r#"{"type""#), "{late}");
            assert_eq!(serde_json::from_str::<T>(&late).unwrap(), v, "{late}");
            // From a JSON value too: the path serde takes for a nested or buffered event.
            let value: Value = serde_json::from_str(&late).unwrap();
            assert_eq!(serde_json::from_value::<T>(value).unwrap(), v, "{late}");
        }
    }

    #[test]
    fn every_event_decodes_with_its_tag_first_or_last() {
        round_trips(every_event());
    }

    #[test]
    fn every_venue_command_decodes_with_its_tag_first_or_last() {
        round_trips(every_command());
    }

    /// Decimals travel as strings; a JSON number in a decimal field is refused whichever
    /// place the tag has.
    #[test]
    fn a_field_is_read_alike_with_the_tag_first_or_last() {
        let first = r#"{"type":"OrderCanceled","account":3,"orderId":"9","reason":"USER_REQUESTED","leavesQuantity":0.5}"#;
        assert!(serde_json::from_str::<Event>(first).is_err());
        assert!(serde_json::from_str::<Event>(&tag_last(first)).is_err());
        let as_text = first.replace("0.5}", "\"0.5\"}");
        let a: Event = serde_json::from_str(&as_text).unwrap();
        let b: Event = serde_json::from_str(&tag_last(&as_text)).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn unknown_fields_are_ignored_as_before() {
        let e: Event = serde_json::from_str(
            r#"{"type":"CancelRequested","account":3,"orderId":"9","addedLater":{"x":[1]}}"#,
        )
        .unwrap();
        assert_eq!(
            e,
            Event::CancelRequested {
                account: AccountId(3),
                order_id: OrderId(9),
                reason: None,
            }
        );
    }

    #[test]
    fn bad_objects_are_errors_that_say_what_is_wrong() {
        let err = |json: &str| serde_json::from_str::<Event>(json).unwrap_err().to_string();
        assert!(
            err(r#"{}"#).contains("missing field `type`"),
            "{}",
            err("{}")
        );
        let missing = err(r#"{"account":3,"orderId":"9"}"#);
        assert!(missing.contains("missing field `type`"), "{missing}");
        let unknown = err(r#"{"type":"OrderVanished","account":3}"#);
        assert!(
            unknown.contains("unknown variant `OrderVanished`"),
            "{unknown}"
        );
        let unknown_late = err(r#"{"account":3,"type":"OrderVanished"}"#);
        assert!(
            unknown_late.contains("unknown variant `OrderVanished`"),
            "{unknown_late}"
        );
        let not_a_name = err(r#"{"account":3,"type":7}"#);
        assert!(not_a_name.contains("a variant name"), "{not_a_name}");
        let field = err(r#"{"type":"CancelRequested","account":3}"#);
        assert!(field.contains("missing field `orderId`"), "{field}");
        let twice = err(r#"{"account":3,"account":4,"type":"CancelRequested","orderId":"9"}"#);
        assert!(twice.contains("duplicate field `account`"), "{twice}");
        let twice_fast = err(r#"{"type":"CancelRequested","account":3,"account":4,"orderId":"9"}"#);
        assert!(
            twice_fast.contains("duplicate field `account`"),
            "{twice_fast}"
        );
        let tag_twice =
            err(r#"{"type":"CancelRequested","account":3,"type":"Deposit","orderId":"9"}"#);
        assert!(tag_twice.contains("duplicate field `type`"), "{tag_twice}");
        let tag_twice_late =
            err(r#"{"account":3,"type":"CancelRequested","type":"Deposit","orderId":"9"}"#);
        assert!(
            tag_twice_late.contains("duplicate field `type`"),
            "{tag_twice_late}"
        );
        let not_object = err(r#"["CancelRequested"]"#);
        assert!(not_object.contains("invalid type"), "{not_object}");
    }
}
