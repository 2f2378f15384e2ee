//! Dates: epoch milliseconds and text in Java `DateTimeFormatter`-style
//! patterns, with IANA time zones or fixed offsets.
//!
//! The pattern `timestamp` stands for epoch milliseconds. Month and day
//! names are English; a pattern that reads or writes names under another
//! locale is refused rather than silently answered in English. Numeric
//! patterns accept any locale.

use chrono::{
    DateTime, Datelike, Duration, FixedOffset, Months, NaiveDate, NaiveDateTime, NaiveTime, Offset,
    TimeZone, Timelike, Utc,
};
use chrono_tz::{OffsetName, Tz};
use serde_json::Value;

use super::{Args, FunctionDef, arg, opt_string, string, type_name};
use crate::EvalError;

pub(crate) static FUNCTIONS: &[FunctionDef] = &[
    FunctionDef {
        name: "NOW",
        min_args: 0,
        max_args: Some(0),
        body: now,
    },
    FunctionDef {
        name: "FORMATDATE",
        min_args: 3,
        max_args: Some(7),
        body: format_date,
    },
    FunctionDef {
        name: "TOISODATE",
        min_args: 2,
        max_args: Some(4),
        body: to_iso_date,
    },
    FunctionDef {
        name: "SUMDATE",
        min_args: 3,
        max_args: Some(3),
        body: sum_date,
    },
    FunctionDef {
        name: "DIFFDATE",
        min_args: 3,
        max_args: Some(3),
        body: diff_date,
    },
];

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// A time zone: an IANA zone or a fixed offset.
#[derive(Debug, Clone, Copy)]
enum Zone {
    Named(Tz),
    Fixed(FixedOffset),
}

impl Zone {
    fn parse(function: &'static str, text: &str) -> Result<Zone, EvalError> {
        let t = text.trim();
        if matches!(t, "Z" | "UTC" | "GMT" | "utc") {
            return Ok(Zone::Fixed(FixedOffset::east_opt(0).unwrap_or(Utc.fix())));
        }
        if let Some(offset) = parse_offset(t) {
            return Ok(Zone::Fixed(offset));
        }
        t.parse::<Tz>()
            .map(Zone::Named)
            .map_err(|_| EvalError::function(function, format!("unknown time zone '{text}'")))
    }

    fn opt(
        function: &'static str,
        args: Args<'_, '_>,
        index: usize,
    ) -> Result<Option<Zone>, EvalError> {
        opt_string(function, args, index)?
            .map(|z| Zone::parse(function, z))
            .transpose()
    }

    /// The local time, its offset and the zone's abbreviation at `utc`.
    fn local(self, utc: DateTime<Utc>) -> (NaiveDateTime, FixedOffset, String) {
        match self {
            Zone::Fixed(offset) => {
                let name = if offset.local_minus_utc() == 0 {
                    "UTC".to_owned()
                } else {
                    offset_text(offset, ":", false)
                };
                (utc.with_timezone(&offset).naive_local(), offset, name)
            }
            Zone::Named(tz) => {
                let local = utc.with_timezone(&tz);
                let offset = local.offset();
                let name = offset
                    .abbreviation()
                    .map_or_else(|| offset_text(offset.fix(), ":", false), str::to_owned);
                (local.naive_local(), offset.fix(), name)
            }
        }
    }

    /// The instant of a local time in this zone (the earlier one when the
    /// clocks go back, an error when they skip it).
    fn instant(
        self,
        function: &'static str,
        local: NaiveDateTime,
    ) -> Result<DateTime<Utc>, EvalError> {
        let found = match self {
            Zone::Fixed(offset) => offset
                .from_local_datetime(&local)
                .earliest()
                .map(|d| d.with_timezone(&Utc)),
            Zone::Named(tz) => tz
                .from_local_datetime(&local)
                .earliest()
                .map(|d| d.with_timezone(&Utc)),
        };
        found.ok_or_else(|| {
            EvalError::function(
                function,
                format!("{local} does not exist in that time zone (a clock change skips it)"),
            )
        })
    }
}

fn utc_zone() -> Zone {
    Zone::Fixed(Utc.fix())
}

