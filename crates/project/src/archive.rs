//! A project's files, read from a zip archive or a directory and written to a zip, with
//! every check an archive from outside needs: caps on the number of entries and on the
//! bytes they really inflate to (never trusting the sizes the archive claims), and no
//! entry that could land outside the project (`..`, absolute paths, drive letters,
//! symlinks).

use crate::ProjectError;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;

/// How much an archive or directory may hold.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Most entries (files and folders).
    pub max_entries: usize,
    /// Most bytes one file may inflate to.
    pub max_entry_bytes: u64,
    /// Most bytes all files together may inflate to.
    pub max_total_bytes: u64,
}

impl Limits {
    /// What a project uploaded to a REST API may hold: no more than the REST body limit
    /// (10 MiB by default) lets through, inflated at most fourfold.
    pub const UPLOAD: Limits = Limits {
        max_entries: 2_000,
        max_entry_bytes: 10 << 20,
        max_total_bytes: 40 << 20,
    };
}

impl Default for Limits {
    /// 2 000 entries, 16 MiB per file, 64 MiB in all: far above any real project (the
    /// reference's exports are a few hundred kilobytes) and small enough for one request.
    fn default() -> Self {
        Limits {
            max_entries: 2_000,
            max_entry_bytes: 16 << 20,
            max_total_bytes: 64 << 20,
        }
    }
}

/// A project's files by their path inside the project (`api.yaml`,
/// `Definitions/swagger.yaml`), `/`-separated, without the archive's top folder.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Files {
    /// Path to content.
    pub files: BTreeMap<String, Vec<u8>>,
    /// The top folder the archive or directory had (`PizzaShackAPI-1.0.0`), if any.
    pub top: Option<String>,
}

impl Files {
    /// A file's content.
    pub fn get(&self, path: &str) -> Option<&[u8]> {
        self.files.get(path).map(Vec::as_slice)
    }

    /// Adds or replaces a file.
    pub fn put(&mut self, path: impl Into<String>, bytes: impl Into<Vec<u8>>) {
        self.files.insert(path.into(), bytes.into());
    }

    /// The files under `folder/` (paths relative to it), in order.
    pub fn under<'a>(&'a self, folder: &'a str) -> impl Iterator<Item = (&'a str, &'a [u8])> + 'a {
        self.files.iter().filter_map(move |(p, b)| {
            p.strip_prefix(folder)
                .and_then(|rest| rest.strip_prefix('/'))
                .map(|rest| (rest, b.as_slice()))
        })
    }
}

/// Checks one entry name and gives its normalised, relative form (`a/b.yaml`), or says
/// why it is refused.
fn safe_path(name: &str) -> Result<String, String> {
    if name.is_empty() {
        return Err("an entry has an empty name".into());
    }
    if name.contains('\0') {
        return Err(format!(
            "entry `{}` has a NUL character in its name",
            name.escape_debug()
        ));
    }
    let unified = name.replace('\\', "/");
    if unified.starts_with('/') {
        return Err(format!("entry `{name}` is an absolute path"));
    }
    let bytes = unified.as_bytes();
    if bytes.len() >= 2 && bytes[1] == b':' && bytes[0].is_ascii_alphabetic() {
        return Err(format!("entry `{name}` names a drive"));
    }
    let mut parts = Vec::new();
    for part in unified.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(format!("entry `{name}` leaves the project (`..`)")),
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return Err(format!("entry `{name}` names no file"));
    }
    Ok(parts.join("/"))
}

/// Whether a zip entry's Unix mode says symlink (`S_IFLNK`).
fn is_symlink(mode: Option<u32>) -> bool {
    mode.is_some_and(|m| m & 0o170000 == 0o120000)
}

/// Reads a zip archive from memory, refusing anything unsafe before a byte is used.
pub fn read_zip(bytes: &[u8], limits: Limits) -> Result<Files, ProjectError> {
    let refuse = |m: String| ProjectError::Archive(m);
    let mut archive =
        zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|e| refuse(format!("not a zip archive: {e}")))?;
    if archive.len() > limits.max_entries {
        return Err(refuse(format!(
            "the archive has {} entries; at most {} are allowed",
            archive.len(),
            limits.max_entries
        )));
    }
    let mut files = BTreeMap::new();
    let mut total: u64 = 0;
    for i in 0..archive.len() {
        let mut entry = archive
            .by_index(i)
            .map_err(|e| refuse(format!("entry {i} cannot be read: {e}")))?;
        let raw_name = String::from_utf8_lossy(entry.name_raw()).into_owned();
        let path = safe_path(&raw_name).map_err(refuse)?;
        if is_symlink(entry.unix_mode()) {
            return Err(refuse(format!("entry `{raw_name}` is a symbolic link")));
        }
        if entry.encrypted() {
            return Err(refuse(format!("entry `{raw_name}` is encrypted")));
        }
        if entry.is_dir() {
            continue;
        }
        // Inflate at most one byte past the cap: the archive's own size fields may lie.
        let mut content = Vec::new();
        (&mut entry)
            .take(limits.max_entry_bytes + 1)
            .read_to_end(&mut content)
            .map_err(|e| refuse(format!("entry `{raw_name}` cannot be inflated: {e}")))?;
        let len = content.len() as u64;
        if len > limits.max_entry_bytes {
            return Err(refuse(format!(
                "entry `{raw_name}` inflates to more than {} bytes",
                limits.max_entry_bytes
            )));
        }
        total += len;
        if total > limits.max_total_bytes {
            return Err(refuse(format!(
                "the archive inflates to more than {} bytes",
                limits.max_total_bytes
            )));
        }
        if files.insert(path, content).is_some() {
            return Err(refuse(format!("entry `{raw_name}` appears twice")));
        }
    }
    Ok(strip_top(files))
}

