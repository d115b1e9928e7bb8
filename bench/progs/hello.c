/* The smallest useful static program: one write, then exit 0. */
#include <unistd.h>

int main(void) {
    static const char msg[] = "hello\n";
    return write(1, msg, sizeof msg - 1) == (long)(sizeof msg - 1) ? 0 : 1;
}
