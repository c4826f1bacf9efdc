//! Kubernetes resource quantities (`500m`, `1.5Gi`, `2e3`): parsing, comparison and the
//! canonical form upstream's `resource.Quantity` serializes (`0.5` is stored as `500m`, `1024Mi`
//! as `1Gi`).
//!
//! Values are held exactly as a count of nano-units in an `i128`, which covers every quantity
//! up to about 10^29; larger ones keep an `f64` approximation so comparisons still work.

use std::cmp::Ordering;

/// upstream's `ErrFormatWrong` text.
pub const FORMAT_ERROR: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

/// The suffix family a quantity was written in; canonical output keeps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    DecimalSi,
    BinarySi,
    DecimalExponent,
}

/// A parsed quantity.
#[derive(Clone, Copy, Debug)]
pub struct Quantity {
    /// The value in units of 10^-9, rounded up as upstream rounds sub-nano precision; `None`
    /// when it does not fit.
    nanos: Option<i128>,
    approx: f64,
    pub format: Format,
}

const NANO: i128 = 1_000_000_000;

impl Quantity {
    /// Parses the quantity syntax; `None` when malformed.
    pub fn parse(s: &str) -> Option<Quantity> {
        let (negative, rest) = match s.as_bytes().first() {
            Some(b'+') => (false, s.get(1..)?),
            Some(b'-') => (true, s.get(1..)?),
            _ => (false, s),
        };
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, suffix) = rest.split_at(number_end);
        let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
        if (int_part.is_empty() && frac_part.is_empty()) || frac_part.contains('.') {
            return None;
        }
        let (format, base, exp) = parse_suffix(suffix)?;
        // Exact value: digits × base^exp, as a rational scaled to nano-units.
        let digits = format!("{int_part}{frac_part}");
        let scale = i32::try_from(frac_part.len()).ok()?;
        let approx_mantissa: f64 = format!("{}.{}", if int_part.is_empty() { "0" } else { int_part }, frac_part)
            .parse()
            .ok()?;
        let approx = approx_mantissa * f64::from(base).powi(exp) * if negative { -1.0 } else { 1.0 };
        let nanos = exact_nanos(&digits, scale, base, exp).map(|n| if negative { -n } else { n });
        Some(Quantity { nanos, approx, format })
    }

    /// The value as a float (approximate for very large or very precise values).
    pub fn as_f64(&self) -> f64 {
        self.approx
    }

    /// The value in milli-units rounded up, as upstream's `MilliValue` (CPU comparisons).
    pub fn milli_value(&self) -> Option<i128> {
        self.nanos.map(|n| ceil_div(n, 1_000_000))
    }

    pub fn is_negative(&self) -> bool {
        match self.nanos {
            Some(n) => n < 0,
            None => self.approx < 0.0,
        }
    }

    pub fn is_zero(&self) -> bool {
        self.nanos == Some(0)
    }

    /// The canonical text, as upstream serializes the quantity; `None` when out of range (the
    /// caller then keeps what the client wrote).
    pub fn canonical(&self) -> Option<String> {
        let nanos = self.nanos?;
        if self.format == Format::BinarySi && nanos.abs() >= 1024 * NANO && nanos % NANO == 0 {
            let mut n = nanos / NANO;
            let mut k = 0;
            while k < 6 && n != 0 && n % 1024 == 0 {
                n /= 1024;
                k += 1;
            }
            let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"].get(k)?;
            return Some(format!("{n}{suffix}"));
        }
        // Decimal: the largest power-of-1000 exponent that keeps the number an integer.
        let mut n = nanos;
        let mut exp: i32 = -9;
        while n != 0 && n % 1000 == 0 && exp < 18 {
            n /= 1000;
            exp += 3;
        }
        if n == 0 {
            return Some("0".to_string());
        }
        let suffix = match (self.format, exp) {
            (Format::DecimalExponent, 0) => String::new(),
            (Format::DecimalExponent, e) => format!("e{e}"),
            (_, -9) => "n".into(),
            (_, -6) => "u".into(),
            (_, -3) => "m".into(),
            (_, 0) => String::new(),
            (_, 3) => "k".into(),
            (_, 6) => "M".into(),
            (_, 9) => "G".into(),
            (_, 12) => "T".into(),
            (_, 15) => "P".into(),
            (_, 18) => "E".into(),
            _ => return None,
        };
        Some(format!("{n}{suffix}"))
    }
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.partial_cmp(other) == Some(Ordering::Equal)
    }
}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        match (self.nanos, other.nanos) {
            (Some(a), Some(b)) => Some(a.cmp(&b)),
            _ => self.approx.partial_cmp(&other.approx),
        }
    }
}

