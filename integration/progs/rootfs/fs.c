/* The read-only root served by the gofer, as seen through the sentry's
 * file syscalls. Run with the tree sentry/tests/rootfs.rs builds; prints
 * FAIL lines and exits non-zero on any wrong result. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static int failures;

static void check(int ok, const char *what) {
    if (!ok) {
        printf("FAIL: %s (errno %d)\n", what, errno);
        failures++;
    }
}

/* The call failed with exactly `want`. */
static void fails(long r, int want, const char *what) {
    if (r != -1 || errno != want) {
        printf("FAIL: %s: got %ld errno %d, want errno %d\n", what, r, errno, want);
        failures++;
    }
}

static int count_entries(const char *dir, int *found_e7) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    check(fd >= 0, "open dir");
    char buf[128]; /* small: forces many getdents64 calls */
    int n = 0, calls = 0;
    *found_e7 = 0;
    for (;;) {
        long r = syscall(SYS_getdents64, fd, buf, sizeof buf);
        check(r >= 0, "getdents64");
        if (r <= 0) break;
        calls++;
        for (long off = 0; off < r;) {
            struct dirent64 *d = (struct dirent64 *)(buf + off);
            if (strcmp(d->d_name, "e7") == 0) {
                (*found_e7)++;
                check(d->d_type == DT_REG, "d_type of e7");
            }
            n++;
            off += d->d_reclen;
        }
    }
    check(calls > 3, "many getdents64 calls");
    check(syscall(SYS_getdents64, fd, buf, 8) == 0, "getdents64 at the end returns 0");
    check(lseek(fd, 0, SEEK_SET) == 0, "rewinddir");
    fails(syscall(SYS_getdents64, fd, buf, 8), EINVAL, "getdents64 buffer too small");
    long again = syscall(SYS_getdents64, fd, buf, sizeof buf);
    check(again > 0, "getdents64 after rewinding");
    close(fd);
    return n;
}

