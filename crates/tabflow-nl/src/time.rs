//! Numbers, durations and calendar references.
//!
//! * Durations become whole days: "90+ days" = 90, "3 months" = 90, "6 months" = 180,
//!   "two quarters" = 180, "a year" / "12 months" = 365, "a week" = 7. Twelve months make a
//!   year of 365 days; the remaining months count 30 days each (18 months = 545).
//! * Calendar references become a window of inclusive dates (`since`, `until`): "from Q2",
//!   "in March", "last quarter", "between 2026-04-01 and 2026-06-30", "since Q2",
//!   "before 2026-01-01" (until the day before).
//! * A quarter, half or month named without a year is the most recent one that has ended:
//!   in May 2026 "Q2" is Q2 2025, in July 2026 it is Q2 2026. "since March" follows the same
//!   rule, so the same words always mean the same period on a given day.

use chrono::{Datelike, Days, NaiveDate};

use crate::lexicon::month_number;
use crate::token::{Token, tok, word_at};

/// A unit of time in a duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unit {
    Day,
    Week,
    Fortnight,
    Month,
    Quarter,
    Year,
}

/// The unit a word names ("days", "mo", "yrs", "quarter").
pub(crate) fn unit(l: &str) -> Option<Unit> {
    Some(match l {
        "day" | "days" | "d" => Unit::Day,
        "week" | "weeks" | "wk" | "wks" | "w" => Unit::Week,
        "fortnight" | "fortnights" => Unit::Fortnight,
        "month" | "months" | "mo" | "mos" | "mth" | "mths" => Unit::Month,
        "quarter" | "quarters" | "qtr" | "qtrs" | "q" => Unit::Quarter,
        "year" | "years" | "yr" | "yrs" | "y" => Unit::Year,
        _ => return None,
    })
}

/// `n` units in days. Whole years (12 months, 4 quarters) are 365 days each.
pub(crate) fn to_days(n: u32, unit: Unit) -> u32 {
    match unit {
        Unit::Day => n,
        Unit::Week => n.saturating_mul(7),
        Unit::Fortnight => n.saturating_mul(14),
        Unit::Month => (n / 12).saturating_mul(365).saturating_add((n % 12) * 30),
        Unit::Quarter => (n / 4).saturating_mul(365).saturating_add((n % 4) * 90),
        Unit::Year => n.saturating_mul(365),
    }
}

fn small_number(l: &str) -> Option<u32> {
    Some(match l {
        "zero" => 0,
        "one" | "a" | "an" | "single" => 1,
        "two" | "couple" => 2,
        "three" | "few" => 3,
        "four" => 4,
        "five" => 5,
        "six" => 6,
        "seven" => 7,
        "eight" => 8,
        "nine" => 9,
        "ten" => 10,
        "eleven" => 11,
        "twelve" | "dozen" => 12,
        "thirteen" => 13,
        "fourteen" => 14,
        "fifteen" => 15,
        "sixteen" => 16,
        "seventeen" => 17,
        "eighteen" => 18,
        "nineteen" => 19,
        _ => return None,
    })
}

fn tens(l: &str) -> Option<u32> {
    Some(match l {
        "twenty" => 20,
        "thirty" => 30,
        "forty" | "fourty" => 40,
        "fifty" => 50,
        "sixty" => 60,
        "seventy" => 70,
        "eighty" => 80,
        "ninety" => 90,
        _ => return None,
    })
}

