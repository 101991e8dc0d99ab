//! Integer fields of request bodies, read the way JSON Schema reads them: `30`, `30.0` and `3e1`
//! are the same integer (JSON has one number type; JavaScript clients may send `30.0`), while
//! `30.5`, a string or an out-of-range value is refused (422 through `ApiJson`). serde alone
//! refuses every float for an integer type. Use on each integer field of a request body:
//! `#[serde(deserialize_with = "crate::json_int::int")]`, or `crate::json_int::opt_int` with
//! `#[serde(default)]` for an optional one.

use std::fmt;
use std::marker::PhantomData;

use serde::Deserializer;
use serde::de::{self, Visitor};

/// An integer (of type `T`) from a JSON number that has no fractional part.
pub(crate) fn int<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i64>,
{
    deserializer.deserialize_any(IntVisitor(PhantomData))
}

/// Like [`int`], for an optional field: `null` is `None`.
pub(crate) fn opt_int<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i64>,
{
    deserializer.deserialize_option(OptVisitor(PhantomData))
}

struct IntVisitor<T>(PhantomData<T>);

impl<T: TryFrom<i64>> IntVisitor<T> {
    fn convert<E: de::Error>(value: i64) -> Result<T, E> {
        T::try_from(value).map_err(|_| E::custom(format!("integer {value} is out of range")))
    }
}

impl<'de, T: TryFrom<i64>> Visitor<'de> for IntVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an integer")
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<T, E> {
        Self::convert(value)
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<T, E> {
        let value = i64::try_from(value)
            .map_err(|_| E::custom(format!("integer {value} is out of range")))?;
        Self::convert(value)
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<T, E> {
        // 2^63 as f64 is exact; every integer-valued float in [-2^63, 2^63) converts exactly.
        const LIMIT: f64 = 9_223_372_036_854_775_808.0;
        if value.fract() != 0.0 || !value.is_finite() {
            return Err(E::invalid_type(de::Unexpected::Float(value), &self));
        }
        if !(-LIMIT..LIMIT).contains(&value) {
            return Err(E::custom(format!("integer {value} is out of range")));
        }
        Self::convert(value as i64)
    }
}

struct OptVisitor<T>(PhantomData<T>);

impl<'de, T: TryFrom<i64>> Visitor<'de> for OptVisitor<T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an integer or null")
    }

    fn visit_none<E: de::Error>(self) -> Result<Option<T>, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Option<T>, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Option<T>, D::Error> {
        int(deserializer).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    struct Body {
        #[serde(deserialize_with = "super::int")]
        minutes: i32,
        #[serde(default, deserialize_with = "super::opt_int")]
        weekday: Option<i32>,
    }

    fn parse(json: &str) -> Result<Body, String> {
        serde_json::from_str::<Body>(json).map_err(|e| e.to_string())
    }

    #[test]
    fn integer_valued_floats_are_integers() {
        let b = parse(r#"{"minutes": 30.0, "weekday": 2.0}"#).unwrap();
        assert_eq!((b.minutes, b.weekday), (30, Some(2)));
        let b = parse(r#"{"minutes": 3e1, "weekday": -0.0}"#).unwrap();
        assert_eq!((b.minutes, b.weekday), (30, Some(0)));
        let b = parse(r#"{"minutes": 30}"#).unwrap();
        assert_eq!((b.minutes, b.weekday), (30, None));
        let b = parse(r#"{"minutes": 30, "weekday": null}"#).unwrap();
        assert_eq!(b.weekday, None);
    }

    #[test]
    fn fractions_strings_and_out_of_range_values_are_refused() {
        for bad in [
            r#"{"minutes": 30.5}"#,
            r#"{"minutes": "30"}"#,
            r#"{"minutes": 2147483648}"#,
            r#"{"minutes": 2147483648.0}"#,
            r#"{"minutes": 1e300}"#,
            r#"{"minutes": 18446744073709551615}"#,
            r#"{"minutes": 1, "weekday": 1.5}"#,
            r#"{"minutes": 1, "weekday": true}"#,
        ] {
            assert!(parse(bad).is_err(), "{bad} was accepted");
        }
    }
}
