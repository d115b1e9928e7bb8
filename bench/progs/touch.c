/* First-touch cost: maps a fresh MIB MiB private anonymous region, writes one
 * byte to every 4 KiB page with clock_gettime(CLOCK_MONOTONIC) around the loop,
 * checks the bytes, unmaps it; REPS times. Usage: touch [MIB [REPS]].
 * Prints one line per repetition:
 *   RESULT touch rep=<i> pages=<n> ns=<total ns> */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

#define PAGE 4096UL

static long long now_ns(void) {
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) {
        perror("clock_gettime");
        exit(2);
    }
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv) {
    long mib = argc > 1 ? atol(argv[1]) : 256;
    long reps = argc > 2 ? atol(argv[2]) : 3;
    if (mib <= 0 || reps <= 0) {
        fprintf(stderr, "usage: touch [MIB [REPS]]\n");
        return 2;
    }
    size_t len = (size_t)mib << 20;
    size_t pages = len / PAGE;
    for (long rep = 0; rep < reps; rep++) {
        volatile unsigned char *region =
            mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (region == MAP_FAILED) {
            perror("mmap");
            return 1;
        }
        long long start = now_ns();
        for (size_t i = 0; i < pages; i++) {
            region[i * PAGE] = (unsigned char)(i | 1);
        }
        long long end = now_ns();
        for (size_t i = 0; i < pages; i++) {
            if (region[i * PAGE] != (unsigned char)(i | 1)) {
                fprintf(stderr, "page %zu lost its byte\n", i);
                return 1;
            }
        }
        if (munmap((void *)region, len) != 0) {
            perror("munmap");
            return 1;
        }
        printf("RESULT touch rep=%ld pages=%zu ns=%lld\n", rep, pages, end - start);
        fflush(stdout);
    }
    return 0;
}
