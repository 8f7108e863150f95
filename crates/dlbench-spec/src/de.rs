//! Serde helpers that keep serde_yaml's line and column on every error.
//!
//! serde_yaml stamps an error with the position of the YAML node whose visitor raised it, so
//! each check here runs inside the visitor of the value it checks, never after the whole file
//! has been read.

use std::fmt;
use std::marker::PhantomData;

use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{Deserialize, Deserializer, Error, MapAccess, SeqAccess, Unexpected, Visitor};

/// Deserializes a mapping as `Raw`, then turns it into `T` with `TryFrom`; a failed conversion
/// is reported at the mapping's position.
pub(crate) fn via<'de, D, Raw, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    Raw: Deserialize<'de>,
    T: TryFrom<Raw, Error = String>,
{
    struct V<Raw, T>(PhantomData<(Raw, T)>);
    impl<'de, Raw: Deserialize<'de>, T: TryFrom<Raw, Error = String>> Visitor<'de> for V<Raw, T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a mapping")
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
            let raw = Raw::deserialize(MapAccessDeserializer::new(map))?;
            T::try_from(raw).map_err(A::Error::custom)
        }
    }
    d.deserialize_map(V(PhantomData))
}

/// A value given either as a list (`[1000]`) or as a mapping (`{shape: [50], role: normal}`):
/// `Short` is what the list reads as, `Long` what the mapping reads as; both convert into `T`.
pub(crate) fn list_or_map<'de, D, Short, Long, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    Short: Deserialize<'de> + Into<T>,
    Long: Deserialize<'de> + Into<T>,
{
    struct V<Short, Long, T>(PhantomData<(Short, Long, T)>);
    impl<'de, Short, Long, T> Visitor<'de> for V<Short, Long, T>
    where
        Short: Deserialize<'de> + Into<T>,
        Long: Deserialize<'de> + Into<T>,
    {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a list or a mapping")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<T, A::Error> {
            Short::deserialize(SeqAccessDeserializer::new(seq)).map(Into::into)
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
            Long::deserialize(MapAccessDeserializer::new(map)).map(Into::into)
        }
    }
    d.deserialize_any(V::<Short, Long, T>(PhantomData))
}

/// A number, or a mapping read as `Long`: `Ok(number)` or `Err(mapping)`; `expected` says
/// what either may be.
pub(crate) fn number_or_map<'de, D, Long>(
    d: D,
    expected: &'static str,
) -> Result<Result<f64, Long>, D::Error>
where
    D: Deserializer<'de>,
    Long: Deserialize<'de>,
{
    struct V<Long>(&'static str, PhantomData<Long>);
    impl<'de, Long: Deserialize<'de>> Visitor<'de> for V<Long> {
        type Value = Result<f64, Long>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str(self.0)
        }
        fn visit_f64<E: Error>(self, v: f64) -> Result<Self::Value, E> {
            Ok(Ok(v))
        }
        fn visit_u64<E: Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Ok(v as f64))
        }
        fn visit_i64<E: Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Ok(v as f64))
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            Long::deserialize(MapAccessDeserializer::new(map)).map(Err)
        }
    }
    d.deserialize_any(V(expected, PhantomData))
}

/// A mapping's entries in file order (a `BTreeMap` would sort them; graph inputs are ordered).
pub(crate) fn ordered_map<'de, D, T>(d: D) -> Result<Vec<(String, T)>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct V<T>(PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
        type Value = Vec<(String, T)>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a mapping of names to values")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut entries: Vec<(String, T)> = Vec::new();
            while let Some((key, value)) = map.next_entry::<String, T>()? {
                if entries.iter().any(|(k, _)| *k == key) {
                    return Err(A::Error::custom(format!("`{key}` is given twice")));
                }
                entries.push((key, value));
            }
            Ok(entries)
        }
    }
    d.deserialize_map(V(PhantomData))
}

/// A list with at least one element.
pub(crate) fn non_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct V<T>(PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a non-empty list")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let mut items = Vec::new();
            while let Some(item) = seq.next_element()? {
                items.push(item);
            }
            if items.is_empty() {
                return Err(A::Error::invalid_length(0, &self));
            }
            Ok(items)
        }
    }
    d.deserialize_seq(V(PhantomData))
}

/// An integer of at least `MIN` (sizes, counts, strides: `Min<1>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Min<const MIN: u64>(pub usize);

struct MinVisitor<const MIN: u64>;

impl<const MIN: u64> MinVisitor<MIN> {
    fn check<E: Error>(v: u64) -> Result<usize, E> {
        if v < MIN {
            return Err(E::invalid_value(Unexpected::Unsigned(v), &Self));
        }
        usize::try_from(v).map_err(|_| E::invalid_value(Unexpected::Unsigned(v), &Self))
    }
}