int main(void) {
    char buf[64];
    struct stat st, lst;

    /* Reading. */
    int fd = open("/etc/hostname", O_RDONLY);
    check(fd >= 0, "open /etc/hostname");
    memset(buf, 0, sizeof buf);
    check(read(fd, buf, sizeof buf) == 8 && strcmp(buf, "sandbox\n") == 0, "read hostname");
    check(read(fd, buf, sizeof buf) == 0, "read at EOF");
    check(lseek(fd, 0, SEEK_END) == 8, "lseek SEEK_END");
    check(pread(fd, buf, 3, 4) == 3 && memcmp(buf, "box", 3) == 0, "pread");
    fails(write(fd, "x", 1), EBADF, "write to a read-only fd");
    check(fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 8, "fstat");
    close(fd);

    /* Big file contents and a private mapping. */
    fd = open("/data/file", O_RDONLY);
    check(fd >= 0, "open /data/file");
    char *big = malloc(3 * 4096);
    check(read(fd, big, 3 * 4096) == 3 * 4096, "read 12 KiB");
    int pattern_ok = 1;
    for (int i = 0; i < 3 * 4096; i++)
        if (big[i] != (char)(i % 251)) pattern_ok = 0;
    check(pattern_ok, "file contents");
    char *map = mmap(NULL, 3 * 4096, PROT_READ, MAP_PRIVATE, fd, 0);
    check(map != MAP_FAILED && memcmp(map, big, 3 * 4096) == 0, "mmap of a file");
    char *map2 = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 4096);
    check(map2 != MAP_FAILED && memcmp(map2, big + 4096, 4096) == 0, "mmap at an offset");
    fails((long)mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), EACCES, "shared writable mmap of a read-only fd");
    close(fd);

    /* stat, lstat and symlinks. */
    check(stat("/data/link", &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 3 * 4096, "stat through a symlink");
    check(lstat("/data/link", &lst) == 0 && S_ISLNK(lst.st_mode) && lst.st_ino != st.st_ino, "lstat of a symlink");
    check(stat("/data/abs", &lst) == 0 && lst.st_ino == st.st_ino, "absolute symlink");
    check(stat("/data/absdir/e3", &lst) == 0 && S_ISREG(lst.st_mode), "symlink in the middle of a path");
    check(stat("/../../data/./dir/../file", &lst) == 0 && lst.st_ino == st.st_ino, "dot and dotdot");
    check(stat("/data/dir/", &lst) == 0 && S_ISDIR(lst.st_mode), "trailing slash on a directory");
    fails(stat("/data/file/", &lst), ENOTDIR, "trailing slash on a file");
    fails(stat("/data/file/x", &lst), ENOTDIR, "walk through a file");
    fails(stat("/data/missing", &lst), ENOENT, "missing file");
    fails(stat("/data/dangling", &lst), ENOENT, "dangling symlink");
    check(lstat("/data/dangling", &lst) == 0, "lstat of a dangling symlink");
    fails(stat("/data/loop", &lst), ELOOP, "symlink loop");
    fails(stat("", &lst), ENOENT, "empty path");
#ifdef __GLIBC__
    struct statx sx;
    check(statx(AT_FDCWD, "/data/file", 0, STATX_BASIC_STATS, &sx) == 0 && sx.stx_size == 3 * 4096 && S_ISREG(sx.stx_mode), "statx");
#endif
    check(stat("/deep/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/f", &lst) == 0, "a path of 22 components");

    char target[64] = {0};
    check(readlink("/data/link", target, sizeof target) == 4 && memcmp(target, "file", 4) == 0, "readlink");
    fails(readlink("/data/file", target, sizeof target), EINVAL, "readlink of a regular file");
    check(readlink("/proc/self/exe", target, sizeof target) == 7 && memcmp(target, "/bin/fs", 7) == 0, "readlink /proc/self/exe");

    /* Opening: flags and errors. */
    fails(open("/data/link", O_RDONLY | O_NOFOLLOW), ELOOP, "O_NOFOLLOW on a symlink");
    check((fd = open("/data/link", O_PATH | O_NOFOLLOW)) >= 0, "O_PATH|O_NOFOLLOW on a symlink");
    fails(read(fd, buf, 1), EBADF, "read from an O_PATH fd");
    close(fd);
    fails(open("/data/file", O_WRONLY), EROFS, "open for writing");
    fails(open("/data/file", O_RDONLY | O_TRUNC), EROFS, "O_TRUNC");
    fails(open("/data/new", O_WRONLY | O_CREAT, 0644), EROFS, "O_CREAT of a new file");
    fails(open("/nodir/new", O_WRONLY | O_CREAT, 0644), ENOENT, "O_CREAT in a missing directory");
    fails(open("/data/file", O_WRONLY | O_CREAT | O_EXCL, 0644), EEXIST, "O_EXCL on an existing file");
    fails(open("/data/dir", O_WRONLY), EISDIR, "a directory opened for writing");
    fails(open("/data/file", O_RDONLY | O_DIRECTORY), ENOTDIR, "O_DIRECTORY on a file");
    fails(read(open("/data/dir", O_RDONLY), buf, 1), EISDIR, "read of a directory");

    /* Directory listing. */
    int found;
    check(count_entries("/data/dir", &found) == 52 && found == 1, "getdents64 lists 50 entries plus . and ..");

    /* Working directory and *at() calls. */
    check(chdir("/data/dir") == 0, "chdir");
    check(getcwd(buf, sizeof buf) && strcmp(buf, "/data/dir") == 0, "getcwd");
    check(access("e7", R_OK) == 0, "relative access");
    check(chdir("..") == 0 && getcwd(buf, sizeof buf) && strcmp(buf, "/data") == 0, "chdir ..");
    check(chdir("absdir") == 0 && getcwd(buf, sizeof buf) && strcmp(buf, "/data/dir") == 0, "chdir through a symlink is physical");
    fails(chdir("/data/file"), ENOTDIR, "chdir to a file");
    fails(getcwd(buf, 3) ? 0 : -1, ERANGE, "getcwd into a short buffer");
    int dirfd = open("/data", O_RDONLY | O_DIRECTORY);
    check(dirfd >= 0, "open /data");
    check(fstatat(dirfd, "file", &lst, 0) == 0 && lst.st_ino == st.st_ino, "fstatat relative to a dirfd");
    check(fstatat(dirfd, "", &lst, AT_EMPTY_PATH) == 0 && S_ISDIR(lst.st_mode), "AT_EMPTY_PATH");
    fd = openat(dirfd, "dir/e1", O_RDONLY);
    check(fd >= 0, "openat relative to a dirfd");
    fails(openat(fd, "x", O_RDONLY), ENOTDIR, "openat relative to a file");
    check(fchdir(dirfd) == 0 && getcwd(buf, sizeof buf) && strcmp(buf, "/data") == 0, "fchdir");

    /* access(2). */
    check(access("/data/file", F_OK) == 0, "access F_OK");
    check(access("/data/file", R_OK) == 0, "access R_OK");
    fails(access("/data/file", W_OK), EROFS, "access W_OK on a read-only root");
    fails(access("/data/file", X_OK), EACCES, "access X_OK without execute bits");
    check(access("/bin/fs", X_OK) == 0, "access X_OK of a program");
    fails(access("/data/missing", F_OK), ENOENT, "access of a missing file");

    /* poll(2): the gofer's files are always ready; bad fds are POLLNVAL. */
    fd = open("/etc/hostname", O_RDONLY);
    struct pollfd pf[3] = {{.fd = fd, .events = POLLIN}, {.fd = 999, .events = POLLIN}, {.fd = -1, .events = POLLIN}};
    check(poll(pf, 3, -1) == 2 && pf[0].revents == POLLIN && pf[1].revents == POLLNVAL && pf[2].revents == 0, "poll of a file, a bad fd and a negative fd");
    close(fd);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    check(poll(NULL, 0, 30) == 0, "poll with nothing to wait for times out");
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long waited_ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    check(waited_ms >= 29, "poll waited for its timeout");

    /* Changes are refused after the path checks. */
    fails(mkdir("/data/newdir", 0755), EROFS, "mkdir");
    fails(mkdir("/data/dir", 0755), EEXIST, "mkdir of an existing name");
    fails(unlink("/data/file"), EROFS, "unlink");
    fails(unlink("/data/missing"), ENOENT, "unlink of a missing file");
    fails(rename("/data/file", "/data/other"), EROFS, "rename");
    fails(symlink("x", "/data/newlink"), EROFS, "symlink");
    fails(chmod("/data/file", 0600), EROFS, "chmod");
    fails(truncate("/data/file", 0), EROFS, "truncate");
    fails(utimensat(AT_FDCWD, "/data/file", NULL, 0), EROFS, "utimensat");

    if (failures) {
        printf("%d failures\n", failures);
        return 1;
    }
    printf("fs ok\n");
    return 0;
}
