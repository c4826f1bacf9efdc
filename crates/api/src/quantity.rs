//! Resource quantities (`100m`, `1Gi`, `1e3`) as apimachinery's `resource.Quantity`: parsing
//! (rounded up to nano precision), the arithmetic kubectl's describe needs, and the canonical
//! text (`1000m` → `1`, `2048Mi` → `2Gi`, `0.5` → `500m`) that keeps the suffix family the value
//! was written in. Used by the server's Table printing and by kubectl.

use serde_json::Value;

use std::cmp::Ordering;

/// How a quantity prints, remembered from its first operand as apimachinery does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    DecimalSi,
    BinarySi,
    DecimalExponent,
    /// The zero value of a quantity that was never set.
    Unset,
}

/// A quantity held in nano-units (values are rounded up to nano precision, as upstream does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quantity {
    nanos: i128,
    pub format: Format,
}

const NANO: i128 = 1_000_000_000;

impl Default for Quantity {
    fn default() -> Self {
        Self {
            nanos: 0,
            format: Format::Unset,
        }
    }
}

impl Quantity {
    /// Parses the serialised form; `None` when it is not a quantity.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        if s.is_empty() {
            return None;
        }
        let (sign, rest) = match s.as_bytes()[0] {
            b'-' => (-1i128, &s[1..]),
            b'+' => (1, &s[1..]),
            _ => (1, s),
        };
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, suffix) = rest.split_at(num_end);
        if num.is_empty() || num == "." {
            return None;
        }
        let (int_part, frac_part) = num.split_once('.').unwrap_or((num, ""));
        let (base, exp, format): (i128, i32, Format) = match suffix {
            "" => (10, 0, Format::DecimalSi),
            "n" => (10, -9, Format::DecimalSi),
            "u" => (10, -6, Format::DecimalSi),
            "m" => (10, -3, Format::DecimalSi),
            "k" => (10, 3, Format::DecimalSi),
            "M" => (10, 6, Format::DecimalSi),
            "G" => (10, 9, Format::DecimalSi),
            "T" => (10, 12, Format::DecimalSi),
            "P" => (10, 15, Format::DecimalSi),
            "E" => (10, 18, Format::DecimalSi),
            "Ki" => (2, 10, Format::BinarySi),
            "Mi" => (2, 20, Format::BinarySi),
            "Gi" => (2, 30, Format::BinarySi),
            "Ti" => (2, 40, Format::BinarySi),
            "Pi" => (2, 50, Format::BinarySi),
            "Ei" => (2, 60, Format::BinarySi),
            e if e.starts_with(['e', 'E']) => (10, e[1..].parse().ok()?, Format::DecimalExponent),
            _ => return None,
        };
        // mantissa = digits / 10^frac_len
        // mantissa = digits / 10^frac_len; out-of-range values are not quantities (no panics).
        let digits: String = format!("{int_part}{frac_part}");
        let mantissa: i128 = digits.parse().ok()?;
        let frac_len = i32::try_from(frac_part.len()).ok()?;
        let nanos = if base == 2 {
            let scaled = mantissa
                .checked_mul(NANO)?
                .checked_mul(1i128.checked_shl(u32::try_from(exp).ok()?)?)?;
            ceil_div(scaled, 10i128.checked_pow(u32::try_from(frac_len).ok()?)?)
        } else {
            let e = exp.checked_sub(frac_len)?.checked_add(9)?;
            if e >= 0 {
                mantissa.checked_mul(10i128.checked_pow(u32::try_from(e).ok()?)?)?
            } else {
                // Finer than nano precision rounds up, as upstream does.
                match 10i128.checked_pow(u32::try_from(-e).ok()?) {
                    Some(divisor) => ceil_div(mantissa, divisor),
                    None => i128::from(mantissa != 0),
                }
            }
        };
        Some(Self {
            nanos: sign * nanos,
            format,
        })
    }

    /// Parses a JSON value (a string, or a bare number some clients send).
    pub fn from_json(v: &serde_json::Value) -> Option<Self> {
        match v {
            serde_json::Value::String(s) => Self::parse(s),
            serde_json::Value::Number(n) => Self::parse(&n.to_string()),
            _ => None,
        }
    }

    /// `nanos` billionths of a unit (`NewScaledQuantity(n, -9)` is `from_nanos(n, DecimalSi)`).
    pub fn from_nanos(nanos: i128, format: Format) -> Self {
        Self { nanos, format }
    }

    /// Whole units (`NewQuantity(n, format)`).
    pub fn from_units(units: i64, format: Format) -> Self {
        Self {
            nanos: i128::from(units) * NANO,
            format,
        }
    }

    pub fn is_zero(&self) -> bool {
        self.nanos == 0
    }

    /// Adds `other`, keeping this quantity's format (a zero or unset one takes `other`'s, as
    /// apimachinery's `Add` does).
    pub fn add(&mut self, other: &Quantity) {
        if self.format == Format::Unset || self.nanos == 0 {
            self.format = other.format;
        }
        self.nanos = self.nanos.saturating_add(other.nanos);
    }

    /// Subtracts `other`, keeping this quantity's format.
    pub fn sub(&mut self, other: &Quantity) {
        self.nanos = self.nanos.saturating_sub(other.nanos);
    }

    /// Whether the amount is above zero.
    pub fn is_positive(&self) -> bool {
        self.nanos > 0
    }

    /// The value rounded up to whole units.
    pub fn value(&self) -> i64 {
        i64::try_from(ceil_div(self.nanos, NANO)).unwrap_or(i64::MAX)
    }

    /// The value in thousandths, rounded up.
    pub fn milli_value(&self) -> i64 {
        i64::try_from(ceil_div(self.nanos, 1_000_000)).unwrap_or(i64::MAX)
    }
}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.nanos.cmp(&other.nanos))
    }
}

