-- 0006_task_runtime: the sandbox runtime each task runs in (its function's
-- spec.runtime when it was submitted), so that a runner leases only tasks
-- of the runtimes it has. Every task before this ran on wasm, the only
-- runtime then.
ALTER TABLE tasks ADD COLUMN runtime TEXT NOT NULL DEFAULT 'wasm';

-- Leasing: the queued index covers the runtime too, so that a lease asking
-- for some runtimes filters the others out within its ordered scan of the
-- index, still reading no table row and sorting nothing.
DROP INDEX tasks_queued;
CREATE INDEX tasks_queued ON tasks (priority, run_at, seq, memory_mb, project, function, runtime) WHERE status = 'queued';
