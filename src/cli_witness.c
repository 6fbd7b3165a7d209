/* cli_witness.c - `agent-traced witness`: a c2sp.org/tlog-witness witness
 * for transparency logs, serving POST /add-checkpoint over libmicrohttpd.
 * The protocol and the state are witness.h's; this file carries bytes.
 *
 * Requests follow largepost.c: the first callback allocates the request
 * state and routes it, later calls gather the body (capped at
 * AT_WITNESS_MAX_BODY) and set *upload_data_size = 0, an error records its
 * status and drains the rest, the final call answers, the completion
 * callback logs and frees. One polling thread: requests are short, and the
 * witness handles them one at a time anyway (check and persist are one
 * step). */
#include "log_line.h"
#include "cli.h"

#include "agenttrace/note.h"
#include "agenttrace/witness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#if MHD_VERSION < 0x00097002
typedef int MHD_RESULT;
#else
typedef enum MHD_Result MHD_RESULT;
#endif

static const char usage[] =
    "usage: agent-traced witness --key FILE --log VKEY [--log VKEY]... [--host H] [--port P]\n"
    "                            [--state DIR] [--timeout SECONDS]\n"
    "       agent-traced witness --key FILE --print-vkey\n"
    "\n"
    "Runs a witness for transparency logs (c2sp.org/tlog-witness): it serves\n"
    "POST /add-checkpoint, checks each checkpoint's signature by the log's key and\n"
    "the consistency proof from the size it cosigned last, and answers with its\n"
    "Ed25519 cosignature (c2sp.org/tlog-cosignature, type 0x04). It never cosigns\n"
    "a checkpoint that is not consistent with one it cosigned before: the latest\n"
    "size and root per log are kept in DIR/state, synced before each answer.\n"
    "A refused checkpoint that shows a fork is logged and kept in DIR/evidence.\n"
    "\n"
    "  --key FILE      the witness's private key, Go's note form (mode 0600;\n"
    "                  `agent-traced log keygen --origin NAME --out FILE` makes one,\n"
    "                  NAME being the witness's name, such as witness.example/w1)\n"
    "  --log VKEY      a log's verifier key, the key itself or a file holding it\n"
    "                  (`agent-traced serve` logs it, GET /log/key serves it); the\n"
    "                  log's origin is the key's name (repeatable)\n"
    "  --host H        address to bind (default 127.0.0.1)\n"
    "  --port P        port (default 4318; 0 picks a free one)\n"
    "  --state DIR     where the state lives (default ./witness-state)\n"
    "  --timeout S     close connections idle this long (default 30)\n"
    "  --print-vkey    print the witness's cosignature verifier key and exit: logs\n"
    "                  take it as `serve --witness URL=VKEY`\n"
    "  -h, --help      show this help\n"
    "\n"
    "The first line on standard error is `listening on HOST:PORT`, then the\n"
    "cosignature key, then one line per request and one per checkpoint cosigned\n"
    "or refused, with the reason. SIGINT/SIGTERM stop it.\n";

#define CMD "witness"

typedef struct {
    at_witness *w;
    unsigned long long requests;
} witness_server;

typedef struct {
    char method[12];
    char path[128];
    struct timespec t0;
    int status; /* != 0: an error to answer with, the body drained */
    at_buf body;
    size_t bytes_in;
    size_t bytes_out;
} request;

static MHD_RESULT respond(request *rq, struct MHD_Connection *c, int status, const char *type, at_buf *body)
{
    size_t n = 0;
    char *data = at_buf_steal(body, &n);
    struct MHD_Response *resp = data ? MHD_create_response_from_buffer(n, data, MHD_RESPMEM_MUST_FREE)
                                     : MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        free(data);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (status == 405)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "POST");
    MHD_RESULT r = MHD_queue_response(c, (unsigned)status, resp);
    MHD_destroy_response(resp);
    rq->status = status;
    rq->bytes_out = n;
    return r;
}

static MHD_RESULT respond_text(request *rq, struct MHD_Connection *c, int status, const char *msg)
{
    at_buf b;
    at_buf_init(&b, 0);
    if (at_buf_adds(&b, msg) != AT_OK || at_buf_addc(&b, '\n') != AT_OK)
        at_buf_reset(&b);
    MHD_RESULT r = respond(rq, c, status, "text/plain; charset=utf-8", &b);
    at_buf_fini(&b);
    return r;
}

