//! The systrap platform on its own: raw machine code in a stub process, no
//! kernel. Platform-specific by nature (the KVM twin is platform_kvm.rs).

use std::sync::Arc;

use sentry::mm::memfile::{MemoryFile, PAGE_SIZE};
use sentry::platform::kvm::layout::PLATFORM_RESERVED;
use sentry::platform::systrap::layout::{STUB_CODE_VA, STUB_REGION_START};
use sentry::platform::systrap::SystrapPlatform;
use sentry::platform::{AccessKind, Event, Perms, Platform, PlatformError, UserRegs};

const CODE_VA: u64 = 0x40_0000;
const DATA_VA: u64 = 0x60_0000;

const RX: Perms = Perms {
    read: true,
    write: false,
    execute: true,
};
const RW: Perms = Perms {
    read: true,
    write: true,
    execute: false,
};

fn platform() -> (Arc<MemoryFile>, SystrapPlatform) {
    let memory = Arc::new(
        MemoryFile::new(PLATFORM_RESERVED + (64 << 20), PLATFORM_RESERVED).expect("memory file"),
    );
    let platform = SystrapPlatform::new(Arc::clone(&memory)).expect("systrap platform");
    (memory, platform)
}

fn load_code(memory: &MemoryFile, code: &[u8]) -> u64 {
    let frame = memory.allocate_page().expect("frame");
    memory.write(frame, code);
    frame
}

fn start(rip: u64) -> UserRegs {
    UserRegs {
        rip,
        rflags: 0x202,
        ..Default::default()
    }
}

#[test]
fn syscall_fault_exception_and_remap_are_seen() {
    let (memory, platform) = platform();
    assert_eq!(platform.max_user_address(), STUB_REGION_START);
    let mut space = platform.new_address_space().expect("address space");
    let mut context = platform.new_context().expect("context");
    let code: &[u8] = &[
        0xb8, 0x27, 0x00, 0x00, 0x00, // mov eax, 39 (getpid)
        0x0f, 0x05, // syscall
        0x48, 0x8b, 0x1c, 0x25, 0x00, 0x00, 0x60, 0x00, // mov rbx, [0x600000]
        0x0f, 0x0b, // ud2
    ];
    let frame = load_code(&memory, code);
    space.map(CODE_VA, PAGE_SIZE, frame, RX).expect("map code");

    let mut regs = start(CODE_VA);
    regs.r12 = 0x1234_5678;
    let event = context.switch(space.as_mut(), &mut regs).expect("run");
    assert_eq!(event, Event::Syscall);
    assert_eq!(regs.rax, 39);
    assert_eq!(regs.rip, CODE_VA + 7);
    assert_eq!(regs.rcx, CODE_VA + 7);
    assert_eq!(regs.r12, 0x1234_5678);

    regs.rax = 7; // the "result" of getpid
    let event = context.switch(space.as_mut(), &mut regs).expect("run");
    assert_eq!(
        event,
        Event::PageFault {
            addr: DATA_VA,
            access: AccessKind::Read,
            present: false
        }
    );
    assert_eq!(regs.rip, CODE_VA + 7);
    assert_eq!(regs.rax, 7);

    let first = memory.allocate_page().expect("frame");
    memory.write_u64(first, 42);
    space.map(DATA_VA, PAGE_SIZE, first, RW).expect("map data");
    let event = context.switch(space.as_mut(), &mut regs).expect("run");
    assert_eq!(
        event,
        Event::Exception {
            vector: 6,
            error_code: 0
        }
    );
    assert_eq!(regs.rbx, 42);

    // Replace a present mapping, then reprotect it (an mprotect request).
    let second = memory.allocate_page().expect("frame");
    memory.write_u64(second, 43);
    space.map(DATA_VA, PAGE_SIZE, second, RW).expect("remap");
    space
        .map(DATA_VA, PAGE_SIZE, second, RX)
        .expect("reprotect");
    regs.rip = CODE_VA + 7;
    context.switch(space.as_mut(), &mut regs).expect("run");
    assert_eq!(regs.rbx, 43, "the stub still reads the old frame");

    // The sentry's writes are the application's memory, and back.
    memory.write_u64(second, 44);
    regs.rip = CODE_VA + 7;
    context.switch(space.as_mut(), &mut regs).expect("run");
    assert_eq!(regs.rbx, 44);

    space.unmap(DATA_VA, PAGE_SIZE).expect("unmap");
    regs.rip = CODE_VA + 7;
    let event = context.switch(space.as_mut(), &mut regs).expect("run");
    assert!(matches!(event, Event::PageFault { addr: DATA_VA, .. }));
}

