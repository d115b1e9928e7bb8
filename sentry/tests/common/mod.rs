//! What every end-to-end test file of the sentry shares: the platforms each
//! test runs on, and `platform_tests!`, which turns `fn name(platform) { .. }`
//! into the tests `name::kvm` and `name::systrap` (as gVisor runs each syscall
//! test on each platform). The KVM variants skip, saying why, when /dev/kvm
//! is unusable.

/// Whether /dev/kvm opens read-write; prints why not when it does not.
pub fn kvm_available() -> bool {
    match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
    {
        Ok(_) => true,
        Err(e) => {
            eprintln!("/dev/kvm is not usable ({e}): skipping the kvm variant");
            false
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    Kvm,
    Systrap,
}

impl Platform {
    /// The name `sentry exec --platform` takes.
    pub fn name(self) -> &'static str {
        match self {
            Platform::Kvm => "kvm",
            Platform::Systrap => "systrap",
        }
    }

    pub fn available(self) -> bool {
        match self {
            Platform::Kvm => kvm_available(),
            Platform::Systrap => true,
        }
    }
}

/// `fn name(platform: Platform) { body }` → tests `name::kvm` and `name::systrap`.
macro_rules! platform_tests {
    ($($(#[$meta:meta])* fn $name:ident($platform:ident: Platform) $body:block)*) => {$(
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            fn body($platform: Platform) $body

            #[test]
            fn kvm() {
                if Platform::Kvm.available() {
                    body(Platform::Kvm);
                }
            }

            #[test]
            fn systrap() {
                body(Platform::Systrap);
            }
        }
    )*};
}
