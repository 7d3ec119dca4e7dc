-- 0003_token_vault: what projection and tokenization left of a task's
-- payload, and the token vault.

-- ward.PayloadInfo as JSON; NULL for a task of a function without input
-- rules.
ALTER TABLE tasks ADD COLUMN input_info TEXT;

-- The token vault: the original value each token of a project stands for.
-- value is what the store was handed (a sealing adapter hands it an
-- envelope). A token written again keeps created_at and gets the new value
-- and updated_at.
CREATE TABLE token_vault (
	project    TEXT    NOT NULL REFERENCES projects (name),
	token      TEXT    NOT NULL,
	value      BLOB    NOT NULL,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	PRIMARY KEY (project, token)
) STRICT;

-- Purging: a project's entries by last write, oldest first.
CREATE INDEX token_vault_updated ON token_vault (project, updated_at);
