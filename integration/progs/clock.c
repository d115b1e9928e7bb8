/* Clocks move forward, sleeping takes at least as long as asked, and the
 * wall clock is plausible. */
#include <stdio.h>
#include <sys/time.h>
#include <time.h>

static long long ns(struct timespec t) { return t.tv_sec * 1000000000LL + t.tv_nsec; }

int main(void) {
    int failures = 0;
    struct timespec prev, now;
    clock_gettime(CLOCK_MONOTONIC, &prev);
    for (int i = 0; i < 50; i++) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (ns(now) < ns(prev)) {
            printf("FAIL: CLOCK_MONOTONIC went backwards\n");
            failures++;
        }
        prev = now;
    }
    struct timespec before, after, nap = {0, 20 * 1000 * 1000};
    clock_gettime(CLOCK_MONOTONIC, &before);
    if (nanosleep(&nap, NULL) != 0) {
        printf("FAIL: nanosleep\n");
        failures++;
    }
    clock_gettime(CLOCK_MONOTONIC, &after);
    if (ns(after) - ns(before) < 20 * 1000 * 1000) {
        printf("FAIL: slept only %lld ns\n", ns(after) - ns(before));
        failures++;
    }
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_nsec += 10 * 1000 * 1000;
    if (deadline.tv_nsec >= 1000000000) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000;
    }
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &deadline, NULL);
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (ns(now) < ns(deadline)) {
        printf("FAIL: absolute clock_nanosleep woke early\n");
        failures++;
    }
    struct timespec real;
    clock_gettime(CLOCK_REALTIME, &real);
    struct timeval tv;
    gettimeofday(&tv, NULL);
    time_t t = time(NULL);
    if (real.tv_sec < 1600000000 || tv.tv_sec < real.tv_sec || t < real.tv_sec || t > real.tv_sec + 5) {
        printf("FAIL: wall clocks disagree or are implausible\n");
        failures++;
    }
    if (clock_gettime(12345, &now) == 0) {
        printf("FAIL: bogus clock accepted\n");
        failures++;
    }
    if (failures)
        return 1;
    printf("clock ok\n");
    return 0;
}
