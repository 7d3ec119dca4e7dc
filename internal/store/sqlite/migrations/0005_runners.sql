-- 0005_runners: registered runners and their one-time join tokens.

-- Runners. A runner registering again under its ID (a restart) replaces its
-- row: a new incarnation, active, registered and seen then. How many tasks
-- it runs is not stored: it is counted from the tasks it leases.
CREATE TABLE runners (
	id            TEXT    NOT NULL PRIMARY KEY,
	name          TEXT    NOT NULL, -- host name, for people
	state         TEXT    NOT NULL CHECK (state IN ('active', 'draining', 'drained')),
	version       TEXT    NOT NULL,
	drivers       TEXT    NOT NULL, -- JSON array of sandbox driver names
	slots         INTEGER NOT NULL,
	memory_mb     INTEGER NOT NULL,
	max_tasks     INTEGER NOT NULL, -- 0 = no limit
	max_age_s     INTEGER NOT NULL, -- 0 = no limit
	remote        INTEGER NOT NULL, -- 0 for the runner inside a server process
	registered_at INTEGER NOT NULL,
	last_seen_at  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- Join tokens: the SHA-256 of each token's secret, never the secret. A
-- token is used once: used_at and runner_id record the use.
CREATE TABLE join_tokens (
	id         TEXT    NOT NULL PRIMARY KEY,
	hash       BLOB    NOT NULL,
	created_by TEXT    NOT NULL, -- token ID of the admin who made it
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL,
	used_at    INTEGER,
	runner_id  TEXT
) STRICT, WITHOUT ROWID;

-- A runner's running count, and its leases: the running tasks by runner.
-- (tasks_running, by function, would make each count scan every running
-- task; measured, a heartbeat's TouchRunner with 100 runners holding 20
-- leases each takes about 95 µs with this index, 590 µs without.)
CREATE INDEX tasks_running_runner ON tasks (runner_id) WHERE status = 'running';
