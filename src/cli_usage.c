/* cli_usage.c - `agent-traced usage`: the token usage recorded with the
 * transcripts of a storage directory, grouped by session, day or model,
 * read through the store (no server needed). */
#include "cli.h"

#include "agenttrace/json.h"
#include "agenttrace/store.h"
#include "agenttrace/usage.h"
#include "api/usage.h"

#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char usage_text[] =
    "usage: agent-traced usage [--storage DIR] [--workspace W] [--since DATE] [--until DATE]\n"
    "                          [--by session|day|model] [--json]\n"
    "\n"
    "Prints the token usage recorded when transcripts were imported, counted as\n"
    "ccusage counts it (each API message once per message id and request id):\n"
    "input, output, cache-creation and cache-read tokens and their cost in USD\n"
    "from the price table built in (data/prices.tsv: ccusage 18.0.11's offline\n"
    "LiteLLM prices). A model the table does not name is unpriced: its cost, and\n"
    "every total it is part of, shows as \"-\" (null in JSON).\n"
    "\n"
    "  --storage DIR     storage directory (default: $AGENT_STRACE_STORAGE, else\n"
    "                    ./.agent-traces)\n"
    "  --workspace W     workspace W (DIR/workspaces/W) instead of the default one\n"
    "  --since DATE      only messages of that day (UTC) or later: YYYY-MM-DD or YYYYMMDD\n"
    "  --until DATE      only messages of that day (UTC) or earlier\n"
    "  --by WHAT         one row per session (default), day or model\n"
    "  --json            one JSON object instead of a table: {\"by\", \"since\", \"until\",\n"
    "                    \"rows\": [{<session_id|day|model>, \"input_tokens\", \"output_tokens\",\n"
    "                    \"cache_creation_tokens\", \"cache_read_tokens\", \"cost_usd\"}],\n"
    "                    \"total\": {...}, \"sessions_without_usage\": N}\n"
    "  -h, --help        show this help\n"
    "\n"
    "Sessions imported before agent-traced kept usage have none (counted in\n"
    "sessions_without_usage): import their transcripts again.\n"
    "Exit status: 0 on success, 1 on failure, 2 on usage errors.\n";

enum { BY_SESSION, BY_DAY, BY_MODEL };

/* YYYY-MM-DD or YYYYMMDD, a real calendar day; *out = YYYYMMDD. */
static bool parse_date(const char *s, int32_t *out)
{
    char d[9];
    size_t n = strlen(s), k = 0;
    if (n == 10 && s[4] == '-' && s[7] == '-') {
        for (size_t i = 0; i < 10; i++)
            if (i != 4 && i != 7)
                d[k++] = s[i];
    } else if (n == 8) {
        memcpy(d, s, 8);
        k = 8;
    } else {
        return false;
    }
    int32_t v = 0;
    for (size_t i = 0; i < 8; i++) {
        if (d[i] < '0' || d[i] > '9')
            return false;
        v = v * 10 + (d[i] - '0');
    }
    int y = v / 10000, m = v / 100 % 100, day = v % 100;
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (y < 1 || m < 1 || m > 12 || day < 1 || day > mdays[m - 1] + (m == 2 && leap))
        return false;
    *out = v;
    return true;
}

typedef struct {
    char *key; /* session id, YYYY-MM-DD or model name */
    usage_line line;
} row;

typedef struct {
    row *v;
    size_t n, cap;
} rows;

static row *row_for(rows *rs, const char *key)
{
    for (size_t i = 0; i < rs->n; i++)
        if (strcmp(rs->v[i].key, key) == 0)
            return &rs->v[i];
    if (rs->n == rs->cap) {
        size_t cap = rs->cap ? rs->cap * 2 : 16;
        row *nv = realloc(rs->v, cap * sizeof *nv);
        if (!nv)
            return NULL;
        rs->v = nv;
        rs->cap = cap;
    }
    row *r = &rs->v[rs->n];
    if (!(r->key = strdup(key)))
        return NULL;
    usage_line_init(&r->line);
    rs->n++;
    return r;
}

static int cmp_row(const void *a, const void *b)
{
    return strcmp(((const row *)a)->key, ((const row *)b)->key);
}

static void print_count(double v)
{
    at_buf b;
    at_buf_init(&b, 0);
    if (at_usage_write_count(&b, v) == AT_OK)
        printf("%15.*s", (int)b.len, b.data);
    at_buf_fini(&b);
}

