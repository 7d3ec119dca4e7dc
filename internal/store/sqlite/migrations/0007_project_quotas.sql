-- 0007_project_quotas: per-project quotas (0 = unlimited), and an index
-- that counts a project's queued tasks without walking other projects'.
ALTER TABLE projects ADD COLUMN max_queued INTEGER NOT NULL DEFAULT 0;
ALTER TABLE projects ADD COLUMN max_functions INTEGER NOT NULL DEFAULT 0;
CREATE INDEX tasks_project_queued ON tasks (project) WHERE status = 'queued';
