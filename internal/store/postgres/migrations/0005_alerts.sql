-- 0005_alerts: alert rules, their state and history, the lock one server
-- of a cluster evaluates them under, and an index for the figures rules
-- read over a window of submissions.
CREATE TABLE alert_rules (
	project    TEXT COLLATE "C" NOT NULL REFERENCES projects (name) ON DELETE CASCADE,
	name       TEXT COLLATE "C" NOT NULL,
	spec       TEXT    NOT NULL, -- ward.AlertSpec as JSON
	for_ms     BIGINT  NOT NULL,
	secret     BYTEA   NOT NULL, -- sealed by the sealed adapter
	created_at BIGINT  NOT NULL,
	updated_at BIGINT  NOT NULL,
	PRIMARY KEY (project, name)
);

-- State of a rule, or of a builtin one (which has no row in alert_rules).
CREATE TABLE alert_states (
	project      TEXT COLLATE "C" NOT NULL REFERENCES projects (name) ON DELETE CASCADE,
	name         TEXT COLLATE "C" NOT NULL,
	state        TEXT    NOT NULL,
	value        DOUBLE PRECISION NOT NULL,
	since        BIGINT  NOT NULL,
	evaluated_at BIGINT  NOT NULL,
	PRIMARY KEY (project, name)
);

-- History: state changes and webhook deliveries, newest kept.
CREATE TABLE alert_events (
	seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	project     TEXT COLLATE "C" NOT NULL REFERENCES projects (name) ON DELETE CASCADE,
	name        TEXT COLLATE "C" NOT NULL,
	at          BIGINT  NOT NULL,
	kind        TEXT    NOT NULL,
	state       TEXT    NOT NULL,
	value       DOUBLE PRECISION NOT NULL,
	attempt     BIGINT  NOT NULL DEFAULT 0,
	status_code BIGINT  NOT NULL DEFAULT 0,
	error       TEXT    NOT NULL DEFAULT '',
	duration_ms BIGINT  NOT NULL DEFAULT 0
);
CREATE INDEX alert_events_rule ON alert_events (project, name, seq);

CREATE TABLE locks (
	name       TEXT COLLATE "C" NOT NULL PRIMARY KEY,
	holder     TEXT    NOT NULL,
	expires_at BIGINT  NOT NULL
);

CREATE INDEX tasks_project_created ON tasks (project, created_at);
