-- 0001_init: the initial schema. Times are unix microseconds (UTC).

CREATE TABLE projects (
	name       TEXT    NOT NULL PRIMARY KEY,
	created_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- Token metadata; the token string itself is never stored.
CREATE TABLE tokens (
	id         TEXT    NOT NULL PRIMARY KEY,
	project    TEXT    NOT NULL, -- '' for admin tokens
	role       TEXT    NOT NULL,
	name       TEXT    NOT NULL,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL,
	revoked_at INTEGER
) STRICT, WITHOUT ROWID;

CREATE TABLE functions (
	project         TEXT    NOT NULL REFERENCES projects (name),
	name            TEXT    NOT NULL,
	spec            TEXT    NOT NULL, -- ward.FunctionSpec as JSON
	max_concurrency INTEGER NOT NULL, -- copy of spec.limits.max_concurrency for leasing
	code_digest     TEXT    NOT NULL DEFAULT '',
	code_version    INTEGER NOT NULL DEFAULT 0,
	code_size       INTEGER NOT NULL DEFAULT 0,
	created_at      INTEGER NOT NULL,
	updated_at      INTEGER NOT NULL,
	PRIMARY KEY (project, name)
) STRICT, WITHOUT ROWID;

-- Functions with a concurrency limit, read by every lease.
CREATE INDEX functions_limited ON functions (project, name, max_concurrency) WHERE max_concurrency > 0;

-- Code blobs, content-addressed: stored once per digest.
CREATE TABLE code_blobs (
	digest     TEXT    NOT NULL PRIMARY KEY,
	size       INTEGER NOT NULL,
	data       BLOB    NOT NULL,
	created_at INTEGER NOT NULL
) STRICT;

-- Config objects; function '' is the project's global config.
CREATE TABLE config (
	project    TEXT    NOT NULL REFERENCES projects (name),
	function   TEXT    NOT NULL,
	data       TEXT    NOT NULL, -- JSON object of strings
	updated_at INTEGER NOT NULL,
	PRIMARY KEY (project, function)
) STRICT, WITHOUT ROWID;

-- Tasks. seq is the insertion order (FIFO and paging); id is the public ID.
-- Bodies live in task_bodies so that state changes never rewrite them.
CREATE TABLE tasks (
	seq               INTEGER PRIMARY KEY,
	id                TEXT    NOT NULL UNIQUE,
	project           TEXT    NOT NULL REFERENCES projects (name),
	function          TEXT    NOT NULL,
	code_digest       TEXT    NOT NULL,
	status            TEXT    NOT NULL,
	priority          INTEGER NOT NULL,
	attempts          INTEGER NOT NULL DEFAULT 0,
	max_attempts      INTEGER NOT NULL,
	timeout_s         INTEGER NOT NULL,
	memory_mb         INTEGER NOT NULL,
	backoff_s         INTEGER NOT NULL,
	platform_tries    INTEGER NOT NULL DEFAULT 0,
	created_at        INTEGER NOT NULL,
	run_at            INTEGER NOT NULL,
	started_at        INTEGER,
	finished_at       INTEGER,
	error_code        TEXT,
	error_message     TEXT,
	exit_code         INTEGER,
	usage_peak_memory INTEGER,
	usage_cpu_ms      INTEGER,
	usage_duration_ms INTEGER,
	labels            TEXT, -- JSON object, NULL when empty
	parent_id         TEXT    NOT NULL DEFAULT '',
	payload_size      INTEGER NOT NULL,
	submitted_by      TEXT    NOT NULL DEFAULT '',
	lease_id          TEXT,
	runner_id         TEXT,
	lease_expires_at  INTEGER
) STRICT;

-- Leasing: due queued tasks in lease order, covering the admission columns.
CREATE INDEX tasks_queued ON tasks (priority, run_at, seq, memory_mb, project, function) WHERE status = 'queued';
-- Concurrency counts, lease expiry and runner requeue scan running tasks only.
CREATE INDEX tasks_running ON tasks (project, function, lease_expires_at) WHERE status = 'running';
-- Listing, newest first, with the optional filters. There is deliberately no
-- index on (project, status): it would change on every state transition.
-- Queued and running tasks are mostly the newest, and succeeded ones the
-- most, so those filters scan tasks_project; failed and cancelled tasks,
-- which can be rare and old, have small indexes of their own (queries name
-- the status as a literal so that SQLite can use them).
CREATE INDEX tasks_project ON tasks (project, seq);
CREATE INDEX tasks_project_function ON tasks (project, function, seq);
CREATE INDEX tasks_project_failed ON tasks (project, seq) WHERE status = 'failed';
CREATE INDEX tasks_project_cancelled ON tasks (project, seq) WHERE status = 'cancelled';

-- Task bodies: id = seq*4 + kind (0 payload, 1 result, 2 log). An empty body
-- has no row.
CREATE TABLE task_bodies (
	id   INTEGER PRIMARY KEY,
	data BLOB    NOT NULL
) STRICT;

-- Idempotency keys: the first task submitted with a key in a project. A key
-- older than ward.IdempotencyTTL is reused by the next task that names it.
CREATE TABLE idempotency_keys (
	project    TEXT    NOT NULL,
	key        TEXT    NOT NULL,
	task_id    TEXT    NOT NULL,
	created_at INTEGER NOT NULL,
	PRIMARY KEY (project, key)
) STRICT, WITHOUT ROWID;