static void print_row(const char *key, const usage_line *l, int keyw)
{
    printf("%-*s", keyw, key);
    double total = 0;
    for (int k = 0; k < AT_TOK_KINDS; k++) {
        print_count(l->tokens[k]);
        total += l->tokens[k];
    }
    print_count(total);
    if (l->priced)
        printf("  %12.4f\n", l->cost);
    else
        printf("  %12s\n", "-");
}

static at_result write_json(const rows *rs, const usage_line *tot, int by, const char *since,
                            const char *until, uint64_t without)
{
    static const char *const by_names[] = {"session", "day", "model"};
    static const char *const keys[] = {"session_id", "day", "model"};
    at_buf b;
    at_buf_init(&b, 0);
    at_result r = at_buf_printf(&b, "{\"by\": \"%s\", \"since\": ", by_names[by]);
    if (r == AT_OK)
        r = since ? at_json_write_wtf8(&b, since, strlen(since)) : at_buf_adds(&b, "null");
    if (r == AT_OK)
        r = at_buf_adds(&b, ", \"until\": ");
    if (r == AT_OK)
        r = until ? at_json_write_wtf8(&b, until, strlen(until)) : at_buf_adds(&b, "null");
    if (r == AT_OK)
        r = at_buf_adds(&b, ", \"rows\": [");
    for (size_t i = 0; r == AT_OK && i < rs->n; i++) {
        r = at_buf_printf(&b, "%s{\"%s\": ", i ? ", " : "", keys[by]);
        if (r == AT_OK)
            r = at_json_write_wtf8(&b, rs->v[i].key, strlen(rs->v[i].key));
        if (r == AT_OK)
            r = at_buf_adds(&b, ", ");
        if (r == AT_OK)
            r = usage_line_write(&b, &rs->v[i].line);
        if (r == AT_OK)
            r = at_buf_addc(&b, '}');
    }
    if (r == AT_OK)
        r = at_buf_adds(&b, "], \"total\": {");
    if (r == AT_OK)
        r = usage_line_write(&b, tot);
    if (r == AT_OK)
        r = at_buf_printf(&b, "}, \"sessions_without_usage\": %llu}\n", (unsigned long long)without);
    if (r == AT_OK)
        fwrite(b.data, 1, b.len, stdout);
    at_buf_fini(&b);
    return r;
}

