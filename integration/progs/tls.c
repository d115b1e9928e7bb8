/* Thread-local storage through the FS base, and arch_prctl(ARCH_SET_FS/GET_FS). */
#define ARCH_SET_FS 0x1002
#define ARCH_GET_FS 0x1003
#include <stdint.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

static __thread int counter = 42;
static __thread char buffer[64];

/* Offsets 0 (self pointer) and 0x28 (stack-protector canary) are read by
 * compiled code through %fs, so the fake block must carry them too. */
struct fake_tcb {
    struct fake_tcb *self;
    uint64_t marker;
    uint64_t unused[3];
    uint64_t canary;
};

int main(void) {
    int failures = 0;
    if (counter != 42) {
        printf("FAIL: initial TLS value %d\n", counter);
        failures++;
    }
    counter++;
    buffer[63] = 'x';

    uint64_t fs = 0;
    if (syscall(SYS_arch_prctl, ARCH_GET_FS, &fs) != 0 || fs == 0) {
        printf("FAIL: ARCH_GET_FS\n");
        failures++;
    }
    uint64_t self;
    __asm__ volatile("mov %%fs:0, %0" : "=r"(self));
    if (self != fs) {
        printf("FAIL: %%fs:0 (%lx) is not the FS base (%lx)\n", (unsigned long)self, (unsigned long)fs);
        failures++;
    }

    /* Switch FS to our own block, read through it, and switch back; no libc
     * calls in between because they would use the wrong TLS. */
    static struct fake_tcb tcb = {&tcb, 0x5eed, {0}, 0};
    __asm__ volatile("mov %%fs:0x28, %0" : "=r"(tcb.canary));
    uint64_t seen_self = 0, seen_marker = 0;
    long set = syscall(SYS_arch_prctl, ARCH_SET_FS, &tcb);
    __asm__ volatile("mov %%fs:0, %0\n\tmov %%fs:8, %1" : "=r"(seen_self), "=r"(seen_marker));
    long back = syscall(SYS_arch_prctl, ARCH_SET_FS, fs);
    if (set != 0 || back != 0 || seen_self != (uint64_t)&tcb || seen_marker != 0x5eed) {
        printf("FAIL: reading through a custom FS base\n");
        failures++;
    }
    if (counter != 43 || buffer[63] != 'x') {
        printf("FAIL: TLS lost after restoring FS\n");
        failures++;
    }
    if (syscall(SYS_arch_prctl, ARCH_SET_FS, 0xffff800000000000UL) == 0) {
        printf("FAIL: kernel-half FS base accepted\n");
        failures++;
    }
    if (failures)
        return 1;
    printf("tls ok\n");
    return 0;
}