/// `Z`, `+02`, `+0200`, `+02:00`, `-05:30`.
fn parse_offset(text: &str) -> Option<FixedOffset> {
    if text == "Z" {
        return FixedOffset::east_opt(0);
    }
    let (sign, rest) = match text.as_bytes().first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => return None,
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if !digits.chars().all(|c| c.is_ascii_digit()) || !matches!(digits.len(), 2 | 4) {
        return None;
    }
    let hours: i32 = digits[..2].parse().ok()?;
    let minutes: i32 = if digits.len() == 4 {
        digits[2..].parse().ok()?
    } else {
        0
    };
    FixedOffset::east_opt(sign * (hours * 3600 + minutes * 60))
}

fn offset_text(offset: FixedOffset, separator: &str, short: bool) -> String {
    let seconds = offset.local_minus_utc();
    let sign = if seconds < 0 { '-' } else { '+' };
    let (hours, minutes) = (seconds.abs() / 3600, seconds.abs() % 3600 / 60);
    if short && minutes == 0 {
        format!("{sign}{hours:02}")
    } else {
        format!("{sign}{hours:02}{separator}{minutes:02}")
    }
}

/// One piece of a pattern: literal text or a letter repeated `count` times.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Text(String),
    Field(char, usize),
}

const LETTERS: &str = "yuMLdDHhmsSaEXxZz";

/// A parsed date pattern, or `timestamp`.
#[derive(Debug)]
enum Pattern {
    Timestamp,
    Tokens(Vec<Token>),
}

impl Pattern {
    fn parse(function: &'static str, text: &str) -> Result<Pattern, EvalError> {
        if text.eq_ignore_ascii_case("timestamp") {
            return Ok(Pattern::Timestamp);
        }
        let chars: Vec<char> = text.chars().collect();
        let mut tokens = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c == '\'' {
                let mut literal = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => {
                            return Err(EvalError::function(
                                function,
                                format!("pattern '{text}' has an unclosed quote"),
                            ));
                        }
                        Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                            literal.push('\'');
                            i += 2;
                        }
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some(other) => {
                            literal.push(*other);
                            i += 1;
                        }
                    }
                }
                // `''` outside text is one quote.
                if literal.is_empty() {
                    literal.push('\'');
                }
                tokens.push(Token::Text(literal));
            } else if c.is_ascii_alphabetic() {
                if !LETTERS.contains(c) {
                    return Err(EvalError::function(
                        function,
                        format!("pattern letter '{c}' in '{text}' is not supported"),
                    ));
                }
                let mut count = 1;
                while chars.get(i + count) == Some(&c) {
                    count += 1;
                }
                tokens.push(Token::Field(c, count));
                i += count;
            } else {
                tokens.push(Token::Text(c.to_string()));
                i += 1;
            }
        }
        Ok(Pattern::Tokens(tokens))
    }

    /// Whether the pattern reads or writes names (months, days, AM/PM).
    fn has_names(&self) -> bool {
        match self {
            Pattern::Timestamp => false,
            Pattern::Tokens(tokens) => tokens.iter().any(|t| {
                matches!(t, Token::Field('M' | 'L', n) if *n >= 3)
                    || matches!(t, Token::Field('E' | 'a', _))
            }),
        }
    }
}

fn check_locale(
    function: &'static str,
    locale: Option<&str>,
    pattern: &Pattern,
) -> Result<(), EvalError> {
    match locale {
        Some(l) if pattern.has_names() && !l.to_ascii_lowercase().starts_with("en") => {
            Err(EvalError::function(
                function,
                format!("locale '{l}' is not supported for month and day names (only English)"),
            ))
        }
        _ => Ok(()),
    }
}

/// Epoch milliseconds from a number or numeric text.
fn millis(function: &'static str, value: &Value, index: usize) -> Result<i64, EvalError> {
    let n = match value {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.2e18)
                .map(|f| f as i64)
        }),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    n.ok_or_else(|| {
        EvalError::function(
            function,
            format!(
                "argument {} must be epoch milliseconds, got {}",
                index + 1,
                match value {
                    Value::String(s) => format!("'{s}'"),
                    other => type_name(other).to_owned(),
                }
            ),
        )
    })
}

