//! Embeds the migrations: for each database and engine, a list of (version, description,
//! SQL) read from `migrations/<database>/<engine>/<version>_<description>.sql`, as
//! `sqlx::migrate!` would, without its proc macro (whose host build compiles both database
//! drivers and SQLite a second time; docs/build.md). Rebuilds when a migration changes.
use std::fmt::Write as _;
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=migrations");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let mut out = String::new();
    for (constant, dir) in [
        ("AM_SQLITE", "am/sqlite"),
        ("AM_POSTGRES", "am/postgres"),
        ("SHARED_SQLITE", "shared/sqlite"),
        ("SHARED_POSTGRES", "shared/postgres"),
    ] {
        let dir = root.join(dir);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
            .map(|entry| entry.map(|e| e.path()).unwrap_or_else(|e| panic!("{e}")))
            .filter(|p| p.extension().is_some_and(|x| x == "sql"))
            .collect();
        files.sort();
        let _ = writeln!(
            out,
            "/// The migrations of `{}`.\npub(crate) const {constant}: &[(i64, &str, &str)] = &[",
            dir.display()
        );
        for file in files {
            let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
            let (version, description) = stem
                .split_once('_')
                .unwrap_or_else(|| panic!("{}: name migrations <version>_<description>.sql", file.display()));
            let version: i64 = version
                .parse()
                .unwrap_or_else(|_| panic!("{}: the version must be a number", file.display()));
            assert!(
                !description.ends_with(".up") && !description.ends_with(".down"),
                "{}: reversible migrations are not supported",
                file.display()
            );
            let _ = writeln!(
                out,
                "    ({version}, {:?}, include_str!({:?})),",
                description.replace('_', " "),
                file.display().to_string()
            );
        }
        out.push_str("];\n");
    }
    let target = Path::new(&std::env::var("OUT_DIR").unwrap_or_else(|e| panic!("OUT_DIR: {e}"))).join("migrations.rs");
    std::fs::write(&target, out).unwrap_or_else(|e| panic!("cannot write {}: {e}", target.display()));
}
