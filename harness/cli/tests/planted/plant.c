/* A planted bug for smbd, loaded with LD_PRELOAD by harness/cli/tests/planted.rs: it wraps
 * pread and pwrite (Samba's libsys-rw does all file I/O through them) and, on files whose
 * path ends in SMBCHAOS_PLANT_SUFFIX (default ".dat"), misbehaves as SMBCHAOS_PLANT says:
 *
 *   corrupt-reads  one read in N returns its first 8 bytes altered at random (the file is
 *                  intact: reading again gives other bytes)
 *   drop-writes    one write in N is acknowledged in full and never written
 *   drop-writes-after-restart
 *                  drop-writes, but only in an smbd started after the node's first one (a
 *                  kill, crash, stop or restart fault's heal): a bug only a fault shows.
 *                  The first smbd of a run leaves a mark next to its smb.conf.
 *   none           nothing (the shim loaded, behaving)
 *
 * N is SMBCHAOS_PLANT_EVERY (default 3). Which calls misbehave is random (seeded per smbd
 * process from its pid and the clock), so two reads of the same bytes rarely lie alike. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

enum plant { PLANT_NONE, PLANT_CORRUPT_READS, PLANT_DROP_WRITES, PLANT_DROP_WRITES_AFTER_RESTART };

static enum plant plant_kind(void) {
    const char *p = getenv("SMBCHAOS_PLANT");
    if (p && strcmp(p, "corrupt-reads") == 0) return PLANT_CORRUPT_READS;
    if (p && strcmp(p, "drop-writes") == 0) return PLANT_DROP_WRITES;
    if (p && strcmp(p, "drop-writes-after-restart") == 0) return PLANT_DROP_WRITES_AFTER_RESTART;
    return PLANT_NONE;
}

static long every(void) {
    const char *e = getenv("SMBCHAOS_PLANT_EVERY");
    long n = e ? strtol(e, NULL, 10) : 3;
    return n > 0 ? n : 3;
}

/* Whether fd is a file the plant acts on. */
static int targeted(int fd) {
    char link[64], path[4096];
    const char *suffix = getenv("SMBCHAOS_PLANT_SUFFIX");
    if (!suffix) suffix = ".dat";
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n <= 0) return 0;
    path[n] = 0;
    size_t s = strlen(suffix);
    return (size_t)n >= s && strcmp(path + n - s, suffix) == 0;
}

/* xorshift64*, seeded once per process: the plant's random choices. */
static unsigned long long next_random(void) {
    static _Atomic unsigned long long state;
    unsigned long long x = atomic_load(&state);
    if (x == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        x = ((unsigned long long)getpid() << 32) ^ (unsigned long long)ts.tv_nsec ^ 0x9E3779B97F4A7C15ULL;
    }
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    atomic_store(&state, x);
    return x * 0x2545F4914F6CDD1DULL;
}

/* True for one targeted call in N, at random. */
static int strikes(void) { return next_random() % (unsigned long long)every() == 0; }

/* Set in an smbd daemon started after its node's first (and inherited by its children). */
static int restarted;

/* In the smbd daemon itself (`smbd --foreground ... -s CONF`), not in helpers it execs:
 * the first start of the run leaves CONF's directory a mark; later starts find it. */
__attribute__((constructor)) static void plant_init(void) {
    if (plant_kind() != PLANT_DROP_WRITES_AFTER_RESTART) return;
    char args[8192];
    FILE *f = fopen("/proc/self/cmdline", "r");
    if (!f) return;
    size_t n = fread(args, 1, sizeof args - 1, f);
    fclose(f);
    args[n] = 0;
    const char *conf = NULL;
    int foreground = 0;
    for (size_t i = 0; i < n; i += strlen(args + i) + 1) {
        if (strcmp(args + i, "--foreground") == 0) foreground = 1;
        if (strcmp(args + i, "-s") == 0 && i + 3 < n) conf = args + i + 3;
    }
    if (!foreground || !conf) return;
    char mark[4096];
    const char *slash = strrchr(conf, '/');
    if (!slash) return;
    snprintf(mark, sizeof mark, "%.*s/plant-first-smbd", (int)(slash - conf), conf);
    if (access(mark, F_OK) == 0) {
        restarted = 1;
    } else {
        FILE *m = fopen(mark, "w");
        if (m) fclose(m);
    }
}

typedef ssize_t (*pread_fn)(int, void *, size_t, off_t);
typedef ssize_t (*pwrite_fn)(int, const void *, size_t, off_t);

static ssize_t do_pread(const char *sym, int fd, void *buf, size_t count, off_t off) {
    pread_fn real = (pread_fn)dlsym(RTLD_NEXT, sym);
    ssize_t n = real(fd, buf, count, off);
    if (n > 0 && plant_kind() == PLANT_CORRUPT_READS && targeted(fd) && strikes()) {
        unsigned long long noise = next_random() | 1;
        unsigned char *b = buf;
        for (ssize_t i = 0; i < n && i < 8; i++) b[i] ^= (unsigned char)(noise >> (8 * i)) | 1;
    }
    return n;
}

static ssize_t do_pwrite(const char *sym, int fd, const void *buf, size_t count, off_t off) {
    enum plant k = plant_kind();
    int drops = k == PLANT_DROP_WRITES || (k == PLANT_DROP_WRITES_AFTER_RESTART && restarted);
    if (drops && targeted(fd) && strikes()) return (ssize_t)count;
    pwrite_fn real = (pwrite_fn)dlsym(RTLD_NEXT, sym);
    return real(fd, buf, count, off);
}

ssize_t pread(int fd, void *buf, size_t count, off_t off) {
    return do_pread("pread", fd, buf, count, off);
}
ssize_t pread64(int fd, void *buf, size_t count, off_t off) {
    return do_pread("pread64", fd, buf, count, off);
}
ssize_t pwrite(int fd, const void *buf, size_t count, off_t off) {
    return do_pwrite("pwrite", fd, buf, count, off);
}
ssize_t pwrite64(int fd, const void *buf, size_t count, off_t off) {
    return do_pwrite("pwrite64", fd, buf, count, off);
}
