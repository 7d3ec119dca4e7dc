-- 0001_init: the initial schema. Times are unix microseconds (UTC), as in
-- the SQLite store, so that values round-trip exactly. Names compare
-- byte-wise (COLLATE "C") so that listings order as in every other store.

CREATE TABLE projects (
	name           TEXT COLLATE "C" NOT NULL PRIMARY KEY,
	created_at     BIGINT  NOT NULL,
	retention_days INTEGER NOT NULL
);

-- Token metadata; the token string itself is never stored.
CREATE TABLE tokens (
	id         TEXT COLLATE "C" NOT NULL PRIMARY KEY,
	project    TEXT COLLATE "C" NOT NULL, -- '' for admin tokens
	role       TEXT   NOT NULL,
	name       TEXT   NOT NULL,
	created_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL,
	revoked_at BIGINT
);
CREATE INDEX tokens_project ON tokens (project);

CREATE TABLE functions (
	project         TEXT COLLATE "C" NOT NULL REFERENCES projects (name),
	name            TEXT COLLATE "C" NOT NULL,
	spec            TEXT    NOT NULL, -- ward.FunctionSpec as JSON
	max_concurrency INTEGER NOT NULL, -- copy of spec.limits.max_concurrency for leasing
	code_digest     TEXT    NOT NULL DEFAULT '',
	code_version    INTEGER NOT NULL DEFAULT 0,
	code_size       BIGINT  NOT NULL DEFAULT 0,
	created_at      BIGINT  NOT NULL,
	updated_at      BIGINT  NOT NULL,
	PRIMARY KEY (project, name)
);

-- Code blobs, per (project, digest): each project's copy is its own.
CREATE TABLE code_blobs (
	project    TEXT COLLATE "C" NOT NULL REFERENCES projects (name),
	digest     TEXT COLLATE "C" NOT NULL, -- "sha256:<hex>" of the code as uploaded
	size       BIGINT NOT NULL,           -- of the code as uploaded
	data       BYTEA  NOT NULL,           -- the code, or it transformed (encrypted)
	created_at BIGINT NOT NULL,
	PRIMARY KEY (project, digest)
);

-- Config objects; function '' is the project's global config.
CREATE TABLE config (
	project    TEXT COLLATE "C" NOT NULL REFERENCES projects (name),
	function   TEXT COLLATE "C" NOT NULL,
	data       TEXT   NOT NULL, -- JSON object of strings
	updated_at BIGINT NOT NULL,
	PRIMARY KEY (project, function)
);

-- Secrets; function '' is the project's global scope. value is what the
-- store was handed (a sealing adapter hands it an envelope); size is the
-- plaintext's size.
CREATE TABLE secrets (
	project    TEXT COLLATE "C" NOT NULL REFERENCES projects (name),
	function   TEXT COLLATE "C" NOT NULL,
	name       TEXT COLLATE "C" NOT NULL,
	value      BYTEA   NOT NULL,
	size       BIGINT  NOT NULL,
	version    INTEGER NOT NULL, -- 1 on first write, +1 on each replacement
	updated_at BIGINT  NOT NULL,
	PRIMARY KEY (project, function, name)
);

-- Tasks. seq is the insertion order (FIFO and paging); id is the public ID.
-- Bodies live in task_bodies so that state changes never rewrite them.
CREATE TABLE tasks (
	seq               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	id                TEXT COLLATE "C" NOT NULL UNIQUE,
	project           TEXT COLLATE "C" NOT NULL REFERENCES projects (name),
	function          TEXT COLLATE "C" NOT NULL,
	code_digest       TEXT    NOT NULL,
	status            TEXT    NOT NULL,
	priority          INTEGER NOT NULL,
	attempts          INTEGER NOT NULL DEFAULT 0,
	max_attempts      INTEGER NOT NULL,
	timeout_s         INTEGER NOT NULL,
	memory_mb         INTEGER NOT NULL,
	backoff_s         INTEGER NOT NULL,
	platform_tries    INTEGER NOT NULL DEFAULT 0,
	created_at        BIGINT  NOT NULL,
	run_at            BIGINT  NOT NULL,
	started_at        BIGINT,
	finished_at       BIGINT,
	error_code        TEXT,
	error_message     TEXT,
	exit_code         INTEGER,
	usage_peak_memory BIGINT,
	usage_cpu_ms      BIGINT,
	usage_duration_ms BIGINT,
	labels            TEXT, -- JSON object, NULL when empty
	parent_id         TEXT    NOT NULL DEFAULT '',
	payload_size      BIGINT  NOT NULL,
	submitted_by      TEXT    NOT NULL DEFAULT '',
	lease_id          TEXT,
	runner_id         TEXT,
	lease_expires_at  BIGINT,
	sealed            BOOLEAN NOT NULL DEFAULT false,
	input_info        TEXT -- ward.PayloadInfo as JSON, NULL without input rules
);

-- Leasing: due queued tasks in lease order.
CREATE INDEX tasks_queued ON tasks (priority DESC, run_at, seq) WHERE status = 'queued';
-- Concurrency counts, lease expiry and runner requeue scan running tasks only.
CREATE INDEX tasks_running ON tasks (project, function) WHERE status = 'running';
CREATE INDEX tasks_running_expiry ON tasks (lease_expires_at) WHERE status = 'running';
CREATE INDEX tasks_running_runner ON tasks (runner_id) WHERE status = 'running';
-- Listing, newest first, with the optional filters.
CREATE INDEX tasks_project ON tasks (project, seq);
CREATE INDEX tasks_project_function ON tasks (project, function, seq);
-- Purging: a project's finished tasks by finish time.
CREATE INDEX tasks_project_finished ON tasks (project, finished_at) WHERE finished_at IS NOT NULL;

-- Task bodies: kind 0 payload, 1 result, 2 log. An empty body has no row.
CREATE TABLE task_bodies (
	seq  BIGINT   NOT NULL REFERENCES tasks (seq) ON DELETE CASCADE,
	kind SMALLINT NOT NULL,
	data BYTEA    NOT NULL,
	PRIMARY KEY (seq, kind)
);

-- Idempotency keys: the first task submitted with a key in a project. A key
-- older than ward.IdempotencyTTL is reused by the next task that names it.
CREATE TABLE idempotency_keys (
	project    TEXT COLLATE "C" NOT NULL,
	key        TEXT COLLATE "C" NOT NULL,
	task_id    TEXT COLLATE "C" NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
	created_at BIGINT NOT NULL,
	PRIMARY KEY (project, key)
);
CREATE INDEX idempotency_keys_task ON idempotency_keys (task_id);

-- The token vault: the original value each token of a project stands for.
-- A token written again keeps created_at and gets the new value and
-- updated_at.
CREATE TABLE token_vault (
	project    TEXT COLLATE "C" NOT NULL REFERENCES projects (name),
	token      TEXT COLLATE "C" NOT NULL,
	value      BYTEA  NOT NULL,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL,
	PRIMARY KEY (project, token)
);
CREATE INDEX token_vault_updated ON token_vault (project, updated_at);
