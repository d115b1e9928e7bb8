/* Mixed system calls: ITERS rounds of write(1, 64 bytes), clock_gettime,
 * getpid, mmap + munmap of one anonymous page (5 calls a round, all raw
 * syscall()s so the native run makes real calls too: no vDSO shortcut).
 * Run with stdout redirected to /dev/null. Usage: mixed [CALLS [REPS]].
 * Prints to stderr, one line per repetition:
 *   RESULT mixed rep=<i> calls=<n> ns=<total ns> */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void) {
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) {
        perror("clock_gettime");
        exit(2);
    }
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv) {
    long calls = argc > 1 ? atol(argv[1]) : 100000;
    long reps = argc > 2 ? atol(argv[2]) : 3;
    if (calls < 5 || reps <= 0) {
        fprintf(stderr, "usage: mixed [CALLS [REPS]]\n");
        return 2;
    }
    long rounds = calls / 5;
    char line[64];
    memset(line, 'x', sizeof line - 1);
    line[sizeof line - 1] = '\n';
    long pid = syscall(SYS_getpid);
    for (long rep = 0; rep < reps; rep++) {
        long long start = now_ns();
        for (long i = 0; i < rounds; i++) {
            if (syscall(SYS_write, 1, line, sizeof line) != (long)sizeof line) {
                fprintf(stderr, "write failed\n");
                return 1;
            }
            struct timespec ts;
            if (syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts) != 0) {
                fprintf(stderr, "clock_gettime failed\n");
                return 1;
            }
            if (syscall(SYS_getpid) != pid) {
                fprintf(stderr, "getpid changed\n");
                return 1;
            }
            void *page = (void *)syscall(SYS_mmap, NULL, 4096, PROT_READ | PROT_WRITE,
                                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (page == MAP_FAILED || syscall(SYS_munmap, page, 4096) != 0) {
                fprintf(stderr, "mmap/munmap failed\n");
                return 1;
            }
        }
        long long end = now_ns();
        fprintf(stderr, "RESULT mixed rep=%ld calls=%ld ns=%lld\n", rep, rounds * 5, end - start);
    }
    return 0;
}
