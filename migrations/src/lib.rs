//! Embedded SQL migrations for both supported backends.
//!
//! Invariant: `sqlite/` and `postgres/` hold the same numbered versions; each folder keeps its own
//! dialect (STRICT tables and TEXT timestamps on SQLite, `timestamptz`/`bytea` on PostgreSQL) while
//! the queries in `consultroom-clinic` stay identical. Migrations are append-only.

/// Migrations for SQLite databases (`migrations/sqlite`).
pub static SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("./sqlite");

/// Migrations for PostgreSQL databases (`migrations/postgres`).
pub static POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("./postgres");

#[cfg(test)]
mod tests {
    use super::{POSTGRES, SQLITE};

    fn versions(m: &sqlx::migrate::Migrator) -> Vec<(i64, String)> {
        m.iter()
            .filter(|m| !m.migration_type.is_down_migration())
            .map(|m| (m.version, m.description.to_string()))
            .collect()
    }

    #[test]
    fn both_backends_list_the_same_versions() {
        let sqlite = versions(&SQLITE);
        assert!(!sqlite.is_empty(), "no sqlite migrations embedded");
        assert_eq!(sqlite, versions(&POSTGRES));
    }

    #[test]
    fn migration_files_on_disk_match() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let list = |sub: &str| {
            let mut names: Vec<String> = std::fs::read_dir(dir.join(sub))
                .expect("read migrations dir")
                .map(|e| {
                    e.expect("dir entry")
                        .file_name()
                        .to_string_lossy()
                        .into_owned()
                })
                .filter(|n| n.ends_with(".sql"))
                .collect();
            names.sort();
            names
        };
        assert_eq!(list("sqlite"), list("postgres"));
    }
}
