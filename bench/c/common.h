/*
 * What the benchmark's C programs share. Define PROGRAM (the name errors are prefixed with)
 * before including it.
 */
#ifndef SESSIONIO_BENCH_COMMON_H
#define SESSIONIO_BENCH_COMMON_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* A non-negative decimal argument, or exit 2 (usage) naming what was wrong. */
static long parse_long(const char *text, const char *what)
{
    char *end = NULL;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || value < 0) {
        fprintf(stderr, PROGRAM ": bad %s: %s\n", what, text);
        exit(2);
    }
    return value;
}

/* CLOCK_MONOTONIC in nanoseconds. */
static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

#endif
