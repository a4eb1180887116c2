//! libnftnl and libmnl, loaded when nftables is first used rather than at
//! every start.
//!
//! Why: most runs never touch nftables (a sysctl-only `plan` or `apply`,
//! `history`, `status`), yet a binary linked to libnftnl maps it and
//! libmnl and binds their ~400 symbols before `main`: about a tenth of a
//! sysctl-only `apply` (issue 15's benchmark). Loading them on first use
//! also means a host without libnftnl still runs every sysctl command, and
//! a NOTRACK command there fails with an error naming the library instead
//! of the binary not starting at all.
//!
//! How: `build.rs` gives each function in `lazy_symbols.txt` a trampoline
//! under the function's own name that jumps through its slot in
//! [`SLOTS`]. [`load`] (called by every [`Nft`](super::Nft) entry point
//! before any libnftnl object exists) opens both libraries once and fills
//! the slots. A trampoline reached before that stops the process with a
//! message (a bug in tcto-tune, caught by any test on that path), never a
//! jump to nowhere.
//!
//! Only with the `lazy-nftnl` feature, which the CLI and the Ansible
//! module enable: an embedder whose own code calls libnftnl too would
//! reach these trampolines (the names are the library's), so the library
//! alone links libnftnl as usual.
//!
//! The libraries' names are their sonames on the machine the binary was
//! built for (Debian 12: libnftnl11, libmnl0); the package depends on them
//! by name, since the binary no longer lists them itself.
// FFI: dlopen/dlsym, and the trampolines' slots.
#![allow(unsafe_code)]

use std::ffi::{c_void, CStr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use super::super::SystemError;

include!(concat!(env!("OUT_DIR"), "/nft_lazy.rs"));

/// libnftnl's soname (the major version nftnl-sys 0.6's bindings are for).
pub const LIBNFTNL: &CStr = c"libnftnl.so.11";
/// libmnl's soname.
pub const LIBMNL: &CStr = c"libmnl.so.0";

/// Each function's address once loaded, in `NAMES` order; 0 before.
static SLOTS: [AtomicUsize; COUNT] = [const { AtomicUsize::new(0) }; COUNT];

/// Whether the trampolines are in this build (see `build.rs`): the
/// `lazy-nftnl` feature on x86-64 or AArch64 Linux. Otherwise the
/// libraries are linked and loaded as usual and [`load`] does nothing.
const TRAMPOLINES: bool = cfg!(all(
    feature = "lazy-nftnl",
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
));

/// Open libnftnl and libmnl and fill every slot, once per process; later
/// calls return the first call's result.
pub fn load() -> Result<(), SystemError> {
    static LOADED: OnceLock<Result<(), String>> = OnceLock::new();
    if !TRAMPOLINES {
        return Ok(());
    }
    LOADED
        .get_or_init(open_and_fill)
        .clone()
        .map_err(|why| SystemError::NftLibrary { why })
}

fn open_and_fill() -> Result<(), String> {
    let nftnl = open(LIBNFTNL)?;
    let mnl = open(LIBMNL)?;
    for (slot, name) in SLOTS.iter().zip(NAMES.iter()) {
        let (handle, lib) = if name.to_bytes().starts_with(b"mnl_") {
            (mnl, LIBMNL)
        } else {
            (nftnl, LIBNFTNL)
        };
        // SAFETY: `handle` is a live handle from dlopen (never closed) and
        // `name` a NUL-terminated string.
        let address = unsafe { libc::dlsym(handle, name.as_ptr()) };
        if address.is_null() {
            return Err(format!(
                "{} has no function `{}` (tcto-tune needs libnftnl 1.2.4 or newer)",
                lib.to_string_lossy(),
                name.to_string_lossy()
            ));
        }
        // Release: a thread that sees the address sees the library loaded.
        slot.store(address as usize, Ordering::Release);
    }
    Ok(())
}

/// dlopen `lib` for good (never closed: the slots point into it).
fn open(lib: &CStr) -> Result<*mut c_void, String> {
    // SAFETY: a NUL-terminated name; RTLD_LOCAL keeps the library's
    // symbols out of the global scope (nothing else resolves against it).
    let handle = unsafe { libc::dlopen(lib.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    if handle.is_null() {
        // SAFETY: dlerror returns NULL or a NUL-terminated string that
        // stays valid until the next dl* call on this thread; copied now.
        let why = unsafe { libc::dlerror() };
        let why = if why.is_null() {
            "unknown error".to_owned()
        } else {
            // SAFETY: as above.
            unsafe { CStr::from_ptr(why) }
                .to_string_lossy()
                .into_owned()
        };
        return Err(format!(
            "cannot load {}: {why} (on Debian: apt-get install libnftnl11 libmnl0)",
            lib.to_string_lossy()
        ));
    }
    Ok(handle)
}

/// Where a trampoline goes when its slot is still empty: a libnftnl call
/// on a path that did not call [`load`] first. Stop with the name of the
/// bug rather than jump to address 0.
#[cfg_attr(not(feature = "lazy-nftnl"), allow(dead_code))]
extern "C" fn unloaded() -> ! {
    let msg = b"tcto-tune: internal error: libnftnl was called before system::nft::lazy::load\n";
    // SAFETY: writing a static buffer to stderr; nothing else is assumed
    // about the process state (this may run anywhere in libnftnl's caller).
    unsafe {
        libc::write(2, msg.as_ptr().cast(), msg.len());
        libc::abort()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_function_is_in_the_libraries_and_load_fills_every_slot() {
        load().unwrap();
        if TRAMPOLINES {
            let empty: Vec<_> = SLOTS
                .iter()
                .zip(NAMES.iter())
                .filter(|(s, _)| s.load(Ordering::Acquire) == 0)
                .map(|(_, n)| n.to_string_lossy().into_owned())
                .collect();
            assert!(empty.is_empty(), "{empty:?}");
        }
        // Calling through a trampoline reaches the library.
        // SAFETY: a table allocated and freed at once.
        unsafe {
            let t = nftnl::nftnl_sys::nftnl_table_alloc();
            assert!(!t.is_null());
            nftnl::nftnl_sys::nftnl_table_free(t);
        }
    }
}
