package seal

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
)

// dialect is what differs between the keystore's two homes: a SQLite file
// of its own (ward dev) and a PostgreSQL database of its own (a keystore
// DSN, for servers sharing one).
type dialect struct {
	schema string
	// lock, when set, is run first in the schema transaction, so servers
	// opening one keystore together create it once.
	lock string
	// bind rewrites a query's ? placeholders for the driver.
	bind func(q string) string
	// check verifies the connection's settings at open.
	check func(ctx context.Context, db *sql.DB) error
	// wipe drops old copies of changed or deleted key rows from the files
	// after a destruction or rewrap.
	wipe func(ctx context.Context, db *sql.DB) error
}

var sqliteDialect = dialect{
	schema: sqliteSchema,
	bind:   func(q string) string { return q },
	check: func(ctx context.Context, db *sql.DB) error {
		var mode string
		if err := db.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
			return fmt.Errorf("keystore: %w", err)
		}
		if mode != "wal" {
			return fmt.Errorf("keystore: journal mode is %q, want wal", mode)
		}
		return nil
	},
	// secure_delete zeroed the rows in the database pages; truncating the
	// WAL drops the old page images that still held them.
	wipe: func(ctx context.Context, db *sql.DB) error {
		_, err := db.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`)
		return err
	},
}

const postgresSchema = `
CREATE TABLE IF NOT EXISTS meta (
	name  TEXT PRIMARY KEY,
	value BYTEA NOT NULL
);
CREATE TABLE IF NOT EXISTS epoch_keys (
	project    TEXT   NOT NULL,
	day        BIGINT NOT NULL,
	key_id     BIGINT NOT NULL,
	wrapped    BYTEA  NOT NULL,
	created_at TEXT   NOT NULL,
	PRIMARY KEY (project, day)
);
CREATE TABLE IF NOT EXISTS destroyed_epochs (
	project      TEXT   NOT NULL,
	day          BIGINT NOT NULL,
	key_id       BIGINT NOT NULL,
	destroyed_at TEXT   NOT NULL,
	PRIMARY KEY (project, day, key_id)
);
`

var postgresDialect = dialect{
	schema: postgresSchema,
	lock:   `SELECT pg_advisory_xact_lock(hashtext('ward/keystore/schema'))`,
	bind:   bindDollar,
	check:  func(context.Context, *sql.DB) error { return nil },
	// PostgreSQL keeps deleted row versions until VACUUM reclaims their
	// space; this asks for it at once. (It cannot zero pages or reach WAL
	// archives: docs/security.md says how to keep those short-lived.)
	wipe: func(ctx context.Context, db *sql.DB) error {
		_, err := db.ExecContext(ctx, `VACUUM epoch_keys`)
		return err
	},
}

// bindDollar rewrites ? placeholders as $1, $2, …; the keystore's queries
// hold no ? inside literals.
func bindDollar(q string) string {
	var b strings.Builder
	n := 0
	for i := range len(q) {
		if q[i] == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}
