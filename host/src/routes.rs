//! HTTP route matching with Spin's semantics (Spin: `crates/http/src/routes.rs`, which builds a
//! `routefinder` router).
//!
//! Patterns: exact (`/a/b`), named segments (`/a/:id`), and a trailing wildcard (`/a/...`, or
//! routefinder's own `/a/*`, which also matches `/a` itself). A route need not start with `/`
//! (Spin prefixes one), and empty segments (`/a//b`) are dropped, as routefinder drops them.
//!
//! When several routes match, routefinder's order decides: segment by segment, the first
//! difference wins, a literal over a `:name` over the wildcard; if one route is a prefix of the
//! other, the shorter (the exact route) wins. Routes that are the same pattern are not refused:
//! the one declared last wins, and [`Router::duplicates`] lists the ones it replaced (Spin logs
//! them as never used). A single trailing slash on the request path is insignificant.

use anyhow::{bail, Result};

/// The prefix Spin keeps for itself (Spin: `spin_http::WELL_KNOWN_PREFIX`).
pub const WELL_KNOWN_PREFIX: &str = "/.well-known/spin/";

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutePattern {
    raw: String,
    /// The route as Spin matches it: with a leading `/` and without one trailing `/`
    /// (Spin: `sanitize_with_base("/", raw)`).
    based: String,
    segments: Vec<Segment>,
    wildcard: bool,
}

/// What a match tells the component, via Spin's `spin-*` headers
/// (Spin: `crates/trigger-http/src/headers.rs`, `compute_default_headers`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch {
    /// The route as written in the manifest (`spin-raw-component-route`).
    pub raw_route: String,
    /// The route as matched: with its leading `/`, without a trailing one
    /// (`spin-matched-route`).
    pub matched_route: String,
    /// The route as written without its `/...` (`spin-component-route`).
    pub component_route: String,
    /// The path below the matched prefix (`spin-path-info`), empty for exact routes.
    pub path_info: String,
    /// `:name` captures (`spin-path-match-<name>`).
    pub params: Vec<(String, String)>,
}

impl RoutePattern {
    pub fn parse(raw: &str) -> Result<Self> {
        let absolute = if raw.starts_with('/') {
            raw.to_string()
        } else {
            format!("/{raw}")
        };
        let based = absolute.strip_suffix('/').unwrap_or(&absolute).to_string();
        let mut parts: Vec<&str> = based.split('/').filter(|part| !part.is_empty()).collect();
        let wildcard = matches!(parts.last(), Some(&"...") | Some(&"*"));
        if wildcard {
            parts.pop();
        }
        let mut segments = Vec::with_capacity(parts.len());
        for part in parts {
            if part == "..." || part == "*" {
                bail!("route {raw:?}: a wildcard may only end a route");
            }
            if part.starts_with('*') {
                // routefinder's message.
                bail!("route {raw:?}: since there can only be one wildcard, it doesn't need a name. replace `{part}` with `*`");
            }
            match part.strip_prefix(':') {
                Some("") => bail!("route {raw:?}: params must be named"),
                Some(name) => segments.push(Segment::Param(name.to_string())),
                None => segments.push(Segment::Literal(part.to_string())),
            }
        }
        Ok(Self {
            raw: raw.to_string(),
            based,
            segments,
            wildcard,
        })
    }

    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// Under `/.well-known/spin/`, which Spin answers itself: such a route is never reached.
    pub fn is_reserved(&self) -> bool {
        self.based.starts_with(WELL_KNOWN_PREFIX)
    }

