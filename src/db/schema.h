/* schema.h - the PostgreSQL schema of agent-traced, as numbered migrations
 * (applied in order by db_migrate, each once, in its own transaction).
 *
 * What the directory store holds, table by table (docs/scaling.md says
 * why this shape):
 *   workspaces       the workspace ids ("default" is the storage directory)
 *   blobs            byte strings stored in chunks (blob_chunks, at most
 *                    DB_CHUNK bytes each, numbered from 0): a write streams
 *                    chunks under a new blob id and names the blob only
 *                    when it is complete, so nothing needs the whole bytes
 *                    in memory and an aborted write leaves an unnamed blob
 *                    that gc drops
 *   objects          content-addressed event versions: (workspace, SHA-256)
 *                    -> size, and either a blob of all the bytes or, as
 *                    the directory's deltas, the first base_size bytes of
 *                    object base followed by the blob from its byte
 *                    blob_start (0 but for a streamed upload's extension,
 *                    whose blob also holds what it shares with base and
 *                    lacks the whole chunks of it); the SHA-256 midstate
 *                    after its last byte, so an append hashes only its own
 *   sessions         meta.json's bytes and the current version: the row
 *                    an append compares and swaps (current_version, head)
 *   versions         one row per version: the history/<id>/versions record
 *   import_states    the importer state an incremental upload resumes from
 *   links            the tool call of a parent that spawned each subagent
 *   event_index      event_id -> session, line, offset (GET /events/{id})
 *   api_keys         named keys: name, role, workspace, SHA-256 of the key
 *   log_entries, log_hashes, log_checkpoints
 *                    each workspace's transparency log
 * Byte-exact payloads (meta.json, events, entries, notes) are bytea: the
 * database never re-encodes them. */
#ifndef AGENTTRACED_DB_SCHEMA_H
#define AGENTTRACED_DB_SCHEMA_H

#define DB_CHUNK (1024 * 1024) /* bytes of one blob chunk */

typedef struct {
    int version;
    const char *name;
    const char *sql;
} db_migration;