/// A number written in digits ("90", "90+") or words ("ninety", "a hundred and twenty",
/// "ninety-nine", "a couple of", "a few") at `tok(toks, i)`; returns it and the index after it.
pub(crate) fn number_at(toks: &[&Token], i: usize) -> Option<(u32, usize)> {
    let t = toks.get(i)?;
    if let Some(n) = t.number() {
        return Some((n, i + 1));
    }
    if !t.is_word() {
        return None;
    }
    let word = |k: usize| word_at(toks, k);
    let mut j = i;
    let mut value: u32;
    // "a couple of", "a few".
    if matches!(word(j), "a" | "an") && matches!(word(j + 1), "couple" | "few" | "dozen") {
        j += 1;
    }
    let vague = matches!(word(j), "couple" | "few");
    if let Some(t) = tens(word(j)) {
        value = t;
        j += 1;
        if let Some(u) = small_number(word(j)).filter(|&u| (1..10).contains(&u) && word(j) != "a") {
            value += u;
            j += 1;
        }
    } else if let Some(u) = small_number(word(j)) {
        value = u;
        j += 1;
    } else {
        return None;
    }
    if word(j) == "hundred" {
        value = value.saturating_mul(100);
        j += 1;
        let mut k = j;
        if word(k) == "and" {
            k += 1;
        }
        if let Some(t) = tens(word(k)) {
            let mut rest = t;
            k += 1;
            if let Some(u) = small_number(word(k)).filter(|&u| (1..10).contains(&u) && word(k) != "a") {
                rest += u;
                k += 1;
            }
            value += rest;
            j = k;
        } else if let Some(u) = small_number(word(k)).filter(|_| word(k) != "a") {
            value += u;
            j = k + 1;
        }
    }
    if vague && word(j) == "of" {
        j += 1;
    }
    Some((value, j))
}

/// A duration at `tok(toks, i)`: "90 days", "90+ days", "six months", "a year", "half a year",
/// "two quarters", "the last quarter", "the past 30 days", "a week and a half" is not
/// supported. Returns days and the index after the duration.
pub(crate) fn duration_at(toks: &[&Token], i: usize) -> Option<(u32, usize)> {
    let word = |k: usize| word_at(toks, k);
    // "half a year", "half year", "a half year".
    let mut h = i;
    if matches!(word(h), "a") && word(h + 1) == "half" {
        h += 1;
    }
    if word(h) == "half" {
        let mut k = h + 1;
        if matches!(word(k), "a" | "an") {
            k += 1;
        }
        if let Some(u) = unit(word(k)) {
            return Some((half(u), k + 1));
        }
        return None;
    }
    // "the last quarter", "the past 30 days", "the previous six months".
    if word(i) == "the" && matches!(word(i + 1), "last" | "past" | "previous" | "prior") {
        if let Some((n, k)) = number_at(toks, i + 2).filter(|&(_, k)| unit(word(k)).is_some()) {
            let u = unit(word(k))?;
            return Some((to_days(n, u), k + 1));
        }
        let u = unit(word(i + 2))?;
        return Some((to_days(1, u), i + 3));
    }
    // "last 30 days", "past six months" (a count makes it a duration, not a calendar period).
    if matches!(word(i), "last" | "past" | "previous" | "prior") {
        let (n, k) = number_at(toks, i + 1).filter(|&(_, k)| unit(word(k)).is_some())?;
        if matches!(word(i + 1), "a" | "an") {
            return None;
        }
        let u = unit(word(k))?;
        return Some((to_days(n, u), k + 1));
    }
    let (n, k) = number_at(toks, i)?;
    let u = unit(word(k))?;
    // Bare "a"/"an" must be followed directly by the unit ("a year", not "a few").
    let mut days = to_days(n, u);
    let mut end = k + 1;
    // "a year and a half", "one and a half years".
    if word(end) == "and" && matches!(word(end + 1), "a") && word(end + 2) == "half" {
        days += half(u);
        end += 3;
    }
    Some((days, end))
}

/// Half of one unit: half a year is six months of 30 days, like "6 months".
fn half(u: Unit) -> u32 {
    if u == Unit::Year { 180 } else { to_days(1, u) / 2 }
}

/// The first duration in `toks` that is not a schedule ("every 90 days") and not a calendar
/// reference.
pub(crate) fn first_duration(toks: &[&Token]) -> Option<u32> {
    (0..toks.len()).find_map(|i| {
        let prev = i.checked_sub(1).map(|p| tok(toks, p).lower.as_str()).unwrap_or("");
        if matches!(prev, "every" | "each" | "per" | "next") {
            return None;
        }
        // Skip the start of a longer phrase already tried ("the last ..." is tried at "the").
        if prev == "the" && matches!(tok(toks, i).lower.as_str(), "last" | "past" | "previous" | "prior") {
            return None;
        }
        duration_at(toks, i).map(|(d, _)| d).filter(|&d| d > 0)
    })
}

/// A period of the calendar with inclusive bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Period {
    pub(crate) start: NaiveDate,
    pub(crate) end: NaiveDate,
    /// A single day written as a date, not a month, quarter or year.
    pub(crate) day: bool,
}