fn instant_of_millis(function: &'static str, ms: i64) -> Result<DateTime<Utc>, EvalError> {
    DateTime::from_timestamp_millis(ms).ok_or_else(|| {
        EvalError::function(
            function,
            format!("{ms} is outside the supported range of dates"),
        )
    })
}

/// Reads `value` with `pattern`; text without an offset is in `zone`.
fn read(
    function: &'static str,
    value: &Value,
    pattern: &Pattern,
    zone: Zone,
) -> Result<DateTime<Utc>, EvalError> {
    match pattern {
        Pattern::Timestamp => instant_of_millis(function, millis(function, value, 0)?),
        Pattern::Tokens(tokens) => {
            let text = match value {
                Value::String(s) => s.as_str(),
                other => {
                    return Err(EvalError::function(
                        function,
                        format!(
                            "argument 1 must be a string for a text pattern, got {}",
                            type_name(other)
                        ),
                    ));
                }
            };
            parse_text(function, text, tokens, zone)
        }
    }
}

#[derive(Default)]
struct Fields {
    year: Option<i32>,
    month: Option<u32>,
    day: Option<u32>,
    day_of_year: Option<u32>,
    hour: Option<u32>,
    hour12: Option<u32>,
    pm: Option<bool>,
    minute: u32,
    second: u32,
    nanos: u32,
    offset: Option<FixedOffset>,
    zone: Option<Zone>,
}

