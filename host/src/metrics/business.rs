//! TikSpin's business counters: registrations, logins, uploads. The host never reads a body: the
//! outcome is the envelope's `status_code`, which every JSON answer repeats in the response header
//! `tikspin-status-code` (crates/spin-adapter/src/http.rs, `send_json`); the codes are the table
//! of crates/core/src/api.rs. These paths and codes are TikSpin's, not Spin's: real Spin has no
//! such counters (docs/observability.md says how to get them there).

use super::registry::{Counter, Family, Kind, Visitor};

/// The response header carrying the envelope's code.
pub const STATUS_CODE_HEADER: &str = "tikspin-status-code";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Outcome {
    Ok = 0,
    Refused = 1,
    Throttled = 2,
    Error = 3,
}

const OUTCOMES: [&str; 4] = ["ok", "refused", "throttled", "error"];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Action {
    Register,
    Login,
    Upload,
}

/// Which action a `POST` to this path is (a trailing `/` optional, as the app accepts both).
pub fn action(path: &str) -> Option<Action> {
    match path.strip_suffix('/').unwrap_or(path) {
        "/douyin/user/register" => Some(Action::Register),
        "/douyin/user/login" => Some(Action::Login),
        "/douyin/publish/action" => Some(Action::Upload),
        _ => None,
    }
}

/// What an answer to `action` means (crates/core/src/api.rs: 1008 the login throttle, 1011 an
/// abuse limit; 2001/2003 a taken or reserved name; 2002 wrong credentials; 1006, 1007 and 3xxx
/// an upload the API will not take, but 3007, storage failing, which is the service's fault).
pub fn outcome(action: Action, http_status: u16, code: Option<i32>) -> Outcome {
    let Some(code) = code.filter(|_| http_status == 200) else {
        return Outcome::Error;
    };
    match (action, code) {
        (_, 0) => Outcome::Ok,
        (_, 1008 | 1011) => Outcome::Throttled,
        (Action::Register, 2001 | 2003) => Outcome::Refused,
        (Action::Login, 2002) => Outcome::Refused,
        (Action::Upload, 1006 | 1007) => Outcome::Refused,
        (Action::Upload, c) if (3001..=3008).contains(&c) && c != 3007 => Outcome::Refused,
        _ => Outcome::Error,
    }
}

#[derive(Default)]
pub struct Business {
    registrations: [Counter; 4],
    logins: [Counter; 4],
    uploads: [Counter; 4],
    upload_bytes: Counter,
}

impl Business {
    pub fn record(
        &self,
        action: Action,
        http_status: u16,
        code: Option<i32>,
        request_bytes: Option<u64>,
    ) {
        let o = outcome(action, http_status, code);
        let counters = match action {
            Action::Register => &self.registrations,
            Action::Login => &self.logins,
            Action::Upload => &self.uploads,
        };
        counters[o as usize].inc();
        if action == Action::Upload && o == Outcome::Ok {
            self.upload_bytes.add(request_bytes.unwrap_or(0));
        }
    }

    pub fn visit(&self, w: &mut impl Visitor) {
        for (family, counters) in [
            (&REGISTRATIONS, &self.registrations),
            (&LOGINS, &self.logins),
            (&UPLOADS, &self.uploads),
        ] {
            w.family(family);
            for (i, o) in OUTCOMES.iter().enumerate() {
                w.value(&[("outcome", o)], counters[i].get() as f64);
            }
        }
        w.family(&UPLOAD_BYTES);
        w.value(&[], self.upload_bytes.get() as f64);
    }
}

static REGISTRATIONS: Family = Family {
    prom: "tikspin_registrations_total",
    otel: "tikspin.registrations",
    kind: Kind::Counter,
    unit: "",
    help: "Registrations by outcome.",
};
static LOGINS: Family = Family {
    prom: "tikspin_logins_total",
    otel: "tikspin.logins",
    kind: Kind::Counter,
    unit: "",
    help: "Logins by outcome.",
};
static UPLOADS: Family = Family {
    prom: "tikspin_uploads_total",
    otel: "tikspin.uploads",
    kind: Kind::Counter,
    unit: "",
    help: "Video uploads (publish) by outcome.",
};
static UPLOAD_BYTES: Family = Family {
    prom: "tikspin_upload_bytes_total",
    otel: "tikspin.upload",
    kind: Kind::Counter,
    unit: "By",
    help: "Request bytes of uploads that were published.",
};

/// The envelope code of a response, if it carries one.
pub fn envelope_code(headers: &http::HeaderMap) -> Option<i32> {
    headers
        .get(STATUS_CODE_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_follow_the_code_table() {
        use Action::*;
        use Outcome::*;
        assert_eq!(outcome(Login, 200, Some(0)), Ok);
        assert_eq!(outcome(Login, 200, Some(2002)), Refused);
        assert_eq!(outcome(Login, 200, Some(1008)), Throttled);
        assert_eq!(outcome(Login, 200, Some(1011)), Throttled);
        assert_eq!(outcome(Login, 200, Some(2004)), Error);
        assert_eq!(outcome(Login, 500, None), Error);
        assert_eq!(outcome(Login, 200, None), Error);
        assert_eq!(outcome(Register, 200, Some(2001)), Refused);
        assert_eq!(outcome(Register, 200, Some(2003)), Refused);
        assert_eq!(outcome(Register, 200, Some(2002)), Error);
        assert_eq!(outcome(Upload, 200, Some(3004)), Refused);
        assert_eq!(outcome(Upload, 200, Some(3007)), Error);
        assert_eq!(outcome(Upload, 200, Some(1006)), Refused);
    }

    #[test]
    fn actions_are_the_three_paths_with_or_without_the_slash() {
        assert_eq!(action("/douyin/user/register/"), Some(Action::Register));
        assert_eq!(action("/douyin/user/login"), Some(Action::Login));
        assert_eq!(action("/douyin/publish/action/"), Some(Action::Upload));
        assert_eq!(action("/douyin/user/"), None);
        assert_eq!(action("/douyin/user/login/x"), None);
    }
}