fn ymd(y: i32, m: u32, d: u32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(y, m, d)
}

fn month_end(y: i32, m: u32) -> Option<NaiveDate> {
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    ymd(ny, nm, 1)?.pred_opt()
}

/// Start and end of quarter `q` (1–4) of `year`.
pub(crate) fn quarter_bounds(q: u32, year: i32) -> Option<(NaiveDate, NaiveDate)> {
    if !(1..=4).contains(&q) {
        return None;
    }
    let first = (q - 1) * 3 + 1;
    Some((ymd(year, first, 1)?, month_end(year, first + 2)?))
}

/// Quarter `q` of `year`, or, without a year, the most recent quarter `q` that has ended by
/// `today` (this year's if it is over, else last year's).
pub(crate) fn resolve_quarter(q: u32, year: Option<i32>, today: NaiveDate) -> Option<Period> {
    resolve(year, today, |y| quarter_bounds(q, y))
}

fn resolve(
    year: Option<i32>,
    today: NaiveDate,
    bounds: impl Fn(i32) -> Option<(NaiveDate, NaiveDate)>,
) -> Option<Period> {
    let (start, end) = match year {
        Some(y) => bounds(y)?,
        None => {
            let this = bounds(today.year())?;
            if this.1 < today { this } else { bounds(today.year() - 1)? }
        }
    };
    Some(Period { start, end, day: false })
}

fn year_value(t: Option<&&Token>) -> Option<i32> {
    let t = t?;
    let l = t.lower.trim_start_matches('\'');
    let n: i32 = l.parse().ok()?;
    if (1990..=2100).contains(&n) && l.len() == 4 { Some(n) } else { None }
}

fn ordinal_day(t: Option<&&Token>) -> Option<u32> {
    let t = t?;
    let l = t.lower.as_str();
    let digits = l.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let suffix = l.get(digits.len()..).unwrap_or_default();
    if !matches!(suffix, "" | "st" | "nd" | "rd" | "th") {
        return None;
    }
    let d: u32 = digits.parse().ok()?;
    (1..=31).contains(&d).then_some(d)
}

fn ordinal_word(l: &str) -> Option<u32> {
    Some(match l {
        "first" | "1st" => 1,
        "second" | "2nd" => 2,
        "third" | "3rd" => 3,
        "fourth" | "4th" | "final" => 4,
        _ => return None,
    })
}

fn iso_date(l: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(l, "%Y-%m-%d").ok()
}

