//! Builds the web UI (`web/`) with Vite into `$OUT_DIR/dist` and writes the
//! `rust-embed` declaration that embeds it (`$OUT_DIR/embed.rs`).
//!
//! `BRAID_WEB_DIST=<dir>` embeds an already built dist instead (a packager's
//! or CI's own build; docs/web.md). Otherwise this runs `npm ci` when
//! `web/node_modules` is missing or older than `web/package-lock.json`, then
//! `npm run build`. A missing Node.js/npm or a failed build stops the Cargo
//! build with a message saying what to install: a binary that silently
//! serves no UI would be worse than no binary.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::SystemTime;

/// What the Vite build reads: a change to any of them rebuilds the UI.
const INPUTS: &[&str] = &[
    "src",
    "public",
    "index.html",
    "package.json",
    "package-lock.json",
    "vite.config.ts",
    "tsconfig.json",
];

fn main() -> ExitCode {
    match build() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: braid-web: {message}");
            ExitCode::FAILURE
        }
    }
}

fn build() -> Result<(), String> {
    let out = PathBuf::from(std::env::var("OUT_DIR").map_err(|e| format!("OUT_DIR: {e}"))?);
    let dist = out.join("dist");
    println!("cargo:rerun-if-env-changed=BRAID_WEB_DIST");
    match std::env::var_os("BRAID_WEB_DIST") {
        Some(prebuilt) => {
            let prebuilt = PathBuf::from(prebuilt);
            println!("cargo:rerun-if-changed={}", prebuilt.display());
            if dist.exists() {
                std::fs::remove_dir_all(&dist)
                    .map_err(|e| format!("clearing {}: {e}", dist.display()))?;
            }
            copy_dir(&prebuilt, &dist).map_err(|e| {
                format!("BRAID_WEB_DIST={}: cannot copy it: {e}", prebuilt.display())
            })?;
        }
        None => vite_build(&dist)?,
    }
    if !dist.join("index.html").is_file() {
        return Err(format!(
            "{} has no index.html: the UI build produced nothing to serve",
            dist.display()
        ));
    }
    // The folder is written out rather than interpolated by rust-embed
    // (its `interpolate-folder-path` feature pulls in shellexpand and dirs).
    let embed = format!(
        "/// The built UI, embedded in the binary (in debug builds too).\n\
         #[derive(rust_embed::Embed)]\n#[folder = {:?}]\nstruct Dist;\n",
        dist.display().to_string()
    );
    std::fs::write(out.join("embed.rs"), embed).map_err(|e| format!("writing embed.rs: {e}"))
}

/// `npm ci` when needed, then `vite build` into `dist`.
fn vite_build(dist: &Path) -> Result<(), String> {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").map_err(|e| e.to_string())?);
    let web = manifest.join("../../web");
    for input in INPUTS {
        println!("cargo:rerun-if-changed={}", web.join(input).display());
    }
    let npm = Command::new("npm").arg("--version").output();
    if !npm.is_ok_and(|o| o.status.success()) {
        return Err(
            "building the web UI needs Node.js 20 or newer with npm on PATH \
             (Debian/Ubuntu: `apt-get install nodejs npm`; elsewhere https://nodejs.org), \
             or BRAID_WEB_DIST=<dir> naming an already built web/dist (docs/web.md)"
                .into(),
        );
    }
    if needs_install(&web) {
        run(
            Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&web),
            "npm ci",
        )?;
    }
    run(
        Command::new("npm")
            .args(["run", "build"])
            .env("BRAID_WEB_OUT_DIR", dist)
            .current_dir(&web),
        "npm run build (vite build)",
    )
}

/// No `node_modules`, or one installed before the lockfile last changed.
fn needs_install(web: &Path) -> bool {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    // npm writes node_modules/.package-lock.json at the end of every install.
    let installed = modified(&web.join("node_modules/.package-lock.json"));
    let locked = modified(&web.join("package-lock.json")).unwrap_or(SystemTime::UNIX_EPOCH);
    installed.is_none_or(|at| at < locked)
}

fn run(command: &mut Command, what: &str) -> Result<(), String> {
    // Vite's and npm's output goes to the build script's log; on failure
    // Cargo shows it together with the error below.
    let status = command
        .status()
        .map_err(|e| format!("{what}: cannot start: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed ({status}) in web/; its output is above. Fix the UI build, \
             or set BRAID_WEB_DIST=<dir> to embed an already built dist (docs/web.md)"
        ))
    }
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}
