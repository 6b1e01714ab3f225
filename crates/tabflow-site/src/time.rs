//! Date arithmetic on numbers that came from outside (a request's "not viewed in N days", a
//! policy's grace period, a flag): chrono's `+`/`-` panic past the representable range
//! (about ±262,000 years), so these saturate at its ends instead. No IO.

use chrono::{DateTime, TimeDelta, Utc};

/// `t` moved by `delta`, or the earliest/latest representable time when that is out of range.
pub fn shifted(t: DateTime<Utc>, delta: Option<TimeDelta>, forward: bool) -> DateTime<Utc> {
    let end = if forward { DateTime::<Utc>::MAX_UTC } else { DateTime::<Utc>::MIN_UTC };
    let Some(d) = delta else { return end };
    let r = if forward { t.checked_add_signed(d) } else { t.checked_sub_signed(d) };
    r.unwrap_or(end)
}

/// `t + delta`, saturating at the ends of the representable range.
pub fn plus(t: DateTime<Utc>, delta: TimeDelta) -> DateTime<Utc> {
    t.checked_add_signed(delta).unwrap_or(if delta > TimeDelta::zero() {
        DateTime::<Utc>::MAX_UTC
    } else {
        DateTime::<Utc>::MIN_UTC
    })
}

/// `days` days before `t` (saturating).
pub fn days_before(t: DateTime<Utc>, days: i64) -> DateTime<Utc> {
    if days < 0 {
        return days_after(t, days.saturating_neg());
    }
    shifted(t, TimeDelta::try_days(days), false)
}

/// `days` days after `t` (saturating).
pub fn days_after(t: DateTime<Utc>, days: i64) -> DateTime<Utc> {
    if days < 0 {
        return days_before(t, days.saturating_neg());
    }
    shifted(t, TimeDelta::try_days(days), true)
}

/// `hours` hours after `t` (saturating).
pub fn hours_after(t: DateTime<Utc>, hours: i64) -> DateTime<Utc> {
    if hours < 0 {
        return shifted(t, TimeDelta::try_hours(hours.saturating_neg()), false);
    }
    shifted(t, TimeDelta::try_hours(hours), true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saturates_instead_of_panicking() {
        let now = Utc::now();
        assert_eq!(days_before(now, 1), now - TimeDelta::days(1));
        assert_eq!(days_after(now, 2), now + TimeDelta::days(2));
        assert_eq!(days_before(now, i64::from(u32::MAX)), DateTime::<Utc>::MIN_UTC);
        assert_eq!(days_before(now, i64::MAX), DateTime::<Utc>::MIN_UTC);
        assert_eq!(days_after(now, i64::MAX), DateTime::<Utc>::MAX_UTC);
        assert_eq!(days_after(now, i64::MIN), DateTime::<Utc>::MIN_UTC);
        assert_eq!(hours_after(now, i64::MAX), DateTime::<Utc>::MAX_UTC);
        assert_eq!(hours_after(now, -3), now - TimeDelta::hours(3));
        assert_eq!(plus(DateTime::<Utc>::MAX_UTC, TimeDelta::days(1)), DateTime::<Utc>::MAX_UTC);
        assert_eq!(plus(DateTime::<Utc>::MIN_UTC, TimeDelta::days(-1)), DateTime::<Utc>::MIN_UTC);
    }
}