/// A calendar reference at `tok(toks, i)`: an ISO date, "Q2", "Q2 2025", "second quarter",
/// "H1", "first half of 2025", "March", "March 2025", "March 15", "15 March 2026", "2025",
/// "last quarter", "last month", "last year", "this quarter", "this year".
pub(crate) fn period_at(toks: &[&Token], i: usize, today: NaiveDate) -> Option<(Period, usize)> {
    let word = |k: usize| word_at(toks, k);
    let l = word(i);
    if l.is_empty() {
        return None;
    }
    if let Some(d) = iso_date(l) {
        return Some((Period { start: d, end: d, day: true }, i + 1));
    }
    // Optional year after a quarter/half/month: "Q2 2025", "Q2 of 2025", "Q2, 2025".
    let year_after = |k: usize| -> (Option<i32>, usize) {
        if let Some(y) = year_value(toks.get(k)) {
            return (Some(y), k + 1);
        }
        if (word(k) == "of" || toks.get(k).is_some_and(|t| t.is_punct(','))) && year_value(toks.get(k + 1)).is_some() {
            return (year_value(toks.get(k + 1)), k + 2);
        }
        (None, k)
    };
    // Quarters.
    let quarter = match l.as_bytes() {
        [b'q', d @ b'1'..=b'4'] => Some(((d - b'0') as u32, i + 1)),
        _ => ordinal_word(l).filter(|_| matches!(word(i + 1), "quarter" | "qtr")).map(|q| (q, i + 2)),
    };
    if let Some((q, k)) = quarter {
        let (year, k) = year_after(k);
        return Some((resolve_quarter(q, year, today)?, k));
    }
    // Halves.
    let half = match l {
        "h1" => Some((1, i + 1)),
        "h2" => Some((2, i + 1)),
        "first" if word(i + 1) == "half" => Some((1, i + 2)),
        "second" if word(i + 1) == "half" => Some((2, i + 2)),
        _ => None,
    };
    if let Some((h, k)) = half {
        let (year, k) = year_after(k);
        let period = resolve(year, today, |y| {
            if h == 1 { Some((ymd(y, 1, 1)?, ymd(y, 6, 30)?)) } else { Some((ymd(y, 7, 1)?, ymd(y, 12, 31)?)) }
        })?;
        return Some((period, k));
    }
    // Relative periods: "last quarter", "this month", "previous year".
    // "the start of the year" (the caller skipped "the start of") is this year.
    if matches!(l, "year" | "quarter" | "month") && i > 0 && matches!(word(i - 1), "of" | "the") {
        return relative_period("this", l, today).map(|p| (p, i + 1));
    }
    if matches!(l, "last" | "previous" | "prior" | "this" | "current") {
        return relative_period(l, word(i + 1), today).map(|p| (p, i + 2));
    }
    // "15 March 2026", "1st of March".
    if let Some(d) = ordinal_day(toks.get(i)) {
        let mut k = i + 1;
        if word(k) == "of" {
            k += 1;
        }
        if let Some(m) = month_number(word(k)).filter(|_| toks.get(i).is_some_and(|t| t.lower.len() <= 4)) {
            let (year, k) = year_after(k + 1);
            return Some((day_in(d, m, year, today)?, k));
        }
    }
    // "March", "March 2025", "March 15", "March 15th, 2026".
    if let Some(m) = month_number(l) {
        if l == "may" && !toks.get(i).is_some_and(|t| t.is_capitalized()) {
            return None;
        }
        if let Some(d) = ordinal_day(toks.get(i + 1)).filter(|_| year_value(toks.get(i + 1)).is_none()) {
            let (year, k) = year_after(i + 2);
            return Some((day_in(d, m, year, today)?, k));
        }
        let (year, k) = year_after(i + 1);
        let period = resolve(year, today, |y| Some((ymd(y, m, 1)?, month_end(y, m)?)))?;
        return Some((period, k));
    }
    // A year on its own.
    if let Some(y) = year_value(toks.get(i)) {
        return Some((Period { start: ymd(y, 1, 1)?, end: ymd(y, 12, 31)?, day: false }, i + 1));
    }
    None
}

/// "last quarter", "this month", "previous year": `which` is last/previous/prior or
/// this/current, `unit` quarter/month/year. A current period ends today.
fn relative_period(which: &str, unit: &str, today: NaiveDate) -> Option<Period> {
    let this = matches!(which, "this" | "current");
    let (y, m) = (today.year(), today.month());
    let (start, end) = match unit {
        "quarter" | "qtr" => {
            let q = (m - 1) / 3 + 1;
            let (qy, qq) = if this {
                (y, q)
            } else if q == 1 {
                (y - 1, 4)
            } else {
                (y, q - 1)
            };
            quarter_bounds(qq, qy)?
        }
        "month" => {
            let (my, mm) = if this {
                (y, m)
            } else if m == 1 {
                (y - 1, 12)
            } else {
                (y, m - 1)
            };
            (ymd(my, mm, 1)?, month_end(my, mm)?)
        }
        "year" => {
            let yy = if this { y } else { y - 1 };
            (ymd(yy, 1, 1)?, ymd(yy, 12, 31)?)
        }
        _ => return None,
    };
    Some(Period { start, end: if this { today.min(end) } else { end }, day: false })
}

/// Day `d` of month `m`; without a year, the most recent such day not after `today`.
fn day_in(d: u32, m: u32, year: Option<i32>, today: NaiveDate) -> Option<Period> {
    let date = match year {
        Some(y) => ymd(y, m, d)?,
        None => {
            let this = ymd(today.year(), m, d)?;
            if this <= today { this } else { ymd(today.year() - 1, m, d)? }
        }
    };
    Some(Period { start: date, end: date, day: true })
}

/// Inclusive bounds named by a request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Window {
    pub(crate) since: Option<NaiveDate>,
    pub(crate) until: Option<NaiveDate>,
}

impl Window {
    /// Neither bound is set.
    pub(crate) fn is_empty(&self) -> bool {
        self.since.is_none() && self.until.is_none()
    }
}

