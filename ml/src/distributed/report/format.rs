//! Text for the report: HTML escaping and human-readable numbers, durations and sizes.

/// `s` with `& < > " '` replaced by entities, safe in element text and quoted attributes.
pub(super) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// An integer with thin-space thousands separators: `1 234 567`.
pub(super) fn int(n: u128) -> String {
    let digits = n.to_string();
    let lead = match digits.len() % 3 {
        0 => 3,
        r => r,
    };
    let mut out = String::with_capacity(digits.len() * 2);
    out.push_str(&digits[..lead]);
    let mut i = lead;
    while i < digits.len() {
        out.push('\u{2009}');
        out.push_str(&digits[i..i + 3]);
        i += 3;
    }
    out
}

/// A fraction as a percentage with one decimal: `0.2345` → `23.5%`.
pub(super) fn pct(fraction: f64) -> String {
    format!("{:.1}%", fraction * 100.0)
}

/// A count or rate with three significant digits and an SI suffix: `950`, `12.3k`, `4.56M`.
pub(super) fn si(v: f64) -> String {
    if !v.is_finite() {
        return "–".into();
    }
    let a = v.abs();
    const UNITS: [(f64, &str); 6] = [
        (1e18, "E"),
        (1e15, "P"),
        (1e12, "T"),
        (1e9, "G"),
        (1e6, "M"),
        (1e3, "k"),
    ];
    if a >= 1e21 {
        return format!("{v:.2e}");
    }
    for (scale, suffix) in UNITS {
        if a >= scale {
            return format!("{}{suffix}", sig3(v / scale));
        }
    }
    sig3(v)
}

/// Three significant digits, no exponent, for `|v| < 1000`.
fn sig3(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if a >= 99.95 {
        format!("{v:.0}")
    } else if a >= 9.995 {
        format!("{v:.1}")
    } else if a >= 0.001 {
        format!("{v:.2}")
    } else {
        format!("{v:.2e}")
    }
}

/// A duration given in microseconds: `850 µs`, `12.3 ms`, `4.56 s`, `3 min 12 s`, `2 h 05 min`.
pub(super) fn duration_us(us: f64) -> String {
    if !us.is_finite() {
        return "–".into();
    }
    if us < 1e3 {
        format!("{} µs", sig3(us))
    } else if us < 1e6 {
        format!("{} ms", sig3(us / 1e3))
    } else if us < 60e6 {
        format!("{} s", sig3(us / 1e6))
    } else if us < 3600e6 {
        let s = (us / 1e6).round() as u64;
        format!("{} min {:02} s", s / 60, s % 60)
    } else {
        let m = (us / 60e6).round();
        if m >= 1e9 {
            return format!("{} h", si(m / 60.0));
        }
        let m = m as u64;
        format!("{} h {:02} min", m / 60, m % 60)
    }
}

/// A byte count with binary units: `512 B`, `1.50 KiB`, `23.4 MiB`.
pub(super) fn bytes(b: f64) -> String {
    if !b.is_finite() {
        return "–".into();
    }
    const UNITS: [&str; 7] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB"];
    if b < 1024.0 {
        return format!("{} B", sig3(b));
    }
    let mut v = b;
    let mut unit = "B";
    for u in UNITS {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    format!("{} {unit}", sig3(v))
}

/// An axis tick value, with as many decimals as the tick step needs. On an axis reaching `mag`
/// (its largest absolute value), large values get an SI suffix and extreme ones an exponent, the
/// same for every tick.
pub(super) fn tick(v: f64, step: f64, mag: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let a = mag.abs().max(step.abs());
    if !(1e-4..1e15).contains(&a) {
        return format!("{v:.1e}");
    }
    let (scale, suffix) = if a >= 1e12 {
        (1e12, "T")
    } else if a >= 1e9 {
        (1e9, "G")
    } else if a >= 1e6 {
        (1e6, "M")
    } else if a >= 1e4 {
        (1e3, "k")
    } else {
        (1.0, "")
    };
    let decimals = decimals_for(step / scale);
    format!("{:.*}{suffix}", decimals, v / scale)
}

/// Decimals that show a step of this size without rounding it away (0 to 6).
fn decimals_for(step: f64) -> usize {
    if !(step.is_finite() && step > 0.0) {
        return 0;
    }
    let d = -(step.log10() + 1e-9).floor();
    d.clamp(0.0, 6.0) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(int(1_234_567), "1\u{2009}234\u{2009}567");
        assert_eq!(int(999), "999");
        assert_eq!(int(0), "0");
        assert_eq!(int(1000), "1\u{2009}000");
        assert_eq!(pct(0.23456), "23.5%");
        assert_eq!(si(950.0), "950");
        assert_eq!(si(12_345.0), "12.3k");
        assert_eq!(si(f64::MAX), "1.80e308");
        assert_eq!(duration_us(850.0), "850 µs");
        assert_eq!(duration_us(12_345.0), "12.3 ms");
        assert_eq!(duration_us(192e6), "3 min 12 s");
        assert_eq!(duration_us(u64::MAX as f64).chars().last(), Some('h'));
        assert_eq!(bytes(512.0), "512 B");
        assert_eq!(bytes(1536.0), "1.50 KiB");
        assert_eq!(bytes(u64::MAX as f64), "16.0 EiB");
        assert_eq!(tick(0.5, 0.5, 2.5), "0.5");
        assert_eq!(tick(20_000.0, 5_000.0, 20_000.0), "20k");
        assert_eq!(tick(5_000.0, 5_000.0, 20_000.0), "5k");
        assert_eq!(tick(-0.0, 0.2, 1.0), "0");
        assert_eq!(tick(3.0, 1.0, 10.0), "3");
        assert_eq!(tick(12.98, 0.02, 13.2), "12.98");
        assert_eq!(tick(1e30, 1e29, 2e30), "1.0e30");
    }
}
