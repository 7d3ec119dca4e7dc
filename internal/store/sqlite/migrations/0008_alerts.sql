-- 0008_alerts: alert rules, their state and history, the lock one server
-- of a cluster evaluates them under, and an index for the figures rules
-- read over a window of submissions.
CREATE TABLE alert_rules (
	project    TEXT    NOT NULL REFERENCES projects (name) ON DELETE CASCADE,
	name       TEXT    NOT NULL,
	spec       TEXT    NOT NULL, -- ward.AlertSpec as JSON
	for_ms     INTEGER NOT NULL,
	secret     BLOB    NOT NULL, -- sealed by the sealed adapter
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	PRIMARY KEY (project, name)
) STRICT, WITHOUT ROWID;

-- State of a rule, or of a builtin one (which has no row in alert_rules).
CREATE TABLE alert_states (
	project      TEXT    NOT NULL REFERENCES projects (name) ON DELETE CASCADE,
	name         TEXT    NOT NULL,
	state        TEXT    NOT NULL,
	value        REAL    NOT NULL,
	since        INTEGER NOT NULL,
	evaluated_at INTEGER NOT NULL,
	PRIMARY KEY (project, name)
) STRICT, WITHOUT ROWID;

-- History: state changes and webhook deliveries, newest kept.
CREATE TABLE alert_events (
	seq         INTEGER PRIMARY KEY,
	project     TEXT    NOT NULL REFERENCES projects (name) ON DELETE CASCADE,
	name        TEXT    NOT NULL,
	at          INTEGER NOT NULL,
	kind        TEXT    NOT NULL,
	state       TEXT    NOT NULL,
	value       REAL    NOT NULL,
	attempt     INTEGER NOT NULL DEFAULT 0,
	status_code INTEGER NOT NULL DEFAULT 0,
	error       TEXT    NOT NULL DEFAULT '',
	duration_ms INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX alert_events_rule ON alert_events (project, name, seq);

CREATE TABLE locks (
	name       TEXT    NOT NULL PRIMARY KEY,
	holder     TEXT    NOT NULL,
	expires_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX tasks_project_created ON tasks (project, created_at);
