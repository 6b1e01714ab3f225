//! Recurrence: "weekly", "every month", "each Monday", "daily at 6am".
//!
//! A plain frequency stays a word (`daily`, `weekly`, `monthly`); anything more precise
//! becomes a five-field cron string (minute hour day-of-month month day-of-week) with midnight
//! as the default time: "each Monday" → `0 0 * * 1`, "daily at 6:30" → `30 6 * * *`,
//! "quarterly" → `0 0 1 */3 *`.

use crate::lexicon::{title_case, weekday_number};
use crate::time::number_at;
use crate::token::{Token, word_at};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Every {
    Hour,
    Day,
    Weekday,
    Week,
    Month,
    Quarter,
    Year,
    Days(u32),
    Weeks(u32),
}

/// The recurrence `toks` asks for, if any.
pub(crate) fn schedule(toks: &[&Token]) -> Option<String> {
    let word = |k: usize| word_at(toks, k);
    let mut every: Option<Every> = None;
    let mut days_of_week: Vec<u32> = Vec::new();
    let mut day_of_month: Option<u32> = None;
    let headline = title_case(toks);
    for i in 0..toks.len() {
        let l = word(i);
        // "Quarterly Reporting", "Monthly Close": a capitalized word inside a name.
        if i > 0 && toks[i].is_capitalized() && toks.get(i + 1).is_some_and(|t| t.is_capitalized()) && !headline {
            continue;
        }
        let recurring_prefix = matches!(l, "every" | "each" | "once" | "per" | "twice");
        let found = match l {
            "hourly" => Some(Every::Hour),
            "daily" | "nightly" | "everyday" => Some(Every::Day),
            "weekly" => Some(Every::Week),
            "biweekly" | "fortnightly" | "bi-weekly" => Some(Every::Weeks(2)),
            "monthly" => Some(Every::Month),
            "quarterly" => Some(Every::Quarter),
            "yearly" | "annually" | "annual" => Some(Every::Year),
            _ if recurring_prefix => {
                let mut k = i + 1;
                if matches!(word(k), "a" | "an" | "per" | "single") {
                    k += 1;
                }
                if word(k) == "other" && word(k + 1) == "week" {
                    Some(Every::Weeks(2))
                } else {
                    match word(k) {
                        "hour" => Some(Every::Hour),
                        "day" | "night" | "morning" | "evening" => Some(Every::Day),
                        "weekday" | "weekdays" | "workday" | "business" => Some(Every::Weekday),
                        "week" => Some(Every::Week),
                        "month" => Some(Every::Month),
                        "quarter" => Some(Every::Quarter),
                        "year" => Some(Every::Year),
                        w => {
                            if let Some(d) = weekday_number(w) {
                                days_of_week.push(d);
                                Some(Every::Week)
                            } else if let Some((n, k2)) = number_at(toks, k).filter(|_| l == "every") {
                                match word(k2) {
                                    "days" | "day" => Some(Every::Days(n)),
                                    "weeks" | "week" => Some(Every::Weeks(n)),
                                    "months" | "month" if n == 1 => Some(Every::Month),
                                    _ => None,
                                }
                            } else {
                                None
                            }
                        }
                    }
                }
            }
            // "on Mondays", "on Monday and Thursday", "Mondays".
            w if weekday_number(w).is_some() => {
                let plural = w.ends_with('s') && !matches!(w, "tues" | "thurs");
                let prev = i.checked_sub(1).map(&word).unwrap_or("");
                if plural || matches!(prev, "on" | "and" | "every" | "each") {
                    if let Some(d) = weekday_number(w).filter(|d| !days_of_week.contains(d)) {
                        days_of_week.push(d);
                    }
                    Some(Every::Week)
                } else {
                    None
                }
            }
            _ => None,
        };
        if let Some(f) = found {
            every.get_or_insert(f);
        }
        // "on the 15th of each month", "first of every month".
        if word(i) == "of" && matches!(word(i + 1), "each" | "every" | "the") && word(i + 2) == "month" {
            let d = i.checked_sub(1).map(&word).unwrap_or("");
            let n = match d {
                "first" => Some(1),
                "last" => None,
                _ => d.trim_end_matches(|c: char| c.is_ascii_alphabetic()).parse().ok(),
            };
            day_of_month = n.filter(|n| (1..=28).contains(n));
            every = Some(Every::Month);
        }
    }
    let every = every?;
    let (minute, hour, timed) = match time_of_day(toks) {
        Some((m, h)) => (m, h, true),
        None => (0, 0, false),
    };
    let dow = if days_of_week.is_empty() {
        None
    } else {
        Some(days_of_week.iter().map(u32::to_string).collect::<Vec<_>>().join(","))
    };
    Some(match (every, dow, day_of_month) {
        (Every::Week, Some(d), _) => format!("{minute} {hour} * * {d}"),
        (Every::Month, _, Some(d)) if d != 1 || timed => format!("{minute} {hour} {d} * *"),
        (Every::Day, _, _) if timed => format!("{minute} {hour} * * *"),
        (Every::Week, None, _) if timed => format!("{minute} {hour} * * 1"),
        (Every::Month, _, _) if timed => format!("{minute} {hour} 1 * *"),
        (Every::Day, _, _) => "daily".to_string(),
        (Every::Week, _, _) => "weekly".to_string(),
        (Every::Month, _, _) => "monthly".to_string(),
        (Every::Hour, _, _) => "0 * * * *".to_string(),
        (Every::Weekday, _, _) => format!("{minute} {hour} * * 1-5"),
        (Every::Quarter, _, _) => format!("{minute} {hour} 1 */3 *"),
        (Every::Year, _, _) => format!("{minute} {hour} 1 1 *"),
        (Every::Days(n), _, _) => format!("{minute} {hour} */{} * *", n.max(1)),
        (Every::Weeks(n), _, _) => format!("{minute} {hour} */{} * *", n.max(1) * 7),
    })
}