impl<'de, const MIN: u64> Visitor<'de> for MinVisitor<MIN> {
    type Value = usize;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match MIN {
            0 => f.write_str("a non-negative integer"),
            1 => f.write_str("a positive integer"),
            _ => write!(f, "an integer of at least {MIN}"),
        }
    }
    fn visit_u64<E: Error>(self, v: u64) -> Result<usize, E> {
        Self::check(v)
    }
    fn visit_i64<E: Error>(self, v: i64) -> Result<usize, E> {
        match u64::try_from(v) {
            Ok(v) => Self::check(v),
            Err(_) => Err(E::invalid_value(Unexpected::Signed(v), &self)),
        }
    }
}

impl<'de, const MIN: u64> Deserialize<'de> for Min<MIN> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_u64(MinVisitor::<MIN>).map(Min)
    }
}

/// A positive integer (`#[serde(deserialize_with = "positive")]`).
pub(crate) fn positive<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    Min::<1>::deserialize(d).map(|m| m.0)
}

/// An optional positive integer.
pub(crate) fn positive_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    Option::<Min<1>>::deserialize(d).map(|m| m.map(|m| m.0))
}

/// A non-empty list of positive integers.
pub(crate) fn positive_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<usize>, D::Error> {
    non_empty::<D, Min<1>>(d).map(|v| v.into_iter().map(|m| m.0).collect())
}

/// An optional non-empty list of positive integers.
pub(crate) fn positive_list_opt<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Vec<usize>>, D::Error> {
    struct List(Vec<usize>);
    impl<'de> Deserialize<'de> for List {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            positive_list(d).map(List)
        }
    }
    Option::<List>::deserialize(d).map(|l| l.map(|l| l.0))
}

/// A number satisfying `ok`, described by `expected` in errors.
struct Number {
    expected: &'static str,
    ok: fn(f64) -> bool,
}

impl Visitor<'_> for Number {
    type Value = f64;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.expected)
    }
    fn visit_f64<E: Error>(self, v: f64) -> Result<f64, E> {
        if (self.ok)(v) {
            Ok(v)
        } else {
            Err(E::invalid_value(Unexpected::Float(v), &self))
        }
    }
    fn visit_u64<E: Error>(self, v: u64) -> Result<f64, E> {
        self.visit_f64(v as f64)
    }
    fn visit_i64<E: Error>(self, v: i64) -> Result<f64, E> {
        self.visit_f64(v as f64)
    }
}

/// A finite number `>= 0` (tolerances, warm-up time; `.inf` would wait for ever).
pub(crate) fn non_negative<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    d.deserialize_f64(Number {
        expected: "a finite number >= 0",
        ok: |x| x >= 0.0 && x.is_finite(),
    })
}

/// A finite number `> 0` (time budgets).
pub(crate) fn positive_number<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    d.deserialize_f64(Number {
        expected: "a finite number > 0",
        ok: |x| x > 0.0 && x.is_finite(),
    })
}

/// A finite number, any sign (scale factors).
pub(crate) fn finite<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    d.deserialize_f64(Number {
        expected: "a finite number",
        ok: f64::is_finite,
    })
}

/// A fraction in `[0, 1)` (validation share, dropout probability).
pub(crate) fn fraction<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    d.deserialize_f64(Number {
        expected: "a fraction in [0, 1)",
        ok: |x| (0.0..1.0).contains(&x),
    })
}

/// A size per spatial axis (height, width): one integer for both, or a pair `[h, w]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pair<const MIN: u64>([usize; 2]);

/// A positive size per spatial axis: `3` or `[3, 5]` (kernels, strides, dilations).
pub(crate) fn positive_pair<'de, D: Deserializer<'de>>(d: D) -> Result<[usize; 2], D::Error> {
    Pair::<1>::deserialize(d).map(|p| p.0)
}

/// An optional positive size per spatial axis.
pub(crate) fn positive_pair_opt<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<[usize; 2]>, D::Error> {
    Option::<Pair<1>>::deserialize(d).map(|p| p.map(|p| p.0))
}

/// A non-negative size per spatial axis: `0` or `[1, 2]` (padding).
pub(crate) fn pair<'de, D: Deserializer<'de>>(d: D) -> Result<[usize; 2], D::Error> {
    Pair::<0>::deserialize(d).map(|p| p.0)
}

impl<'de, const MIN: u64> Deserialize<'de> for Pair<MIN> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<const MIN: u64>;
        impl<'de, const MIN: u64> Visitor<'de> for V<MIN> {
            type Value = Pair<MIN>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an integer or a pair [height, width]")
            }
            fn visit_u64<E: Error>(self, v: u64) -> Result<Pair<MIN>, E> {
                MinVisitor::<MIN>.visit_u64(v).map(|n| Pair([n, n]))
            }
            fn visit_i64<E: Error>(self, v: i64) -> Result<Pair<MIN>, E> {
                MinVisitor::<MIN>.visit_i64(v).map(|n| Pair([n, n]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Pair<MIN>, A::Error> {
                let items = Vec::<Min<MIN>>::deserialize(SeqAccessDeserializer::new(seq))?;
                match items[..] {
                    [h, w] => Ok(Pair([h.0, w.0])),
                    _ => Err(A::Error::invalid_length(items.len(), &self)),
                }
            }
        }
        d.deserialize_any(V::<MIN>)
    }
}
