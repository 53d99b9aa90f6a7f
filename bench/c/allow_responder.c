/*
 * allow_responder: the least a user-space fanotify decision can cost.
 *
 * A FAN_CLASS_CONTENT group with a FAN_OPEN_PERM mark on the filesystem that holds PATH (or on
 * its mount with -M), answering FAN_ALLOW to every event straight from the read buffer: no
 * lookup, no allocation, no logging. sessionio's enforce is compared with it.
 *
 *   allow_responder [-M] [-i IGNORED]... PATH
 *
 * -i puts an ignore mark for FAN_OPEN_PERM on the file IGNORED (surviving modification, as a
 *    decision cache must): opens of it never reach user space, which is the floor of what
 *    sessionio's ignore-mark cache can cost.
 *
 * Prints "ready" on stdout once the mark is in place (the caller waits for that line before it
 * starts the opener), and "events=N" when SIGINT or SIGTERM stops it, so that the caller can
 * check that every open it timed really went through here.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <unistd.h>

#ifndef FAN_MARK_IGNORE
#define FAN_MARK_IGNORE 0x00000400
#endif
#ifndef FAN_MARK_IGNORED_SURV_MODIFY
#define FAN_MARK_IGNORED_SURV_MODIFY 0x00000040
#endif

static volatile sig_atomic_t stopping = 0;

static void on_signal(int signo)
{
    (void)signo;
    stopping = 1;
}

int main(int argc, char **argv)
{
    unsigned int mark_type = FAN_MARK_FILESYSTEM;
    const char *ignored[16];
    int nignored = 0;
    int opt;
    while ((opt = getopt(argc, argv, "Mi:")) != -1) {
        if (opt == 'M') {
            mark_type = FAN_MARK_MOUNT;
        } else if (opt == 'i' && nignored < 16) {
            ignored[nignored++] = optarg;
        } else {
            fprintf(stderr, "usage: allow_responder [-M] [-i IGNORED]... PATH\n");
            return 2;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "usage: allow_responder [-M] [-i IGNORED]... PATH\n");
        return 2;
    }
    const char *path = argv[optind];

    /* No SA_RESTART: a signal must interrupt the blocking read() so that the loop ends. */
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_signal;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGTERM, &action, NULL);

    int group = fanotify_init(FAN_CLASS_CONTENT | FAN_CLOEXEC | FAN_UNLIMITED_QUEUE,
                              O_RDONLY | O_LARGEFILE | O_CLOEXEC);
    if (group < 0) {
        fprintf(stderr, "allow_responder: fanotify_init: %s\n", strerror(errno));
        return 1;
    }
    if (fanotify_mark(group, FAN_MARK_ADD | mark_type, FAN_OPEN_PERM, AT_FDCWD, path) != 0) {
        fprintf(stderr, "allow_responder: fanotify_mark %s: %s\n", path, strerror(errno));
        return 1;
    }
    for (int i = 0; i < nignored; i++) {
        unsigned int flags = FAN_MARK_ADD | FAN_MARK_IGNORE | FAN_MARK_IGNORED_SURV_MODIFY;
        if (fanotify_mark(group, flags, FAN_OPEN_PERM, AT_FDCWD, ignored[i]) != 0) {
            fprintf(stderr, "allow_responder: ignore mark %s: %s\n", ignored[i], strerror(errno));
            return 1;
        }
    }
    printf("ready\n");
    fflush(stdout);

    /* Aligned for the metadata structs; room for a few hundred events per read. */
    static char buffer[8192] __attribute__((aligned(8)));
    unsigned long long events = 0;
    while (!stopping) {
        ssize_t len = read(group, buffer, sizeof buffer);
        if (len < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "allow_responder: read: %s\n", strerror(errno));
            return 1;
        }
        struct fanotify_event_metadata *event = (struct fanotify_event_metadata *)buffer;
        while (FAN_EVENT_OK(event, len)) {
            if (event->fd >= 0) {
                struct fanotify_response response = {.fd = event->fd, .response = FAN_ALLOW};
                if (write(group, &response, sizeof response) != sizeof response)
                    fprintf(stderr, "allow_responder: write: %s\n", strerror(errno));
                close(event->fd);
            }
            events++;
            event = FAN_EVENT_NEXT(event, len);
        }
    }
    printf("events=%llu\n", events);
    fflush(stdout);
    /* Closing the group allows anything still pending (fanotify_release). */
    close(group);
    return 0;
}
