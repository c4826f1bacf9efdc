//! Resource quantities printed as upstream's `resource.Quantity.String()`: the canonical form
//! (`1000m` → `1`, `2048Mi` → `2Gi`, `0.5` → `500m`, `1e3` → `1e3`), keeping the suffix family
//! (binary, decimal SI, decimal exponent) the value was written in.

use serde_json::Value;

/// The suffix family a quantity was written in.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Format {
    BinarySi,
    DecimalSi,
    DecimalExponent,
}

/// A parsed quantity: `mantissa × 10^scale`, rounded up to nanos as upstream does.
struct Parsed {
    mantissa: i128,
    scale: i32,
    format: Format,
}

/// The canonical text of a quantity field; `0` when unset (Go's zero `Quantity`), and the raw
/// text when it cannot be parsed.
pub(crate) fn quantity(v: &Value) -> String {
    let text = match v {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => n.to_string(),
        _ => return "0".to_string(),
    };
    match parse(&text) {
        Some(q) => canonical(q),
        None => text,
    }
}

fn parse(s: &str) -> Option<Parsed> {
    let (negative, rest) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let number_end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let (number, suffix) = rest.split_at(number_end);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
        return None;
    }
    let (base, exponent, format) = match suffix {
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
        s if s.starts_with(['e', 'E']) => (10, s[1..].parse::<i32>().ok()?, Format::DecimalExponent),
        _ => return None,
    };
    let digits = format!("{whole}{fraction}");
    let digits = digits.trim_start_matches('0');
    let mut mantissa: i128 = if digits.is_empty() { 0 } else { digits.parse().ok()? };
    let mut scale = -i32::try_from(fraction.len()).ok()?;
    if base == 2 {
        mantissa = mantissa.checked_mul(1i128.checked_shl(u32::try_from(exponent).ok()?)?)?;
    } else {
        scale = scale.checked_add(exponent)?;
    }
    // Upstream keeps nano precision, rounding anything finer up (away from zero).
    if scale < -9 {
        let drop = u32::try_from(-9 - scale).ok()?;
        let divisor = 10i128.checked_pow(drop)?;
        let rounded = mantissa / divisor + i128::from(mantissa % divisor != 0);
        mantissa = rounded;
        scale = -9;
    }
    if negative {
        mantissa = -mantissa;
    }
    Some(Parsed {
        mantissa,
        scale,
        format,
    })
}

fn canonical(q: Parsed) -> String {
    if q.mantissa == 0 {
        return "0".to_string();
    }
    let mut format = q.format;
    if format == Format::BinarySi {
        // Small or fractional binary values print in decimal.
        match integer_value(&q) {
            Some(v) if !(-1024 < v && v < 1024) => return binary(v).unwrap_or_else(|| decimal(&q, Format::DecimalSi)),
            _ => format = Format::DecimalSi,
        }
    }
    decimal(&q, format)
}

/// The exact integer value, when the quantity is whole.
fn integer_value(q: &Parsed) -> Option<i128> {
    if q.scale >= 0 {
        q.mantissa
            .checked_mul(10i128.checked_pow(u32::try_from(q.scale).ok()?)?)
    } else {
        let divisor = 10i128.checked_pow(u32::try_from(-q.scale).ok()?)?;
        (q.mantissa % divisor == 0).then_some(q.mantissa / divisor)
    }
}

/// `AsCanonicalBase1024Bytes`: divide by 1024 while exact, then the binary suffix.
fn binary(mut v: i128) -> Option<String> {
    let mut exponent = 0;
    while v % 1024 == 0 && exponent < 6 {
        v /= 1024;
        exponent += 1;
    }
    let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][exponent];
    Some(format!("{v}{suffix}"))
}

/// `AsCanonicalBytes`: strip trailing zeros, then lower the exponent to a multiple of three.
fn decimal(q: &Parsed, format: Format) -> String {
    let mut mantissa = q.mantissa;
    let mut scale = q.scale;
    while mantissa % 10 == 0 {
        mantissa /= 10;
        scale += 1;
    }
    let rem = scale.rem_euclid(3);
    for _ in 0..rem {
        match mantissa.checked_mul(10) {
            Some(m) => mantissa = m,
            None => return format!("{}e{}", q.mantissa, q.scale),
        }
    }
    scale -= rem;
    let suffix = match format {
        Format::DecimalExponent => {
            if scale == 0 {
                String::new()
            } else {
                format!("e{scale}")
            }
        }
        _ => match scale {
            -9 => "n".to_string(),
            -6 => "u".to_string(),
            -3 => "m".to_string(),
            0 => String::new(),
            3 => "k".to_string(),
            6 => "M".to_string(),
            9 => "G".to_string(),
            12 => "T".to_string(),
            15 => "P".to_string(),
            18 => "E".to_string(),
            other => format!("e{other}"),
        },
    };
    format!("{mantissa}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::quantity;
    use serde_json::json;

    #[test]
    fn canonical_forms() {
        for (input, want) in [
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
            ("bogus", "bogus"),
        ] {
            assert_eq!(quantity(&json!(input)), want, "{input}");
        }
        assert_eq!(quantity(&json!(2)), "2");
        assert_eq!(quantity(&json!(null)), "0");
    }
}
