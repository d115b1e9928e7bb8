//! The KVM platform on its own: raw machine code in guest ring 3, no kernel.

use std::sync::Arc;

use sentry::mm::memfile::{MemoryFile, PAGE_SIZE};
use sentry::platform::kvm::{layout::PLATFORM_RESERVED, KvmPlatform};
use sentry::platform::{AccessKind, Event, Perms, Platform, UserRegs};

const CODE_VA: u64 = 0x40_0000;
const DATA_VA: u64 = 0x60_0000;

fn platform() -> Option<(Arc<MemoryFile>, KvmPlatform)> {
    if !std::path::Path::new("/dev/kvm").exists() {
        eprintln!("no /dev/kvm; skipping");
        return None;
    }
    let memory = Arc::new(
        MemoryFile::new(PLATFORM_RESERVED + (64 << 20), PLATFORM_RESERVED).expect("memory file"),
    );
    let platform = KvmPlatform::new(Arc::clone(&memory)).expect("kvm platform");
    Some((memory, platform))
}

#[test]
fn syscall_fault_exception_and_remap_are_seen() {
    let Some((memory, platform)) = platform() else {
        return;
    };
    let mut space = platform.new_address_space().expect("address space");
    let mut context = platform.new_context().expect("vcpu");

    let code: &[u8] = &[
        0xb8, 0x27, 0x00, 0x00, 0x00, // mov eax, 39
        0x0f, 0x05, // syscall
        0x48, 0x8b, 0x1c, 0x25, 0x00, 0x00, 0x60, 0x00, // mov rbx, [0x600000]
        0x0f, 0x0b, // ud2
    ];
    let code_frame = memory.allocate_page().expect("frame");
    memory.write(code_frame, code);
    let rx = Perms {
        read: true,
        write: false,
        execute: true,
    };
    space
        .map(CODE_VA, PAGE_SIZE, code_frame, rx)
        .expect("map code");

    let mut regs = UserRegs {
        rip: CODE_VA,
        rsp: 0,
        rflags: 0x202,
        ..Default::default()
    };
    let event = context.switch(space.as_mut(), &mut regs).expect("run");
    assert_eq!(event, Event::Syscall);
    assert_eq!(regs.rax, 39);
    assert_eq!(regs.rip, CODE_VA + 7);
    assert_eq!(regs.rcx, CODE_VA + 7);

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

    let first = memory.allocate_page().expect("frame");
    memory.write_u64(first, 42);
    let rw = Perms {
        read: true,
        write: true,
        execute: false,
    };
    space.map(DATA_VA, PAGE_SIZE, first, rw).expect("map data");
    let event = context.switch(space.as_mut(), &mut regs).expect("run");
    assert_eq!(
        event,
        Event::Exception {
            vector: 6,
            error_code: 0
        }
    );
    assert_eq!(regs.rbx, 42);

    // Replace a present mapping: the guest must see the new frame (KVM.md quirk 3).
    let second = memory.allocate_page().expect("frame");
    memory.write_u64(second, 43);
    space
        .map(DATA_VA, PAGE_SIZE, second, rw)
        .expect("remap data");
    regs.rip = CODE_VA + 7;
    let event = context.switch(space.as_mut(), &mut regs).expect("run");
    assert_eq!(
        event,
        Event::Exception {
            vector: 6,
            error_code: 0
        }
    );
    assert_eq!(regs.rbx, 43, "guest still reads the old frame");

    // And an unmap must fault again.
    space.unmap(DATA_VA, PAGE_SIZE).expect("unmap");
    regs.rip = CODE_VA + 7;
    let event = context.switch(space.as_mut(), &mut regs).expect("run");
    assert_eq!(
        event,
        Event::PageFault {
            addr: DATA_VA,
            access: AccessKind::Read,
            present: false
        }
    );
}
