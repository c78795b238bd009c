//! Waiting on a condition with a deadline, instead of sleeping a fixed time.

use std::future::Future;
use std::time::{Duration, Instant};

/// How often a condition is checked again.
const POLL: Duration = Duration::from_millis(10);

/// Checks `condition` until it holds or `timeout` has passed (checking once more at the
/// deadline); returns whether it held. The caller asserts with its own message.
pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(POLL);
    }
}

/// [`wait_until`] for async tests: `condition` may await (an HTTP request, a store call), and
/// the runtime keeps working between checks.
pub async fn wait_until_async<F, Fut>(timeout: Duration, mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if condition().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn returns_as_soon_as_the_condition_holds_and_false_after_the_deadline() {
        let n = AtomicUsize::new(0);
        let t = Instant::now();
        assert!(wait_until(Duration::from_secs(5), || n.fetch_add(1, Ordering::SeqCst) == 3));
        assert!(t.elapsed() < Duration::from_secs(1));
        let t = Instant::now();
        assert!(!wait_until(Duration::from_millis(50), || false));
        assert!(t.elapsed() >= Duration::from_millis(50));
    }

    #[tokio::test]
    async fn the_async_form_awaits_its_condition() {
        let n = AtomicUsize::new(0);
        assert!(wait_until_async(Duration::from_secs(5), || async { n.fetch_add(1, Ordering::SeqCst) == 2 }).await);
        assert!(!wait_until_async(Duration::from_millis(30), || async { false }).await);
    }
}
