-- 0009_project_usage: the quotas max_running and max_stored_mb (0 =
-- unlimited), and each project's stored bytes: the length of its task
-- bodies and code blobs as stored, kept up to date by the transactions
-- that write or delete them, and counted here from what is stored now.
ALTER TABLE projects ADD COLUMN max_running INTEGER NOT NULL DEFAULT 0;
ALTER TABLE projects ADD COLUMN max_stored_mb INTEGER NOT NULL DEFAULT 0;
ALTER TABLE projects ADD COLUMN stored_bytes INTEGER NOT NULL DEFAULT 0;

-- Projects with a running quota, read by every lease.
CREATE INDEX projects_running_limited ON projects (name, max_running) WHERE max_running > 0;

UPDATE projects SET stored_bytes =
	(SELECT coalesce(sum(length(b.data)), 0) FROM tasks t INDEXED BY tasks_project
		JOIN (SELECT 0 AS kind UNION ALL SELECT 1 UNION ALL SELECT 2) k
		JOIN task_bodies b ON b.id = t.seq * 4 + k.kind
		WHERE t.project = projects.name)
	+ (SELECT coalesce(sum(length(c.data)), 0) FROM code_blobs c WHERE c.project = projects.name);
