/* A syscall number no kernel has returns ENOSYS, and the program keeps going. */
#include <errno.h>
#include <stdio.h>
#include <unistd.h>

int main(void) {
    errno = 0;
    long r = syscall(1000, 1, 2, 3);
    if (r != -1 || errno != ENOSYS) {
        printf("FAIL: syscall 1000 returned %ld errno %d\n", r, errno);
        return 1;
    }
    printf("enosys ok\n");
    return 0;
}
