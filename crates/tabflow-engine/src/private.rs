//! Files only their owner can read: tabflow's data directory (0700), the store, reports,
//! snapshots and plans (0600). They hold the site's names, owners' addresses and the audit
//! log. On other systems than Unix the platform's defaults apply.

use std::io::Write;
use std::path::Path;

/// Creates `dir` and its missing parents; the directories created are owner-only (0700).
/// An existing directory keeps its mode.
pub fn create_dir_all(dir: &Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
}

/// Creates (or truncates) `path` as an owner-only file (0600) for writing. An existing file
/// is narrowed to 0600 too.
pub fn create(path: &Path) -> std::io::Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let f = o.open(path)?;
    restrict(path)?;
    Ok(f)
}

/// Writes `bytes` to `path` as an owner-only file (0600).
pub fn write(path: &Path, bytes: impl AsRef<[u8]>) -> std::io::Result<()> {
    let mut f = create(path)?;
    f.write_all(bytes.as_ref())?;
    f.flush()
}

/// Narrows an existing file to owner-only (0600); a missing file is no error.
pub fn restrict(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        match std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            other => other?,
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn owner_only() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("a/b");
        super::create_dir_all(&dir).unwrap();
        assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
        let f = dir.join("x");
        std::fs::write(&f, "old").unwrap();
        super::write(&f, "new").unwrap();
        assert_eq!(std::fs::metadata(&f).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "new");
    }
}
