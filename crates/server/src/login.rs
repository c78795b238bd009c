//! The portal's sign-in guard: whether a password may be checked now, and the few argon2
//! slots the checks run in (issue 31: a burst of wrong passwords ran 142 argon2 checks at
//! once and grew the process by 2.4 GiB; five wrong passwords locked any account's owner out).
//!
//! A sign-in passes these steps in order, and none of them waits:
//! 1. governor per client address (`[portal] login_per_minute`): over it, 429 + Retry-After;
//! 2. the failure tallies, one attempt per pause once a tally is over its free failures:
//!    (account, address) after `login_attempts`, the account from all addresses after 4x as
//!    many, the address over all accounts after 4x as many; the pause is 1 minute, doubling
//!    with each further failure up to 15 minutes: 429 + Retry-After;
//! 3. one of `login_concurrency` argon2 slots, each with its own kept working memory: none
//!    free is 503 + Retry-After at once (no queue that could grow).
//!
//! The attempt is counted as a failure before the password is checked (so parallel requests
//! cannot all pass step 2); a success takes it back and clears the (account, address) tally.
//!
//! Design decision: no hard lock-out. Someone who tries a name from their address slows only
//! that (account, address) pair; its owner signs in from another address. Only a spread of
//! addresses reaches the account's higher ceiling, and even then the account pauses, it is
//! not locked. IPv6 addresses count by their /64 network.
//!
//! Keys are 16 bytes of SHA-256 over a per-process salt, the kind and the lowercase name or
//! the address (never the attacker's string itself), in an LRU of [`MAX_KEYS`] entries;
//! tallies untouched for an hour are forgotten.

use std::net::IpAddr;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use lotse_portal::auth::{self, PasswordMemory};
use lru::LruCache;
use sha2::{Digest, Sha256};

use crate::config::PortalSettings;

/// At most this many tallies are kept (the least recently used go first).
pub const MAX_KEYS: usize = 65_536;
/// The first pause once a tally is over its free failures.
const FIRST_PAUSE: Duration = Duration::from_secs(60);
/// The longest pause.
const MAX_PAUSE: Duration = Duration::from_secs(15 * 60);
/// Tallies untouched this long start again from zero.
const FORGET_AFTER: Duration = Duration::from_secs(3600);
/// The account and the address may fail this many times as often as one pair.
const CEILING_FACTOR: u32 = 4;

type Key = [u8; 16];

#[derive(Debug, Clone, Copy)]
struct Tally {
    failures: u32,
    last: Instant,
}

impl Tally {
    /// How long to wait before the next attempt, with `free` failures before pauses begin.
    fn wait(&self, free: u32, now: Instant) -> Option<Duration> {
        let since = now.saturating_duration_since(self.last);
        if since >= FORGET_AFTER || self.failures < free.max(1) {
            return None;
        }
        let extra = (self.failures - free.max(1)).min(4);
        let pause = (FIRST_PAUSE * (1u32 << extra)).min(MAX_PAUSE);
        (since < pause).then(|| pause - since)
    }
}

/// Why a sign-in was refused before its password was checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Too many sign-in requests from the address, or too many failures: wait this many
    /// seconds (429).
    Throttled(u64),
    /// Every argon2 slot is busy (503; try again in a second).
    Busy,
}

/// The tallies an admitted attempt was counted in: give it back with
/// [`LoginGuard::succeeded`].
#[derive(Debug)]
pub struct Ticket {
    pair: Key,
    account: Key,
    address: Key,
}

/// One argon2 slot: its working memory goes back to the pool when dropped.
pub struct Slot {
    pool: Arc<SlotPool>,
    memory: Option<PasswordMemory>,
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot").finish_non_exhaustive()
    }
}

impl Slot {
    /// Check `password` against the PHC string `hash`, or against a hash that never matches
    /// when the account does not exist (same cost, so names cannot be probed). Blocking (argon2,
    /// tens of milliseconds): call it on the blocking pool.
    pub fn verify(&mut self, password: &str, hash: Option<&str>) -> bool {
        self.pool.checks.fetch_add(1, Ordering::Relaxed);
        let memory = self.memory.get_or_insert_with(PasswordMemory::default);
        let ok = auth::verify_password_in(password, hash.unwrap_or(auth::DUMMY_HASH), memory);
        ok && hash.is_some()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(m) = self.memory.take() {
            self.pool.free.lock().unwrap_or_else(PoisonError::into_inner).push(m);
        }
    }
}

