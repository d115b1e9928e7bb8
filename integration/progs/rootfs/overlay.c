/* The writable in-memory overlay over a read-only gofer root (`sentry exec
 * --root DIR --overlay`). Run with the tree sentry/tests/overlay.rs builds;
 * prints FAIL lines and exits non-zero on any wrong result. The test then
 * checks the host directory is unchanged. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

static void fails(long r, int want, const char *what) {
    if (r != -1 || errno != want) {
        printf("FAIL: %s: got %ld errno %d, want errno %d\n", what, r, errno, want);
        failures++;
    }
}

static int read_file(const char *path, char *buf, size_t size) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    int n = read(fd, buf, size - 1);
    close(fd);
    if (n >= 0) buf[n] = 0;
    return n;
}

/* How often `name` appears in `dir`. */
static int count_name(const char *dir, const char *name) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return -1;
    char buf[256];
    int n = 0;
    for (;;) {
        long r = syscall(SYS_getdents64, fd, buf, sizeof buf);
        if (r <= 0) break;
        for (long off = 0; off < r;) {
            struct dirent64 *d = (struct dirent64 *)(buf + off);
            if (strcmp(d->d_name, name) == 0) n++;
            off += d->d_reclen;
        }
    }
    close(fd);
    return n;
}

int main(void) {
    char buf[256];
    struct stat st;

    /* Create, write, read back. */
    int fd = open("/etc/new", O_CREAT | O_WRONLY | O_EXCL, 0644);
    check(fd >= 0, "create /etc/new");
    check(write(fd, "hello ", 6) == 6, "write");
    check(pwrite(fd, "world\n", 6, 6) == 6, "pwrite");
    check(fstat(fd, &st) == 0 && st.st_size == 12 && S_ISREG(st.st_mode), "fstat new");
    check((st.st_mode & 0777) == 0644, "mode of new file (umask 022)");
    close(fd);
    check(read_file("/etc/new", buf, sizeof buf) == 12 && strcmp(buf, "hello world\n") == 0,
          "read back /etc/new");
    fails(open("/etc/new", O_CREAT | O_EXCL | O_WRONLY, 0644), EEXIST, "O_EXCL on existing");
    check(count_name("/etc", "new") == 1, "new file listed once");
    check(count_name("/etc", "hostname") == 1, "lower file listed once");

    /* Copy-up: change a lower file. */
    fd = open("/etc/hostname", O_WRONLY | O_APPEND);
    check(fd >= 0, "open lower file for append");
    check(write(fd, "more\n", 5) == 5, "append");
    close(fd);
    check(read_file("/etc/hostname", buf, sizeof buf) == 13 &&
              strcmp(buf, "sandbox\nmore\n") == 0,
          "copied-up contents");
    check(count_name("/etc", "hostname") == 1, "copied-up file listed once");
    fd = open("/etc/hostname", O_RDWR | O_TRUNC);
    check(fd >= 0, "O_TRUNC");
    check(fstat(fd, &st) == 0 && st.st_size == 0, "truncated");
    check(ftruncate(fd, 100) == 0, "ftruncate grows");
    check(fstat(fd, &st) == 0 && st.st_size == 100, "size after ftruncate");
    close(fd);
    check(truncate("/etc/hostname", 3) == 0, "truncate");
    check(stat("/etc/hostname", &st) == 0 && st.st_size == 3, "stat after truncate");

    /* chmod and utimensat on upper copies. */
    check(chmod("/data/file", 0600) == 0, "chmod lower file");
    check(stat("/data/file", &st) == 0 && (st.st_mode & 07777) == 0600, "mode after chmod");
    struct timespec times[2] = {{1000, 0}, {2000, 5}};
    check(utimensat(AT_FDCWD, "/data/file", times, 0) == 0, "utimensat");
    check(stat("/data/file", &st) == 0 && st.st_mtim.tv_sec == 2000 &&
              st.st_mtim.tv_nsec == 5 && st.st_atim.tv_sec == 1000,
          "times after utimensat");

    /* mkdir, files inside, rmdir. */
    check(mkdir("/data/sub", 0755) == 0, "mkdir");
    fails(mkdir("/data/sub", 0755), EEXIST, "mkdir existing");
    fails(mkdir("/nowhere/sub", 0755), ENOENT, "mkdir without parent");
    check(stat("/data/sub", &st) == 0 && S_ISDIR(st.st_mode), "stat new dir");
    fd = open("/data/sub/f", O_CREAT | O_WRONLY, 0600);
    check(fd >= 0, "create in new dir");
    close(fd);
    check(count_name("/data/sub", "f") == 1, "listing of new dir");
    fails(rmdir("/data/sub"), ENOTEMPTY, "rmdir non-empty");
    check(unlink("/data/sub/f") == 0, "unlink in new dir");
    check(rmdir("/data/sub") == 0, "rmdir");
    fails(stat("/data/sub", &st), ENOENT, "stat removed dir");

    /* Whiteouts hide lower entries. */
    check(unlink("/data/dir/e7") == 0, "unlink lower file");
    fails(stat("/data/dir/e7", &st), ENOENT, "stat whited-out file");
    check(count_name("/data/dir", "e7") == 0, "whiteout hidden from listing");
    check(count_name("/data/dir", "e8") == 1, "other lower entries remain");
    fails(unlink("/data/dir/e7"), ENOENT, "unlink twice");
    fails(unlink("/data/dir"), EISDIR, "unlink a directory");
    fails(rmdir("/data/file"), ENOTDIR, "rmdir a file");
    /* A new file under a whited-out name. */
    fd = open("/data/dir/e7", O_CREAT | O_WRONLY, 0644);
    check(fd >= 0 && write(fd, "x", 1) == 1, "recreate whited-out name");
    close(fd);
    check(stat("/data/dir/e7", &st) == 0 && st.st_size == 1, "recreated file");

    /* Removing a lower directory, then making it again: opaque. */
    for (int i = 0; i < 50; i++) {
        snprintf(buf, sizeof buf, "/data/dir/e%d", i);
        unlink(buf);
    }
    check(rmdir("/data/dir") == 0, "rmdir emptied lower dir");
    check(mkdir("/data/dir", 0755) == 0, "mkdir over whiteout");
    check(count_name("/data/dir", "e8") == 0, "opaque dir hides lower entries");

    /* Rename of files: lower and upper. */
    check(rename("/etc/new", "/etc/renamed") == 0, "rename upper file");
    fails(stat("/etc/new", &st), ENOENT, "old name gone");
    check(read_file("/etc/renamed", buf, sizeof buf) == 12, "renamed contents");
    check(rename("/data/other", "/data/moved") == 0, "rename lower file");
    fails(stat("/data/other", &st), ENOENT, "lower old name gone");
    check(read_file("/data/moved", buf, sizeof buf) == 6 && strcmp(buf, "other\n") == 0,
          "renamed lower contents");
    check(count_name("/data", "other") == 0 && count_name("/data", "moved") == 1,
          "listing after rename");
    check(rename("/etc/renamed", "/data/moved") == 0, "rename over existing");
    check(read_file("/data/moved", buf, sizeof buf) == 12, "replaced contents");
    fails(rename("/data/nothing", "/data/x"), ENOENT, "rename missing");

    /* Symlinks. */
    check(symlink("moved", "/data/sl") == 0, "symlink");
    check(readlink("/data/sl", buf, sizeof buf) == 5 && memcmp(buf, "moved", 5) == 0,
          "readlink new symlink");
    check(read_file("/data/sl", buf, sizeof buf) == 12, "read through new symlink");
    check(lstat("/data/sl", &st) == 0 && S_ISLNK(st.st_mode), "lstat new symlink");
    fails(symlink("x", "/data/sl"), EEXIST, "symlink over existing");

    /* Directories made in the overlay work as cwd and dirfd. */
    check(mkdir("/work", 0755) == 0 && chdir("/work") == 0, "chdir into new dir");
    fd = open("rel", O_CREAT | O_RDWR, 0644);
    check(fd >= 0 && write(fd, "abc", 3) == 3, "relative create");
    close(fd);
    check(stat("/work/rel", &st) == 0 && st.st_size == 3, "relative file at its path");
    int dfd = open("/work", O_RDONLY | O_DIRECTORY);
    check(dfd >= 0 && mkdirat(dfd, "d", 0700) == 0, "mkdirat");
    check(unlinkat(dfd, "d", AT_REMOVEDIR) == 0, "unlinkat AT_REMOVEDIR");
    close(dfd);

    if (failures) {
        printf("%d failures\n", failures);
        return 1;
    }
    printf("overlay ok\n");
    return 0;
}
