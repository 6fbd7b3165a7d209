/* ready.c - GET /ready (ready.h). */
#include "api/ready.h"

#include "agenttrace/json.h"
#include "agenttrace/store.h"

void api_ready(server_ctx *ctx, http_response *resp)
{
    at_error err = {0};
    bool writable = at_store_probe_write(ctx->store, &err) == AT_OK;
    bool database = at_store_is_database(ctx->store);
    bool index = database || server_index(ctx) != NULL; /* the database's event index is its tables */
    const char *log = ctx->ledger ? "on" : "off";
    at_buf b;
    at_buf_init(&b, 0);
    at_result r;
    if (writable && index) {
        r = at_buf_printf(&b, "{\"status\": \"ready\", \"storage\": \"%s\", \"index\": \"%s\", \"log\": \"%s\"}",
                          database ? "database" : "writable", database ? "database" : "open", log);
    } else {
        r = at_buf_adds(&b, "{\"error\": ");
        const char *why = !writable ? err.message : "the event index is not open yet";
        if (r == AT_OK)
            r = at_json_write_wtf8(&b, why, strlen(why));
        if (r == AT_OK)
            r = at_buf_printf(&b, ", \"storage\": \"%s\", \"index\": \"%s\", \"log\": \"%s\"}",
                              writable ? "writable" : "failing", index ? "open" : "opening", log);
    }
    if (r != AT_OK)
        http_response_error(resp, 500, "out of memory");
    else
        http_response_json(resp, writable && index ? 200 : 503, b.data, b.len);
    at_buf_fini(&b);
}