/// Returns (format, base, exponent) for a suffix.
fn parse_suffix(suffix: &str) -> Option<(Format, i32, i32)> {
    let decimal = |e| Some((Format::DecimalSi, 10, e));
    let binary = |e| Some((Format::BinarySi, 2, e));
    match suffix {
        "" => decimal(0),
        "n" => decimal(-9),
        "u" => decimal(-6),
        "m" => decimal(-3),
        "k" => decimal(3),
        "M" => decimal(6),
        "G" => decimal(9),
        "T" => decimal(12),
        "P" => decimal(15),
        "E" => decimal(18),
        "Ki" => binary(10),
        "Mi" => binary(20),
        "Gi" => binary(30),
        "Ti" => binary(40),
        "Pi" => binary(50),
        "Ei" => binary(60),
        _ => {
            let rest = suffix.strip_prefix(['e', 'E'])?;
            let digits = rest.strip_prefix(['+', '-']).unwrap_or(rest);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let exp: i32 = rest.parse().ok()?;
            Some((Format::DecimalExponent, 10, exp))
        }
    }
}

/// `digits × 10^-scale × base^exp` in nano-units, rounded up; `None` on overflow.
fn exact_nanos(digits: &str, scale: i32, base: i32, exp: i32) -> Option<i128> {
    let digits = digits.trim_start_matches('0');
    let mantissa: i128 = if digits.is_empty() { 0 } else { digits.parse().ok()? };
    if mantissa == 0 {
        return Some(0);
    }
    // Numerator and denominator of the value in nano-units.
    let mut num = mantissa.checked_mul(NANO)?;
    let mut den: i128 = 10i128.checked_pow(u32::try_from(scale).ok()?)?;
    if exp >= 0 {
        num = num.checked_mul(i128::from(base).checked_pow(u32::try_from(exp).ok()?)?)?;
    } else {
        den = den.checked_mul(i128::from(base).checked_pow(exp.unsigned_abs())?)?;
    }
    Some(ceil_div(num, den))
}

fn ceil_div(a: i128, b: i128) -> i128 {
    let q = a / b;
    if a % b != 0 && (a > 0) == (b > 0) { q + 1 } else { q }
}

/// Parses `s`, returning upstream's format error when it is not a quantity.
pub fn parse(s: &str) -> Result<Quantity, &'static str> {
    Quantity::parse(s).ok_or(FORMAT_ERROR)
}

/// The canonical text of `s`, or `s` unchanged when it does not parse or is out of range.
pub fn canonicalize(s: &str) -> String {
    Quantity::parse(s)
        .and_then(|q| q.canonical())
        .unwrap_or_else(|| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_canonicalizes() {
        let cases = [
            ("0", "0"),
            ("0.5", "500m"),
            ("1000m", "1"),
            ("1500m", "1500m"),
            ("2000", "2k"),
            ("+1", "1"),
            ("-1.5", "-1500m"),
            (".5", "500m"),
            ("1.", "1"),
            ("100Mi", "100Mi"),
            ("1024Mi", "1Gi"),
            ("1536Mi", "1536Mi"),
            ("512", "512"),
            ("1Ki", "1Ki"),
            ("0.5Ki", "512"),
            ("1e3", "1e3"),
            ("1E3", "1e3"),
            ("1e-3", "1e-3"),
            ("1000000", "1M"),
            ("1n", "1n"),
            ("0.0000000001", "1n"),
            ("10G", "10G"),
        ];
        for (input, want) in cases {
            assert_eq!(canonicalize(input), want, "{input}");
        }
    }

    #[test]
    fn rejects_malformed() {
        for bad in ["", "abc", "1.2.3", "1Z", "1e", "1 Gi", "-", ".", "1KiB", "Gi", "1e1.5"] {
            assert!(Quantity::parse(bad).is_none(), "{bad}");
        }
        assert_eq!(parse("x").err(), Some(FORMAT_ERROR));
    }

    #[test]
    fn compares() {
        let q = |s: &str| Quantity::parse(s).unwrap_or_else(|| panic!("{s}"));
        assert!(q("500m") < q("1"));
        assert!(q("1Gi") > q("1G"));
        assert!(q("1024Mi") == q("1Gi"));
        assert!(q("100e30") > q("1Ei"));
        assert_eq!(q("1.5").milli_value(), Some(1500));
        assert_eq!(q("0.0001").milli_value(), Some(1));
        assert!(q("-1").is_negative());
        assert!(q("0Gi").is_zero());
    }
}