fn parse_text(
    function: &'static str,
    text: &str,
    tokens: &[Token],
    zone: Zone,
) -> Result<DateTime<Utc>, EvalError> {
    let fail = |why: &str| {
        let pattern: String = tokens
            .iter()
            .map(|t| match t {
                Token::Text(s) if s.chars().any(|c| c.is_ascii_alphabetic()) => format!("'{s}'"),
                Token::Text(s) => s.clone(),
                Token::Field(c, n) => c.to_string().repeat(*n),
            })
            .collect();
        EvalError::function(
            function,
            format!("cannot parse '{text}' with pattern '{pattern}': {why}"),
        )
    };
    let mut rest = text;
    let mut fields = Fields::default();
    for (i, token) in tokens.iter().enumerate() {
        match token {
            Token::Text(literal) => {
                rest = rest
                    .strip_prefix(literal.as_str())
                    .ok_or_else(|| fail(&format!("expected '{literal}'")))?;
            }
            Token::Field(letter, count) => {
                let next_is_number = matches!(tokens.get(i + 1), Some(Token::Field(c, _)) if "yuMdDHhmsS".contains(*c));
                let number = |rest: &mut &str, max: usize| -> Result<u32, EvalError> {
                    let width = if next_is_number { *count } else { max };
                    let digits: String = rest
                        .chars()
                        .take(width)
                        .take_while(char::is_ascii_digit)
                        .collect();
                    if digits.is_empty() {
                        return Err(fail(&format!(
                            "expected digits for '{}'",
                            letter.to_string().repeat(*count)
                        )));
                    }
                    *rest = &rest[digits.len()..];
                    digits.parse().map_err(|_| fail("number too large"))
                };
                match letter {
                    'y' | 'u' => {
                        let year = number(&mut rest, if *count == 2 { 2 } else { 9 })?;
                        let year = i32::try_from(year).map_err(|_| fail("year too large"))?;
                        fields.year = Some(if *count == 2 { 2000 + year } else { year });
                    }
                    'M' | 'L' if *count >= 3 => {
                        let (index, len) = name_at(rest, &MONTHS, *count == 3)
                            .ok_or_else(|| fail("expected a month name"))?;
                        fields.month = Some(index as u32 + 1);
                        rest = &rest[len..];
                    }
                    'M' | 'L' => fields.month = Some(number(&mut rest, 2)?),
                    'd' => fields.day = Some(number(&mut rest, 2)?),
                    'D' => fields.day_of_year = Some(number(&mut rest, 3)?),
                    'H' => fields.hour = Some(number(&mut rest, 2)?),
                    'h' => fields.hour12 = Some(number(&mut rest, 2)?),
                    'm' => fields.minute = number(&mut rest, 2)?,
                    's' => fields.second = number(&mut rest, 2)?,
                    'S' => {
                        let digits: String = rest
                            .chars()
                            .take(if next_is_number { *count } else { 9 })
                            .take_while(char::is_ascii_digit)
                            .collect();
                        if digits.is_empty() {
                            return Err(fail("expected fraction digits"));
                        }
                        rest = &rest[digits.len()..];
                        let padded = format!("{digits:0<9}");
                        fields.nanos = padded.parse().map_err(|_| fail("bad fraction"))?;
                    }
                    'a' => {
                        let upper = rest.get(..2).map(str::to_ascii_uppercase);
                        fields.pm = Some(match upper.as_deref() {
                            Some("AM") => false,
                            Some("PM") => true,
                            _ => return Err(fail("expected AM or PM")),
                        });
                        rest = &rest[2..];
                    }
                    'E' => {
                        let (_, len) = name_at(rest, &DAYS, *count <= 3)
                            .ok_or_else(|| fail("expected a day name"))?;
                        rest = &rest[len..];
                    }
                    'X' | 'x' | 'Z' => {
                        let len = rest
                            .char_indices()
                            .take_while(|(i, c)| {
                                (*i == 0 && matches!(c, '+' | '-' | 'Z'))
                                    || (*i > 0 && (c.is_ascii_digit() || *c == ':'))
                            })
                            .count();
                        let offset = parse_offset(&rest[..len])
                            .ok_or_else(|| fail("expected an offset like +02:00 or Z"))?;
                        fields.offset = Some(offset);
                        rest = &rest[len..];
                    }
                    _ => {
                        // 'z': a zone id or abbreviation.
                        let len = rest
                            .chars()
                            .take_while(|c| {
                                c.is_ascii_alphanumeric()
                                    || matches!(c, '/' | '_' | '+' | '-' | ':')
                            })
                            .count();
                        let name = &rest[..len];
                        fields.zone = Some(
                            Zone::parse(function, name)
                                .map_err(|_| fail(&format!("unknown time zone '{name}'")))?,
                        );
                        rest = &rest[len..];
                    }
                }
            }
        }
    }
    if !rest.is_empty() {
        return Err(fail(&format!("unexpected text '{rest}' at the end")));
    }
    let year = fields.year.ok_or_else(|| fail("the pattern has no year"))?;
    let date = match (fields.month, fields.day, fields.day_of_year) {
        (Some(m), Some(d), _) => NaiveDate::from_ymd_opt(year, m, d),
        (_, _, Some(doy)) => NaiveDate::from_yo_opt(year, doy),
        (Some(m), None, None) => NaiveDate::from_ymd_opt(year, m, 1),
        (None, None, None) => NaiveDate::from_ymd_opt(year, 1, 1),
        (None, Some(_), None) => return Err(fail("the pattern has a day but no month")),
    }
    .ok_or_else(|| fail("no such date"))?;
    let hour = match (fields.hour, fields.hour12, fields.pm) {
        (Some(h), _, _) => h,
        (None, Some(h), pm) if (1..=12).contains(&h) => {
            h % 12 + if pm == Some(true) { 12 } else { 0 }
        }
        (None, Some(_), _) => return Err(fail("the hour of the clock must be between 1 and 12")),
        (None, None, _) => 0,
    };
    let time = NaiveTime::from_hms_nano_opt(hour, fields.minute, fields.second, fields.nanos)
        .ok_or_else(|| fail("no such time"))?;
    let local = NaiveDateTime::new(date, time);
    match (fields.offset, fields.zone) {
        (Some(offset), _) => Zone::Fixed(offset).instant(function, local),
        (None, Some(zone)) => zone.instant(function, local),
        (None, None) => zone.instant(function, local),
    }
}

/// Which of `names` (or their 3-letter forms) starts `text`, and its length.
fn name_at(text: &str, names: &[&str], short: bool) -> Option<(usize, usize)> {
    names.iter().enumerate().find_map(|(i, name)| {
        let candidate = if short { &name[..3] } else { name };
        text.get(..candidate.len())
            .filter(|t| t.eq_ignore_ascii_case(candidate))
            .map(|_| (i, candidate.len()))
    })
}