/// The reference's archives hold one top folder (`PizzaShackAPI-1.0.0/api.yaml`); a
/// project zipped from inside its folder has none. Either is accepted.
fn strip_top(files: BTreeMap<String, Vec<u8>>) -> Files {
    let first = |p: &str| p.split_once('/').map(|(top, _)| top.to_string());
    let top = files.keys().next().and_then(|p| first(p));
    match top {
        Some(top) if files.keys().all(|p| first(p).as_deref() == Some(top.as_str())) => {
            let prefix = format!("{top}/");
            let files = files
                .into_iter()
                .map(|(p, b)| (p[prefix.len()..].to_string(), b))
                .collect();
            Files { files, top: Some(top) }
        }
        _ => Files { files, top: None },
    }
}

/// Reads a project from a directory with the same limits, refusing symbolic links
/// anywhere inside it.
pub fn read_dir(root: &Path, limits: Limits) -> Result<Files, ProjectError> {
    let refuse = |m: String| ProjectError::Archive(m);
    let mut files = BTreeMap::new();
    let mut total = 0u64;
    let mut entries = 0usize;
    let mut pending = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, prefix)) = pending.pop() {
        let listing = std::fs::read_dir(&dir).map_err(|e| refuse(format!("{}: {e}", dir.display())))?;
        for item in listing {
            let item = item.map_err(|e| refuse(format!("{}: {e}", dir.display())))?;
            entries += 1;
            if entries > limits.max_entries {
                return Err(refuse(format!(
                    "{} holds more than {} entries",
                    root.display(),
                    limits.max_entries
                )));
            }
            let name = item.file_name().to_string_lossy().into_owned();
            let rel = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            let meta = std::fs::symlink_metadata(item.path()).map_err(|e| refuse(format!("{rel}: {e}")))?;
            if meta.file_type().is_symlink() {
                return Err(refuse(format!("`{rel}` is a symbolic link")));
            }
            if meta.is_dir() {
                pending.push((item.path(), rel));
                continue;
            }
            if !meta.is_file() {
                return Err(refuse(format!("`{rel}` is not a regular file")));
            }
            if meta.len() > limits.max_entry_bytes {
                return Err(refuse(format!(
                    "`{rel}` is larger than {} bytes",
                    limits.max_entry_bytes
                )));
            }
            total += meta.len();
            if total > limits.max_total_bytes {
                return Err(refuse(format!(
                    "{} holds more than {} bytes",
                    root.display(),
                    limits.max_total_bytes
                )));
            }
            let mut bytes = Vec::new();
            std::fs::File::open(item.path())
                .and_then(|f| f.take(limits.max_entry_bytes + 1).read_to_end(&mut bytes))
                .map_err(|e| refuse(format!("{rel}: {e}")))?;
            if bytes.len() as u64 > limits.max_entry_bytes {
                return Err(refuse(format!("`{rel}` grew past {} bytes", limits.max_entry_bytes)));
            }
            files.insert(rel, bytes);
        }
    }
    let top = root.file_name().map(|n| n.to_string_lossy().into_owned());
    Ok(Files { files, top })
}

/// Writes the files into a zip under one top folder, as the reference's exports are.
pub fn write_zip(top: &str, files: &Files) -> Result<Vec<u8>, ProjectError> {
    let top = safe_path(top).map_err(ProjectError::Archive)?;
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .unix_permissions(0o644);
    for (path, bytes) in &files.files {
        // Every name is checked as a reader would: a project written here reads back.
        let path = safe_path(path).map_err(ProjectError::Archive)?;
        out.start_file(format!("{top}/{path}"), options)
            .map_err(|e| ProjectError::Archive(e.to_string()))?;
        out.write_all(bytes).map_err(|e| ProjectError::Archive(e.to_string()))?;
    }
    let cursor = out.finish().map_err(|e| ProjectError::Archive(e.to_string()))?;
    Ok(cursor.into_inner())
}

