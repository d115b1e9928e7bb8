/* Prints a greeting; the simplest possible program under the sentry. */
#include <stdio.h>

int main(void) {
    printf("hello from the sandbox\n");
    return 0;
}
