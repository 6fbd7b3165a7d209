/* cli_audit.c - `agent-traced verify --log` and `verify --proof`: a
 * session's events checked against the signed transparency log, by an
 * auditor who trusts nothing but the log's verifier key (and, against a
 * rollback of the whole storage, a checkpoint saved earlier). */
#include "cli.h"

#include "agenttrace/audit.h"
#include "agenttrace/json.h"
#include "agenttrace/ledger.h"
#include "agenttrace/merkle.h"
#include "agenttrace/store.h"
#include "agenttrace/tlog.h"
#include "sessions.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_FETCH (16u * 1024 * 1024)

static at_result read_all(const char *path, at_buf *out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return AT_ERR_IO;
    char buf[65536];
    ssize_t k;
    at_result r = AT_OK;
    while (r == AT_OK && (k = read(fd, buf, sizeof buf)) > 0)
        r = at_buf_add(out, buf, (size_t)k);
    close(fd);
    return r;
}

/* --vkey: the key itself, or a file holding it. */
static at_note_verifier *load_vkey(const char *arg, at_error *err)
{
    at_buf b;
    at_buf_init(&b, AT_NOTE_MAX_BYTES);
    struct stat sb;
    if (stat(arg, &sb) == 0 && S_ISREG(sb.st_mode)) {
        if (read_all(arg, &b) != AT_OK) {
            at_error_set(err, AT_ERR_IO, -1, "cannot read %s", arg);
            at_buf_fini(&b);
            return NULL;
        }
    } else if (at_buf_adds(&b, arg) != AT_OK) {
        at_buf_fini(&b);
        return NULL;
    }
    while (b.len && (b.data[b.len - 1] == '\n' || b.data[b.len - 1] == '\r' || b.data[b.len - 1] == ' '))
        b.data[--b.len] = 0;
    at_note_verifier *v = NULL;
    if (at_note_verifier_new(b.data ? b.data : "", b.len, &v, err) != AT_OK)
        v = NULL;
    at_buf_fini(&b);
    return v;
}

static size_t sink(char *p, size_t size, size_t n, void *ud)
{
    at_buf *b = ud;
    return at_buf_add(b, p, size * n) == AT_OK ? size * n : 0;
}

/* GET url into out; the HTTP status, or -1. */
static long fetch(const char *url, at_buf *out, char *why, size_t wcap)
{
    CURL *c = curl_easy_init();
    if (!c)
        return -1;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    const char *key = getenv("AGENT_STRACE_AUTH_KEY");
    struct curl_slist *h = NULL;
    char auth[512];
    if (key && *key && !strchr(key, ',')) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", key);
        h = curl_slist_append(h, auth);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    }
    long status = -1;
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    else
        snprintf(why, wcap, "%s", curl_easy_strerror(rc));
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return status;
}

/* The session a PATH names: a session directory's name, or the directory
 * holding an events.ndjson. *events gets the events file. */
