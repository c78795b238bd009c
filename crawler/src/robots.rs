//! robots.txt (RFC 9309): groups by user agent, Allow/Disallow with `*` and `$`, longest match
//! wins, Allow wins ties; plus the common extensions `Crawl-delay` and `Sitemap`.

use std::time::Duration;

/// The rules that apply to our user agent on one origin.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Robots {
    rules: Vec<Rule>,
    /// Everything is disallowed (robots.txt answered with a server error, RFC 9309 2.3.1.4).
    disallow_all: bool,
    pub crawl_delay: Option<Duration>,
    pub sitemaps: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
struct Rule {
    allow: bool,
    pattern: String,
}

impl Robots {
    /// No robots.txt (404 and other 4xx): everything is allowed.
    pub fn allow_all() -> Robots {
        Robots::default()
    }

    /// robots.txt unreachable (5xx, network error): crawl nothing, as RFC 9309 asks.
    pub fn disallow_all() -> Robots {
        Robots {
            disallow_all: true,
            ..Robots::default()
        }
    }

    /// Parse robots.txt for the product token `agent` (e.g. `lotse`), falling back to `*`.
    pub fn parse(text: &str, agent: &str) -> Robots {
        let agent = agent.to_ascii_lowercase();
        // groups: (agents, rules, crawl_delay)
        let mut groups: Vec<(Vec<String>, Vec<Rule>, Option<Duration>)> = Vec::new();
        let mut sitemaps = Vec::new();
        let mut in_agents = false;
        for raw in text.lines() {
            let line = raw.split('#').next().unwrap_or("").trim();
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let key = key.trim().to_ascii_lowercase();
            let value = value.trim();
            match key.as_str() {
                "user-agent" => {
                    if !in_agents {
                        groups.push((Vec::new(), Vec::new(), None));
                    }
                    in_agents = true;
                    if let Some(g) = groups.last_mut() {
                        g.0.push(value.to_ascii_lowercase());
                    }
                }
                "allow" | "disallow" => {
                    in_agents = false;
                    if let Some(g) = groups.last_mut() {
                        // an empty Disallow allows everything: no rule
                        if !value.is_empty() {
                            g.1.push(Rule {
                                allow: key == "allow",
                                pattern: value.to_owned(),
                            });
                        }
                    }
                }
                "crawl-delay" => {
                    in_agents = false;
                    if let (Some(g), Ok(secs)) = (groups.last_mut(), value.parse::<f64>())
                        && secs.is_finite()
                        && secs >= 0.0
                    {
                        g.2 = Some(Duration::from_secs_f64(secs.min(60.0)));
                    }
                }
                "sitemap" => sitemaps.push(value.to_owned()),
                _ => {}
            }
        }
        let matches_agent = |agents: &Vec<String>| {
            agents
                .iter()
                .any(|a| a != "*" && (agent.starts_with(a.as_str()) || a.starts_with(&agent)))
        };
        let mut chosen: Vec<&(Vec<String>, Vec<Rule>, Option<Duration>)> =
            groups.iter().filter(|g| matches_agent(&g.0)).collect();
        if chosen.is_empty() {
            chosen = groups
                .iter()
                .filter(|g| g.0.iter().any(|a| a == "*"))
                .collect();
        }
        Robots {
            rules: chosen.iter().flat_map(|g| g.1.iter().cloned()).collect(),
            disallow_all: false,
            crawl_delay: chosen.iter().find_map(|g| g.2),
            sitemaps,
        }
    }

    /// Whether `path_and_query` (starting with `/`) may be fetched.
    pub fn allowed(&self, path_and_query: &str) -> bool {
        if self.disallow_all {
            return path_and_query == "/robots.txt";
        }
        let mut best: Option<(usize, bool)> = None;
        for r in &self.rules {
            if pattern_matches(&r.pattern, path_and_query) {
                let len = r.pattern.len();
                best = match best {
                    Some((l, a)) if l > len || (l == len && a) => Some((l, a)),
                    _ => Some((len, r.allow)),
                };
            }
        }
        best.is_none_or(|(_, allow)| allow)
    }
}

/// Match a robots.txt path pattern: `*` matches any run, a final `$` anchors the end,
/// otherwise the pattern is a prefix.
fn pattern_matches(pattern: &str, path: &str) -> bool {
    let (pattern, anchored) = match pattern.strip_suffix('$') {
        Some(p) => (p, true),
        None => (pattern, false),
    };
    let parts: Vec<&str> = pattern.split('*').collect();
    let mut pos = 0;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            if !path.starts_with(part) {
                return false;
            }
            pos = part.len();
        } else if let Some(found) = path[pos..].find(part) {
            pos += found + part.len();
        } else {
            return false;
        }
    }
    if anchored {
        // the last literal part must end the path (an empty last part after '*' matches all)
        parts
            .last()
            .is_some_and(|last| last.is_empty() && parts.len() > 1)
            || path.len() == pos
            || parts.last().is_some_and(|last| path.ends_with(last))
    } else {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixture_robots() {
        let r = Robots::parse(
            "User-agent: *\nDisallow: /intern/\nDisallow: /suche\nSitemap: http://x/sitemap.xml\n",
            "lotse",
        );
        assert!(!r.allowed("/intern/"));
        assert!(!r.allowed("/intern/geheim.html"));
        assert!(!r.allowed("/suche?q=hund"));
        assert!(!r.allowed("/suche"));
        assert!(r.allowed("/ortsrecht/"));
        assert!(r.allowed("/"));
        assert_eq!(r.sitemaps, ["http://x/sitemap.xml"]);
    }

    #[test]
    fn specific_group_longest_match_and_wildcards() {
        let txt = "User-agent: *\nDisallow: /\n\nUser-agent: Lotse\nUser-agent: other\nDisallow: /a/\nAllow: /a/public\nDisallow: /*.pdf$\nCrawl-delay: 2\n";
        let r = Robots::parse(txt, "lotse");
        assert!(r.allowed("/"));
        assert!(!r.allowed("/a/x"));
        assert!(r.allowed("/a/public/x"));
        assert!(!r.allowed("/b/file.pdf"));
        assert!(r.allowed("/b/file.pdf?x=1"));
        assert_eq!(r.crawl_delay, Some(Duration::from_secs(2)));
        let other = Robots::parse(txt, "somebot");
        assert!(!other.allowed("/"));
    }

    #[test]
    fn unreachable_robots_disallows_everything() {
        let r = Robots::disallow_all();
        assert!(!r.allowed("/"));
        assert!(Robots::allow_all().allowed("/anything"));
    }

    #[test]
    fn garbage_does_not_panic() {
        let r = Robots::parse(
            "\u{0}\u{ffff}::::\nDisallow\nCrawl-delay: -5\nCrawl-delay: NaN",
            "lotse",
        );
        assert!(r.allowed("/"));
        assert_eq!(r.crawl_delay, None);
    }
}
