//! Paths under `--root`, resolved as the image sees them.
//!
//! Inside an image an absolute symlink (`etc/sysctl.d -> /etc/sysctl.d`)
//! means a path *in the image*; followed naively from the build host it
//! lands on the host's own `/etc`, and a persist "into the image" writes
//! the host's files. So every path persist reads or writes under a root is
//! walked component by component here, like systemd's `--root`
//! (`chase()` with a root prefix): an absolute link restarts at the root,
//! `..` goes up inside it. Where systemd would clamp a `..` above the root,
//! we refuse instead (`persist-root-escape`, naming the link): such a link
//! was made for a different root, and guessing where it was meant to land
//! could write the wrong file. A chain of more than 40 links (the kernel's
//! own limit) is a loop.
//!
//! The result contains no symbolic link below the root, so the write path
//! can check cheaply that it still does not ([`no_link_below`]): a
//! directory swapped for a link after planning (or before a `rollback`,
//! which writes the journaled paths) is refused, never followed.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

/// Links followed before the walk counts as a loop (Linux's MAXSYMLINKS).
const MAX_LINKS: usize = 40;

/// Why a path under the root cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unresolvable {
    /// A `..` (in a link's target or the path) would climb above the root.
    Escape {
        /// Host path of the link whose target climbs out (or the path).
        link: String,
        /// The link's target as stored.
        target: String,
    },
    /// More than [`MAX_LINKS`] links.
    Loop {
        /// Host path of the last link followed.
        link: String,
    },
    /// lstat or readlink failed (other than "absent").
    Io {
        /// Host path.
        path: String,
        /// The error, as text.
        error: String,
    },
}

impl std::fmt::Display for Unresolvable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unresolvable::Escape { link, target } => write!(
                f,
                "`{link}` is a symbolic link to `{target}`, which leads out of the root directory"
            ),
            Unresolvable::Loop { link } => {
                write!(f, "too many levels of symbolic links (a loop) at `{link}`")
            }
            Unresolvable::Io { path, error } => write!(f, "cannot inspect `{path}`: {error}"),
        }
    }
}

/// Host path of the in-image `path` under `root` (canonical, absolute),
/// following every link on the way as the image sees it. The last
/// component is followed only when `follow_last`: persist never follows a
/// link at a file it writes (that is `persist-target-symlink`), but reads
/// through sysctl.d entries that are links.
pub fn resolve(root: &Path, path: &str, follow_last: bool) -> Result<PathBuf, Unresolvable> {
    let mut todo: VecDeque<OsString> = names(Path::new(path));
    let mut inside: Vec<OsString> = Vec::new();
    let mut links = 0;
    // The link whose target is being walked, for the error message.
    let mut via: Option<(PathBuf, PathBuf)> = None;
    while let Some(name) = todo.pop_front() {
        if name == ".." {
            if inside.pop().is_none() {
                let (link, target) = via
                    .clone()
                    .unwrap_or_else(|| (root.join(path.trim_start_matches('/')), path.into()));
                return Err(Unresolvable::Escape {
                    link: link.display().to_string(),
                    target: target.display().to_string(),
                });
            }
            continue;
        }
        let here = join(root, &inside).join(&name);
        let last = todo.is_empty();
        let meta = match fs::symlink_metadata(&here) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            // A file where a directory is expected: left to the caller's
            // open or create, which fails with ENOTDIR.
            Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => None,
            Err(e) => return Err(io_err(&here, e)),
            Ok(m) => Some(m),
        };
        let is_link = meta.as_ref().is_some_and(|m| m.file_type().is_symlink());
        if !is_link || (last && !follow_last) {
            inside.push(name);
            continue;
        }
        links += 1;
        if links > MAX_LINKS {
            return Err(Unresolvable::Loop {
                link: here.display().to_string(),
            });
        }
        let target = fs::read_link(&here).map_err(|e| io_err(&here, e))?;
        if target.is_absolute() {
            inside.clear();
        }
        for n in names(&target).into_iter().rev() {
            todo.push_front(n);
        }
        via = Some((here, target));
    }
    Ok(join(root, &inside))
}

fn names(p: &Path) -> VecDeque<OsString> {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_owned()),
            Component::ParentDir => Some("..".into()),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect()
}

fn join(root: &Path, inside: &[OsString]) -> PathBuf {
    let mut p = root.to_owned();
    p.extend(inside);
    p
}