/// The window of dates `toks` names, from the first calendar reference found:
/// "between A and B" / "from A to B" → A.start..B.end; "from/in/during Q2" → the quarter;
/// "since A" → A.start..; "after A" → the day after A..; "before A" → ..the day before A;
/// "until/through A" → ..A.end; a bare "Q2" or "last quarter" → the period.
pub(crate) fn window(toks: &[&Token], today: NaiveDate) -> Window {
    let word = |k: usize| word_at(toks, k);
    let mut w = Window::default();
    let mut i = 0;
    while i < toks.len() {
        let l = word(i);
        let after_article = |mut k: usize| {
            while matches!(word(k), "the" | "end" | "start" | "beginning" | "of") {
                k += 1;
            }
            k
        };
        match l {
            "between" | "from" => {
                if let Some((a, k)) = period_at(toks, after_article(i + 1), today) {
                    let sep = word(k);
                    let is_dash = toks.get(k).is_some_and(|t| t.is_punct('-') || t.is_punct('\u{2013}'));
                    if (matches!(sep, "and" | "to" | "until" | "till" | "through" | "thru") || is_dash)
                        && let Some((b, k2)) = period_at(toks, after_article(k + 1), today)
                    {
                        w.since.get_or_insert(a.start);
                        w.until.get_or_insert(b.end);
                        i = k2;
                        continue;
                    }
                    w.since.get_or_insert(a.start);
                    if !a.day {
                        w.until.get_or_insert(a.end);
                    }
                    i = k;
                    continue;
                }
            }
            "since" | "after" | "starting" => {
                let mut k = i + 1;
                if matches!(word(k), "from" | "on" | "in") {
                    k += 1;
                }
                if let Some((a, k2)) = period_at(toks, after_article(k), today) {
                    let start = if l == "after" { a.end.checked_add_days(Days::new(1)) } else { Some(a.start) };
                    if let Some(s) = start {
                        w.since.get_or_insert(s);
                    }
                    i = k2;
                    continue;
                }
            }
            "before" | "prior" | "until" | "till" | "through" | "thru" | "older" => {
                let mut k = i + 1;
                if matches!(word(k), "to" | "than") {
                    k += 1;
                }
                if let Some((a, k2)) = period_at(toks, after_article(k), today) {
                    let end = if matches!(l, "before" | "prior" | "older") {
                        a.start.checked_sub_days(Days::new(1))
                    } else {
                        Some(a.end)
                    };
                    if let Some(e) = end {
                        w.until.get_or_insert(e);
                    }
                    i = k2;
                    continue;
                }
            }
            "the" if matches!(word(i + 1), "last" | "past" | "previous" | "prior") => {
                // "the last quarter" is a duration, not a calendar period.
                i += 3;
                continue;
            }
            _ => {
                if let Some((a, k)) = period_at(toks, i, today).filter(|(p, _)| !p.day) {
                    // A bare year is too ambiguous ("2025 Archive"); quarters, months and
                    // relative periods are not.
                    let bare_year = year_value(toks.get(i)).is_some();
                    let after_prep = i > 0 && matches!(word(i - 1), "in" | "during" | "for" | "of" | "within");
                    if !bare_year || after_prep {
                        w.since.get_or_insert(a.start);
                        w.until.get_or_insert(a.end);
                    }
                    i = k;
                    continue;
                }
            }
        }
        i += 1;
    }
    w
}