    /// Matches a request path (no query string).
    pub fn matches(&self, path: &str) -> Option<RouteMatch> {
        let trimmed = if path.len() > 1 {
            path.strip_suffix('/').unwrap_or(path)
        } else {
            path
        };
        let mut rest = trimmed;
        let mut params = Vec::new();
        for seg in &self.segments {
            let after = rest.strip_prefix('/')?;
            let (head, tail) = match after.find('/') {
                Some(i) => (&after[..i], &after[i..]),
                None => (after, ""),
            };
            match seg {
                Segment::Literal(l) if l == head => {}
                Segment::Literal(_) => return None,
                Segment::Param(name) if !head.is_empty() => {
                    params.push((name.clone(), head.to_string()))
                }
                Segment::Param(_) => return None,
            }
            rest = tail;
        }
        let path_info = if self.wildcard {
            // Path info keeps the request's own trailing slash: it is the untouched remainder.
            path[trimmed.len() - rest.len()..].to_string()
        } else if rest.is_empty() || rest == "/" {
            String::new()
        } else {
            return None;
        };
        Some(RouteMatch {
            raw_route: self.raw.clone(),
            matched_route: self.based.clone(),
            component_route: self
                .raw
                .strip_suffix("/...")
                .unwrap_or(&self.raw)
                .to_string(),
            path_info,
            params,
        })
    }

    /// The pattern as routefinder ranks it: per segment a literal (2), a `:name` (1), the
    /// wildcard (0).
    fn ranks(&self) -> Vec<u8> {
        let mut ranks: Vec<u8> = self
            .segments
            .iter()
            .map(|s| match s {
                Segment::Literal(_) => 2,
                Segment::Param(_) => 1,
            })
            .collect();
        if self.wildcard {
            ranks.push(0);
        }
        ranks
    }
}

/// `Greater` when `a` wins over `b` for a path both match (routefinder's order): at the first
/// segment where they differ, the higher rank; if one is a prefix of the other, the shorter.
fn precedence(a: &RoutePattern, b: &RoutePattern) -> std::cmp::Ordering {
    let (a, b) = (a.ranks(), b.ranks());
    a.iter()
        .zip(&b)
        .map(|(x, y)| x.cmp(y))
        .find(|o| o.is_ne())
        .unwrap_or_else(|| b.len().cmp(&a.len()))
}

/// A route that another declaration of the same route replaced (Spin: `DuplicateRoute`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateRoute<T> {
    pub route: String,
    /// The target of the declaration that is never used.
    pub replaced: T,
    /// The target of the declaration that wins (the last one).
    pub effective: T,
}

/// The app's routes, most specific first.
#[derive(Debug, Default)]
pub struct Router<T> {
    routes: Vec<(RoutePattern, T)>,
    duplicates: Vec<DuplicateRoute<T>>,
}

impl<T: Clone> Router<T> {
    /// Routes in declaration order. A route written exactly as an earlier one replaces it in
    /// the earlier one's place (Spin: an `IndexMap` keyed by the route as written).
    pub fn new(declared: Vec<(RoutePattern, T)>) -> Self {
        let mut routes: Vec<(RoutePattern, T)> = Vec::with_capacity(declared.len());
        let mut duplicates = Vec::new();
        for (pattern, target) in declared {
            if let Some(slot) = routes.iter_mut().find(|(p, _)| p.raw == pattern.raw) {
                duplicates.push(DuplicateRoute {
                    route: slot.0.based.clone(),
                    replaced: slot.1.clone(),
                    effective: target.clone(),
                });
                slot.1 = target;
            } else {
                routes.push((pattern, target));
            }
        }
        // Among routes that order as equal (`/a` and `/a/`, `/:x` and `/:y`), the later one
        // wins, as it does in routefinder's ordered set.
        let mut indexed: Vec<(usize, (RoutePattern, T))> = routes.into_iter().enumerate().collect();
        indexed.sort_by(|(ia, a), (ib, b)| precedence(&b.0, &a.0).then_with(|| ib.cmp(ia)));
        Self {
            routes: indexed.into_iter().map(|(_, r)| r).collect(),
            duplicates,
        }
    }
}

impl<T> Router<T> {
    pub fn route(&self, path: &str) -> Option<(&T, RouteMatch)> {
        self.routes
            .iter()
            .find_map(|(p, t)| p.matches(path).map(|m| (t, m)))
    }

    /// The declarations that a later declaration of the same route replaced. Spin starts
    /// anyway and logs them ("The following component routes are duplicates and will never be
    /// used"), so a caller should say so, not refuse the app.
    pub fn duplicates(&self) -> &[DuplicateRoute<T>] {
        &self.duplicates
    }

