//! The one database of a server: the portal's records, the rewrite store and the ratings
//! (`lotse_portal::store`), SQLite in `data/portal.sqlite` or PostgreSQL
//! (`[portal] database`).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, Weak};

use lotse_portal::store::Store;

/// The stores open in this process, by database: the portal, the rewrite service and the
/// ratings share one pool.
static OPEN: Mutex<Option<HashMap<String, Weak<Store>>>> = Mutex::new(None);

/// Open (create, migrate) the database of the data directory `data`, or the PostgreSQL
/// database `url`, once per process; the stores of the code before issue 33.4 still in
/// `data` (`simplify.sqlite`, `feedback.sqlite`) are imported into it the first time.
pub fn open(url: Option<&str>, data: &Path) -> Result<Arc<Store>, String> {
    open_as(url, data, true)
}

/// [`open`] for commands that only read or administer (`lotse feedback`, `lotse admin`):
/// no import, so a command run with another database than the server's (or beside a running
/// server of an older version) never moves the older stores; it warns when they are there.
pub fn open_without_import(url: Option<&str>, data: &Path) -> Result<Arc<Store>, String> {
    open_as(url, data, false)
}

fn open_as(url: Option<&str>, data: &Path, import: bool) -> Result<Arc<Store>, String> {
    let url = url.map(str::trim).filter(|u| !u.is_empty());
    let name = match url {
        Some(u) => u.to_string(),
        None => data.join("portal.sqlite").display().to_string(),
    };
    let mut open = OPEN.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let open = open.get_or_insert_with(HashMap::new);
    if let Some(s) = open.get(&name).and_then(Weak::upgrade) {
        return Ok(s);
    }
    std::fs::create_dir_all(data).map_err(|e| format!("cannot create {}: {e}", data.display()))?;
    let store = match url {
        Some(u) => Store::connect(u),
        None => Store::open(&data.join("portal.sqlite")),
    }
    .map_err(|e| format!("database: {e}"))?;
    if !import {
        let left: Vec<&str> = lotse_portal::store::LEGACY_FILES
            .iter()
            .copied()
            .filter(|n| data.join(n).is_file())
            .collect();
        if !left.is_empty() {
            tracing::warn!(
                files = ?left,
                "the data directory holds stores of an older version; `lotse serve` imports them at its next start"
            );
        }
        let store = Arc::new(store);
        open.insert(name, Arc::downgrade(&store));
        return Ok(store);
    }
    let imported = store.import_legacy(data).map_err(|e| format!("cannot import the stores in {}: {e}", data.display()))?;
    if !imported.files.is_empty() {
        tracing::info!(
            rewrites = imported.rewrites,
            reviews = imported.reviews,
            ratings = imported.ratings,
            "the rewrite store and the ratings are now in the one database (the old files are renamed *.imported)"
        );
    }
    let store = Arc::new(store);
    open.retain(|_, w| w.strong_count() > 0);
    open.insert(name, Arc::downgrade(&store));
    Ok(store)
}