/// `YYYY-MM-DD`.
pub(crate) fn iso(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used, reason = "tests: a panic is a failure")]
mod tests {
    use super::*;
    use crate::token::tokenize;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 8, 14).unwrap_or_default()
    }

    fn dur(s: &str) -> Option<u32> {
        let toks = tokenize(s);
        let refs: Vec<&Token> = toks.iter().collect();
        first_duration(&refs)
    }

    fn win(s: &str, today: NaiveDate) -> (Option<String>, Option<String>) {
        let toks = tokenize(s);
        let refs: Vec<&Token> = toks.iter().collect();
        let w = window(&refs, today);
        (w.since.map(iso), w.until.map(iso))
    }

    fn some(a: &str, b: &str) -> (Option<String>, Option<String>) {
        (Some(a.to_string()), Some(b.to_string()))
    }

    #[test]
    fn durations() {
        for (text, days) in [
            ("not accessed in 90+ days", 90),
            ("in 90 days", 90),
            ("older than 3 months", 90),
            ("no views in 6 months", 180),
            ("for two quarters", 180),
            ("in a year", 365),
            ("in 12 months", 365),
            ("in twelve months", 365),
            ("in a week", 7),
            ("ninety days", 90),
            ("six months", 180),
            ("a hundred and twenty days", 120),
            ("one hundred twenty days", 120),
            ("ninety-nine days", 99),
            ("a 6-month window", 180),
            ("90d", 90),
            ("half a year", 180),
            ("a year and a half", 545),
            ("in the last 30 days", 30),
            ("the past quarter", 90),
            ("2 years", 730),
            ("18 months", 545),
            ("a couple of weeks", 14),
            ("a fortnight", 14),
        ] {
            assert_eq!(dur(text), Some(days), "{text}");
        }
        assert_eq!(dur("every 30 days"), None);
        assert_eq!(dur("last quarter"), None);
        assert_eq!(dur("a few workbooks"), None);
    }

    #[test]
    fn number_words() {
        let toks = tokenize("one hundred and five");
        let refs: Vec<&Token> = toks.iter().collect();
        assert_eq!(number_at(&refs, 0), Some((105, 4)));
        let toks = tokenize("forty two");
        let refs: Vec<&Token> = toks.iter().collect();
        assert_eq!(number_at(&refs, 0), Some((42, 2)));
    }

    #[test]
    fn quarters_use_the_latest_ended_one() {
        let q2 = |y, m, d| {
            resolve_quarter(2, None, NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default())
                .map(|p| (iso(p.start), iso(p.end)))
        };
        assert_eq!(q2(2026, 8, 14), Some(("2026-04-01".into(), "2026-06-30".into())));
        assert_eq!(q2(2026, 5, 20), Some(("2025-04-01".into(), "2025-06-30".into())));
        assert_eq!(q2(2026, 6, 30), Some(("2025-04-01".into(), "2025-06-30".into())));
        assert_eq!(q2(2026, 7, 1), Some(("2026-04-01".into(), "2026-06-30".into())));
        assert_eq!(resolve_quarter(5, None, today()), None);
    }

    #[test]
    fn windows() {
        let t = today();
        assert_eq!(win("unused workbooks from Q2", t), some("2026-04-01", "2026-06-30"));
        assert_eq!(win("from Q4 2025", t), some("2025-10-01", "2025-12-31"));
        assert_eq!(win("in the second quarter", t), some("2026-04-01", "2026-06-30"));
        assert_eq!(win("between 2026-04-01 and 2026-06-30", t), some("2026-04-01", "2026-06-30"));
        assert_eq!(win("from 2026-01-15 to 2026-02-15", t), some("2026-01-15", "2026-02-15"));
        assert_eq!(win("last quarter", t), some("2026-04-01", "2026-06-30"));
        assert_eq!(win("last month", t), some("2026-07-01", "2026-07-31"));
        assert_eq!(win("from last year", t), some("2025-01-01", "2025-12-31"));
        assert_eq!(win("in March", t), some("2026-03-01", "2026-03-31"));
        assert_eq!(win("during H1", t), some("2026-01-01", "2026-06-30"));
        assert_eq!(win("in 2025", t), some("2025-01-01", "2025-12-31"));
        assert_eq!(win("since Q2", t), (Some("2026-04-01".into()), None));
        assert_eq!(win("since March", t), (Some("2026-03-01".into()), None));
        assert_eq!(win("since March 15", t), (Some("2026-03-15".into()), None));
        assert_eq!(win("since 1 March 2025", t), (Some("2025-03-01".into()), None));
        assert_eq!(win("before 2026-01-01", t), (None, Some("2025-12-31".into())));
        assert_eq!(win("until the end of June 2026", t), (None, Some("2026-06-30".into())));
        assert_eq!(win("since the start of the year", t), (Some("2026-01-01".into()), None));
        assert_eq!(win("in the last quarter", t), (None, None));
        assert_eq!(win("in the last 30 days", t), (None, None));
        assert_eq!(win("in Finance for 120 days", t), (None, None));
        let january = NaiveDate::from_ymd_opt(2026, 1, 10).unwrap_or_default();
        assert_eq!(win("last quarter", january), some("2025-10-01", "2025-12-31"));
        assert_eq!(win("from Q2", january), some("2025-04-01", "2025-06-30"));
    }
}
