/* cli_verify.c - `agent-traced verify`: check the hash chain of events.ndjson
 * files or session directories, one JSON verdict line per path. */
#include "cli.h"
#include "api/report.h"

#include "agenttrace/json.h"
#include "agenttrace/store.h"
#include "agenttrace/verify.h"
#include "sessions.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char usage[] =
    "usage: agent-traced verify [--legacy] PATH...\n"
    "       agent-traced verify [--legacy] --versions [--storage DIR] [SESSION...]\n"
    "       agent-traced verify --log URL_OR_STORAGE --vkey KEY [--checkpoint FILE\n"
    "                           [--witness KEY]...] [PATH...]\n"
    "       agent-traced verify --proof FILE.tlog-proof --vkey KEY PATH\n"
    "\n"
    "Checks the SHA-256 hash chain of each PATH, an events.ndjson file or a\n"
    "session directory (then PATH/events.ndjson), and prints one JSON line per\n"
    "path: path, ok, total_events, broken_at (0-based index of the first bad\n"
    "event line, or null), broken_event_id (its event_id, or null).\n"
    "\n"
    "  --legacy    accept lines without prev_hash, as agent-strace's\n"
    "              `audit --verify-chain` does (events written before hash\n"
    "              chains); by default every line after the first needs one\n"
    "  --versions  check every version of the sessions of a storage directory\n"
    "              (all of them when none is named), read from their objects:\n"
    "              one line each with session_id, version, the verdict,\n"
    "              events_sha256, object_ok (the bytes hash to the version's\n"
    "              recorded digest) and head\n"
    "  --storage DIR  with --versions (default: $AGENT_STRACE_STORAGE, else\n"
    "              ./.agent-traces)\n"
    "  --log URL_OR_STORAGE\n"
    "              check each session (PATH: its directory or events.ndjson;\n"
    "              with a storage and no PATH, all of them) against the signed\n"
    "              transparency log of a server or a storage directory: its\n"
    "              current version's entry is in the tree of a checkpoint\n"
    "              signed by KEY, and the file's line count, last line and\n"
    "              digest are the entry's. One JSON line per session, saying\n"
    "              what differs when not ok.\n"
    "  --proof FILE  the same offline, from a proof file (GET\n"
    "              /sessions/{id}/proof) and the events alone\n"
    "  --vkey KEY  the log's verifier key, or a file holding it\n"
    "  --checkpoint FILE  a checkpoint saved earlier: the log must still\n"
    "              extend it (a rolled back or rewritten log fails)\n"
    "  --witness KEY  the saved checkpoint must also carry a valid cosignature\n"
    "              by this witness (its type 0x04 key, or a file holding it;\n"
    "              repeatable): the witness saw that tree\n"
    "  -h, --help  show this help\n"
    "\n"
    "Exit status: 0 when every chain is intact, 1 when one is broken, 2 when a\n"
    "path cannot be read or on usage errors (2 wins over 1).\n";

/* Length of the strictly valid UTF-8 sequence at s[0..n), or 0 if none starts there. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4;
    else
        return 0;
    if (c == 0xe0)
        lo = 0xa0;
    else if (c == 0xed)
        hi = 0x9f;
    else if (c == 0xf0)
        lo = 0x90;
    else if (c == 0xf4)
        hi = 0x8f;
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    return len;
}

/* Appends argv bytes as the string Python would hold (os.fsdecode: UTF-8
 * with surrogateescape), in WTF-8: each byte that is not part of a valid
 * sequence becomes the lone surrogate U+DC80..U+DCFF. */
static at_result argv_to_wtf8(at_buf *out, const char *arg)
{
    const unsigned char *s = (const unsigned char *)arg;
    size_t n = strlen(arg), i = 0;
    at_result r = AT_OK;
    while (i < n && r == AT_OK) {
        size_t k = utf8_seq(s + i, n - i);
        if (k) {
            r = at_buf_add(out, s + i, k);
            i += k;
        } else {
            unsigned cp = 0xdc00u + s[i++];
            char e[3] = {(char)(0xe0 | cp >> 12), (char)(0x80 | ((cp >> 6) & 0x3f)),
                         (char)(0x80 | (cp & 0x3f))};
            r = at_buf_add(out, e, 3);
        }
    }
    return r;
}

/* Prints the verdict line for one path (json.dumps default separators). */
static int print_verdict(const char *path, const at_verify_report *rep)
{
    at_buf b, name;
    at_buf_init(&b, 0);
    at_buf_init(&name, 0);
    at_result r = argv_to_wtf8(&name, path);
    report_verify_opts o = {"path", name.data, name.len, 0, false, -2, NULL};
    if (r == AT_OK)
        r = report_verify(&b, rep, &o);
    if (r == AT_OK)
        r = at_buf_addc(&b, '\n');
    if (r == AT_OK)
        fwrite(b.data, 1, b.len, stdout);
    else
        cli_errorf("verify", "%s: cannot print the verdict: %s", path, at_result_str(r));
    at_buf_fini(&b);
    at_buf_fini(&name);
    return r == AT_OK ? 0 : -1;
}

