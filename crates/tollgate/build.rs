//! Links the `tollgate` binary with its debug sections compressed (zlib): the line tables
//! that give backtraces their file:line then take about a third of the space (docs/build.md,
//! decision 017). Rust's backtraces read zlib-compressed sections (not zstd ones).
fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg-bins=-Wl,--compress-debug-sections=zlib");
    }
}