    /// True if a route lies under `/.well-known/spin/`, which Spin answers itself (and logs
    /// "Routes under /.well-known/spin/ are handled by the Spin runtime and will never be
    /// reached").
    pub fn contains_reserved_route(&self) -> bool {
        self.routes.iter().any(|(p, _)| p.is_reserved())
    }

    /// Always `None`: Spin does not refuse a route declared twice (see [`Router::duplicates`]).
    /// Kept while `App::load` still asks.
    pub fn duplicate(&self) -> Option<&str> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(routes: &[&str]) -> Router<String> {
        Router::new(
            routes
                .iter()
                .map(|r| (RoutePattern::parse(r).unwrap(), r.to_string()))
                .collect(),
        )
    }

    fn hit(r: &Router<String>, path: &str) -> Option<(String, RouteMatch)> {
        r.route(path).map(|(t, m)| (t.clone(), m))
    }

    #[test]
    fn exact_route_matches_with_and_without_trailing_slash() {
        let r = router(&["/a/b"]);
        assert_eq!(hit(&r, "/a/b").unwrap().1.path_info, "");
        assert!(hit(&r, "/a/b/").is_some());
        assert!(hit(&r, "/a/b/c").is_none());
        assert!(hit(&r, "/a").is_none());
    }

    #[test]
    fn wildcard_matches_its_prefix_and_below() {
        let r = router(&["/douyin/user/..."]);
        let (_, m) = hit(&r, "/douyin/user/login/").unwrap();
        assert_eq!(m.path_info, "/login/");
        assert_eq!(m.component_route, "/douyin/user");
        assert_eq!(m.raw_route, "/douyin/user/...");
        assert_eq!(hit(&r, "/douyin/user").unwrap().1.path_info, "");
        assert!(hit(&r, "/douyin/username").is_none());
    }

    #[test]
    fn exact_beats_wildcard_and_longer_prefix_beats_shorter() {
        let r = router(&["/...", "/a/...", "/a/b/...", "/a/b"]);
        assert_eq!(hit(&r, "/a/b").unwrap().0, "/a/b");
        assert_eq!(hit(&r, "/a/b/c").unwrap().0, "/a/b/...");
        assert_eq!(hit(&r, "/a/x").unwrap().0, "/a/...");
        assert_eq!(hit(&r, "/z").unwrap().0, "/...");
        assert_eq!(hit(&r, "/").unwrap().0, "/...");
    }

    #[test]
    fn named_segments_capture() {
        let r = router(&["/users/:id/videos/:vid", "/users/me/videos/:vid"]);
        let (t, m) = hit(&r, "/users/42/videos/7").unwrap();
        assert_eq!(t, "/users/:id/videos/:vid");
        assert_eq!(
            m.params,
            vec![("id".into(), "42".into()), ("vid".into(), "7".into())]
        );
        assert_eq!(
            hit(&r, "/users/me/videos/7").unwrap().0,
            "/users/me/videos/:vid"
        );
        assert!(hit(&r, "/users//videos/7").is_none());
    }

    #[test]
    fn no_match_is_none() {
        assert!(hit(&router(&["/a"]), "/b").is_none());
    }

    /// Spin: crates/http/src/routes.rs, `parse_route` (and routefinder's `RouteSpec::from_str`).
    #[test]
    fn bad_patterns_are_refused() {
        assert!(RoutePattern::parse("/a/.../b").is_err());
        assert!(RoutePattern::parse("/a/:").is_err());
        let e = RoutePattern::parse("/a/*rest").unwrap_err().to_string();
        assert!(e.contains("doesn't need a name"), "{e}");
    }