struct SlotPool {
    free: Mutex<Vec<PasswordMemory>>,
    /// Passwords checked with argon2 since the start.
    checks: AtomicU64,
}

/// The sign-in guard of `/portal/api/login` (see the module's documentation).
pub struct LoginGuard {
    per_address: Option<DefaultKeyedRateLimiter<IpAddr>>,
    free_failures: u32,
    salt: String,
    tallies: Mutex<LruCache<Key, Tally>>,
    pool: Arc<SlotPool>,
}

impl std::fmt::Debug for LoginGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginGuard").field("free_failures", &self.free_failures).finish_non_exhaustive()
    }
}

/// The address as it is counted: IPv6 by its /64 network (one host usually has all of it).
fn network(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
    }
}

impl LoginGuard {
    pub fn new(settings: &PortalSettings) -> LoginGuard {
        let slots = settings.login_concurrency.clamp(1, 64) as usize;
        LoginGuard {
            per_address: std::num::NonZeroU32::new(settings.login_per_minute)
                .map(|n| RateLimiter::keyed(Quota::per_minute(n))),
            free_failures: settings.login_attempts.max(1),
            salt: auth::random_token(""),
            tallies: Mutex::new(LruCache::new(NonZeroUsize::new(MAX_KEYS).unwrap_or(NonZeroUsize::MIN))),
            pool: Arc::new(SlotPool {
                free: Mutex::new((0..slots).map(|_| PasswordMemory::default()).collect()),
                checks: AtomicU64::new(0),
            }),
        }
    }

    fn key(&self, kind: &str, value: &str) -> Key {
        let mut h = Sha256::new();
        for part in [self.salt.as_str(), kind, value] {
            h.update(part.as_bytes());
            h.update([0]);
        }
        let d = h.finalize();
        let mut k = [0u8; 16];
        k.copy_from_slice(&d[..16]);
        k
    }

    /// Whether `name` may have a password checked now, coming from `ip`. When it may, the
    /// attempt is already counted as a failure, and the slot to check it in is returned.
    pub fn admit(&self, name: &str, ip: IpAddr) -> Result<(Ticket, Slot), Refused> {
        let ip = network(ip);
        if let Some(l) = &self.per_address
            && let Err(not_until) = l.check_key(&ip)
        {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            return Err(Refused::Throttled(wait.as_secs_f64().ceil().max(1.0) as u64));
        }
        let name = name.trim().to_lowercase();
        let address = ip.to_string();
        let ticket = Ticket {
            pair: self.key("pair", &format!("{address}\n{name}")),
            account: self.key("account", &name),
            address: self.key("address", &address),
        };
        let ceiling = self.free_failures.saturating_mul(CEILING_FACTOR);
        let now = Instant::now();
        let mut tallies = self.tallies.lock().unwrap_or_else(PoisonError::into_inner);
        let wait = [(ticket.pair, self.free_failures), (ticket.account, ceiling), (ticket.address, ceiling)]
            .iter()
            .filter_map(|(k, free)| tallies.peek(k).and_then(|t| t.wait(*free, now)))
            .max();
        if let Some(wait) = wait {
            return Err(Refused::Throttled(wait.as_secs_f64().ceil().max(1.0) as u64));
        }
        let memory = self.pool.free.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let Some(memory) = memory else { return Err(Refused::Busy) };
        let slot = Slot { pool: self.pool.clone(), memory: Some(memory) };
        for k in [ticket.pair, ticket.account, ticket.address] {
            match tallies.get_mut(&k) {
                Some(t) if now.saturating_duration_since(t.last) < FORGET_AFTER => {
                    t.failures = t.failures.saturating_add(1);
                    t.last = now;
                }
                _ => {
                    tallies.put(k, Tally { failures: 1, last: now });
                }
            }
        }
        Ok((ticket, slot))
    }

