/*
 * opener: open() and close() files in a tight loop and report the cost of one open.
 *
 * This is the workload of linux-mechanisms.md section 6: every open of a file under a
 * FAN_OPEN_PERM mark is one permission event, so the opens per second are the decisions per
 * second of whichever listener answers them.
 *
 *   opener [-n COUNT] [-d MS] [-w WARMUP] [-c CPU] [-l LOGINUID] [-N MNTNS] PATH [PATH...]
 *
 * -n  timed opens, spread round-robin over the paths (default 100000)
 * -d  stop after MS milliseconds even if COUNT opens are not done: every listener then gets
 *     the same time, however slow it is (default: no time limit)
 * -w  untimed opens first, so that a listener's first-sight work (session lookup, ignore
 *     marks) is not in the figure (default 1000)
 * -c  pin to this CPU before anything else (sched_setaffinity): on a VM, cross-CPU wakeups
 *     cost tens of microseconds and would swamp the listener's own cost
 * -l  write this uid to /proc/self/loginuid first, which starts a new audit session, so that
 *     a session-aware rule set sees a real session
 * -N  enter this mount namespace (a /proc/PID/ns/mnt path) first, so that PATH is resolved
 *     there: how the runner reaches fapolicyd's private tmpfs without a slower path walk
 *     through /proc/PID/root
 *
 * Output, one line of key=value pairs on stdout:
 *   opens=N errors=E ns_per_open=F opens_per_s=F cpu=C sessionid=S
 * An open that fails is counted in errors (a listener that denies, or is not there) and the
 * exit status is then 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PROGRAM "opener"
#include "common.h"

static void set_loginuid(long uid)
{
    char text[32];
    int len = snprintf(text, sizeof text, "%ld", uid);
    int fd = open("/proc/self/loginuid", O_WRONLY);
    if (fd < 0 || write(fd, text, (size_t)len) != len) {
        fprintf(stderr, "opener: cannot set loginuid: %s\n", strerror(errno));
        exit(2);
    }
    close(fd);
}

static long long read_sessionid(void)
{
    char text[32] = {0};
    int fd = open("/proc/self/sessionid", O_RDONLY);
    if (fd < 0)
        return -1;
    ssize_t len = read(fd, text, sizeof text - 1);
    close(fd);
    if (len <= 0)
        return -1;
    long long value = strtoll(text, NULL, 10);
    return value == 4294967295LL ? -1 : value;
}

int main(int argc, char **argv)
{
    long count = 100000, duration_ms = 0, warmup = 1000, cpu = -1, loginuid = -1;
    const char *mntns = NULL;
    int opt;
    while ((opt = getopt(argc, argv, "n:d:w:c:l:N:")) != -1) {
        switch (opt) {
        case 'n': count = parse_long(optarg, "count"); break;
        case 'd': duration_ms = parse_long(optarg, "duration"); break;
        case 'w': warmup = parse_long(optarg, "warmup"); break;
        case 'c': cpu = parse_long(optarg, "cpu"); break;
        case 'l': loginuid = parse_long(optarg, "loginuid"); break;
        case 'N': mntns = optarg; break;
        default:
            fprintf(stderr, "usage: opener [-n COUNT] [-d MS] [-w WARMUP] [-c CPU] [-l LOGINUID] [-N MNTNS] PATH...\n");
            return 2;
        }
    }
    int npaths = argc - optind;
    char **paths = argv + optind;
    if (npaths < 1 || count < 1) {
        fprintf(stderr, "usage: opener [-n COUNT] [-d MS] [-w WARMUP] [-c CPU] [-l LOGINUID] [-N MNTNS] PATH...\n");
        return 2;
    }
    if (cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET((int)cpu, &set);
        if (sched_setaffinity(0, sizeof set, &set) != 0) {
            fprintf(stderr, "opener: cannot pin to CPU %ld: %s\n", cpu, strerror(errno));
            return 2;
        }
    }
    if (mntns != NULL) {
        int fd = open(mntns, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || setns(fd, CLONE_NEWNS) != 0) {
            fprintf(stderr, "opener: cannot enter %s: %s\n", mntns, strerror(errno));
            return 2;
        }
        close(fd);
    }
    if (loginuid >= 0)
        set_loginuid(loginuid);

    long errors = 0;
    for (long i = 0; i < warmup; i++) {
        int fd = open(paths[i % npaths], O_RDONLY);
        if (fd >= 0)
            close(fd);
    }
    long long start = now_ns();
    long long deadline = start + duration_ms * 1000000LL;
    long done = 0;
    while (done < count) {
        /* The clock is read once every 16 opens: a vDSO call, a few ns shared among them. */
        if (duration_ms > 0 && (done & 15) == 0 && done > 0 && now_ns() >= deadline)
            break;
        int fd = open(paths[done % npaths], O_RDONLY);
        if (fd < 0)
            errors++;
        else
            close(fd);
        done++;
    }
    long long elapsed = now_ns() - start;
    if (elapsed <= 0)
        elapsed = 1;
    double ns_per_open = (double)elapsed / (double)done;
    printf("opens=%ld errors=%ld ns_per_open=%.1f opens_per_s=%.1f cpu=%ld sessionid=%lld\n",
           done, errors, ns_per_open, 1e9 / ns_per_open, cpu, read_sessionid());
    return errors == 0 ? 0 : 1;
}
