/* sync.c - group commit: concurrent writers share sync rounds.
 *
 * A writer that finished its writes takes a ticket. If no round is running
 * it runs one itself: one syncfs() of the store's filesystem, which makes
 * every write made before it durable (data, inodes and directory entries)
 * in a single journal commit, and marks all tickets handed out so far as
 * done. Writers that arrive during a round wait for the next one, which
 * the first of them to wake up runs. So N concurrent appends cost about two
 * journal commits, not N, and nobody returns before a round that started
 * after its writes finished. (fsync of each file in turn from one thread
 * would cost one journal commit per file: slower than no grouping at all.)
 * A round of one writer's few files fsyncs them instead (syncfs would
 * also flush whatever else is dirty on the filesystem); where syncfs is
 * missing, each descriptor handed over is fsynced. */
#include "store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SYNC_FEW 4 /* up to this many descriptors are fsynced one by one */

void sync_group_init(sync_group *g)
{
    memset(g, 0, sizeof *g);
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
}

void sync_group_fini(sync_group *g)
{
    for (size_t i = 0; i < g->nfds; i++)
        close(g->fds[i]);
    free(g->fds);
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
}

/* syncfs of the filesystem (through the first descriptor), else fsync of
 * every descriptor; the first errno seen, or 0. */
static int sync_all(int *fds, size_t n)
{
    int failed = 0;
    /* One writer's few files: their own fsyncs flush only them. */
    if (n > SYNC_FEW && syncfs(fds[0]) == 0) {
        for (size_t i = 0; i < n; i++)
            close(fds[i]);
        return 0;
    }
    if (n > SYNC_FEW && errno != ENOSYS)
        failed = errno;
    for (size_t i = 0; i < n; i++) {
        while (fsync(fds[i]) < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EINVAL && errno != EROFS && !failed) /* EINVAL: a dir fsync some fs refuse */
                failed = errno;
            break;
        }
        close(fds[i]);
    }
    return failed;
}

at_result sync_wait(sync_group *g, const int *fds, size_t n, at_error *err)
{
    pthread_mutex_lock(&g->mu);
    if (g->nfds + n > g->cap) {
        size_t cap = (g->nfds + n) * 2 + 16;
        int *nf = realloc(g->fds, cap * sizeof *nf);
        if (!nf) {
            /* No room to hand them over: sync them here, alone. A caller
             * may have written its version record already, so memory must
             * not turn a durable write into a reported failure. */
            pthread_mutex_unlock(&g->mu);
            int e = 0;
            for (size_t i = 0; i < n && !e; i++)
                while (fsync(fds[i]) < 0 && errno != EINVAL && errno != EROFS) {
                    if (errno != EINTR) {
                        e = errno;
                        break;
                    }
                }
            return e ? at_error_set(err, AT_ERR_IO, -1, "cannot sync to disk: %s", strerror(e)) : AT_OK;
        }
        g->fds = nf;
        g->cap = cap;
    }
    for (size_t i = 0; i < n; i++) {
        int d = fcntl(fds[i], F_DUPFD_CLOEXEC, 0);
        if (d < 0) {
            int e = errno;
            pthread_mutex_unlock(&g->mu);
            return at_error_set(err, AT_ERR_IO, -1, "cannot sync: %s", strerror(e));
        }
        g->fds[g->nfds++] = d;
    }
    uint64_t ticket = ++g->next;
    while (g->done < ticket) {
        if (g->busy) {
            pthread_cond_wait(&g->cv, &g->mu);
            continue;
        }
        /* Run a round for everything handed over so far. */
        g->busy = true;
        int *mine = g->fds;
        size_t count = g->nfds;
        uint64_t upto = g->next;
        g->fds = NULL;
        g->nfds = g->cap = 0;
        pthread_mutex_unlock(&g->mu);
        int e = sync_all(mine, count);
        free(mine);
        pthread_mutex_lock(&g->mu);
        if (e) {
            unsigned k = g->nfailed++ % (sizeof g->failed / sizeof *g->failed);
            g->failed[k].from = g->done + 1;
            g->failed[k].to = upto;
            g->failed[k].errnum = e;
        }
        g->done = upto;
        g->busy = false;
        pthread_cond_broadcast(&g->cv);
    }
    int e = 0;
    for (size_t k = 0; k < sizeof g->failed / sizeof *g->failed; k++)
        if (g->failed[k].to && ticket >= g->failed[k].from && ticket <= g->failed[k].to)
            e = g->failed[k].errnum;
    pthread_mutex_unlock(&g->mu);
    if (e)
        return at_error_set(err, AT_ERR_IO, -1, "cannot sync to disk: %s", strerror(e));
    return AT_OK;
}
