//! Recurrence: "weekly", "every month", "each Monday", "daily at 6am".
//!
//! A plain frequency stays a word (`daily`, `weekly`, `monthly`); anything more precise
//! becomes a five-field cron string (minute hour day-of-month month day-of-week) with midnight
//! as the default time: "each Monday" → `0 0 * * 1`, "daily at 6:30" → `30 6 * * *`,
//! "quarterly" → `0 0 1 */3 *`. Every cron string this module writes parses with `croner`
//! (a test enumerates them). A period cron cannot count ("every 90 days": `*/90` in the
//! day-of-month field would mean the 1st of each month) stays in words, which
//! [`check_cadence`] refuses, so the plan asks for a cadence instead of storing another one.

use croner::parser::{CronParser, Seconds, Year};

use crate::lexicon::{title_case, weekday_number};
use crate::time::number_at;
use crate::token::{Token, tok, word_at};

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
        if i > 0 && tok(toks, i).is_capitalized() && toks.get(i + 1).is_some_and(|t| t.is_capitalized()) && !headline {
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
    Some(cadence(every?, &days_of_week, day_of_month, time_of_day(toks)))
}

/// The cadence for a recurrence: a word, a five-field cron string, or (for a period cron
/// cannot count) the period in words.
fn cadence(every: Every, days_of_week: &[u32], day_of_month: Option<u32>, time: Option<(u32, u32)>) -> String {
    let (minute, hour, timed) = match time {
        Some((m, h)) => (m, h, true),
        None => (0, 0, false),
    };
    let dow = if days_of_week.is_empty() {
        None
    } else {
        Some(days_of_week.iter().map(u32::to_string).collect::<Vec<_>>().join(","))
    };
    match (every, dow, day_of_month) {
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
        (Every::Days(n), _, _) if n <= 31 => format!("{minute} {hour} */{} * *", n.max(1)),
        (Every::Weeks(n), _, _) if n <= 4 => format!("{minute} {hour} */{} * *", n.max(1) * 7),
        (Every::Days(n), _, _) => format!("every {n} days"),
        (Every::Weeks(n), _, _) => format!("every {n} weeks"),
    }
}

/// Whether `cadence` can be stored for a recurring review: `daily`, `weekly`, `monthly`, or a
/// five-field cron expression (minute hour day-of-month month day-of-week) that `croner`
/// accepts and that comes round at least once. The error says why not, for a question.
///
/// ```
/// assert!(tabflow_nl::check_cadence("0 6 * * 1-5").is_ok());
/// assert!(tabflow_nl::check_cadence("weekly").is_ok());
/// assert!(tabflow_nl::check_cadence("0 25 * * *").is_err());
/// ```
pub fn check_cadence(cadence: &str) -> Result<(), String> {
    let c = cadence.trim();
    if matches!(c, "daily" | "weekly" | "monthly") {
        return Ok(());
    }
    if let Some(period) = c.strip_prefix("every ") {
        return Err(format!(
            "a cron expression cannot repeat every {period}: it counts days within a month, not across months"
        ));
    }
    let parser = CronParser::builder().seconds(Seconds::Disallowed).year(Year::Disallowed).build();
    let cron = parser.parse(c).map_err(|e| format!("'{c}' is not a cron expression tabflow can run ({e})"))?;
    cron.find_next_occurrence(&chrono::Utc::now(), false)
        .map_err(|_| format!("'{c}' never comes round: no date has that day in that month"))?;
    Ok(())
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
        // `find` returns the boundary of a character it found, so the split cannot fail.
        let (clock, suffix_in_word) =
            l.find(|c: char| c.is_ascii_alphabetic()).and_then(|p| l.split_at_checked(p)).unwrap_or((l, ""));
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
#[allow(clippy::indexing_slicing, clippy::unwrap_used, reason = "tests: a panic is a failure")]
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
        // Longer than a month: kept in words, and refused as a cadence (a question follows).
        assert_eq!(sched("every 90 days").as_deref(), Some("every 90 days"));
        assert_eq!(sched("every 6 weeks").as_deref(), Some("every 6 weeks"));
        assert_eq!(sched("every 4000000000 weeks").as_deref(), Some("every 4000000000 weeks"));
        assert!(check_cadence("every 90 days").unwrap_err().contains("cannot repeat every 90 days"));
    }

    /// Every cadence [`cadence`] can write is a word, or a cron string croner parses and that
    /// comes round, or a period in words that [`check_cadence`] refuses. The shapes are
    /// enumerated with every weekday set, day of the month and period the parser can give;
    /// the time of day fills the first two fields the same way in every shape, so all 1,440
    /// times are enumerated on one shape and the extremes on the others.
    #[test]
    fn every_cadence_written_is_one_croner_runs() {
        let everies = [Every::Hour, Every::Day, Every::Weekday, Every::Week, Every::Month, Every::Quarter, Every::Year]
            .into_iter()
            .chain((0..=40).map(Every::Days))
            .chain((0..=10).map(Every::Weeks))
            .chain([Every::Days(u32::MAX), Every::Weeks(u32::MAX)]);
        let weekday_sets: Vec<Vec<u32>> = (0u32..128)
            .map(|bits| (0..7).filter(|d| bits & (1 << d) != 0).collect())
            .chain([vec![4, 1], vec![6, 0, 3]])
            .collect();
        let days_of_month: Vec<Option<u32>> = std::iter::once(None).chain((1..=28).map(Some)).collect();
        let times = [None, Some((0, 0)), Some((59, 23)), Some((30, 6))];
        let mut written = std::collections::BTreeSet::new();
        for every in everies {
            for dow in &weekday_sets {
                for &dom in &days_of_month {
                    for &t in &times {
                        written.insert(cadence(every, dow, dom, t));
                    }
                }
            }
        }
        for h in 0..24 {
            for m in 0..60 {
                written.insert(cadence(Every::Day, &[], None, Some((m, h))));
            }
        }
        assert!(written.len() > 2000, "{}", written.len());
        for c in &written {
            if c.starts_with("every ") {
                assert!(check_cadence(c).is_err(), "{c}");
            } else {
                assert_eq!(check_cadence(c), Ok(()), "{c}");
            }
        }
    }

    #[test]
    fn cadences_given_by_hand_are_checked() {
        for ok in
            ["daily", "weekly", "monthly", "0 6 * * 1", "30 18 * * 1-5", "0 0 1 */3 *", "*/15 * * * *", "0 0 29 2 *"]
        {
            assert_eq!(check_cadence(ok), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("0 25 * * *", "not a cron expression"),
            ("0 0 * *", "not a cron expression"),
            ("0 0 0 * * *", "not a cron expression"),
            ("fortnightly-ish", "not a cron expression"),
            ("0 0 31 2 *", "never comes round"),
        ] {
            let e = check_cadence(bad).unwrap_err();
            assert!(e.contains(why) && e.contains(bad), "{bad}: {e}");
        }
    }
}
