/* Spins in user mode without system calls (or sleeps, with "sleep"), so only
 * a kick out of the guest can stop it. The harness sends SIGTERM to the
 * sentry and expects exit status 128+15. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
    printf("spinning\n");
    fflush(stdout);
    if (argc > 1 && strcmp(argv[1], "sleep") == 0) {
        sleep(1000);
        return 3;
    }
    for (volatile unsigned long i = 0;; i++)
        ;
    return 2;
}