    /// The password was right: the pair starts afresh, the account and the address get the
    /// attempt back.
    pub fn succeeded(&self, ticket: &Ticket) {
        let mut tallies = self.tallies.lock().unwrap_or_else(PoisonError::into_inner);
        tallies.pop(&ticket.pair);
        for k in [ticket.account, ticket.address] {
            if let Some(t) = tallies.get_mut(&k) {
                t.failures = t.failures.saturating_sub(1);
            }
        }
    }

    /// Passwords checked with argon2 since the start (for `/metrics` and tests).
    pub fn password_checks(&self) -> u64 {
        self.pool.checks.load(Ordering::Relaxed)
    }

    /// How many tallies are kept.
    pub fn tallies(&self) -> usize {
        self.tallies.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// Drop what no longer matters: tallies untouched for an hour, and the rate limiter's
    /// clients that are back at full quota.
    pub fn forget_idle(&self) {
        let now = Instant::now();
        let mut tallies = self.tallies.lock().unwrap_or_else(PoisonError::into_inner);
        while let Some((_, t)) = tallies.peek_lru() {
            if now.saturating_duration_since(t.last) < FORGET_AFTER {
                break;
            }
            tallies.pop_lru();
        }
        drop(tallies);
        if let Some(l) = &self.per_address {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(per_minute: u32, slots: u32) -> LoginGuard {
        LoginGuard::new(&PortalSettings {
            login_attempts: 3,
            login_per_minute: per_minute,
            login_concurrency: slots,
            ..PortalSettings::default()
        })
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_pair_pauses_but_the_owner_elsewhere_does_not() {
        let g = guard(0, 1);
        for _ in 0..3 {
            let (_t, slot) = g.admit("Bob", ip("192.0.2.1")).unwrap();
            drop(slot);
        }
        // counted before any check: the fourth is refused with a wait of about a minute
        let Err(Refused::Throttled(wait)) = g.admit("bob ", ip("192.0.2.1")) else { panic!("not throttled") };
        assert!((1..=60).contains(&wait), "{wait}");
        // the owner from another address signs in, and the pair there starts afresh
        let (t, slot) = g.admit("bob", ip("198.51.100.7")).unwrap();
        g.succeeded(&t);
        drop(slot);
        // another account from the attacker's address is still open (address ceiling 12)
        assert!(g.admit("carl", ip("192.0.2.1")).is_ok());
    }

    #[test]
    fn the_account_ceiling_holds_across_addresses() {
        let g = guard(0, 1);
        for i in 0..12 {
            let (_t, _s) = g.admit("bob", ip(&format!("192.0.2.{}", i / 3))).unwrap();
        }
        assert!(matches!(g.admit("bob", ip("203.0.113.1")), Err(Refused::Throttled(_))));
        assert!(g.admit("carl", ip("203.0.113.1")).is_ok());
    }

    #[test]
    fn slots_are_few_and_refuse_at_once() {
        let g = guard(0, 2);
        let a = g.admit("a", ip("192.0.2.1")).unwrap();
        let b = g.admit("b", ip("192.0.2.2")).unwrap();
        assert_eq!(g.admit("c", ip("192.0.2.3")).unwrap_err(), Refused::Busy);
        drop(a);
        let (_t, mut slot) = g.admit("c", ip("192.0.2.3")).unwrap();
        assert!(!slot.verify("passwort-passwort", None), "an unknown account never signs in");
        assert_eq!(g.password_checks(), 1);
        drop(b);
    }

    #[test]
    fn the_rate_per_address_and_bounded_keys() {
        let g = guard(2, 4);
        assert!(g.admit("a", ip("2001:db8::1")).is_ok());
        // the same /64 is the same client
        assert!(g.admit("b", ip("2001:db8::2")).is_ok());
        assert!(matches!(g.admit("c", ip("2001:db8::3")), Err(Refused::Throttled(w)) if w >= 1));
        // 64 KiB names are 16-byte keys, and there are never more than MAX_KEYS of them
        let g = guard(0, 1);
        let long = "x".repeat(64 * 1024);
        for i in 0..200 {
            let _ = g.admit(&format!("{long}{i}"), ip("192.0.2.9"));
        }
        assert!(g.tallies() <= 200 * 3 && g.tallies() <= MAX_KEYS);
    }
}
