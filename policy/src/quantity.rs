//! Kubernetes-style resource quantities: `2Gi`, `512Mi`, `1G`, `500m`, `2`.

/// Parse a memory quantity into bytes.
pub fn parse_bytes(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let multiplier: u64 = match suffix {
        "" => 1,
        "k" => 1000,
        "K" | "Ki" => 1 << 10,
        "M" => 1_000_000,
        "Mi" => 1 << 20,
        "G" => 1_000_000_000,
        "Gi" => 1 << 30,
        "T" => 1_000_000_000_000,
        "Ti" => 1 << 40,
        _ => return None,
    };
    if number.is_empty() {
        return None;
    }
    if let Ok(n) = number.parse::<u64>() {
        return n.checked_mul(multiplier);
    }
    // Fractions such as `1.5Gi`: exact enough when rounded down to a byte.
    let f: f64 = number.parse().ok()?;
    if !f.is_finite() || f < 0.0 {
        return None;
    }
    #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let bytes = (f * multiplier as f64).floor();
    #[allow(clippy::cast_precision_loss)]
    if bytes > u64::MAX as f64 {
        return None;
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Some(bytes as u64)
}

/// Parse a CPU quantity into millicores: `2` → 2000, `0.5` → 500, `250m` → 250.
pub fn parse_millicores(text: &str) -> Option<u64> {
    let text = text.trim();
    if let Some(m) = text.strip_suffix('m') {
        return m.parse::<u64>().ok().filter(|v| *v > 0);
    }
    if let Ok(n) = text.parse::<u64>() {
        return n.checked_mul(1000).filter(|v| *v > 0);
    }
    let f: f64 = text.parse().ok()?;
    if !f.is_finite() || f <= 0.0 || f > 1e12 {
        return None;
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let m = (f * 1000.0).round() as u64;
    (m > 0).then_some(m)
}

/// Render bytes the way Kubernetes users write them (`2Gi`, `512Mi`, or plain bytes).
pub fn format_bytes(bytes: u64) -> String {
    for (suffix, unit) in [("Ti", 1u64 << 40), ("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)] {
        if bytes >= unit && bytes % unit == 0 {
            return format!("{}{suffix}", bytes / unit);
        }
    }
    bytes.to_string()
}

/// Render millicores the way Kubernetes users write them (`2`, `500m`).
pub fn format_millicores(m: u64) -> String {
    if m % 1000 == 0 {
        (m / 1000).to_string()
    } else {
        format!("{m}m")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes() {
        assert_eq!(parse_bytes("2Gi"), Some(2 << 30));
        assert_eq!(parse_bytes("512Mi"), Some(512 << 20));
        assert_eq!(parse_bytes("1G"), Some(1_000_000_000));
        assert_eq!(parse_bytes("1.5Gi"), Some(3 << 29));
        assert_eq!(parse_bytes("100"), Some(100));
        assert_eq!(parse_bytes("2GB"), None);
        assert_eq!(parse_bytes("Gi"), None);
        assert_eq!(parse_bytes("99999999999999999999Ti"), None);
        assert_eq!(format_bytes(2 << 30), "2Gi");
        assert_eq!(format_bytes(1000), "1000");
    }

    #[test]
    fn millicores() {
        assert_eq!(parse_millicores("2"), Some(2000));
        assert_eq!(parse_millicores("0.5"), Some(500));
        assert_eq!(parse_millicores("250m"), Some(250));
        assert_eq!(parse_millicores("0"), None);
        assert_eq!(parse_millicores("x"), None);
        assert_eq!(format_millicores(2000), "2");
        assert_eq!(format_millicores(250), "250m");
    }
}
