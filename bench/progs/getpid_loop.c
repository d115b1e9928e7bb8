/* getpid round trip: times ITERS raw getpid system calls, REPS times (after one
 * untimed warm-up pass), with clock_gettime(CLOCK_MONOTONIC) around each loop.
 * Usage: getpid_loop [ITERS [REPS]]. Prints one line per repetition:
 *   RESULT getpid rep=<i> iters=<n> ns=<total ns>
 * The raw syscall() avoids any library-side caching of the pid. */
#include <stdio.h>
#include <stdlib.h>
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
    long iters = argc > 1 ? atol(argv[1]) : 2000;
    long reps = argc > 2 ? atol(argv[2]) : 5;
    if (iters <= 0 || reps <= 0) {
        fprintf(stderr, "usage: getpid_loop [ITERS [REPS]]\n");
        return 2;
    }
    long expected = syscall(SYS_getpid);
    for (long i = 0; i < iters / 10 + 1; i++) { /* warm-up */
        syscall(SYS_getpid);
    }
    for (long rep = 0; rep < reps; rep++) {
        long long start = now_ns();
        for (long i = 0; i < iters; i++) {
            if (syscall(SYS_getpid) != expected) {
                fprintf(stderr, "getpid changed\n");
                return 1;
            }
        }
        long long end = now_ns();
        printf("RESULT getpid rep=%ld iters=%ld ns=%lld\n", rep, iters, end - start);
        fflush(stdout);
    }
    return 0;
}
