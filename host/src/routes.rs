//! HTTP route matching with Spin's semantics.
//!
//! Patterns: exact (`/a/b`), named segments (`/a/:id`), and a trailing wildcard (`/a/...`, which
//! also matches `/a` itself). When several routes match, an exact route (no wildcard) beats a
//! wildcard; among wildcards the longer prefix wins; at equal length a literal segment beats a
//! `:name` segment. A single trailing slash on the request path is insignificant, as in Spin.

use anyhow::{bail, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutePattern {
    raw: String,
    segments: Vec<Segment>,
    wildcard: bool,
}

/// What a match tells the component, via Spin's `spin-*` headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch {
    /// The route as written in the manifest (`spin-raw-component-route`).
    pub raw_route: String,
    /// The route without its wildcard (`spin-component-route`).
    pub component_route: String,
    /// The path below the matched prefix (`spin-path-info`), empty for exact routes.
    pub path_info: String,
    /// `:name` captures (`spin-path-match-<name>`).
    pub params: Vec<(String, String)>,
}

impl RoutePattern {
    pub fn parse(raw: &str) -> Result<Self> {
        if !raw.starts_with('/') {
            bail!("route {raw:?} must start with '/'");
        }
        let trimmed = raw.trim_end_matches('/');
        let mut parts: Vec<&str> = trimmed.split('/').skip(1).collect();
        let wildcard = parts.last() == Some(&"...");
        if wildcard {
            parts.pop();
        }
        let mut segments = Vec::with_capacity(parts.len());
        for part in parts {
            if part == "..." {
                bail!("route {raw:?}: '...' may only end a route");
            }
            if part.is_empty() {
                bail!("route {raw:?} has an empty segment");
            }
            match part.strip_prefix(':') {
                Some("") => bail!("route {raw:?}: a ':' segment needs a name"),
                Some(name) => segments.push(Segment::Param(name.to_string())),
                None => segments.push(Segment::Literal(part.to_string())),
            }
        }
        Ok(Self {
            raw: raw.to_string(),
            segments,
            wildcard,
        })
    }

    pub fn raw(&self) -> &str {
        &self.raw
    }

    fn component_route(&self) -> String {
        let mut s = String::new();
        for seg in &self.segments {
            s.push('/');
            match seg {
                Segment::Literal(l) => s.push_str(l),
                Segment::Param(p) => {
                    s.push(':');
                    s.push_str(p)
                }
            }
        }
        s
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
            component_route: self.component_route(),
            path_info,
            params,
        })
    }

    /// Sort key: larger is more specific.
    fn specificity(&self) -> (bool, usize, Vec<bool>) {
        (
            !self.wildcard,
            self.segments.len(),
            self.segments
                .iter()
                .map(|s| matches!(s, Segment::Literal(_)))
                .collect(),
        )
    }
}

/// The app's routes, most specific first.
#[derive(Debug, Default)]
pub struct Router<T> {
    routes: Vec<(RoutePattern, T)>,
}

impl<T> Router<T> {
    pub fn new(mut routes: Vec<(RoutePattern, T)>) -> Self {
        routes.sort_by(|a, b| b.0.specificity().cmp(&a.0.specificity()));
        Self { routes }
    }

    pub fn route(&self, path: &str) -> Option<(&T, RouteMatch)> {
        self.routes
            .iter()
            .find_map(|(p, t)| p.matches(path).map(|m| (t, m)))
    }

    /// Two routes that are the same pattern would make one unreachable; Spin refuses that.
    pub fn duplicate(&self) -> Option<&str> {
        self.routes
            .windows(2)
            .find(|w| w[0].0.segments == w[1].0.segments && w[0].0.wildcard == w[1].0.wildcard)
            .map(|w| w[1].0.raw())
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

    #[test]
    fn bad_patterns_are_refused() {
        assert!(RoutePattern::parse("a").is_err());
        assert!(RoutePattern::parse("/a/.../b").is_err());
        assert!(RoutePattern::parse("/a/:").is_err());
        assert!(RoutePattern::parse("/a//b").is_err());
    }

    #[test]
    fn duplicates_are_found() {
        assert_eq!(router(&["/a/...", "/a/..."]).duplicate(), Some("/a/..."));
        assert_eq!(router(&["/a/...", "/a"]).duplicate(), None);
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
