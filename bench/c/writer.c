/*
 * writer: create, write and close distinct files for a while; the notification workload.
 *
 *   writer [-s MS] [-r FILES_PER_S] [-b BYTES] [-c CPU] DIR
 *
 * Creates DIR/f00000000, DIR/f00000001, ... in order, opens, writes BYTES bytes (one write(),
 * so one FAN_MODIFY) and closes each (one FAN_CLOSE_WRITE), until MS milliseconds have passed.
 * Every file is new, so operations on two files are never merged by the kernel's event queue,
 * and the caller knows exactly which files were generated from the count alone.
 *
 * -r paces the writer at that many files per second (0: as fast as it can). A paced workload is
 * the same for every listener it is run under, whatever CPU the listener takes; flat out, the
 * writer would generate more the lighter the listener, and a slow listener's backlog would
 * take minutes to drain.
 *
 * Output, one line on stdout: files=N elapsed_ns=T
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

#define PROGRAM "writer"
#include "common.h"

int main(int argc, char **argv)
{
    long duration_ms = 10000, rate = 0, bytes = 64, cpu = -1;
    int opt;
    while ((opt = getopt(argc, argv, "s:r:b:c:")) != -1) {
        switch (opt) {
        case 's': duration_ms = parse_long(optarg, "duration"); break;
        case 'r': rate = parse_long(optarg, "rate"); break;
        case 'b': bytes = parse_long(optarg, "bytes"); break;
        case 'c': cpu = parse_long(optarg, "cpu"); break;
        default:
            fprintf(stderr, "usage: writer [-s MS] [-r FILES_PER_S] [-b BYTES] [-c CPU] DIR\n");
            return 2;
        }
    }
    if (optind != argc - 1 || bytes < 1 || bytes > 4096) {
        fprintf(stderr, "usage: writer [-s MS] [-r FILES_PER_S] [-b BYTES(1-4096)] [-c CPU] DIR\n");
        return 2;
    }
    const char *dir = argv[optind];
    if (cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET((int)cpu, &set);
        if (sched_setaffinity(0, sizeof set, &set) != 0) {
            fprintf(stderr, "writer: cannot pin to CPU %ld: %s\n", cpu, strerror(errno));
            return 2;
        }
    }
    char payload[4096];
    memset(payload, 'x', sizeof payload);
    char path[4096];
    long long start = now_ns();
    long long deadline = start + (long long)duration_ms * 1000000LL;
    long files = 0;
    for (;;) {
        if ((files & 15) == 0) {
            long long now = now_ns();
            if (now >= deadline)
                break;
            if (rate > 0) {
                /* Sleep until file number `files` is due; a writer that fell behind catches up. */
                long long due = start + files * 1000000000LL / rate;
                if (due > now) {
                    struct timespec until = {.tv_sec = due / 1000000000LL,
                                             .tv_nsec = due % 1000000000LL};
                    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL) == EINTR)
                        ;
                    if (now_ns() >= deadline)
                        break;
                }
            }
        }
        snprintf(path, sizeof path, "%s/f%08ld", dir, files);
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0) {
            fprintf(stderr, "writer: %s: %s\n", path, strerror(errno));
            return 1;
        }
        if (write(fd, payload, (size_t)bytes) != bytes) {
            fprintf(stderr, "writer: write %s: %s\n", path, strerror(errno));
            return 1;
        }
        close(fd);
        files++;
    }
    printf("files=%ld elapsed_ns=%lld\n", files, now_ns() - start);
    return 0;
}