#[test]
fn writes_faults_fs_base_and_kicks() {
    let (memory, platform) = platform();
    let mut space = platform.new_address_space().expect("address space");
    let mut context = platform.new_context().expect("context");
    let code: &[u8] = &[
        0x48, 0xc7, 0x04, 0x25, 0x00, 0x00, 0x60, 0x00, 0x05, 0x00, 0x00,
        0x00, // mov qword [0x600000], 5
        0x64, 0x48, 0x8b, 0x04, 0x25, 0x08, 0x00, 0x00, 0x00, // mov rax, fs:[8]
        0xcc, // int3
        0xeb, 0xfe, // jmp . (spin until kicked)
    ];
    space
        .map(CODE_VA, PAGE_SIZE, load_code(&memory, code), RX)
        .expect("map code");
    let data = memory.allocate_page().expect("frame");
    memory.write_u64(data + 8, 0xf5);
    // Read-only first: the store is a protection fault.
    space.map(DATA_VA, PAGE_SIZE, data, RX).expect("map data");
    let mut regs = start(CODE_VA);
    regs.fs_base = DATA_VA;
    let event = context.switch(space.as_mut(), &mut regs).expect("run");
    // `present` reflects the host's page tables, which fill in lazily: a
    // never-touched page reads as not present. The kernel decides by VMAs.
    assert!(
        matches!(
            event,
            Event::PageFault {
                addr: DATA_VA,
                access: AccessKind::Write,
                ..
            }
        ),
        "{event:?}"
    );
    space
        .map(DATA_VA, PAGE_SIZE, data, RW)
        .expect("make writable");
    let event = context.switch(space.as_mut(), &mut regs).expect("run");
    assert_eq!(
        event,
        Event::Exception {
            vector: 3,
            error_code: 0
        }
    );
    assert_eq!(memory.read_u64(data), 5);
    assert_eq!(regs.rax, 0xf5, "fs-relative load went through fs_base");
    assert_eq!(regs.fs_base, DATA_VA);

    let kicker = context.interrupter();
    let thread = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(50));
        kicker.interrupt();
    });
    let event = context.switch(space.as_mut(), &mut regs).expect("run");
    thread.join().expect("kicker");
    assert_eq!(event, Event::Interrupted);
    assert!(regs.rip >= CODE_VA + 22 && regs.rip <= CODE_VA + 24);
}

/// The application cannot make a host syscall, not even by jumping into the
/// stub's code: a call the stub never makes kills the stub, nothing else.
#[test]
fn jumping_into_the_stub_cannot_reach_the_host() {
    let (memory, platform) = platform();
    let mut space = platform.new_address_space().expect("address space");
    let mut context = platform.new_context().expect("context");
    // Find a `syscall` (0f 05) in the stub's code page and jump to it with
    // rax = getpid, which is not on the stub's list.
    let stub = sentry::platform::systrap::stub::stub_code();
    let at = stub
        .bytes
        .windows(2)
        .position(|w| w == [0x0f, 0x05])
        .expect("a syscall instruction") as u64;
    let mut code = vec![0xb8, 0x27, 0x00, 0x00, 0x00]; // mov eax, 39
    code.extend([0x48, 0xbb]); // movabs rbx, imm64
    code.extend((STUB_CODE_VA + at).to_le_bytes());
    code.extend([0xff, 0xe3]); // jmp rbx
    space
        .map(CODE_VA, PAGE_SIZE, load_code(&memory, &code), RX)
        .expect("map code");
    let mut regs = start(CODE_VA);
    match context.switch(space.as_mut(), &mut regs) {
        Err(PlatformError::StubDied { status, .. }) => {
            assert!(status.contains("signal 31"), "{status}")
        }
        other => panic!("expected the stub to die of SIGSYS, got {other:?}"),
    }
}

#[test]
fn application_mappings_stay_below_the_stub() {
    let (memory, platform) = platform();
    let mut space = platform.new_address_space().expect("address space");
    let frame = memory.allocate_page().expect("frame");
    assert!(space.map(STUB_REGION_START, PAGE_SIZE, frame, RW).is_err());
    assert!(space
        .map(STUB_REGION_START - PAGE_SIZE, 2 * PAGE_SIZE, frame, RW)
        .is_err());
    assert!(space.unmap(STUB_CODE_VA, PAGE_SIZE).is_err());
    assert!(space
        .map(STUB_REGION_START - PAGE_SIZE, PAGE_SIZE, frame, RW)
        .is_ok());
}

/// What the host sees of a stub: one fd (the memory file), only the stub
/// region mapped, seccomp filter mode, no_new_privs, the trapped signals
/// caught and everything else blocked.
#[test]
fn the_stub_holds_nothing_but_the_memory_file() {
    use sentry::platform::systrap::SystrapAddressSpace;

    let (memory, platform) = platform();
    let mut space = platform.new_address_space().expect("address space");
    let pid = space
        .as_any_mut()
        .downcast_mut::<SystrapAddressSpace>()
        .expect("systrap address space")
        .stub_pid();
    let proc_dir = format!("/proc/{pid}");
    let fds: Vec<String> = std::fs::read_dir(format!("{proc_dir}/fd"))
        .expect("fd dir")
        .map(|e| {
            std::fs::read_link(e.expect("entry").path())
                .expect("fd link")
                .display()
                .to_string()
        })
        .collect();
    assert_eq!(fds.len(), 1, "{fds:?}");
    assert!(fds[0].contains("rvisor-memory"), "{fds:?}");
    let _ = memory;

    let maps = std::fs::read_to_string(format!("{proc_dir}/maps")).expect("maps");
    for line in maps.lines() {
        let start = u64::from_str_radix(line.split('-').next().unwrap(), 16).unwrap();
        assert!(
            start >= STUB_REGION_START || line.contains("[vsyscall]"),
            "unexpected mapping in the stub: {line}"
        );
    }
    let status = std::fs::read_to_string(format!("{proc_dir}/status")).expect("status");
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(field("Seccomp:"), "2");
    assert_eq!(field("NoNewPrivs:"), "1");
    let caught = u64::from_str_radix(&field("SigCgt:"), 16).unwrap();
    for signo in sentry::platform::systrap::stub::TRAPPED_SIGNALS {
        assert_ne!(caught & (1 << (signo - 1)), 0, "signal {signo} not caught");
    }
}