/// Writes `instant` in `zone` with `pattern`.
fn write(instant: DateTime<Utc>, pattern: &Pattern, zone: Zone) -> Value {
    let Pattern::Tokens(tokens) = pattern else {
        return Value::from(instant.timestamp_millis());
    };
    let (local, offset, zone_name) = zone.local(instant);
    let mut out = String::new();
    for token in tokens {
        match token {
            Token::Text(text) => out.push_str(text),
            Token::Field(letter, count) => {
                let n = *count;
                let pad = |v: i64| format!("{v:0n$}");
                match letter {
                    'y' | 'u' if n == 2 => {
                        out.push_str(&format!("{:02}", local.year().rem_euclid(100)))
                    }
                    'y' | 'u' => out.push_str(&pad(i64::from(local.year()))),
                    'M' | 'L' if n >= 4 => out.push_str(MONTHS[local.month0() as usize]),
                    'M' | 'L' if n == 3 => out.push_str(&MONTHS[local.month0() as usize][..3]),
                    'M' | 'L' => out.push_str(&pad(i64::from(local.month()))),
                    'd' => out.push_str(&pad(i64::from(local.day()))),
                    'D' => out.push_str(&pad(i64::from(local.ordinal()))),
                    'H' => out.push_str(&pad(i64::from(local.hour()))),
                    'h' => out.push_str(&pad(i64::from(local.hour12().1))),
                    'm' => out.push_str(&pad(i64::from(local.minute()))),
                    's' => out.push_str(&pad(i64::from(local.second()))),
                    'S' => {
                        let nanos = format!("{:09}", local.nanosecond() % 1_000_000_000);
                        out.push_str(&format!("{nanos:0<n$}")[..n]);
                    }
                    'a' => out.push_str(if local.hour12().0 { "PM" } else { "AM" }),
                    'E' if n >= 4 => {
                        out.push_str(DAYS[local.weekday().num_days_from_monday() as usize])
                    }
                    'E' => {
                        out.push_str(&DAYS[local.weekday().num_days_from_monday() as usize][..3])
                    }
                    'X' if offset.local_minus_utc() == 0 => out.push('Z'),
                    'X' | 'x' => out.push_str(&match n {
                        1 => offset_text(offset, "", true),
                        2 => offset_text(offset, "", false),
                        _ => offset_text(offset, ":", false),
                    }),
                    'Z' => out.push_str(&offset_text(offset, "", false)),
                    _ => out.push_str(&zone_name),
                }
            }
        }
    }
    Value::String(out)
}

fn now(_: Args<'_, '_>) -> Result<Value, EvalError> {
    Ok(Value::from(Utc::now().timestamp_millis()))
}

fn format_date(args: Args<'_, '_>) -> Result<Value, EvalError> {
    const F: &str = "FORMATDATE";
    let value = arg(args, 0);
    let from = Pattern::parse(F, string(F, args, 1)?)?;
    let to = Pattern::parse(F, string(F, args, 2)?)?;
    check_locale(F, opt_string(F, args, 3)?, &from)?;
    let from_zone = Zone::opt(F, args, 4)?.unwrap_or_else(utc_zone);
    check_locale(F, opt_string(F, args, 5)?, &to)?;
    let to_zone = Zone::opt(F, args, 6)?.unwrap_or(from_zone);
    if value.is_null() {
        return Ok(Value::Null);
    }
    Ok(write(read(F, value, &from, from_zone)?, &to, to_zone))
}

fn to_iso_date(args: Args<'_, '_>) -> Result<Value, EvalError> {
    const F: &str = "TOISODATE";
    let value = arg(args, 0);
    let from = Pattern::parse(F, string(F, args, 1)?)?;
    check_locale(F, opt_string(F, args, 2)?, &from)?;
    let zone = Zone::opt(F, args, 3)?.unwrap_or_else(utc_zone);
    if value.is_null() {
        return Ok(Value::Null);
    }
    let iso = Pattern::parse(F, "yyyy-MM-dd'T'HH:mm:ss.SSSXXX")?;
    Ok(write(read(F, value, &from, zone)?, &iso, zone))
}

#[derive(Debug, Clone, Copy)]
enum Unit {
    Millis,
    Seconds,
    Minutes,
    Hours,
    Days,
    Weeks,
    Months,
    Years,
}

