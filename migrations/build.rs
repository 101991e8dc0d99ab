//! `sqlx::migrate!` embeds the migration files at compile time but does not tell cargo about
//! them; without this, adding a migration would not rebuild the crate.
fn main() {
    println!("cargo:rerun-if-changed=sqlite");
    println!("cargo:rerun-if-changed=postgres");
}
