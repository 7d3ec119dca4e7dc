-- 0006_project_usage: the quotas max_running and max_stored_mb (0 =
-- unlimited), and each project's stored bytes: the length of its task
-- bodies and code blobs as stored. The count is kept in shards, one row
-- per (project, shard), each changed by adding to it in the transactions
-- that write or delete the bytes; a project's stored bytes are the sum of
-- its shards. Shards spread concurrent writers of one project over several
-- rows, so that they do not all wait for one row lock. The count starts
-- from what is stored now.
ALTER TABLE projects ADD COLUMN max_running INTEGER NOT NULL DEFAULT 0;
ALTER TABLE projects ADD COLUMN max_stored_mb INTEGER NOT NULL DEFAULT 0;

CREATE TABLE project_usage (
	project TEXT COLLATE "C" NOT NULL REFERENCES projects (name) ON DELETE CASCADE,
	shard   SMALLINT NOT NULL,
	bytes   BIGINT   NOT NULL,
	PRIMARY KEY (project, shard)
);

INSERT INTO project_usage (project, shard, bytes)
SELECT p.name, 0,
	(SELECT coalesce(sum(length(b.data)), 0) FROM tasks t JOIN task_bodies b ON b.seq = t.seq WHERE t.project = p.name)
	+ (SELECT coalesce(sum(length(c.data)), 0) FROM code_blobs c WHERE c.project = p.name)
FROM projects p;