fn unit(function: &'static str, args: Args<'_, '_>) -> Result<Unit, EvalError> {
    let text = string(function, args, 1)?;
    let lower = text.trim().to_ascii_lowercase();
    Ok(match lower.trim_end_matches('s') {
        "millisecond" | "milli" | "ms" => Unit::Millis,
        "second" => Unit::Seconds,
        "minute" => Unit::Minutes,
        "hour" => Unit::Hours,
        "day" => Unit::Days,
        "week" => Unit::Weeks,
        "month" => Unit::Months,
        "year" => Unit::Years,
        _ => {
            return Err(EvalError::function(
                function,
                format!(
                    "unknown unit '{text}' (expected milliseconds, seconds, minutes, hours, days, weeks, months or years)"
                ),
            ));
        }
    })
}

/// Milliseconds in a fixed-length unit.
fn unit_millis(unit: Unit) -> Option<i64> {
    Some(match unit {
        Unit::Millis => 1,
        Unit::Seconds => 1_000,
        Unit::Minutes => 60_000,
        Unit::Hours => 3_600_000,
        Unit::Days => 86_400_000,
        Unit::Weeks => 604_800_000,
        Unit::Months | Unit::Years => return None,
    })
}

fn sum_date(args: Args<'_, '_>) -> Result<Value, EvalError> {
    const F: &str = "SUMDATE";
    let start = instant_of_millis(F, millis(F, arg(args, 0), 0)?)?;
    let unit = unit(F, args)?;
    let amount = super::integer(F, args, 2)?;
    let overflow = || EvalError::function(F, "the result is outside the supported range of dates");
    let result = match unit_millis(unit) {
        Some(ms) => start.checked_add_signed(Duration::milliseconds(
            amount.checked_mul(ms).ok_or_else(overflow)?,
        )),
        None => {
            let months = if matches!(unit, Unit::Years) {
                amount.checked_mul(12).ok_or_else(overflow)?
            } else {
                amount
            };
            let count = Months::new(u32::try_from(months.unsigned_abs()).map_err(|_| overflow())?);
            if months >= 0 {
                start.checked_add_months(count)
            } else {
                start.checked_sub_months(count)
            }
        }
    }
    .ok_or_else(overflow)?;
    Ok(Value::from(result.timestamp_millis()))
}

