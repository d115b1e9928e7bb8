/* argv, envp and the auxiliary vector arrive as Linux would pass them.
 * Run as: args x "y z" with environment A=1 and B=two. */
#include <elf.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

#ifndef AT_MINSIGSTKSZ
#define AT_MINSIGSTKSZ 51
#endif

extern char **environ;
extern void _start(void);

static int failures;

static void check(int ok, const char *what) {
    if (!ok) {
        printf("FAIL: %s\n", what);
        failures++;
    }
}

int main(int argc, char **argv) {
    check(argc == 3, "argc == 3");
    check(argc > 1 && strcmp(argv[1], "x") == 0, "argv[1] == x");
    check(argc > 2 && strcmp(argv[2], "y z") == 0, "argv[2] == 'y z'");
    check(argv[argc] == NULL, "argv is NULL-terminated");
    check(getenv("A") && strcmp(getenv("A"), "1") == 0, "A=1");
    check(getenv("B") && strcmp(getenv("B"), "two") == 0, "B=two");

    check(getauxval(AT_PAGESZ) == 4096, "AT_PAGESZ");
    check(getauxval(AT_CLKTCK) == 100, "AT_CLKTCK");
    check(getauxval(AT_ENTRY) == (uintptr_t)_start, "AT_ENTRY is _start");
    check(getauxval(AT_BASE) == 0, "AT_BASE is 0 for a static program");
    check(getauxval(AT_SECURE) == 0, "AT_SECURE");
    check(getauxval(AT_UID) == getuid() && getauxval(AT_EUID) == geteuid(), "AT_UID/AT_EUID");
    check(getauxval(AT_GID) == getgid() && getauxval(AT_EGID) == getegid(), "AT_GID/AT_EGID");
    check(getauxval(AT_HWCAP) != 0, "AT_HWCAP");
    check(getauxval(AT_MINSIGSTKSZ) >= 2048, "AT_MINSIGSTKSZ");

    const Elf64_Phdr *phdr = (const Elf64_Phdr *)getauxval(AT_PHDR);
    unsigned long phnum = getauxval(AT_PHNUM);
    check(getauxval(AT_PHENT) == sizeof(Elf64_Phdr), "AT_PHENT");
    check(phdr != NULL && phnum > 0, "AT_PHDR/AT_PHNUM");
    int loads = 0;
    for (unsigned long i = 0; phdr && i < phnum; i++)
        loads += phdr[i].p_type == PT_LOAD;
    check(loads > 0, "program headers contain PT_LOAD");

    const unsigned char *random = (const unsigned char *)getauxval(AT_RANDOM);
    int nonzero = 0;
    for (int i = 0; random && i < 16; i++)
        nonzero |= random[i];
    check(random && nonzero, "AT_RANDOM points at random bytes");

    const char *platform = (const char *)getauxval(AT_PLATFORM);
    check(platform && strcmp(platform, "x86_64") == 0, "AT_PLATFORM");
    const char *execfn = (const char *)getauxval(AT_EXECFN);
    check(execfn && strcmp(execfn, argv[0]) == 0, "AT_EXECFN is the path we were run as");

    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    check(n > 0 && exe[0] == '/', "readlink /proc/self/exe is absolute");
    if (n > 0) {
        exe[n] = 0;
        const char *base = strrchr(argv[0], '/');
        base = base ? base + 1 : argv[0];
        check(strlen(exe) >= strlen(base) && strcmp(exe + strlen(exe) - strlen(base), base) == 0,
              "/proc/self/exe names this program");
    }
    check(access("/etc/passwd", F_OK) != 0, "no filesystem: /etc/passwd is absent");

    if (failures)
        return 1;
    printf("args ok\n");
    return 0;
}