static MHD_RESULT on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                             const char *version, const char *upload_data, size_t *upload_data_size,
                             void **con_cls)
{
    witness_server *srv = cls;
    request *rq = *con_cls;
    if (!rq) {
        if (!(rq = calloc(1, sizeof *rq)))
            return MHD_NO;
        clock_gettime(CLOCK_MONOTONIC, &rq->t0);
        log_sanitize(rq->method, sizeof rq->method, method);
        log_sanitize(rq->path, sizeof rq->path, url);
        at_buf_init(&rq->body, AT_WITNESS_MAX_BODY);
        *con_cls = rq;
        if (strcmp(url, "/add-checkpoint") != 0)
            rq->status = 404;
        else if (strcmp(method, "POST") != 0)
            rq->status = 405;
        return MHD_YES;
    }
    if (*upload_data_size) {
        rq->bytes_in += *upload_data_size;
        if (!rq->status && at_buf_add(&rq->body, upload_data, *upload_data_size) != AT_OK)
            rq->status = 413; /* the rest is drained */
        *upload_data_size = 0;
        return MHD_YES;
    }
    switch (rq->status) {
    case 404: return respond_text(rq, c, 404, "not found: a witness serves POST /add-checkpoint");
    case 405: return respond_text(rq, c, 405, "method not allowed: POST /add-checkpoint");
    case 413: {
        char m[96];
        snprintf(m, sizeof m, "request body larger than %u bytes", AT_WITNESS_MAX_BODY);
        log_line("agent-traced witness: refused (413): %s", m);
        return respond_text(rq, c, 413, m);
    }
    default: break;
    }
    at_buf out;
    at_buf_init(&out, 0);
    at_witness_answer a;
    int status = at_witness_add_checkpoint(srv->w, rq->body.data ? rq->body.data : "", rq->body.len,
                                           (uint64_t)time(NULL), &out, &a);
    if (status == 200)
        log_line("agent-traced witness: %s", a.reason);
    else if (a.fork)
        log_line("agent-traced witness: refused (%d): %s%s%s", status, a.reason,
                 a.evidence[0] ? "; the request is kept in " : "", a.evidence);
    else
        log_line("agent-traced witness: refused (%d): %s", status, a.reason);
    MHD_RESULT r = respond(rq, c, status, a.content_type, &out);
    at_buf_fini(&out);
    return r;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    request *rq = *con_cls;
    if (!rq)
        return;
    *con_cls = NULL;
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long long us = (long long)(t1.tv_sec - rq->t0.tv_sec) * 1000000 + (t1.tv_nsec - rq->t0.tv_nsec) / 1000;
    log_line("%s %s %d %zu %lldus in=%zu%s", rq->method, rq->path, rq->status, rq->bytes_out, us,
             rq->bytes_in, toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " aborted");
    at_buf_fini(&rq->body);
    free(rq);
}

/* ---- keys ---------------------------------------------------------------------------------- */

/* The witness's private key: a regular file only its owner can read. */
static at_note_signer *load_key(const char *path, at_error *err)
{
    at_note_signer *s = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat sb;
    char buf[4096];
    ssize_t k = 0;
    if (fd < 0) {
        at_error_set(err, AT_ERR_IO, -1, "cannot read %s: %s", path, strerror(errno));
        return NULL;
    }
    if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode))
        at_error_set(err, AT_ERR_INVALID, -1, "%s is not a file", path);
    else if (sb.st_mode & 077)
        at_error_set(err, AT_ERR_INVALID, -1, "%s can be read by others (mode %03o): chmod 600 it", path,
                     (unsigned)(sb.st_mode & 0777));
    else if ((k = read(fd, buf, sizeof buf)) <= 0 || (size_t)k == sizeof buf)
        at_error_set(err, AT_ERR_INVALID, -1, "cannot read a key from %s", path);
    else {
        while (k > 0 && (buf[k - 1] == '\n' || buf[k - 1] == '\r'))
            k--;
        if (at_note_signer_new(buf, (size_t)k, AT_NOTE_COSIG_V1, &s, err) != AT_OK)
            s = NULL;
    }
    explicit_bzero(buf, sizeof buf);
    close(fd);
    return s;
}

static bool parse_uint(const char *s, unsigned long max, unsigned long *out)
{
    char *end;
    if (!s || *s < '0' || *s > '9')
        return false;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end || v > max)
        return false;
    *out = v;
    return true;
}

/* ---- the command ----------------------------------------------------------------------------- */

