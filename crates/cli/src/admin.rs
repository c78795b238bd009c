//! `lotse admin`: bootstrap and maintain the staff portal from the command line (accounts,
//! KI-Kompass levels, API tokens, backups, the AI register).

use std::io::Read;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use lotse_portal::auth::{self, Level, Role, Scope};
use lotse_portal::Store;

#[derive(clap::Subcommand)]
pub enum AdminCommand {
    /// Create a local account. The password comes from LOTSE_ADMIN_PASSWORD or stdin.
    CreateUser {
        #[arg(long)]
        name: String,
        #[arg(long)]
        display_name: Option<String>,
        /// staff, editor or admin.
        #[arg(long, default_value = "staff")]
        role: String,
        /// Groups (departments), comma-separated: `bauamt,ordnungsamt`.
        #[arg(long, default_value = "")]
        groups: String,
        #[command(flatten)]
        data: DataArg,
    },
    /// Set a user's KI-Kompass level (none, seepferdchen, bronze, silber, gold).
    SetLevel {
        #[arg(long)]
        name: String,
        #[arg(long)]
        level: String,
        #[command(flatten)]
        data: DataArg,
    },
    /// Create an API token (printed once) for the CMS or automation tools.
    CreateToken {
        /// The user the token acts for.
        #[arg(long)]
        user: String,
        /// What it is for ("CMS").
        #[arg(long)]
        label: String,
        /// simplify, refresh, chat, documents; comma-separated.
        #[arg(long)]
        scopes: String,
        #[command(flatten)]
        data: DataArg,
    },
    /// List the accounts.
    Users {
        #[command(flatten)]
        data: DataArg,
    },
    /// Write one consistent copy of everything a crawl cannot bring back into a new directory
    /// (safe while the server runs): the portal database with the uploaded originals, the
    /// approved and corrected rewrites and the ratings (all in portal.sqlite; files of older
    /// versions not imported yet, simplify.sqlite and feedback.sqlite, are copied too).
    Backup {
        /// Destination directory (must not exist, or be empty).
        dest: PathBuf,
        #[command(flatten)]
        data: DataArg,
    },
    /// Bring a backup of `lotse admin backup` back into the data directory. Stop the server
    /// first; start it afterwards (it writes the uploads into the index from their originals).
    Restore {
        /// The backup directory.
        src: PathBuf,
        /// Replace existing databases (they are moved aside into `before-restore-*`, not deleted).
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        data: DataArg,
    },
    /// Print the AI system register as CSV.
    Register {
        #[command(flatten)]
        data: DataArg,
    },
}

#[derive(clap::Args)]
pub struct DataArg {
    /// Data directory (holds portal.sqlite).
    #[arg(long, default_value = "data", env = "LOTSE_DATA")]
    pub data: PathBuf,
    /// The portal's PostgreSQL database instead of portal.sqlite (as `[portal] database`).
    #[arg(long, env = "LOTSE__PORTAL__DATABASE")]
    pub database: Option<String>,
}

impl DataArg {
    /// The database (without importing the stores of older versions: `lotse serve` does).
    pub fn open(&self) -> Result<std::sync::Arc<Store>> {
        lotse_server::database::open_without_import(self.database.as_deref(), &self.data)
            .map_err(anyhow::Error::msg)
            .context("cannot open the database")
    }
}

fn password() -> Result<String> {
    if let Ok(p) = std::env::var("LOTSE_ADMIN_PASSWORD") {
        return Ok(p);
    }
    let mut s = String::new();
    std::io::stdin().read_to_string(&mut s).context("cannot read the password from stdin")?;
    Ok(s.lines().next().unwrap_or("").to_string())
}

pub fn run(cmd: AdminCommand) -> Result<()> {
    match cmd {
        AdminCommand::CreateUser { name, display_name, role, groups, data } => {
            let role = Role::parse(&role).with_context(|| format!("unknown role {role:?}: staff, editor or admin"))?;
            let groups: Vec<String> = groups.split(',').map(str::trim).filter(|g| !g.is_empty()).map(String::from).collect();
            let store = data.open()?;
            let pw = password()?;
            let hash = auth::hash_password(&pw).map_err(|e| anyhow::anyhow!("{e} (at least {} characters)", auth::MIN_PASSWORD_CHARS))?;
            let display = display_name.unwrap_or_else(|| name.clone());
            let id = store.create_user(&name, &display, Some(&hash), role, &groups)?;
            if role == Role::Admin {
                // the admin who sets the portal up is trained by definition
                store.set_level(id, Level::Gold)?;
            }
            println!("created user {} (id {id}, {})", name.trim().to_lowercase(), role.key());
        }
        AdminCommand::SetLevel { name, level, data } => {
            let level = Level::parse(&level).with_context(|| format!("unknown level {level:?}"))?;
            let store = data.open()?;
            let u = store.user_by_name(&name)?.with_context(|| format!("no user {name}"))?;
            store.set_level(u.id, level)?;
            println!("{name}: level {}", level.key());
        }
        AdminCommand::CreateToken { user, label, scopes, data } => {
            let mut parsed = Vec::new();
            for s in scopes.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                parsed.push(Scope::parse(s).with_context(|| format!("unknown scope {s:?}: simplify, refresh, chat, documents"))?);
            }
            if parsed.is_empty() {
                bail!("a token needs at least one scope");
            }
            let store = data.open()?;
            let u = store.user_by_name(&user)?.with_context(|| format!("no user {user}"))?;
            let token = store.create_token(u.id, &label, &parsed)?;
            println!("{token}");
            eprintln!("(shown once: keep it in the CMS's configuration)");
        }
        AdminCommand::Users { data } => {
            let store = data.open()?;
            for u in store.users()? {
                println!("{}\t{}\t{}\t{}\t{}", u.id, u.name, u.role.key(), u.level.key(), u.groups.join(","));
            }
        }
        AdminCommand::Backup { dest, data } => {
            let m = crate::backup::backup(&data.data, data.database.is_some(), &dest)?;
            for f in &m.files {
                println!("{}\t{} bytes", f.name, f.bytes);
            }
            if data.database.is_some() {
                println!("the database is PostgreSQL: back it up with pg_dump (it holds the uploaded originals, the rewrites with their approvals and the ratings)");
            }
            println!("backup written to {}", dest.display());
        }
        AdminCommand::Restore { src, force, data } => {
            if data.database.is_some() {
                eprintln!("(the portal database is PostgreSQL: restore it with pg_restore/psql; this restores the SQLite files)");
            }
            let r = crate::backup::restore(&src, &data.data, force)?;
            for f in &r.restored {
                println!("restored {f}");
            }
            if let Some(aside) = &r.moved_aside {
                println!("the databases that were there are kept in {}", aside.display());
            }
            println!("start `lotse serve` (or run `lotse index rebuild`): uploads are written into the index from their originals");
        }
        AdminCommand::Register { data } => {
            let store = data.open()?;
            let rows: Vec<Vec<String>> = store
                .register()?
                .into_iter()
                .map(|e| vec![e.name, e.model, e.purpose, e.provider, e.risk_class, e.responsible])
                .collect();
            print!(
                "{}",
                lotse_portal::store::to_csv(&["name", "model", "purpose", "provider", "risk_class", "responsible"], &rows)
            );
        }
    }
    Ok(())
}
