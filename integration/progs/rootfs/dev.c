/* The sentry's devfs at /dev (`sentry exec --root DIR [--overlay]`). Run
 * with the tree sentry/tests/dev.rs builds, whose own /dev (a regular file
 * "null" and a file "decoy") must be hidden. Prints FAIL lines and exits
 * non-zero on any wrong result; prints "dev ok" otherwise. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
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

static int all(const unsigned char *b, size_t n, unsigned char v) {
    for (size_t i = 0; i < n; i++)
        if (b[i] != v) return 0;
    return 1;
}

static const struct {
    const char *name;
    unsigned minor;
} devices[] = {{"null", 3}, {"zero", 5}, {"full", 7}, {"random", 8}, {"urandom", 9}};

int main(void) {
    struct stat st;
    char path[64];
    unsigned char buf[4096];

    /* The directory and its devices, as stat shows them. */
    check(stat("/dev", &st) == 0 && S_ISDIR(st.st_mode), "stat /dev is a directory");
    check((st.st_mode & 07777) == 0755 && st.st_uid == 0, "/dev is root's, 0755");
    for (size_t i = 0; i < sizeof devices / sizeof devices[0]; i++) {
        snprintf(path, sizeof path, "/dev/%s", devices[i].name);
        int ok = stat(path, &st) == 0 && S_ISCHR(st.st_mode) && (st.st_mode & 07777) == 0666 &&
                 major(st.st_rdev) == 1 && minor(st.st_rdev) == devices[i].minor;
        check(ok, path);
        int fd = open(path, O_RDWR);
        check(fd >= 0, "open O_RDWR");
        struct stat fst;
        check(fstat(fd, &fst) == 0 && fst.st_rdev == st.st_rdev && fst.st_ino == st.st_ino &&
                  S_ISCHR(fst.st_mode),
              "fstat matches stat");
        check(lseek(fd, 100, SEEK_SET) == 0, "lseek returns 0");
        struct pollfd p = {.fd = fd, .events = POLLIN | POLLOUT};
        check(poll(&p, 1, 1000) == 1 && (p.revents & (POLLIN | POLLOUT)) == (POLLIN | POLLOUT),
              "poll is ready");
        close(fd);
    }

    /* null: EOF, writes swallowed. */
    int fd = open("/dev/null", O_RDWR | O_TRUNC);
    check(fd >= 0, "open /dev/null (the root's file is hidden)");
    check(read(fd, buf, sizeof buf) == 0, "null reads EOF");
    check(write(fd, "hello", 5) == 5, "null swallows writes");
    check(pread(fd, buf, 10, 5) == 0, "null pread EOF");
    close(fd);

    /* zero: zeros, writes swallowed. */
    fd = open("/dev/zero", O_RDWR);
    memset(buf, 0xff, sizeof buf);
    check(read(fd, buf, sizeof buf) == sizeof buf && all(buf, sizeof buf, 0), "zero reads zeros");
    check(write(fd, buf, 100) == 100, "zero swallows writes");
    close(fd);

    /* full: zeros, writes ENOSPC. */
    fd = open("/dev/full", O_RDWR);
    memset(buf, 0xff, sizeof buf);
    check(read(fd, buf, 512) == 512 && all(buf, 512, 0), "full reads zeros");
    fails(write(fd, "x", 1), ENOSPC, "full write");
    close(fd);

    /* random, urandom: random bytes, writes ignored. */
    for (int i = 0; i < 2; i++) {
        const char *p = i ? "/dev/urandom" : "/dev/random";
        unsigned char a[64], b[64];
        fd = open(p, O_RDWR);
        check(fd >= 0 && read(fd, a, 64) == 64 && read(fd, b, 64) == 64, p);
        check(memcmp(a, b, 64) != 0 && !all(a, 64, 0), "random bytes differ");
        check(write(fd, "seed", 4) == 4, "random accepts writes");
        close(fd);
    }

    /* Access modes. */
    fd = open("/dev/zero", O_WRONLY);
    fails(read(fd, buf, 1), EBADF, "read of a write-only device");
    close(fd);
    fd = open("/dev/null", O_RDONLY);
    fails(write(fd, "x", 1), EBADF, "write of a read-only device");
    fails(ftruncate(fd, 0), EINVAL, "ftruncate of a device");
    close(fd);

    /* mmap: /dev/zero gives anonymous memory; others ENODEV. */
    fd = open("/dev/zero", O_RDWR);
    unsigned char *m = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    check(m != MAP_FAILED, "mmap /dev/zero");
    if (m != MAP_FAILED) {
        check(all(m, 8192, 0), "zero mapping is zeros");
        m[4000] = 7;
        check(m[4000] == 7, "zero mapping is writable");
        munmap(m, 8192);
    }
    close(fd);
    fd = open("/dev/null", O_RDWR);
    fails((long)mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0), ENODEV, "mmap /dev/null");
    close(fd);

    /* Listing: exactly the devices, the root's entries hidden. */
    fd = open("/dev", O_RDONLY | O_DIRECTORY);
    check(fd >= 0, "open /dev");
    int seen = 0, others = 0;
    char dents[128];
    for (;;) {
        long r = syscall(SYS_getdents64, fd, dents, sizeof dents);
        if (r < 0) check(0, "getdents64");
        if (r <= 0) break;
        for (long off = 0; off < r;) {
            struct dirent64 *d = (struct dirent64 *)(dents + off);
            int known = 0;
            for (size_t i = 0; i < 5; i++)
                if (strcmp(d->d_name, devices[i].name) == 0) {
                    known = 1;
                    check(d->d_type == DT_CHR, "d_type DT_CHR");
                    seen |= 1 << i;
                }
            if (!known && strcmp(d->d_name, ".") != 0 && strcmp(d->d_name, "..") != 0) {
                printf("unexpected entry %s\n", d->d_name);
                others++;
            }
            off += d->d_reclen;
        }
    }
    check(seen == 31 && others == 0, "listing is the five devices");
    check(lseek(fd, 0, SEEK_SET) == 0 && syscall(SYS_getdents64, fd, dents, sizeof dents) > 0,
          "rewind the listing");
    fails(read(fd, buf, 1), EISDIR, "read of /dev");
    int zero = openat(fd, "zero", O_RDONLY);
    check(zero >= 0 && read(zero, buf, 3) == 3, "openat in /dev");
    close(zero);
    close(fd);

    /* Paths. */
    fails(open("/dev/decoy", O_RDONLY), ENOENT, "the root's /dev is hidden");
    fails(open("/dev/null/x", O_RDONLY), ENOTDIR, "a device is not a directory");
    fails(stat("/dev/nope", &st), ENOENT, "stat of a missing device");
    check(stat("/dev/../etc/hostname", &st) == 0 && S_ISREG(st.st_mode), ".. leaves /dev");
    check(chdir("/dev") == 0 && stat("urandom", &st) == 0 && S_ISCHR(st.st_mode),
          "chdir /dev, relative stat");
    char cwd[64];
    check(getcwd(cwd, sizeof cwd) && strcmp(cwd, "/dev") == 0, "getcwd /dev");
    check(chdir("/") == 0, "chdir /");

    /* No names are made or removed: EPERM for root, EACCES for others. */
    int want = getuid() == 0 ? EPERM : EACCES;
    fails(open("/dev/new", O_CREAT | O_WRONLY, 0644), want, "create in /dev");
    fails(mkdir("/dev/dir", 0755), want, "mkdir in /dev");
    fails(symlink("null", "/dev/link"), want, "symlink in /dev");
    fails(unlink("/dev/null"), want, "unlink /dev/null");
    fails(rename("/dev/zero", "/dev/zero2"), want, "rename in /dev");
    fails(mknod("/dev/null2", S_IFCHR | 0666, makedev(1, 3)), want, "mknod in /dev");
    check(stat("/dev/null", &st) == 0, "/dev/null is still there");
    fails(open("/dev/null", O_CREAT | O_EXCL | O_WRONLY, 0644), EEXIST, "O_EXCL on a device");

    if (failures) {
        printf("%d failures\n", failures);
        return 1;
    }
    printf("dev ok\n");
    return 0;
}
