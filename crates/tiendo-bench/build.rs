//! Records the commit this binary is built from (`TIENDO_BUILD_COMMIT`), so a report names
//! the code it measured wherever the binary runs: a copy in another folder, or a build of
//! an older commit run inside a newer work tree. `-dirty` when the files that make the
//! binaries (`crates/`, the workspace's Cargo files, `.cargo/`) differ from that commit;
//! "unknown" when the build has no git work tree (a source archive, a container build).

use std::path::Path;
use std::process::Command;

/// What builds the binaries: a change here marks the build dirty.
const SOURCES: [&str; 4] = ["crates", "Cargo.toml", "Cargo.lock", ".cargo"];

fn git(root: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git").arg("-C").arg(root).args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn main() {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let root = Path::new(&manifest).join("../..");
    let commit = match git(&root, &["rev-parse", "--short", "HEAD"]).filter(|c| !c.is_empty()) {
        None => "unknown".to_owned(),
        Some(head) => {
            let mut status = vec!["status", "--porcelain", "--untracked-files=no", "--"];
            status.extend(SOURCES);
            match git(&root, &status) {
                Some(changes) if changes.is_empty() => head,
                _ => format!("{head}-dirty"),
            }
        }
    };
    println!("cargo:rustc-env=TIENDO_BUILD_COMMIT={commit}");
    // Built again when HEAD moves (a commit, a checkout) or the sources change.
    if let Some(dir) = git(&root, &["rev-parse", "--absolute-git-dir"]) {
        for entry in ["HEAD", "index", "refs", "packed-refs"] {
            println!("cargo:rerun-if-changed={dir}/{entry}");
        }
    }
    for source in SOURCES {
        println!("cargo:rerun-if-changed={}", root.join(source).display());
    }
}
