-- 0003_task_runtime: the sandbox runtime each task runs in (its function's
-- spec.runtime when it was submitted), so that a runner leases only tasks
-- of the runtimes it has. Every task before this ran on wasm, the only
-- runtime then. A lease filters on it as it reads each candidate row in
-- the order of tasks_queued; the index is unchanged.
ALTER TABLE tasks ADD COLUMN runtime TEXT NOT NULL DEFAULT 'wasm';
