/* state.h - what push knows of each transcript's copy on a server
 * (the push state file, a JSON document written atomically):
 *
 *   {"version": 1, "servers": {"<server URL>": {"<absolute path>": ENTRY}}}
 *   ENTRY = {"session_id", "bytes", "size", "mtime_ns", "dev", "ino",
 *            "head_len", "head_sha256", "tail_len", "tail_sha256",
 *            "server_bytes"?}
 *
 * bytes: the transcript bytes sent; server_bytes (when less): where the
 * server's import state stops, because the bytes after it made no event
 * (a line not finished yet, say) and the server kept its version: the next
 * upload of new bytes starts there. head: the
 * SHA-256 of the first head_len = min(bytes, 64 KiB) of them, tail: of the
 * last tail_len = min(bytes, 64 KiB). size/mtime_ns/dev/ino: the file as
 * it was when sent, so an untouched file is recognised without reading it.
 *
 * Several pushes may share a state file (hooks of parallel sessions): a
 * save takes a lock (<file>.lock), reads the file again, replaces only the
 * entries this process changed and renames a new file into place. */
#ifndef AGENTTRACED_PUSH_STATE_H
#define AGENTTRACED_PUSH_STATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PUSH_EDGE (64 * 1024) /* head and tail lengths */

typedef struct push_state push_state;

typedef struct {
    char session_id[256];
    uint64_t bytes, size;
    uint64_t server_bytes; /* <= bytes: where an incremental upload starts */
    int64_t mtime_ns;
    uint64_t dev, ino;
    size_t head_len, tail_len;
    uint8_t head[32], tail[32];
} push_entry;

/* Loads path (a missing file is an empty state) for server; NULL with a
 * message in err on a malformed file or out of memory. */
push_state *push_state_open(const char *path, const char *server, char *err, size_t errlen);
void push_state_free(push_state *s);

/* Finds the entry of file (an absolute path); false when there is none. */
bool push_state_get(push_state *s, const char *file, push_entry *e);
/* Records file's entry (to be written by the next save). 0, or -1 when out
 * of memory. */
int push_state_put(push_state *s, const char *file, const push_entry *e);
/* Writes the changed entries (see above). force: now; else only when the
 * time since the last save is at least 10 times what that save took, so
 * saving stays a small part of a push however large the state grows.
 * 0, or -1 with a message in err. */
int push_state_save(push_state *s, bool force, char *err, size_t errlen);

/* The default state file: $XDG_STATE_HOME/agent-traced/push.json, else
 * $HOME/.local/state/agent-traced/push.json; NULL without either. malloc'd. */
char *push_state_default_path(const char *name);
/* Creates the directories above path (mode 0700). 0 or -1 (errno). */
int push_mkdirs_for(const char *path);

#endif
