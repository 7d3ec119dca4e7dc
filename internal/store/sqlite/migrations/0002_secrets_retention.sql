-- 0002_secrets_retention: per-project retention, code blobs per project,
-- secrets, sealed payloads, and the indexes that purging reads.

-- How long the project's finished tasks live (ward.DefaultRetentionDays).
ALTER TABLE projects ADD COLUMN retention_days INTEGER NOT NULL DEFAULT 7;

-- Code blobs are stored per (project, digest): each project's copy is its
-- own (a sealing adapter encrypts it under the project's key), and one
-- project never reads another's. Every blob a project's functions or tasks
-- point at is copied to that project; a blob nothing points at is dropped.
CREATE TABLE code_blobs_v2 (
	project    TEXT    NOT NULL REFERENCES projects (name),
	digest     TEXT    NOT NULL, -- "sha256:<hex>" of the code as uploaded
	size       INTEGER NOT NULL, -- of the code as uploaded
	data       BLOB    NOT NULL, -- the code, or it transformed (encrypted)
	created_at INTEGER NOT NULL,
	PRIMARY KEY (project, digest)
) STRICT;

INSERT INTO code_blobs_v2 (project, digest, size, data, created_at)
SELECT u.project, b.digest, b.size, b.data, b.created_at
FROM (
	SELECT project, code_digest AS digest FROM functions WHERE code_digest <> ''
	UNION
	SELECT project, code_digest FROM tasks WHERE code_digest <> ''
) u JOIN code_blobs b ON b.digest = u.digest;

DROP TABLE code_blobs;
ALTER TABLE code_blobs_v2 RENAME TO code_blobs;

-- Secrets; function '' is the project's global scope. value is what the
-- store was handed (a sealing adapter hands it an envelope); size is the
-- plaintext's size.
CREATE TABLE secrets (
	project    TEXT    NOT NULL REFERENCES projects (name),
	function   TEXT    NOT NULL,
	name       TEXT    NOT NULL,
	value      BLOB    NOT NULL,
	size       INTEGER NOT NULL,
	version    INTEGER NOT NULL, -- 1 on first write, +1 on each replacement
	updated_at INTEGER NOT NULL,
	PRIMARY KEY (project, function, name)
) STRICT;

-- 1 when the payload is a client-sealed envelope.
ALTER TABLE tasks ADD COLUMN sealed INTEGER NOT NULL DEFAULT 0;

-- Purging: a project's finished tasks by finish time. An entry is written
-- once, when a task finishes (and removed if it is retried), never on the
-- queued/running transitions.
CREATE INDEX tasks_project_finished ON tasks (project, finished_at) WHERE finished_at IS NOT NULL;

-- Purging removes the keys that point at purged tasks.
CREATE INDEX idempotency_keys_task ON idempotency_keys (task_id);