/// Writes the files into a directory (created), refusing to write outside it.
pub fn write_dir(root: &Path, files: &Files) -> Result<(), ProjectError> {
    for (path, bytes) in &files.files {
        let rel = safe_path(path).map_err(ProjectError::Archive)?;
        let target = root.join(&rel);
        // Never through a link already there.
        let mut at = root.to_path_buf();
        for part in rel.split('/') {
            at.push(part);
            if std::fs::symlink_metadata(&at).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(ProjectError::Archive(format!("{} is a symbolic link", at.display())));
            }
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| ProjectError::Archive(format!("{}: {e}", parent.display())))?;
        }
        std::fs::write(&target, bytes).map_err(|e| ProjectError::Archive(format!("{}: {e}", target.display())))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (name, bytes) in entries {
            out.start_file(*name, zip::write::SimpleFileOptions::default()).unwrap();
            out.write_all(bytes).unwrap();
        }
        out.finish().unwrap().into_inner()
    }

    #[test]
    fn the_top_folder_is_stripped_and_remembered() {
        let z = zip_of(&[("Pets-1.0.0/api.yaml", b"a"), ("Pets-1.0.0/Docs/x/document.yaml", b"b")]);
        let f = read_zip(&z, Limits::default()).unwrap();
        assert_eq!(f.top.as_deref(), Some("Pets-1.0.0"));
        assert_eq!(f.get("api.yaml"), Some(&b"a"[..]));
        assert_eq!(f.under("Docs").count(), 1);
    }

    #[test]
    fn a_project_without_top_folder_is_read_as_is() {
        let z = zip_of(&[("api.yaml", b"a"), ("Definitions/swagger.yaml", b"b")]);
        let f = read_zip(&z, Limits::default()).unwrap();
        assert_eq!(f.top, None);
        assert!(f.get("Definitions/swagger.yaml").is_some());
    }

    #[test]
    fn unsafe_names_are_refused() {
        for bad in ["../evil", "a/../../evil", "/etc/passwd", "C:/x", "a\\..\\..\\b", "a\0b"] {
            let z = zip_of(&[(bad, b"x")]);
            let e = read_zip(&z, Limits::default()).unwrap_err().to_string();
            assert!(e.contains("entry"), "{bad}: {e}");
        }
    }

    #[test]
    fn symlinks_are_refused() {
        let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        out.add_symlink("p/link", "/etc/passwd", zip::write::SimpleFileOptions::default())
            .unwrap();
        let z = out.finish().unwrap().into_inner();
        let e = read_zip(&z, Limits::default()).unwrap_err().to_string();
        assert!(e.contains("symbolic link"), "{e}");
    }

    #[test]
    fn a_bomb_stops_at_the_cap_whatever_the_header_says() {
        // 8 MiB of zeros deflate to a few kilobytes.
        let zeros = vec![0u8; 8 << 20];
        let z = zip_of(&[("p/a", &zeros)]);
        assert!(z.len() < 100_000);
        let limits = Limits {
            max_entry_bytes: 1 << 20,
            ..Limits::default()
        };
        let e = read_zip(&z, limits).unwrap_err().to_string();
        assert!(e.contains("inflates to more than 1048576 bytes"), "{e}");
        let total = Limits {
            max_total_bytes: 12 << 20,
            ..Limits::default()
        };
        let e = read_zip(&zip_of(&[("p/a", &zeros), ("p/b", &zeros)]), total)
            .unwrap_err()
            .to_string();
        assert!(e.contains("the archive inflates to more than"), "{e}");
    }

    #[test]
    fn too_many_entries_are_refused() {
        let names: Vec<String> = (0..11).map(|i| format!("p/{i}")).collect();
        let entries: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b"x"[..])).collect();
        let limits = Limits {
            max_entries: 10,
            ..Limits::default()
        };
        let e = read_zip(&zip_of(&entries), limits).unwrap_err().to_string();
        assert!(e.contains("11 entries"), "{e}");
    }

    #[test]
    fn garbage_is_not_a_zip() {
        let e = read_zip(b"not a zip", Limits::default()).unwrap_err().to_string();
        assert!(e.contains("not a zip archive"), "{e}");
    }

    #[test]
    fn write_then_read_gives_the_same_files() {
        let mut f = Files::default();
        f.put("api.yaml", "type: api");
        f.put("Docs/Guide/document.yaml", "x");
        let z = write_zip("Pets-1.0.0", &f).unwrap();
        let back = read_zip(&z, Limits::default()).unwrap();
        assert_eq!(back.files, f.files);
        assert_eq!(back.top.as_deref(), Some("Pets-1.0.0"));
    }

    #[test]
    fn directories_are_read_without_following_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = Files::default();
        f.put("api.yaml", "a");
        f.put("Definitions/swagger.yaml", "b");
        write_dir(dir.path(), &f).unwrap();
        let back = read_dir(dir.path(), Limits::default()).unwrap();
        assert_eq!(back.files, f.files);
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("Definitions/link")).unwrap();
        let e = read_dir(dir.path(), Limits::default()).unwrap_err().to_string();
        assert!(e.contains("symbolic link"), "{e}");
    }
}