/// "at 6am", "at 6:30 pm", "at 09:00", "at noon", "at midnight" → (minute, hour).
fn time_of_day(toks: &[&Token]) -> Option<(u32, u32)> {
    let word = |k: usize| word_at(toks, k);
    (0..toks.len()).find_map(|i| {
        if word(i) != "at" {
            return None;
        }
        let l = word(i + 1);
        match l {
            "noon" | "midday" => return Some((0, 12)),
            "midnight" => return Some((0, 0)),
            _ => {}
        }
        let (clock, suffix_in_word) = match l.find(|c: char| c.is_ascii_alphabetic()) {
            Some(p) => (&l[..p], &l[p..]),
            None => (l, ""),
        };
        let (h, m) = match clock.split_once(':') {
            Some((h, m)) => (h.parse::<u32>().ok()?, m.parse::<u32>().ok()?),
            None => (clock.parse::<u32>().ok()?, 0),
        };
        let suffix = if suffix_in_word.is_empty() { word(i + 2) } else { suffix_in_word };
        let h = match suffix {
            "pm" | "p.m" if h < 12 => h + 12,
            "am" | "a.m" if h == 12 => 0,
            "am" | "a.m" | "pm" | "p.m" => h,
            _ if clock.contains(':') => h,
            _ => return None,
        };
        (h < 24 && m < 60).then_some((m, h))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::tokenize;

    fn sched(s: &str) -> Option<String> {
        let toks = tokenize(s);
        let refs: Vec<&Token> = toks.iter().collect();
        schedule(&refs)
    }

    #[test]
    fn frequencies() {
        for (text, want) in [
            ("schedule a weekly review", "weekly"),
            ("every month", "monthly"),
            ("once a month", "monthly"),
            ("daily", "daily"),
            ("every night", "daily"),
            ("each Monday", "0 0 * * 1"),
            ("on Mondays and Thursdays", "0 0 * * 1,4"),
            ("every Friday at 5pm", "0 17 * * 5"),
            ("daily at 6:30", "30 6 * * *"),
            ("every weekday at 8 am", "0 8 * * 1-5"),
            ("quarterly", "0 0 1 */3 *"),
            ("on the 15th of every month", "0 0 15 * *"),
            ("every 2 weeks", "0 0 */14 * *"),
        ] {
            assert_eq!(sched(text).as_deref(), Some(want), "{text}");
        }
        assert_eq!(sched("every workbook in Finance"), None);
        assert_eq!(sched("audit permissions"), None);
    }
}