static bool session_of(const char *path, char *sid, size_t cap, char *events, size_t ecap)
{
    struct stat sb;
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s", path);
    size_t n = strlen(p);
    while (n > 1 && p[n - 1] == '/')
        p[--n] = 0;
    if (stat(p, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        snprintf(events, ecap, "%s/events.ndjson", p);
    } else {
        snprintf(events, ecap, "%s", p);
        char *slash = strrchr(p, '/');
        if (!slash)
            snprintf(p, sizeof p, ".");
        else
            *slash = 0;
        char real[PATH_MAX];
        if (!realpath(p, real))
            return false;
        snprintf(p, sizeof p, "%s", real);
    }
    const char *base = strrchr(p, '/');
    base = base ? base + 1 : p;
    if (!*base || strlen(base) >= cap)
        return false;
    snprintf(sid, cap, "%s", base);
    return true;
}

static bool is_url(const char *s)
{
    return strncmp(s, "http://", 7) == 0 || strncmp(s, "https://", 8) == 0;
}

/* Prints one verdict line; returns 0 ok, 1 not ok. */
static int report(const char *path, const char *sid, const at_audit *a, const char *error)
{
    at_buf b;
    at_buf_init(&b, 0);
    at_result r = at_buf_adds(&b, "{\"path\": ");
    if (r == AT_OK)
        r = at_json_write_wtf8(&b, path, strlen(path));
    if (r == AT_OK && sid) {
        r = at_buf_adds(&b, ", \"session_id\": ");
        if (r == AT_OK)
            r = at_json_write_wtf8(&b, sid, strlen(sid));
    }
    bool ok = !error && a && a->ok;
    if (r == AT_OK && a && !error)
        r = at_buf_printf(&b, ", \"version\": %llu, \"log_index\": %llu, \"checkpoint_size\": %llu",
                          (unsigned long long)a->version, (unsigned long long)a->index,
                          (unsigned long long)a->size);
    if (r == AT_OK)
        r = at_buf_printf(&b, ", \"ok\": %s", ok ? "true" : "false");
    if (r == AT_OK && !ok) {
        const char *why = error ? error : a->reason;
        r = at_buf_adds(&b, ", \"error\": ");
        if (r == AT_OK)
            r = at_json_write_wtf8(&b, why, strlen(why));
    }
    if (r == AT_OK)
        r = at_buf_adds(&b, "}\n");
    if (r == AT_OK)
        fwrite(b.data, 1, b.len, stdout);
    at_buf_fini(&b);
    return ok ? 0 : 1;
}

/* Checks one session: its proof (from the server or the storage) against
 * its events file. *cp gets the checkpoint the proof carried. */
static int audit_one(const char *target, at_store *store, const char *path, const at_note_verifier *vk,
                     at_buf *cp_out)
{
    char sid[AT_MAX_SESSION_ID + 1], events[PATH_MAX], url[PATH_MAX + 512], why[256] = "";
    if (!session_of(path, sid, sizeof sid, events, sizeof events))
        return report(path, NULL, NULL, "cannot tell which session this is");
    at_buf proof;
    at_buf_init(&proof, MAX_FETCH);
    at_error err = {0};
    int rc;
    if (store) {
        uint64_t idx, v;
        if (at_ledger_proof_offline(store, sid, 0, &proof, &idx, &v, &err) != AT_OK) {
            rc = report(path, sid, NULL, err.message);
            goto out;
        }
    } else {
        char *esc = curl_easy_escape(NULL, sid, 0);
        size_t tl = strlen(target);
        snprintf(url, sizeof url, "%.*s/sessions/%s/proof", (int)(tl && target[tl - 1] == '/' ? tl - 1 : tl),
                 target, esc ? esc : sid);
        curl_free(esc);
        long st = fetch(url, &proof, why, sizeof why);
        if (st != 200) {
            char m[512];
            snprintf(m, sizeof m, "cannot get the proof from %s: %s", url,
                     st < 0       ? why
                     : proof.data ? proof.data
                                  : "no answer");
            rc = report(path, sid, NULL, m);
            goto out;
        }
    }
    int fd = open(events, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        char m[512];
        snprintf(m, sizeof m, "cannot read %s: %s", events, strerror(errno));
        rc = report(path, sid, NULL, m);
        goto out;
    }
    at_audit a;
    at_result r = at_audit_proof(proof.data, proof.len, vk, fd, &a, &err);
    close(fd);
    if (r != AT_OK) {
        rc = report(path, sid, NULL, err.message);
        goto out;
    }
    if (cp_out && !cp_out->len && a.ok && at_buf_add(cp_out, a.cp_text, a.cp_len) != AT_OK)
        at_buf_reset(cp_out);
    rc = report(path, sid, &a, NULL);
out:
    at_buf_fini(&proof);
    return rc;
}

/* --checkpoint: the log's current tree must extend the saved checkpoint. */
static int check_saved(const char *target, at_store *store, const char *saved_path,
                       const at_note_verifier *vk, const at_note_verifier *const *wit, size_t nwit,
                       const at_buf *current)
{
    at_buf saved;
    at_buf_init(&saved, AT_NOTE_MAX_BYTES);
    int rc = 1;
    char reason[512] = "";
    if (read_all(saved_path, &saved) != AT_OK) {
        snprintf(reason, sizeof reason, "cannot read %s", saved_path);
        goto out;
    }
    /* the current checkpoint's tree (already checked against the key) */
    const char *blank = current->data ? memmem(current->data, current->len, "\n\n", 2) : NULL;
    at_note_checkpoint cur, old;
    const char *oblank = saved.data ? memmem(saved.data, saved.len, "\n\n", 2) : NULL;
    if (!blank ||
        at_note_checkpoint_parse(current->data, (size_t)(blank + 1 - current->data), &cur, NULL) != AT_OK) {
        snprintf(reason, sizeof reason, "no current checkpoint to compare with");
        goto out;
    }
    if (!oblank ||
        at_note_checkpoint_parse(saved.data, (size_t)(oblank + 1 - saved.data), &old, NULL) != AT_OK) {
        snprintf(reason, sizeof reason, "%s does not hold a checkpoint", saved_path);
        goto out;
    }
    uint8_t proof[AT_MERKLE_MAX_PROOF * AT_SHA256_LEN];
    size_t n = 0;
    if (old.size <= cur.size && old.size > 0 && old.size < cur.size) {
        if (store) {
            char dir[PATH_MAX];
            if (at_storage_path(at_store_root(store), AT_PATH_PRIVATE, NULL, dir, sizeof dir) != AT_OK ||
                strlen(dir) + 5 >= sizeof dir)
                goto out;
            strcat(dir, "/log");
            at_error err = {0};
            at_tlog *log = at_tlog_open(dir, &err);
            uint8_t(*p)[AT_SHA256_LEN] = NULL;
            if (!log || at_tlog_consistency(log, old.size, cur.size, &p, &n, &err) != AT_OK) {
                snprintf(reason, sizeof reason, "cannot prove the log consistent: %s", err.message);
                at_tlog_free(log);
                goto out;
            }
            memcpy(proof, p, n * AT_SHA256_LEN);
            free(p);
            at_tlog_free(log);
        } else {
            char url[PATH_MAX + 128], why[256] = "";
            size_t tl = strlen(target);
            snprintf(url, sizeof url, "%.*s/log/consistency?from=%llu&to=%llu",
                     (int)(tl && target[tl - 1] == '/' ? tl - 1 : tl), target, (unsigned long long)old.size,
                     (unsigned long long)cur.size);
            at_buf body;
            at_buf_init(&body, MAX_FETCH);
            long st = fetch(url, &body, why, sizeof why);
            for (const char *p = body.data, *end = body.data + body.len; st == 200 && p && p < end;) {
                const char *nl = memchr(p, '\n', (size_t)(end - p));
                size_t got, ln = nl ? (size_t)(nl - p) : (size_t)(end - p);
                if (ln && (n == AT_MERKLE_MAX_PROOF ||
                           at_note_base64_decode(p, ln, AT_BASE64_STRICT, proof + n * AT_SHA256_LEN,
                                                 AT_SHA256_LEN, &got) != AT_OK ||
                           got != AT_SHA256_LEN))
                    st = -2;
                else if (ln)
                    n++;
                p = nl ? nl + 1 : end;
            }
            at_buf_fini(&body);
            if (st != 200) {
                snprintf(reason, sizeof reason, "cannot get a consistency proof from %s", url);
                goto out;
            }
        }
    }
    if (at_audit_consistent(saved.data, saved.len, vk, cur.size, cur.root, proof, n, reason, sizeof reason) ==
            AT_OK &&
        (!nwit || at_audit_cosigned(saved.data, saved.len, vk, wit, nwit, reason, sizeof reason) == AT_OK))
        rc = 0;
out:
    at_buf_fini(&saved);
    at_buf b;
    at_buf_init(&b, 0);
    if (at_buf_adds(&b, "{\"checkpoint\": ") == AT_OK &&
        at_json_write_wtf8(&b, saved_path, strlen(saved_path)) == AT_OK &&
        at_buf_printf(&b, ", \"ok\": %s", rc == 0 ? "true" : "false") == AT_OK &&
        (rc == 0 || (at_buf_adds(&b, ", \"error\": ") == AT_OK &&
                     at_json_write_wtf8(&b, reason, strlen(reason)) == AT_OK)) &&
        at_buf_adds(&b, "}\n") == AT_OK)
        fwrite(b.data, 1, b.len, stdout);
    at_buf_fini(&b);
    return rc;
}

static void free_keys(at_note_verifier *vk, at_note_verifier **wit, size_t n)
{
    for (size_t i = 0; i < n; i++)
        at_note_verifier_free(wit[i]);
    at_note_verifier_free(vk);
}

int cli_audit(int argc, char **argv)
{
    static const struct option opts[] = {
        {"log", required_argument, NULL, 'l'},
        {"proof", required_argument, NULL, 'p'},
        {"vkey", required_argument, NULL, 'k'},
        {"checkpoint", required_argument, NULL, 'c'},
        {"witness", required_argument, NULL, 'w'},
        {"legacy", no_argument, NULL, 'L'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *target = NULL, *proof_path = NULL, *vkey = NULL, *saved = NULL, *wit_arg[16];
    at_note_verifier *wit[16];
    size_t nwit = 0;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'l': target = optarg; break;
        case 'p': proof_path = optarg; break;
        case 'k': vkey = optarg; break;
        case 'c': saved = optarg; break;
        case 'w':
            if (nwit == sizeof wit_arg / sizeof *wit_arg) {
                cli_errorf("verify", "at most %zu --witness keys", nwit);
                return 2;
            }
            wit_arg[nwit++] = optarg;
            break;
        case 'L': break;
        default: return 2;
        }
    }
    if (nwit && !saved) {
        cli_errorf("verify", "--witness checks the cosignatures of a saved checkpoint: give --checkpoint FILE");
        return 2;
    }
    if (!vkey) {
        cli_errorf("verify",
                   "--vkey KEY is required: the log's verifier key (the key itself or a file holding it)");
        return 2;
    }
    at_error err = {0};
    at_note_verifier *vk = load_vkey(vkey, &err);
    if (!vk) {
        cli_errorf("verify", "--vkey: %s", err.message);
        return 2;
    }
    for (size_t i = 0; i < nwit; i++) {
        if (!(wit[i] = load_vkey(wit_arg[i], &err)) || at_note_verifier_type(wit[i]) != AT_NOTE_COSIG_V1) {
            cli_errorf("verify", "--witness %s: %s", wit_arg[i],
                       wit[i] ? "not a witness's cosignature key (type 0x04)" : err.message);
            for (size_t k = 0; k <= i && k < nwit; k++)
                at_note_verifier_free(wit[k]);
            at_note_verifier_free(vk);
            return 2;
        }
    }
    int status = 0;
    if (proof_path) {
        if (argc - optind != 1) {
            cli_errorf("verify", "--proof checks one events.ndjson: give exactly one PATH");
            free_keys(vk, wit, nwit);
            return 2;
        }
        at_buf proof;
        at_buf_init(&proof, MAX_FETCH);
        char sid[AT_MAX_SESSION_ID + 1], events[PATH_MAX];
        if (read_all(proof_path, &proof) != AT_OK) {
            cli_errorf("verify", "cannot read %s", proof_path);
            status = 2;
        } else {
            const char *path = argv[optind];
            if (!session_of(path, sid, sizeof sid, events, sizeof events))
                snprintf(events, sizeof events, "%s", path);
            int fd = open(events, O_RDONLY | O_CLOEXEC);
            at_audit a;
            if (fd < 0) {
                cli_errorf("verify", "cannot read %s: %s", events, strerror(errno));
                status = 2;
            } else if (at_audit_proof(proof.data, proof.len, vk, fd, &a, &err) != AT_OK) {
                cli_errorf("verify", "%s: %s", proof_path, err.message);
                status = 2;
            } else {
                status = report(path, NULL, &a, NULL);
            }
            if (fd >= 0)
                close(fd);
        }
        at_buf_fini(&proof);
        free_keys(vk, wit, nwit);
        return status;
    }
    at_store *store = NULL;
    char **all = NULL;
    size_t nall = 0;
    if (!is_url(target)) {
        if (!(store = at_store_open(target, &err))) {
            cli_errorf("verify", "%s", err.message);
            free_keys(vk, wit, nwit);
            return 2;
        }
    } else {
        curl_global_init(CURL_GLOBAL_DEFAULT);
    }
    if (optind >= argc && store) {
        if (sessions_scan(target, &all, &nall) != AT_OK) {
            cli_errorf("verify", "%s: cannot list the sessions", target);
            status = 2;
        }
    } else if (optind >= argc) {
        cli_errorf("verify", "give the session directories (or events.ndjson files) to check against %s",
                   target);
        status = 2;
    }
    at_buf cp;
    at_buf_init(&cp, AT_NOTE_MAX_BYTES);
    for (int i = optind; status < 2 && i < argc; i++) {
        int rc = audit_one(target, store, argv[i], vk, &cp);
        status = rc > status ? rc : status;
    }
    for (size_t i = 0; status < 2 && i < nall; i++) {
        char p[PATH_MAX];
        if (at_storage_path(target, AT_PATH_SESSION, all[i], p, sizeof p) != AT_OK)
            continue;
        int rc = audit_one(target, store, p, vk, &cp);
        status = rc > status ? rc : status;
    }
    if (saved && status < 2) {
        if (!cp.len && is_url(target)) {
            char url[PATH_MAX + 64], why[256];
            snprintf(url, sizeof url, "%s/log/checkpoint", target);
            if (fetch(url, &cp, why, sizeof why) != 200)
                at_buf_reset(&cp);
        }
        int rc = check_saved(target, store, saved, vk, (const at_note_verifier *const *)wit, nwit, &cp);
        status = rc > status ? rc : status;
    }
    at_buf_fini(&cp);
    sessions_free_ids(all, nall);
    at_store_free(store);
    free_keys(vk, wit, nwit);
    if (fflush(stdout) != 0)
        status = 2;
    return status;
}
