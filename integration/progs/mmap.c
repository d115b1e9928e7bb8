#define _GNU_SOURCE
/* Anonymous memory: 64 MiB dense and 1 GiB sparse touch patterns, mprotect,
 * munmap + re-mmap at the same address, mremap, brk, and (with an argument)
 * an access that must die with SIGSEGV. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MiB (1024UL * 1024UL)

static int failures;

static void check(int ok, const char *what) {
    if (!ok) {
        printf("FAIL: %s\n", what);
        failures++;
    }
}

static void dense_64mib(void) {
    size_t len = 64 * MiB;
    uint64_t *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    check(p != MAP_FAILED, "mmap 64 MiB");
    if (p == MAP_FAILED)
        return;
    size_t words = len / sizeof *p;
    int zero = 1;
    for (size_t i = 0; i < words; i += 512)
        zero &= p[i] == 0;
    check(zero, "fresh anonymous memory reads as zero");
    for (size_t i = 0; i < words; i += 512)
        p[i] = i * 2654435761u;
    int same = 1;
    for (size_t i = 0; i < words; i += 512)
        same &= p[i] == i * 2654435761u;
    check(same, "64 MiB pattern reads back");

    check(mprotect(p, len, PROT_READ) == 0, "mprotect read-only");
    same = 1;
    for (size_t i = 0; i < words; i += 512)
        same &= p[i] == i * 2654435761u;
    check(same, "pattern survives mprotect");
    check(mprotect(p, len, PROT_READ | PROT_WRITE) == 0, "mprotect back to read-write");
    p[7] = 7; /* writable again: the upgrade must be seen by the guest */
    check(p[7] == 7, "write after upgrade");

    /* Unmap the middle and check the edges survive. */
    check(munmap((char *)p + 4096, len - 8192) == 0, "munmap middle");
    check(p[0] == 0 && p[words - 1] == 0, "edges survive a partial munmap");
    check(munmap(p, len) == 0, "munmap rest");
}

static void sparse_1gib(void) {
    size_t len = 1024 * MiB;
    char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    check(p != MAP_FAILED, "mmap 1 GiB");
    if (p == MAP_FAILED)
        return;
    for (size_t off = 0; off < len; off += 16 * MiB)
        p[off + (off / MiB) % 4096] = (char)(off / MiB);
    int same = 1;
    for (size_t off = 0; off < len; off += 16 * MiB)
        same &= p[off + (off / MiB) % 4096] == (char)(off / MiB);
    check(same, "1 GiB sparse pattern reads back");
    check(p[len - 1] == 0, "untouched last byte is zero");
    check(munmap(p, len) == 0, "munmap 1 GiB");
}

static void remap_same_address(void) {
    char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    check(p != MAP_FAILED, "mmap page");
    memset(p, 'A', 4096);
    check(munmap(p, 4096) == 0, "munmap page");
    char *q = mmap(p, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    check(q == p, "mmap again at the same address");
    check(q[0] == 0 && q[4095] == 0, "the new mapping does not show the old contents");
    q[0] = 'B';
    check(q[0] == 'B', "the new mapping is writable");

    /* Same with a 2 MiB-page-backed region replaced by MAP_FIXED. */
    size_t big = 4 * MiB;
    char *r = mmap(NULL, big, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memset(r, 'C', big);
    char *s = mmap(r, big, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    check(s == r && s[0] == 0 && s[big - 1] == 0 && s[MiB] == 0, "MAP_FIXED over touched 2 MiB pages reads zero");
    munmap(s, big);
    munmap(q, 4096);
}

static void mremap_and_brk(void) {
    char *p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    strcpy(p, "moved");
    char *q = mremap(p, 8192, 64 * MiB, MREMAP_MAYMOVE);
    check(q != MAP_FAILED && strcmp(q, "moved") == 0, "mremap keeps contents");
    if (q != MAP_FAILED) {
        q[64 * MiB - 1] = 1;
        munmap(q, 64 * MiB);
    }
    /* Raw brk: musl's sbrk() only supports an increment of 0. */
    char *top = (char *)syscall(SYS_brk, 0);
    char *grown = (char *)syscall(SYS_brk, top + MiB);
    check(grown == top + MiB, "brk grows");
    if (grown == top + MiB) {
        top[MiB - 1] = 5;
        check(top[MiB - 1] == 5, "heap is writable");
    }
    check((char *)syscall(SYS_brk, top) == top, "brk shrinks");
}

int main(int argc, char **argv) {
    dense_64mib();
    sparse_1gib();
    remap_same_address();
    mremap_and_brk();
    if (failures)
        return 1;
    printf("mmap ok\n");
    fflush(stdout);
    if (argc > 1 && strcmp(argv[1], "write-readonly") == 0) {
        volatile char *p = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        p[0] = 1; /* must raise SIGSEGV */
        return 2;
    }
    if (argc > 1 && strcmp(argv[1], "read-unmapped") == 0) {
        volatile char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        p[0] = 1;
        munmap((void *)p, 4096);
        return p[0] + 2; /* must raise SIGSEGV */
    }
    if (argc > 1 && strcmp(argv[1], "protect-none") == 0) {
        volatile char *p = mmap(NULL, 4 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        p[MiB] = 1; /* resident, maybe as a 2 MiB page */
        mprotect((void *)p, 4 * MiB, PROT_NONE);
        return p[MiB] + 2; /* must raise SIGSEGV */
    }
    return 0;
}
