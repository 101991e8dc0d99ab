//! The data directory and the SQLite files are private to the server's user: they hold names,
//! chat and the server secret. The directory is created 0700 and the database files 0600,
//! whatever the umask (SQLite gives its `-wal` and `-shm` files the database file's mode).

use std::path::{Path, PathBuf};

use anyhow::Context;

/// Create the data directory (mode 0700) when missing; warn when an existing one is readable by
/// group or others (it may be shared on purpose, so it is not changed).
pub fn prepare(dir: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .with_context(|| format!("creating data directory {}", dir.display()))?;
            return Ok(());
        }
        let mode = std::fs::metadata(dir)
            .with_context(|| format!("reading data directory {}", dir.display()))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            tracing::warn!(
                dir = %dir.display(),
                mode = format!("{:o}", mode & 0o777),
                "the data directory is open to other users; it holds patient data (chmod 700)"
            );
        }
        Ok(())
    }
    #[cfg(not(unix))]
    {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating data directory {}", dir.display()))
    }
}

/// The database file of a `sqlite:` URL (none for other schemes and in-memory databases).
fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" || url.contains("mode=memory") {
        return None;
    }
    Some(PathBuf::from(path))
}

/// Before connecting: create the SQLite database file with mode 0600 (SQLite would create it
/// 0644 less the umask), and bring existing database files to 0600.
pub fn prepare_sqlite(url: &str) -> anyhow::Result<()> {
    let Some(db) = sqlite_file(url) else {
        return Ok(());
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&db)
        {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            // SQLite reports a missing directory and the like itself, with its own words.
            Err(_) => return Ok(()),
        }
    }
    tighten_sqlite(url)
}

/// Set the database file and its `-wal`, `-shm` and `-journal` files to 0600 where present.
pub fn tighten_sqlite(url: &str) -> anyhow::Result<()> {
    #[cfg(unix)]
    if let Some(db) = sqlite_file(url) {
        use std::os::unix::fs::PermissionsExt;
        let name = db.as_os_str().to_owned();
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut p = name.clone();
            p.push(suffix);
            let p = PathBuf::from(p);
            let Ok(meta) = std::fs::metadata(&p) else {
                continue;
            };
            if meta.permissions().mode() & 0o077 != 0 {
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600))
                    .with_context(|| format!("making {} private", p.display()))?;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = url;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_name_their_file() {
        assert_eq!(
            sqlite_file("sqlite://data/consultroom.db"),
            Some(PathBuf::from("data/consultroom.db"))
        );
        assert_eq!(
            sqlite_file("sqlite:/tmp/x.db?mode=rwc"),
            Some(PathBuf::from("/tmp/x.db"))
        );
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("postgres://h/db"), None);
    }
}