fn ceil_div(a: i128, b: i128) -> i128 {
    let q = a / b;
    if a % b != 0 && (a > 0) == (b > 0) { q + 1 } else { q }
}

impl std::fmt::Display for Quantity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.nanos == 0 {
            return f.write_str("0");
        }
        let mut format = self.format;
        if format == Format::Unset {
            format = Format::DecimalExponent;
        }
        if format == Format::BinarySi {
            if self.nanos > -1024 * NANO && self.nanos < 1024 * NANO || self.nanos % NANO != 0 {
                format = Format::DecimalSi;
            } else {
                let mut n = self.nanos / NANO;
                let mut e = 0;
                while n % 1024 == 0 && e < 6 {
                    n /= 1024;
                    e += 1;
                }
                let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][e];
                return write!(f, "{n}{suffix}");
            }
        }
        // decimal: strip factors of ten, then bring the exponent down to a multiple of three
        let mut m = self.nanos;
        let mut e: i32 = -9;
        while m % 10 == 0 {
            m /= 10;
            e += 1;
        }
        match e.rem_euclid(3) {
            1 => {
                m *= 10;
                e -= 1;
            }
            2 => {
                m *= 100;
                e -= 2;
            }
            _ => {}
        }
        if format == Format::DecimalExponent {
            return if e == 0 { write!(f, "{m}") } else { write!(f, "{m}e{e}") };
        }
        let suffix = match e {
            -9 => "n",
            -6 => "u",
            -3 => "m",
            0 => "",
            3 => "k",
            6 => "M",
            9 => "G",
            12 => "T",
            15 => "P",
            18 => "E",
            _ => return write!(f, "{m}e{e}"),
        };
        write!(f, "{m}{suffix}")
    }
}

/// The canonical text of a quantity field: `0` when unset (Go's zero `Quantity`), the raw text
/// when it cannot be parsed.
pub fn canonical(v: &Value) -> String {
    match v {
        Value::String(s) => Quantity::parse(s).map_or_else(|| s.trim().to_string(), |q| q.to_string()),
        Value::Number(n) => Quantity::parse(&n.to_string()).map_or_else(|| n.to_string(), |q| q.to_string()),
        _ => "0".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn canon(s: &str) -> String {
        Quantity::parse(s).unwrap().to_string()
    }

    #[test]
    fn canonical_forms() {
        for (input, want) in [
            ("100m", "100m"),
            ("0.1", "100m"),
            ("1500", "1500"),
            ("1.5Gi", "1536Mi"),
            ("1000Ki", "1000Ki"),
            ("128974848", "128974848"),
            ("129e6", "129e6"),
            ("2", "2"),
            ("110", "110"),
            ("1000m", "1"),
            ("1500m", "1500m"),
            ("0.5", "500m"),
            ("2048Mi", "2Gi"),
            ("1536Mi", "1536Mi"),
            ("1Gi", "1Gi"),
            ("512", "512"),
            ("1024", "1024"),
            ("0.5Gi", "512Mi"),
            ("100Ki", "100Ki"),
            ("1Ki", "1Ki"),
            ("0.5Ki", "512"),
            ("1e3", "1e3"),
            ("1000", "1k"),
            ("10G", "10G"),
            ("0", "0"),
            ("0Gi", "0"),
            ("-1500m", "-1500m"),
            ("1.5", "1500m"),
            ("0.0000000001", "1n"),
            ("5E", "5E"),
        ] {
            assert_eq!(canon(input), want, "{input}");
            assert_eq!(canonical(&json!(input)), want, "{input}");
        }
        assert_eq!(canonical(&json!("bogus")), "bogus");
        assert_eq!(canonical(&json!(2)), "2");
        assert_eq!(canonical(&json!(null)), "0");
    }

    #[test]
    fn out_of_range_input_is_not_a_quantity() {
        assert_eq!(Quantity::parse("99999999999999999999999999999999999Ei"), None);
        assert_eq!(Quantity::parse("1e400"), None);
        assert_eq!(canonical(&json!("1e400")), "1e400");
    }

    #[test]
    fn arithmetic() {
        let mut a = Quantity::parse("100m").unwrap();
        a.add(&Quantity::parse("1").unwrap());
        assert_eq!(a.to_string(), "1100m");
        assert_eq!(a.milli_value(), 1100);
        a.sub(&Quantity::parse("1200m").unwrap());
        assert_eq!(a.to_string(), "-100m");
        assert!(!a.is_positive());
        assert_eq!(Quantity::parse("64Mi").unwrap().value(), 67108864);
    }
}
