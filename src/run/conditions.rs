//! kstatus conditions: set by type, with lastTransitionTime kept unless the status flips.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

pub const READY: &str = "Ready";
pub const RECONCILING: &str = "Reconciling";
pub const STALLED: &str = "Stalled";
pub const DIRECTORY_REACHABLE: &str = "DirectoryReachable";
/// True while `insecureSkipVerify` turns certificate checks off.
pub const TLS_VERIFICATION_DISABLED: &str = "TLSVerificationDisabled";

/// The longest condition message the API accepts (metav1.Condition's maxLength), in bytes.
pub const MAX_MESSAGE_BYTES: usize = 32 * 1024;
/// The longest Event note the API accepts, in bytes.
pub const MAX_NOTE_BYTES: usize = 1024;
const ELLIPSIS: &str = " …";

/// `text` cut to at most `max` bytes on a character boundary, with an ellipsis saying so: a server's
/// error text can be of any length, and the apiserver refuses (or silently drops) longer ones.
pub fn bounded(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if text.len() <= max {
        return text.into();
    }
    let mut end = max.saturating_sub(ELLIPSIS.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{ELLIPSIS}", &text[..end]).into()
}

/// Sets condition `type_` in `conditions`. The transition time changes only when the status does.
pub fn set(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: bool,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: &Time,
) {
    let status = if status { "True" } else { "False" };
    set_status(conditions, type_, status, reason, message, generation, now);
}

/// Sets condition `type_` to `status` (`True`, `False` or `Unknown`), as [`set`] does.
pub fn set_status(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: &Time,
) {
    let status = status.to_owned();
    let next = |last: Option<&Condition>| Condition {
        type_: type_.to_owned(),
        last_transition_time: match last {
            Some(c) if c.status == status => c.last_transition_time.clone(),
            _ => now.clone(),
        },
        status: status.clone(),
        reason: reason.to_owned(),
        message: bounded(message, MAX_MESSAGE_BYTES).into_owned(),
        observed_generation: generation,
    };
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(c) => *c = next(Some(c)),
        None => conditions.push(next(None)),
    }
}

pub fn remove(conditions: &mut Vec<Condition>, type_: &str) {
    conditions.retain(|c| c.type_ != type_);
}

/// The condition of `type_`, if set.
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    conditions
        .iter()
        .any(|c| c.type_ == type_ && c.status == "True")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_texts_are_cut_on_a_character_boundary() {
        assert_eq!(bounded("short", 10), "short");
        let long = "é".repeat(2000);
        let cut = bounded(&long, MAX_NOTE_BYTES);
        assert!(
            cut.len() <= MAX_NOTE_BYTES && cut.ends_with(" …"),
            "{}",
            cut.len()
        );
        assert!(cut.starts_with("éé"));
        let mut conditions = Vec::new();
        let huge = "x".repeat(100_000);
        set(&mut conditions, READY, false, "Failed", &huge, None, &at(0));
        assert!(conditions[0].message.len() <= MAX_MESSAGE_BYTES);
    }

    fn at(seconds: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(seconds).expect("valid time"))
    }

    #[test]
    fn transition_time_moves_only_on_flips() {
        let mut c = Vec::new();
        set(&mut c, READY, true, "Synced", "ok", Some(1), &at(100));
        set(&mut c, READY, true, "Synced", "still ok", Some(2), &at(200));
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].last_transition_time, at(100));
        assert_eq!(c[0].message, "still ok");
        assert_eq!(c[0].observed_generation, Some(2));
        set(&mut c, READY, false, "Timeout", "slow", Some(2), &at(300));
        assert_eq!(c[0].last_transition_time, at(300));
        assert!(!is_true(&c, READY));
        remove(&mut c, READY);
        assert!(c.is_empty());
    }
}