    /// Spin: crates/http/src/routes.rs, `sanitize_with_base` / `absolutize`: a route without a
    /// leading `/` gets one, and routefinder drops empty segments.
    #[test]
    fn spin_accepts_relative_routes_and_empty_segments() {
        let r = router(&["a/...", "/x//y"]);
        let (t, m) = hit(&r, "/a/b").unwrap();
        assert_eq!(t, "a/...");
        assert_eq!(m.raw_route, "a/...");
        assert_eq!(m.matched_route, "/a/...");
        assert_eq!(m.path_info, "/b");
        assert_eq!(hit(&r, "/x/y").unwrap().0, "/x//y");
    }

    /// Spin: crates/http/src/routes.rs, `parse_route`: `/*` is a trailing wildcard too.
    #[test]
    fn star_is_a_trailing_wildcard() {
        let r = router(&["/files/*"]);
        assert_eq!(hit(&r, "/files/a/b").unwrap().1.path_info, "/a/b");
        assert!(hit(&r, "/files").is_some());
    }

    /// Spin: crates/http/src/routes.rs, `Router::build` and its tests
    /// `duplicate_routes_last_one_wins` / `duplicate_routes_reporting_is_faithful`: a route
    /// declared twice is not an error; the last declaration wins and the first is reported.
    #[test]
    fn duplicates_are_kept_last_one_wins_and_reported() {
        let r = Router::new(vec![
            (RoutePattern::parse("/").unwrap(), "comp-/".to_string()),
            (RoutePattern::parse("/foo").unwrap(), "first".to_string()),
            (RoutePattern::parse("/foo").unwrap(), "second".to_string()),
            (
                RoutePattern::parse("/whee/...").unwrap(),
                "whee".to_string(),
            ),
        ]);
        assert_eq!(hit(&r, "/foo").unwrap().0, "second");
        assert_eq!(
            r.duplicates(),
            &[DuplicateRoute {
                route: "/foo".to_string(),
                replaced: "first".to_string(),
                effective: "second".to_string(),
            }]
        );
        assert_eq!(r.duplicate(), None);
        assert!(router(&["/a/...", "/a"]).duplicates().is_empty());
    }

    /// routefinder's order, which Spin routes by: the first differing segment decides, so a
    /// wildcard with a literal where an exact route has a `:name` wins.
    #[test]
    fn first_differing_segment_decides() {
        let r = router(&["/a/:x/c", "/a/b/..."]);
        assert_eq!(hit(&r, "/a/b/c").unwrap().0, "/a/b/...");
        assert_eq!(hit(&r, "/a/z/c").unwrap().0, "/a/:x/c");
        let r = router(&["/:x/b", "/a/..."]);
        assert_eq!(hit(&r, "/a/b").unwrap().0, "/a/...");
        let r = router(&["/a/...", "/a/:x"]);
        assert_eq!(hit(&r, "/a/q").unwrap().0, "/a/:x");
    }

    /// Spin: crates/http/src/routes.rs, `contains_reserved_route` (and its tests).
    #[test]
    fn reserved_routes_are_recognised() {
        assert!(router(&["/.well-known/spin/..."]).contains_reserved_route());
        assert!(router(&["/.well-known/spin/fie"]).contains_reserved_route());
        assert!(!router(&["/.well-known/spindle/..."]).contains_reserved_route());
        assert!(!router(&["/.well-known/spin"]).contains_reserved_route());
    }

    /// Spin: crates/trigger-http/src/headers.rs, `compute_default_headers` (test
    /// `test_default_headers_with_named_wildcards`).
    #[test]
    fn header_values_follow_spin() {
        let r = router(&["/foo/:userid/..."]);
        let (_, m) = hit(&r, "/foo/42/bar").unwrap();
        assert_eq!(m.matched_route, "/foo/:userid/...");
        assert_eq!(m.raw_route, "/foo/:userid/...");
        assert_eq!(m.component_route, "/foo/:userid");
        assert_eq!(m.path_info, "/bar");
        assert_eq!(m.params, vec![("userid".into(), "42".into())]);
    }
}

impl<T: Clone> Router<T> {
    /// Routes as written, with their targets, for the start-up banner.
    pub fn describe(&self) -> Vec<(String, T)> {
        self.routes
            .iter()
            .map(|(p, t)| (p.raw().to_string(), t.clone()))
            .collect()
    }
}