int cli_witness(int argc, char **argv)
{
    static const struct option opts[] = {
        {"key", required_argument, NULL, 'k'},
        {"log", required_argument, NULL, 'l'},
        {"host", required_argument, NULL, 'H'},
        {"port", required_argument, NULL, 'p'},
        {"state", required_argument, NULL, 's'},
        {"timeout", required_argument, NULL, 'T'},
        {"print-vkey", no_argument, NULL, 'P'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *key_path = NULL, *host = "127.0.0.1", *state = "./witness-state";
    const char *vkeys[AT_WITNESS_MAX_LOGS];
    size_t n_vkeys = 0;
    unsigned long port = 4318, timeout = 30;
    bool print_vkey = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'k': key_path = optarg; break;
        case 'l':
            if (n_vkeys == AT_WITNESS_MAX_LOGS) {
                cli_errorf(CMD, "at most %d --log keys", AT_WITNESS_MAX_LOGS);
                return 2;
            }
            vkeys[n_vkeys++] = optarg;
            break;
        case 'H': host = optarg; break;
        case 's': state = optarg; break;
        case 'p':
            if (!parse_uint(optarg, 65535, &port))
                goto usage;
            break;
        case 'T':
            if (!parse_uint(optarg, 86400, &timeout))
                goto usage;
            break;
        case 'P': print_vkey = true; break;
        case 'h': fputs(usage, stdout); return 0;
        default: goto usage;
        }
    }
    if (optind < argc || !key_path || (!print_vkey && n_vkeys == 0)) {
        cli_errorf(CMD, "%s",
                   optind < argc ? "unexpected argument"
                   : !key_path   ? "--key FILE is required"
                                 : "--log VKEY is required: the verifier key of the log to witness");
        goto usage;
    }

    at_error err = {0};
    int rc = 1;
    at_note_verifier *logs[AT_WITNESS_MAX_LOGS] = {0};
    at_witness *w = NULL;
    struct MHD_Daemon *d = NULL;
    at_buf vkey;
    at_buf_init(&vkey, 0);
    at_note_signer *signer = load_key(key_path, &err);
    if (!signer) {
        cli_errorf(CMD, "--key: %s", err.message);
        goto out;
    }
    if (at_note_signer_vkey(signer, &vkey) != AT_OK) {
        cli_errorf(CMD, "out of memory");
        goto out;
    }
    if (print_vkey) {
        printf("%s\n", vkey.data);
        rc = fflush(stdout) == 0 ? 0 : 1;
        goto out;
    }
    for (size_t i = 0; i < n_vkeys; i++) {
        if (at_witness_vkey_load(vkeys[i], &logs[i], &err) != AT_OK) {
            cli_errorf(CMD, "--log %s: %s", vkeys[i], err.message);
            rc = 2;
            goto out;
        }
        if (at_note_verifier_type(logs[i]) != AT_NOTE_ED25519) {
            cli_errorf(CMD, "--log %s: not a log's key (type 0x%02x; a log signs with Ed25519, type 0x01)",
                       vkeys[i], (unsigned)at_note_verifier_type(logs[i]));
            rc = 2;
            goto out;
        }
    }
    at_witness_options wo = {.signer = signer,
                             .logs = (const at_note_verifier *const *)logs,
                             .n_logs = n_vkeys,
                             .state_dir = state};
    if (!(w = at_witness_open(&wo, &err))) {
        cli_errorf(CMD, "%s", err.message);
        goto out;
    }

    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    int gr = getaddrinfo(host, NULL, &hints, &ai);
    if (gr != 0 || !ai) {
        cli_errorf(CMD, "cannot resolve %s: %s", host, gai_strerror(gr));
        goto out;
    }
    struct sockaddr_storage sa;
    memset(&sa, 0, sizeof sa);
    memcpy(&sa, ai->ai_addr, ai->ai_addrlen);
    bool v6 = ai->ai_family == AF_INET6;
    freeaddrinfo(ai);
    if (v6)
        ((struct sockaddr_in6 *)&sa)->sin6_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in *)&sa)->sin_port = htons((uint16_t)port);

    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    witness_server srv = {.w = w};
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG;
    if (v6)
        flags |= MHD_USE_IPv6;
    d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, &srv, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                         MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)timeout, MHD_OPTION_NOTIFY_COMPLETED,
                         on_completed, &srv, MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1, MHD_OPTION_END);
    if (!d) {
        cli_errorf(CMD, "cannot listen on %s:%lu", host, port);
        goto out;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    unsigned real_port = info ? info->port : (unsigned)port;
    char addr[INET6_ADDRSTRLEN] = "?";
    if (v6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&sa)->sin6_addr, addr, sizeof addr);
    else
        inet_ntop(AF_INET, &((struct sockaddr_in *)&sa)->sin_addr, addr, sizeof addr);
    log_line(v6 ? "listening on [%s]:%u" : "listening on %s:%u", addr, real_port);
    log_line("agent-traced witness: cosignature key %s, state %s, pid %ld", vkey.data, state, (long)getpid());
    for (size_t i = 0; i < n_vkeys; i++) {
        size_t nl;
        const char *name = at_note_verifier_name(logs[i], &nl);
        uint64_t size = 0;
        uint8_t root[AT_NOTE_HASH_LEN];
        bool seen = at_witness_latest(w, name, nl, &size, root) == AT_OK;
        log_line("agent-traced witness: witnessing %.*s+%08x, %s %llu", (int)nl, name,
                 (unsigned)at_note_verifier_id(logs[i]),
                 seen ? "last cosigned size" : "nothing cosigned yet, size", (unsigned long long)size);
    }

    int sig = 0;
    while (sigwait(&sigs, &sig) != 0)
        ;
    log_line("agent-traced witness: %s received, stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
    rc = 0;
out:
    if (d)
        MHD_stop_daemon(d);
    at_witness_free(w);
    for (size_t i = 0; i < n_vkeys; i++)
        at_note_verifier_free(logs[i]);
    at_note_signer_free(signer);
    at_buf_fini(&vkey);
    return rc;
usage:
    fputs(usage, stderr);
    return 2;
}
