-- 0002_runners: registered runners and their one-time join tokens. (The
-- running count of a runner reads tasks_running_runner, from 0001.)

-- Runners. A runner registering again under its ID (a restart) replaces its
-- row: a new incarnation, active, registered and seen then. How many tasks
-- it runs is not stored: it is counted from the tasks it leases.
CREATE TABLE runners (
	id            TEXT COLLATE "C" NOT NULL PRIMARY KEY,
	name          TEXT    NOT NULL, -- host name, for people
	state         TEXT    NOT NULL CHECK (state IN ('active', 'draining', 'drained')),
	version       TEXT    NOT NULL,
	drivers       TEXT[]  NOT NULL, -- sandbox driver names
	slots         BIGINT  NOT NULL,
	memory_mb     BIGINT  NOT NULL,
	max_tasks     BIGINT  NOT NULL, -- 0 = no limit
	max_age_s     BIGINT  NOT NULL, -- 0 = no limit
	remote        BOOLEAN NOT NULL, -- false for the runner inside a server process
	registered_at BIGINT  NOT NULL,
	last_seen_at  BIGINT  NOT NULL
);

-- Join tokens: the SHA-256 of each token's secret, never the secret. A
-- token is used once: used_at and runner_id record the use.
CREATE TABLE join_tokens (
	id         TEXT COLLATE "C" NOT NULL PRIMARY KEY,
	hash       BYTEA  NOT NULL,
	created_by TEXT   NOT NULL, -- token ID of the admin who made it
	created_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL,
	used_at    BIGINT,
	runner_id  TEXT
);