int cli_usage(int argc, char **argv)
{
    static const struct option opts[] = {
        {"storage", required_argument, NULL, 's'},
        {"workspace", required_argument, NULL, 'w'},
        {"since", required_argument, NULL, 'f'},
        {"until", required_argument, NULL, 'u'},
        {"by", required_argument, NULL, 'b'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *storage = NULL, *since_s = NULL, *until_s = NULL, *ws = NULL;
    int32_t since = 0, until = 99999999;
    int by = BY_SESSION, c;
    bool json = false;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 's': storage = optarg; break;
        case 'w':
            if (!at_workspace_id_ok(optarg)) {
                cli_errorf("usage", "--workspace: expected 1-64 of A-Z a-z 0-9 . _ -, got '%s'", optarg);
                return 2;
            }
            ws = optarg;
            break;
        case 'f':
        case 'u':
            if (!parse_date(optarg, c == 'f' ? &since : &until)) {
                cli_errorf("usage", "--%s takes a date, YYYY-MM-DD or YYYYMMDD: '%s'",
                           c == 'f' ? "since" : "until", optarg);
                return 2;
            }
            *(c == 'f' ? &since_s : &until_s) = optarg;
            break;
        case 'b':
            if (strcmp(optarg, "session") == 0)
                by = BY_SESSION;
            else if (strcmp(optarg, "day") == 0)
                by = BY_DAY;
            else if (strcmp(optarg, "model") == 0)
                by = BY_MODEL;
            else {
                cli_errorf("usage", "--by takes session, day or model: '%s'", optarg);
                return 2;
            }
            break;
        case 'j': json = true; break;
        case 'h': fputs(usage_text, stdout); return 0;
        default: fputs(usage_text, stderr); return 2;
        }
    }
    if (optind < argc) {
        cli_errorf("usage", "unexpected argument '%s'", argv[optind]);
        return 2;
    }
    if (since > until) {
        cli_errorf("usage", "--since %s is after --until %s", since_s, until_s);
        return 2;
    }
    if (!storage)
        storage = cli_default_storage();
    struct stat sb;
    char root[PATH_MAX];
    if (at_workspace_root(storage, ws, root, sizeof root) != AT_OK) {
        cli_errorf("usage", "storage path too long: %s", storage);
        return 1;
    }
    if (stat(root, &sb) != 0 || !S_ISDIR(sb.st_mode)) { /* a read makes nothing */
        cli_errorf("usage", ws ? "no workspace %s in %s" : "no storage directory at %s%s", ws ? ws : storage,
                   ws ? storage : "");
        return 1;
    }
    at_error err = {0};
    at_store *st = at_store_open_workspace(storage, ws, &err);
    if (!st) {
        cli_errorf("usage", "cannot open %s: %s", storage, err.message);
        return 1;
    }
    char **ids = NULL;
    size_t n = 0;
    rows rs = {0};
    usage_line tot;
    usage_line_init(&tot);
    uint64_t without = 0;
    int status = 1;
    at_buf name;
    at_buf_init(&name, 0);
    if (at_store_list(st, &ids, &n, &err) != AT_OK) {
        cli_errorf("usage", "%s", err.message);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        char *j;
        size_t len;
        uint64_t version;
        at_result r = at_store_usage(st, ids[i], &j, &len, &version, &err);
        if (r == AT_ERR_NOT_FOUND)
            continue; /* removed meanwhile */
        if (r != AT_OK) {
            cli_errorf("usage", "%s: %s", ids[i], err.message);
            goto out;
        }
        if (!j) {
            without++;
            continue;
        }
        at_usage u;
        at_usage_init(&u);
        r = at_usage_read(&u, j, len);
        free(j);
        if (r != AT_OK) {
            at_usage_fini(&u);
            cli_errorf("usage", "%s: the usage kept is unreadable", ids[i]);
            goto out;
        }
        for (size_t d = 0; d < u.ndays; d++) {
            const at_usage_day *b = &u.days[d];
            if (b->day < since || b->day > until)
                continue;
            const at_usage_model *m = &u.models[b->model];
            char key[16];
            const char *k = ids[i];
            if (by == BY_DAY) {
                snprintf(key, sizeof key, "%04d-%02d-%02d", (int)(b->day / 10000), (int)(b->day / 100 % 100),
                         (int)(b->day % 100));
                k = key;
            } else if (by == BY_MODEL) {
                at_buf_reset(&name);
                if (at_usage_model_name(m, &name) != AT_OK || at_buf_addc(&name, 0) != AT_OK) {
                    at_usage_fini(&u);
                    cli_errorf("usage", "out of memory");
                    goto out;
                }
                k = name.data;
            }
            row *rw = row_for(&rs, k);
            if (!rw) {
                at_usage_fini(&u);
                cli_errorf("usage", "out of memory");
                goto out;
            }
            usage_line_add(&rw->line, m, &b->sums);
            usage_line_add(&tot, m, &b->sums);
        }
        at_usage_fini(&u);
    }
    if (rs.n)
        qsort(rs.v, rs.n, sizeof *rs.v, cmp_row);
    if (json) {
        if (write_json(&rs, &tot, by, since_s, until_s, without) != AT_OK) {
            cli_errorf("usage", "out of memory");
            goto out;
        }
    } else {
        static const char *const heads[] = {"Session", "Date", "Model"};
        int keyw = by == BY_DAY ? 12 : 20;
        for (size_t i = 0; i < rs.n; i++)
            if ((int)strlen(rs.v[i].key) + 2 > keyw)
                keyw = (int)strlen(rs.v[i].key) + 2;
        printf("%-*s%15s%15s%15s%15s%15s  %12s\n", keyw, heads[by], "Input", "Output", "Cache create",
               "Cache read", "Total tokens", "Cost (USD)");
        for (size_t i = 0; i < rs.n; i++)
            print_row(rs.v[i].key, &rs.v[i].line, keyw);
        print_row("Total", &tot, keyw);
        if (without)
            printf("\n%llu session%s without usage (imported before agent-traced kept it)\n",
                   (unsigned long long)without, without == 1 ? "" : "s");
    }
    status = 0;
out:
    for (size_t i = 0; i < rs.n; i++)
        free(rs.v[i].key);
    free(rs.v);
    at_buf_fini(&name);
    at_store_list_free(ids, n);
    at_store_free(st);
    return status;
}