fn diff_date(args: Args<'_, '_>) -> Result<Value, EvalError> {
    const F: &str = "DIFFDATE";
    let a = millis(F, arg(args, 0), 0)?;
    let b = millis(F, arg(args, 1), 1)?;
    let unit = match arg(args, 2) {
        Value::String(_) => unit(F, &args[1..])?,
        other => {
            return Err(EvalError::function(
                F,
                format!("argument 3 must be a string, got {}", type_name(other)),
            ));
        }
    };
    if let Some(ms) = unit_millis(unit) {
        return Ok(Value::from((i128::from(b) - i128::from(a)) as i64 / ms));
    }
    let (start, end) = (instant_of_millis(F, a)?, instant_of_millis(F, b)?);
    let (early, late, sign) = if start <= end {
        (start, end, 1)
    } else {
        (end, start, -1)
    };
    let mut months = i64::from(late.year() - early.year()) * 12 + i64::from(late.month())
        - i64::from(early.month());
    // A month only counts once its day and time of day are reached, as
    // Java's `ChronoUnit.MONTHS.between` counts.
    let position = |d: DateTime<Utc>| (d.day(), d.num_seconds_from_midnight(), d.nanosecond());
    if months > 0 && position(late) < position(early) {
        months -= 1;
    }
    let whole = if matches!(unit, Unit::Years) {
        months / 12
    } else {
        months
    };
    Ok(Value::from(sign * whole))
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use serde_json::json;

    use super::*;

    fn call(
        f: fn(Args<'_, '_>) -> Result<Value, EvalError>,
        args: &[Value],
    ) -> Result<Value, String> {
        let args: Vec<Cow<'_, Value>> = args.iter().map(Cow::Borrowed).collect();
        f(&args).map_err(|e| e.to_string())
    }

    const T: i64 = 1_709_649_000_000; // 2024-03-05T14:30:00Z, a Tuesday

    #[test]
    fn formats_between_patterns_and_zones() {
        let f = |args: &[Value]| call(format_date, args).unwrap();
        assert_eq!(
            f(&[
                json!("05/03/2024"),
                json!("dd/MM/yyyy"),
                json!("yyyy-MM-dd")
            ]),
            json!("2024-03-05")
        );
        assert_eq!(
            f(&[
                json!(T),
                json!("timestamp"),
                json!("yyyy-MM-dd HH:mm:ss.SSS")
            ]),
            json!("2024-03-05 14:30:00.000")
        );
        assert_eq!(
            f(&[
                json!(T.to_string()),
                json!("timestamp"),
                json!("dd MMMM yy, EEEE h:mm a")
            ]),
            json!("05 March 24, Tuesday 2:30 PM")
        );
        assert_eq!(
            f(&[
                json!("2024-03-05 14:30"),
                json!("yyyy-MM-dd HH:mm"),
                json!("timestamp")
            ]),
            json!(T)
        );
        assert_eq!(
            f(&[
                json!("2024-03-05 14:30"),
                json!("yyyy-MM-dd HH:mm"),
                json!("HH:mm z XXX"),
                Value::Null,
                json!("UTC"),
                Value::Null,
                json!("America/Sao_Paulo")
            ]),
            json!("11:30 -03:00 -03:00")
        );
        assert_eq!(
            f(&[
                json!("20240305T1430"),
                json!("yyyyMMdd'T'HHmm"),
                json!("yyyy-MM-dd'T'HH:mmZ"),
                Value::Null,
                json!("Europe/Berlin")
            ]),
            json!("2024-03-05T14:30+0100")
        );
        assert_eq!(
            f(&[
                json!("Tue, 05 Mar 2024 16:30:00 +0200"),
                json!("EEE, dd MMM yyyy HH:mm:ss Z"),
                json!("timestamp")
            ]),
            json!(T)
        );
        assert_eq!(
            f(&[json!("2024-065"), json!("yyyy-DDD"), json!("dd/MM")]),
            json!("05/03")
        );
        assert_eq!(
            f(&[json!("it's 2024"), json!("'it''s' yyyy"), json!("yyyy")]),
            json!("2024")
        );
        assert_eq!(f(&[Value::Null, json!("yyyy"), json!("yyyy")]), Value::Null);
    }

    #[test]
    fn format_errors_say_what_is_wrong() {
        let e = |args: &[Value]| call(format_date, args).unwrap_err();
        assert!(
            e(&[json!("31/02/2024"), json!("dd/MM/yyyy"), json!("yyyy")]).contains(
                "FORMATDATE: cannot parse '31/02/2024' with pattern 'dd/MM/yyyy': no such date"
            )
        );
        assert!(
            e(&[json!("2024-03"), json!("yyyy-MM-dd"), json!("yyyy")]).contains("expected '-'")
        );
        assert!(e(&[json!("12:00"), json!("HH:mm"), json!("yyyy")]).contains("no year"));
        assert!(
            e(&[
                json!("2024"),
                json!("yyyy"),
                json!("yyyy"),
                Value::Null,
                json!("Mars/Base")
            ])
            .contains("unknown time zone 'Mars/Base'")
        );
        assert!(
            e(&[json!("2024"), json!("yyyy"), json!("yyyy QQ")]).contains("pattern letter 'Q'")
        );
        assert!(
            e(&[
                json!("mars 2024"),
                json!("MMM yyyy"),
                json!("yyyy"),
                json!("fr")
            ])
            .contains("locale 'fr'")
        );
        assert!(e(&[json!(5), json!("yyyy"), json!("yyyy")]).contains("must be a string"));
        assert!(
            e(&[json!("x"), json!("timestamp"), json!("yyyy")])
                .contains("epoch milliseconds, got 'x'")
        );
        assert!(e(&[json!("2024"), json!("'yyyy"), json!("yyyy")]).contains("unclosed quote"));
        assert_eq!(
            call(
                format_date,
                &[
                    json!("05/03/2024"),
                    json!("dd/MM/yyyy"),
                    json!("yyyy"),
                    json!("pt-BR")
                ]
            )
            .unwrap(),
            json!("2024")
        );
    }

    #[test]
    fn iso_dates() {
        assert_eq!(
            call(
                to_iso_date,
                &[json!("05/03/2024 14:30"), json!("dd/MM/yyyy HH:mm")]
            )
            .unwrap(),
            json!("2024-03-05T14:30:00.000Z")
        );
        assert_eq!(
            call(
                to_iso_date,
                &[
                    json!(T),
                    json!("timestamp"),
                    Value::Null,
                    json!("Asia/Kolkata")
                ]
            )
            .unwrap(),
            json!("2024-03-05T20:00:00.000+05:30")
        );
        assert_eq!(
            call(
                to_iso_date,
                &[
                    json!("2024-03-05 14:30:00.5"),
                    json!("yyyy-MM-dd HH:mm:ss.S")
                ]
            )
            .unwrap(),
            json!("2024-03-05T14:30:00.500Z")
        );
        assert!(
            call(to_iso_date, &[json!("x"), json!("yyyy")])
                .unwrap_err()
                .starts_with("TOISODATE: cannot parse")
        );
    }

    #[test]
    fn adding_time_follows_the_calendar() {
        assert_eq!(
            call(sum_date, &[json!(T), json!("days"), json!(2)]).unwrap(),
            json!(T + 2 * 86_400_000)
        );
        assert_eq!(
            call(sum_date, &[json!(T), json!("Hour"), json!(-1)]).unwrap(),
            json!(T - 3_600_000)
        );
        // 2024-01-31 + 1 month = 2024-02-29; - 1 year = 2023-01-31.
        assert_eq!(
            call(
                sum_date,
                &[json!(1_706_659_200_000_i64), json!("months"), json!(1)]
            )
            .unwrap(),
            json!(1_709_164_800_000_i64)
        );
        assert_eq!(
            call(
                sum_date,
                &[json!(1_706_659_200_000_i64), json!("years"), json!(-1)]
            )
            .unwrap(),
            json!(1_675_123_200_000_i64)
        );
        assert!(
            call(sum_date, &[json!(T), json!("fortnights"), json!(1)])
                .unwrap_err()
                .contains("unknown unit 'fortnights'")
        );
        assert!(
            call(sum_date, &[json!(T), json!("days"), json!(1.5)])
                .unwrap_err()
                .contains("SUMDATE")
        );
        assert!(
            call(sum_date, &[json!(T), json!("years"), json!(i64::MAX)])
                .unwrap_err()
                .contains("range")
        );
    }

    #[test]
    fn differences_count_whole_units() {
        assert_eq!(
            call(
                diff_date,
                &[json!(T), json!(T + 2 * 86_400_000 - 1), json!("days")]
            )
            .unwrap(),
            json!(1)
        );
        assert_eq!(
            call(
                diff_date,
                &[json!(T + 2 * 86_400_000), json!(T), json!("days")]
            )
            .unwrap(),
            json!(-2)
        );
        // 2024-01-31 → 2024-02-29 is not yet a whole month; → 2024-03-31 is two.
        assert_eq!(
            call(
                diff_date,
                &[
                    json!(1_706_659_200_000_i64),
                    json!(1_709_164_800_000_i64),
                    json!("months")
                ]
            )
            .unwrap(),
            json!(0)
        );
        assert_eq!(
            call(
                diff_date,
                &[
                    json!(1_706_659_200_000_i64),
                    json!(1_711_843_200_000_i64),
                    json!("months")
                ]
            )
            .unwrap(),
            json!(2)
        );
        assert_eq!(
            call(
                diff_date,
                &[
                    json!(1_711_843_200_000_i64),
                    json!(1_706_659_200_000_i64),
                    json!("months")
                ]
            )
            .unwrap(),
            json!(-2)
        );
        assert_eq!(
            call(diff_date, &[json!(0), json!(T), json!("years")]).unwrap(),
            json!(54)
        );
        assert!(
            call(diff_date, &[json!(0), json!(T), json!(3)])
                .unwrap_err()
                .contains("DIFFDATE: argument 3 must be a string")
        );
    }

    #[test]
    fn now_is_current() {
        let n = call(now, &[]).unwrap().as_i64().unwrap();
        assert!((n - Utc::now().timestamp_millis()).abs() < 5_000);
    }
}