fn io_err(path: &Path, e: io::Error) -> Unresolvable {
    Unresolvable::Io {
        path: path.display().to_string(),
        error: e.to_string(),
    }
}

/// The first existing ancestor of `path` (the path itself excluded) that
/// is a symbolic link, with its target. Paths persist writes were resolved
/// by [`resolve`] and hold none; one found now was planted since.
pub fn no_link_below(path: &Path) -> Option<(PathBuf, PathBuf)> {
    let mut cur = PathBuf::new();
    let parent = path.parent()?;
    for c in parent.components() {
        cur.push(c);
        if let Ok(m) = fs::symlink_metadata(&cur) {
            if m.file_type().is_symlink() {
                let target = fs::read_link(&cur).unwrap_or_default();
                return Some((cur, target));
            }
        } else {
            // Absent from here on: nothing below can be a link yet.
            return None;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    struct Tmp(PathBuf);
    impl Tmp {
        fn new(tag: &str) -> Self {
            let p = std::env::temp_dir().join(format!("tcto-resolve-{tag}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&p);
            fs::create_dir_all(p.join("root")).unwrap();
            Tmp(fs::canonicalize(p).unwrap())
        }
        fn root(&self) -> PathBuf {
            self.0.join("root")
        }
    }
    impl Drop for Tmp {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn an_absolute_link_is_taken_inside_the_root() {
        let t = Tmp::new("abs");
        let root = t.root();
        fs::create_dir_all(root.join("real/sysctl.d")).unwrap();
        symlink("/real", root.join("etc")).unwrap();
        let p = resolve(&root, "/etc/sysctl.d/99-tcto-tune.conf", false).unwrap();
        assert_eq!(p, root.join("real/sysctl.d/99-tcto-tune.conf"));
        // Absent components are kept as written.
        let p = resolve(&root, "/etc/new/x", false).unwrap();
        assert_eq!(p, root.join("real/new/x"));
    }

    #[test]
    fn a_relative_link_climbing_above_the_root_is_an_escape_naming_it() {
        let t = Tmp::new("climb");
        let root = t.root();
        fs::create_dir_all(root.join("etc")).unwrap();
        symlink("../../../outside", root.join("etc/sysctl.d")).unwrap();
        let e = resolve(&root, "/etc/sysctl.d/x.conf", false).unwrap_err();
        assert_eq!(
            e,
            Unresolvable::Escape {
                link: root.join("etc/sysctl.d").display().to_string(),
                target: "../../../outside".into()
            }
        );
        // `..` that stays inside is fine.
        fs::create_dir_all(root.join("usr/lib/sysctl.d")).unwrap();
        symlink("../usr/lib/sysctl.d", root.join("etc/other")).unwrap();
        assert_eq!(
            resolve(&root, "/etc/other/a", false).unwrap(),
            root.join("usr/lib/sysctl.d/a")
        );
    }

    #[test]
    fn loops_are_named_and_the_last_link_is_followed_only_when_asked() {
        let t = Tmp::new("loop");
        let root = t.root();
        fs::create_dir_all(root.join("etc")).unwrap();
        // The crafted image: inside the image this points at itself.
        symlink("/etc/sysctl.d", root.join("etc/sysctl.d")).unwrap();
        assert!(matches!(
            resolve(&root, "/etc/sysctl.d/x", false),
            Err(Unresolvable::Loop { .. })
        ));
        assert_eq!(
            resolve(&root, "/etc/sysctl.d", false).unwrap(),
            root.join("etc/sysctl.d")
        );
        symlink("/etc/target", root.join("etc/file")).unwrap();
        assert_eq!(
            resolve(&root, "/etc/file", true).unwrap(),
            root.join("etc/target")
        );
    }

    #[test]
    fn a_link_planted_among_the_directories_is_found() {
        let t = Tmp::new("planted");
        let root = t.root();
        fs::create_dir_all(root.join("etc/sysctl.d")).unwrap();
        let f = root.join("etc/sysctl.d/99-tcto-tune.conf");
        assert_eq!(no_link_below(&f), None);
        fs::remove_dir_all(root.join("etc/sysctl.d")).unwrap();
        symlink("/tmp", root.join("etc/sysctl.d")).unwrap();
        assert_eq!(
            no_link_below(&f),
            Some((root.join("etc/sysctl.d"), PathBuf::from("/tmp")))
        );
    }
}