/* Verifies one path. Returns 0 intact, 1 broken, 2 unreadable. */
static int verify_one(const char *path, at_verify_mode mode)
{
    at_buf file;
    at_verify_report rep;
    at_error err;
    struct stat sb;
    int rc;

    memset(&err, 0, sizeof err);
    at_buf_init(&file, 0);
    const char *target = path;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        size_t n = strlen(path);
        bool slash = n > 0 && path[n - 1] == '/';
        if (at_buf_adds(&file, path) != AT_OK ||
            at_buf_adds(&file, slash ? "events.ndjson" : "/events.ndjson") != AT_OK) {
            cli_errorf("verify", "%s: out of memory", path);
            at_buf_fini(&file);
            return 2;
        }
        target = file.data;
    }
    at_result r = at_verify_file(target, mode, &rep, &err);
    if (r != AT_OK) {
        cli_errorf("verify", "%s", err.message[0] ? err.message : at_result_str(r));
        rc = 2;
    } else if (print_verdict(path, &rep) != 0) {
        rc = 2;
    } else {
        rc = rep.ok ? 0 : 1;
    }
    at_verify_report_fini(&rep);
    at_buf_fini(&file);
    return rc;
}

/* Every version of the sessions named (all when none is), read from their
 * objects: one line each with session_id, version, the verdict, the digest
 * and object_ok (the bytes hash to the digest the version recorded).
 * Returns the exit status. */
static int verify_versions(const char *storage, char **ids, int nids, at_verify_mode mode)
{
    at_error err = {0};
    at_store *store = at_store_open(storage, &err);
    if (!store) {
        cli_errorf("verify", "%s", err.message);
        return 2;
    }
    char **all = NULL;
    size_t nall = 0;
    if (nids == 0) {
        if (sessions_scan(storage, &all, &nall) != AT_OK) {
            cli_errorf("verify", "%s: cannot list the sessions", storage);
            at_store_free(store);
            return 2;
        }
        ids = all;
        nids = (int)nall;
    }
    int status = 0;
    char *buf = malloc(1 << 16);
    for (int i = 0; buf && i < nids; i++) {
        at_version *v = NULL;
        size_t n = 0;
        if (at_store_versions(store, ids[i], &v, &n, &err) != AT_OK) {
            cli_errorf("verify", "%s: %s", ids[i], err.message);
            status = 2;
            continue;
        }
        for (size_t k = 0; k < n; k++) {
            at_object_reader *rd = NULL;
            at_verifier *vf = at_verifier_new(mode);
            at_verify_report rep;
            memset(&rep, 0, sizeof rep);
            at_result r = vf ? at_store_open_version(store, ids[i], v[k].version, &rd, &err) : AT_ERR_NOMEM;
            for (uint64_t off = 0; r == AT_OK && off < at_object_size(rd);) {
                ssize_t got = at_object_read(rd, off, buf, 1 << 16);
                if (got <= 0)
                    r = at_error_set(&err, AT_ERR_IO, -1, "cannot read the object");
                else if ((r = at_verifier_feed(vf, buf, (size_t)got, &err)) == AT_OK)
                    off += (uint64_t)got;
            }
            if (r == AT_OK)
                r = at_verifier_finish(vf, &rep, &err);
            if (r != AT_OK) {
                cli_errorf("verify", "%s version %llu: %s", ids[i], (unsigned long long)v[k].version,
                           err.message[0] ? err.message : at_result_str(r));
                status = 2;
            } else {
                int ok = memcmp(rep.file_sha256, v[k].events_sha256, AT_SHA256_LEN) == 0;
                at_buf b;
                at_buf_init(&b, 0);
                report_verify_opts o = {"session_id", ids[i], strlen(ids[i]), (int64_t)v[k].version, true,
                                        ok,           NULL};
                if (report_verify(&b, &rep, &o) == AT_OK && at_buf_addc(&b, '\n') == AT_OK)
                    fwrite(b.data, 1, b.len, stdout);
                at_buf_fini(&b);
                if ((!rep.ok || !ok) && status < 1)
                    status = 1;
            }
            at_verify_report_fini(&rep);
            at_object_reader_free(rd);
            at_verifier_free(vf);
        }
        free(v);
    }
    free(buf);
    sessions_free_ids(all, nall);
    at_store_free(store);
    return status;
}

int cli_verify(int argc, char **argv)
{
    static const struct option opts[] = {
        {"legacy", no_argument, NULL, 'L'},
        {"versions", no_argument, NULL, 'V'},
        {"storage", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--log") == 0 || strncmp(argv[i], "--log=", 6) == 0 ||
            strcmp(argv[i], "--proof") == 0 || strncmp(argv[i], "--proof=", 8) == 0)
            return cli_audit(argc, argv);
    bool versions = false;
    const char *storage = NULL;
    at_verify_mode mode = AT_VERIFY_STRICT;
    int c;
    optind = 1;
    opterr = 0; /* our own messages, named after the command */
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'L': mode = AT_VERIFY_LEGACY; break;
        case 'V': versions = true; break;
        case 's': storage = optarg; break;
        case 'h': fputs(usage, stdout); return 0;
        default:
            if (optopt && optopt != 'L' && optopt != 'h' && optopt != 'V' && optopt != 's')
                cli_errorf("verify", "unknown option '-%c'", optopt);
            else
                cli_errorf("verify", "unknown or malformed option '%s'", argv[optind - 1]);
            fputs(usage, stderr);
            return 2;
        }
    }
    if (versions)
        return verify_versions(storage ? storage : cli_default_storage(), argv + optind, argc - optind, mode);
    if (storage) {
        cli_errorf("verify", "--storage goes with --versions");
        fputs(usage, stderr);
        return 2;
    }
    if (optind >= argc) {
        cli_errorf("verify", "no PATH given");
        fputs(usage, stderr);
        return 2;
    }
    int status = 0;
    for (int i = optind; i < argc; i++) {
        int rc = verify_one(argv[i], mode);
        if (rc > status)
            status = rc;
    }
    if (fflush(stdout) != 0) {
        cli_errorf("verify", "cannot write the output");
        status = 2;
    }
    return status;
}
