/* cli_log.c - `agent-traced log keygen`: a key for the transparency log. */
#include "cli.h"

#include "agenttrace/note.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <string.h>
#include <unistd.h>

static const char usage[] = "usage: agent-traced log keygen --origin NAME --out FILE\n"
                            "\n"
                            "Writes a new Ed25519 private key for the transparency log to FILE (mode 0600,\n"
                            "never over an existing file), in Go's note form\n"
                            "PRIVATE+KEY+<name>+<id>+<key>, and prints its verifier key, which auditors and\n"
                            "witnesses use: <name>+<id>+<key>. NAME is the log's origin, such as\n"
                            "example.com/agent-traced (no spaces, no '+'). Use it with\n"
                            "`agent-traced serve --log-key FILE`.\n"
                            "\n"
                            "  --origin NAME  the log's name (the key's name)\n"
                            "  --out FILE     where to write the private key\n"
                            "  -h, --help     show this help\n";

static int keygen(int argc, char **argv)
{
    static const struct option opts[] = {
        {"origin", required_argument, NULL, 'o'},
        {"out", required_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *origin = NULL, *out = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'o': origin = optarg; break;
        case 'f': out = optarg; break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return 2;
        }
    }
    if (!origin || !out || optind < argc) {
        cli_errorf("log keygen", "%s",
                   !origin ? "--origin is required"
                   : !out  ? "--out is required"
                           : "unexpected argument");
        fputs(usage, stderr);
        return 2;
    }
    at_buf skey, vkey;
    at_buf_init(&skey, 0);
    at_buf_init(&vkey, 0);
    at_error err = {0};
    int rc = 1;
    if (at_note_keygen(origin, strlen(origin), AT_NOTE_ED25519, &skey, &vkey, &err) != AT_OK) {
        cli_errorf("log keygen", "%s: %s", origin, err.message);
        rc = 2;
        goto out;
    }
    int fd = open(out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        cli_errorf("log keygen", "%s: %s", out,
                   errno == EEXIST ? "exists already (not overwritten)" : strerror(errno));
        goto out;
    }
    if (at_write_all(fd, skey.data, skey.len) != AT_OK || at_write_all(fd, "\n", 1) != AT_OK ||
        fsync(fd) < 0) {
        cli_errorf("log keygen", "%s: %s", out, strerror(errno));
        close(fd);
        unlink(out);
        goto out;
    }
    close(fd);
    printf("%s\n", vkey.data);
    rc = fflush(stdout) == 0 ? 0 : 1;
out:
    at_buf_fini(&skey);
    at_buf_fini(&vkey);
    return rc;
}

int cli_log(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "keygen") == 0)
        return keygen(argc - 1, argv + 1);
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(usage, stdout);
        return 0;
    }
    cli_errorf("log", "%s",
               argc >= 2 ? "unknown subcommand (try keygen)" : "a subcommand is needed (keygen)");
    fputs(usage, stderr);
    return 2;
}