static const db_migration db_migrations[] = {
    {1, "initial schema",
     "CREATE TABLE workspaces (\n"
     "  id text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$')\n"
     ");\n"
     "CREATE TABLE blobs (\n"
     "  id bigserial PRIMARY KEY,\n"
     "  size bigint NOT NULL DEFAULT 0 CHECK (size >= 0),\n"
     "  complete boolean NOT NULL DEFAULT false,\n"
     "  created_at timestamptz NOT NULL DEFAULT now()\n"
     ");\n"
     "CREATE TABLE blob_chunks (\n"
     "  blob bigint NOT NULL REFERENCES blobs ON DELETE CASCADE,\n"
     "  seq integer NOT NULL CHECK (seq >= 0),\n"
     "  data bytea NOT NULL,\n"
     "  PRIMARY KEY (blob, seq)\n"
     ");\n"
     "CREATE TABLE objects (\n"
     "  workspace text NOT NULL REFERENCES workspaces,\n"
     "  sha256 bytea NOT NULL CHECK (length(sha256) = 32),\n"
     "  size bigint NOT NULL CHECK (size >= 0),\n"
     "  blob bigint NOT NULL REFERENCES blobs,\n"
     "  base bytea CHECK (base IS NULL OR length(base) = 32),\n"
     "  base_size bigint NOT NULL DEFAULT 0,\n"
     "  PRIMARY KEY (workspace, sha256),\n"
     "  FOREIGN KEY (workspace, base) REFERENCES objects (workspace, sha256)\n"
     ");\n"
     "CREATE TABLE sessions (\n"
     "  workspace text NOT NULL REFERENCES workspaces,\n"
     "  id text NOT NULL CHECK (length(id) BETWEEN 1 AND 255),\n"
     "  meta bytea NOT NULL,\n"
     "  current_version bigint NOT NULL DEFAULT 0,\n"
     "  head bytea,\n"
     "  updated_at timestamptz NOT NULL DEFAULT now(),\n"
     "  PRIMARY KEY (workspace, id)\n"
     ");\n"
     "CREATE TABLE versions (\n"
     "  workspace text NOT NULL,\n"
     "  session text NOT NULL,\n"
     "  version bigint NOT NULL CHECK (version >= 1),\n"
     "  events bigint NOT NULL,\n"
     "  size bigint NOT NULL,\n"
     "  events_sha256 bytea NOT NULL,\n"
     "  head bytea,\n"
     "  transcript_bytes bigint,\n"
     "  transcript_sha256 bytea,\n"
     "  cause text NOT NULL CHECK (cause IN ('import', 'append', 'external')),\n"
     "  time double precision NOT NULL,\n"
     "  log_index bigint,\n"
     "  PRIMARY KEY (workspace, session, version),\n"
     "  FOREIGN KEY (workspace, session) REFERENCES sessions ON DELETE CASCADE,\n"
     "  FOREIGN KEY (workspace, events_sha256) REFERENCES objects (workspace, sha256)\n"
     ");\n"
     "CREATE TABLE import_states (\n"
     "  workspace text NOT NULL,\n"
     "  session text NOT NULL,\n"
     "  version bigint NOT NULL,\n"
     "  state bytea NOT NULL,\n"
     "  PRIMARY KEY (workspace, session, version),\n"
     "  FOREIGN KEY (workspace, session, version) REFERENCES versions ON DELETE CASCADE\n"
     ");\n"
     "CREATE TABLE event_index (\n"
     "  workspace text NOT NULL,\n"
     "  event_id text NOT NULL,\n"
     "  session text NOT NULL,\n"
     "  line bigint NOT NULL,\n"
     "  PRIMARY KEY (workspace, event_id, session),\n"
     "  FOREIGN KEY (workspace, session) REFERENCES sessions ON DELETE CASCADE\n"
     ");\n"
     "CREATE TABLE api_keys (\n"
     "  name text PRIMARY KEY,\n"
     "  role text NOT NULL CHECK (role IN ('reader', 'writer', 'admin')),\n"
     "  workspace text NOT NULL,\n"
     "  sha256 bytea NOT NULL UNIQUE CHECK (length(sha256) = 32)\n"
     ");\n"
     "CREATE TABLE log_entries (\n"
     "  workspace text NOT NULL REFERENCES workspaces,\n"
     "  idx bigint NOT NULL CHECK (idx >= 0),\n"
     "  entry bytea NOT NULL,\n"
     "  PRIMARY KEY (workspace, idx)\n"
     ");\n"
     "CREATE TABLE log_hashes (\n"
     "  workspace text NOT NULL REFERENCES workspaces,\n"
     "  level integer NOT NULL,\n"
     "  idx bigint NOT NULL,\n"
     "  hash bytea NOT NULL CHECK (length(hash) = 32),\n"
     "  PRIMARY KEY (workspace, level, idx)\n"
     ");\n"
     "CREATE TABLE log_checkpoints (\n"
     "  workspace text NOT NULL REFERENCES workspaces,\n"
     "  size bigint NOT NULL,\n"
     "  note bytea NOT NULL,\n"
     "  PRIMARY KEY (workspace, size)\n"
     ");\n"
     "INSERT INTO workspaces VALUES ('default');\n"},
    /* An append continues the object's SHA-256 from its midstate
     * (at_sha256_export) instead of reading every byte again. NULL: not
     * known (the object is then read once to learn it). */
    {2, "object midstates",
     "ALTER TABLE objects ADD COLUMN midstate bytea CHECK (midstate IS NULL OR length(midstate) = 108);\n"},
    /* The order the log takes versions in: a session's version v+1 is
     * inserted after v committed (the compare-and-swap), so its seq is
     * larger; versions of different sessions go in any order. */
    {3, "the log's order of versions",
     "ALTER TABLE versions ADD COLUMN seq bigserial;\n"
     "CREATE INDEX versions_unlogged ON versions (workspace, seq) WHERE log_index IS NULL;\n"},
    /* The directory's links/<parent>: the tool call of the parent that
     * spawned each of its subagents (commit.c). */
    {4, "subagent links",
     "CREATE TABLE links (\n"
     "  workspace text NOT NULL,\n"
     "  parent text NOT NULL,\n"
     "  agent_id text NOT NULL,\n"
     "  event_id bytea NOT NULL,\n"
     "  PRIMARY KEY (workspace, parent, agent_id),\n"
     "  FOREIGN KEY (workspace, parent) REFERENCES sessions ON DELETE CASCADE\n"
     ");\n"},
    /* The event index as index.c keeps it (db/dbindex.h): where each
     * event's line is in its session's current version, its digest and its
     * prev_hash, so a lookup reads one line. Event ids are bytea: decoded,
     * they may hold any code point (NUL included). */
    {5, "the event index's lines",
     "DROP TABLE event_index;\n"
     "CREATE TABLE event_index (\n"
     "  workspace text NOT NULL,\n"
     "  event_id bytea NOT NULL,\n"
     "  session text NOT NULL,\n"
     "  line bigint NOT NULL,\n"
     "  off bigint NOT NULL,\n"
     "  len bigint NOT NULL,\n"
     "  sha256 bytea NOT NULL,\n"
     "  prev_hash bytea,\n"
     "  PRIMARY KEY (workspace, event_id, session, line),\n"
     "  FOREIGN KEY (workspace, session) REFERENCES sessions ON DELETE CASCADE\n"
     ");\n"
     "CREATE INDEX event_index_session ON event_index (workspace, session, line);\n"},
    /* The token usage an import recorded with its version (usage.h's
     * JSON): the directory's history/<id>/usage.<N>.json. */
    {6, "usage per version", "ALTER TABLE versions ADD COLUMN usage bytea;\n"},
    /* Where an object's own bytes begin in its blob. An upload streams its
     * events into a blob as they arrive, before it is known how many of
     * them the current version already holds (the importer decides at the
     * end); an extension then names the streamed blob from that point on
     * (the whole chunks before it are dropped). */
    {7, "blob offsets",
     "ALTER TABLE objects ADD COLUMN blob_start bigint NOT NULL DEFAULT 0 CHECK (blob_start >= 0);\n"},
};

#define DB_NMIGRATIONS ((int)(sizeof db_migrations / sizeof db_migrations[0]))

#endif
