/* The host's floor for trap-based syscall interception: getpid trapped by an
 * in-process seccomp filter (SECCOMP_RET_TRAP) and answered by a SIGSYS
 * handler in the same thread, with no sentry at all. Times ITERS calls, REPS
 * times. Usage: trap_floor [ITERS [REPS]]. Prints one line per repetition:
 *   RESULT trapfloor rep=<i> iters=<n> ns=<total ns> */
#define _GNU_SOURCE
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

static void on_sigsys(int signo, siginfo_t *info, void *context) {
    (void)signo;
    (void)info;
    ((ucontext_t *)context)->uc_mcontext.gregs[REG_RAX] = 42;
}

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv) {
    long iters = argc > 1 ? atol(argv[1]) : 20000;
    long reps = argc > 2 ? atol(argv[2]) : 5;
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = on_sigsys;
    action.sa_flags = SA_SIGINFO;
    if (sigaction(SIGSYS, &action, NULL) != 0) {
        perror("sigaction");
        return 1;
    }
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getpid, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog program = {sizeof filter / sizeof filter[0], filter};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) != 0) {
        perror("seccomp");
        return 1;
    }
    for (long rep = 0; rep < reps; rep++) {
        long long start = now_ns();
        for (long i = 0; i < iters; i++) {
            if (syscall(SYS_getpid) != 42) {
                fprintf(stderr, "getpid was not trapped\n");
                return 1;
            }
        }
        long long end = now_ns();
        printf("RESULT trapfloor rep=%ld iters=%ld ns=%lld\n", rep, iters, end - start);
        fflush(stdout);
    }
    return 0;
}
