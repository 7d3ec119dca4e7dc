package seal

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/prf"
	_ "modernc.org/sqlite" // database/sql driver "sqlite"

	"github.com/wardhq/ward"
)

const sqliteSchema = `
CREATE TABLE IF NOT EXISTS meta (
	name  TEXT PRIMARY KEY,
	value BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS epoch_keys (
	project    TEXT    NOT NULL,
	day        INTEGER NOT NULL,
	key_id     INTEGER NOT NULL,
	wrapped    BLOB    NOT NULL,
	created_at TEXT    NOT NULL,
	PRIMARY KEY (project, day)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS destroyed_epochs (
	project      TEXT    NOT NULL,
	day          INTEGER NOT NULL,
	key_id       INTEGER NOT NULL,
	destroyed_at TEXT    NOT NULL,
	PRIMARY KEY (project, day, key_id)
) WITHOUT ROWID;
`

// Associated-data labels keep every use of a key apart.
const (
	checkLabel = "ward/seal/check/v1"
	epochLabel = "ward/seal/epoch/v1"
	dekLabel   = "ward/seal/dek/v2"
)

// keystoreFormat is the version of the keystore's key format: 2 holds
// HMAC-SHA256 PRF epoch keysets from which data keys are derived.
const keystoreFormat = "2"

// Epoch identifies one project epoch key: the key of one UTC day, or the
// project's lasting key (Day == LastingDay). It is a tink keyset holding an
// HMAC-SHA256 PRF key, from which the data keys of records are derived.
type Epoch struct {
	Project string
	Day     int64  // days since 1970-01-01 UTC, or LastingDay
	KeyID   uint32 // the tink key id of the epoch keyset, recorded in envelopes
	prf     *prf.Set
}

// ID returns the epoch's day as YYYY-MM-DD, or "lasting".
func (e Epoch) ID() string {
	if e.Day == LastingDay {
		return "lasting"
	}
	return time.Unix(e.Day*86400, 0).UTC().Format(time.DateOnly)
}

// DayOf returns the epoch day of t: whole days since 1970-01-01 UTC.
func DayOf(t time.Time) int64 {
	s := t.Unix()
	d := s / 86400
	if s < 0 && s%86400 != 0 {
		d--
	}
	return d
}

type epochRef struct {
	project string
	day     int64
}

// Keystore holds the per-project epoch keys, wrapped by the root key, in a
// SQLite file of its own, apart from the data store. It is safe for
// concurrent use by one process; unwrapped epoch keys are cached in memory.
type Keystore struct {
	db  *sql.DB
	d   dialect
	now func() time.Time

	mu    sync.RWMutex
	root  RootKey
	cache map[epochRef]Epoch
}

// OpenKeystore opens or creates the keystore at path (mode 0600, WAL). A new
// keystore records a check value wrapped by root; an existing one refuses a
// different root key with CodeRootKeyMismatch. A keystore file accessible to
// group or others is refused with CodeInsecureKeyFile.
func OpenKeystore(ctx context.Context, path string, root RootKey, now func() time.Time) (*Keystore, error) {
	if root == nil {
		return nil, errNoRoot()
	}
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// Create the file first so SQLite (and its -wal/-shm files, which take
		// the database file's mode) never exists with a wider mode.
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, fmt.Errorf("keystore: create %s: %w", path, err)
		}
		if err := f.Close(); err != nil {
			return nil, fmt.Errorf("keystore: create %s: %w", path, err)
		}
	case err != nil:
		return nil, fmt.Errorf("keystore: %w", err)
	case fi.Mode().Perm()&0o077 != 0:
		return nil, &ward.Error{Code: CodeInsecureKeyFile, Message: fmt.Sprintf("keystore %s has mode %04o; it must not be accessible to group or others (chmod 600)", path, fi.Mode().Perm())}
	}
	dsn := "file:" + path + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)" +
		"&_pragma=secure_delete(1)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("keystore: open %s: %w", path, err)
	}
	// Key traffic is small and cached; one connection keeps checkpoints simple.
	db.SetMaxOpenConns(1)
	return openKeystore(ctx, db, sqliteDialect, root, now)
}

// openKeystore checks the root key against db's keystore, creating the
// keystore when db holds none, and returns it; on error db is closed.
func openKeystore(ctx context.Context, db *sql.DB, d dialect, root RootKey, now func() time.Time) (*Keystore, error) {
	if now == nil {
		now = time.Now
	}
	k := &Keystore{db: db, d: d, now: now, root: root, cache: make(map[epochRef]Epoch)}
	if err := k.init(ctx); err != nil {
		_ = db.Close()
		return nil, err
	}
	return k, nil
}

// errNoRoot is the error of opening a keystore without a root key.
func errNoRoot() error {
	return &ward.Error{Code: CodeRootKeyMissing, Message: "keystore: no root key"}
}

func (k *Keystore) init(ctx context.Context) error {
	if err := k.d.check(ctx, k.db); err != nil {
		return err
	}
	tx, err := k.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("keystore: begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	if k.d.lock != "" {
		if _, err := tx.ExecContext(ctx, k.d.lock); err != nil {
			return fmt.Errorf("keystore: lock: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, k.d.schema); err != nil {
		return fmt.Errorf("keystore: schema: %w", err)
	}
	var check, rootID []byte
	err = tx.QueryRowContext(ctx, k.d.bind(`SELECT value FROM meta WHERE name = 'check'`)).Scan(&check)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		var n int
		if err := tx.QueryRowContext(ctx, k.d.bind(`SELECT count(*) FROM epoch_keys`)).Scan(&n); err != nil {
			return fmt.Errorf("keystore: %w", err)
		}
		if n > 0 {
			return &ward.Error{Code: CodeIntegrity, Message: "keystore holds keys but no root key check value; refusing to adopt a root key"}
		}
		if err := k.writeCheck(ctx, tx, k.root); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, k.d.bind(`INSERT INTO meta(name, value) VALUES ('format', ?)`), []byte(keystoreFormat)); err != nil {
			return fmt.Errorf("keystore: store format: %w", err)
		}
		return tx.Commit()
	case err != nil:
		return fmt.Errorf("keystore: read check value: %w", err)
	}
	var format []byte
	if err := tx.QueryRowContext(ctx, k.d.bind(`SELECT value FROM meta WHERE name = 'format'`)).Scan(&format); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("keystore: read format: %w", err)
	}
	if string(format) != keystoreFormat {
		return &ward.Error{Code: CodeIntegrity, Message: fmt.Sprintf("keystore format %q is not supported (want %s); it was made by an earlier development version", format, keystoreFormat)}
	}
	if err := tx.QueryRowContext(ctx, k.d.bind(`SELECT value FROM meta WHERE name = 'root_id'`)).Scan(&rootID); err != nil {
		return fmt.Errorf("keystore: read root key id: %w", err)
	}
	if _, err := k.root.Unwrap(check, []byte(checkLabel)); err != nil {
		return &ward.Error{Code: CodeRootKeyMismatch, Message: fmt.Sprintf("keystore was sealed with root key %s, but root key %s was given; supply the original root key", rootID, k.root.ID())}
	}
	return tx.Commit()
}

// writeCheck stores a fresh check value and the root key's id.
func (k *Keystore) writeCheck(ctx context.Context, tx *sql.Tx, root RootKey) error {
	check, err := root.Wrap([]byte(checkLabel), []byte(checkLabel))
	if err != nil {
		return fmt.Errorf("keystore: wrap check value: %w", err)
	}
	if _, err := tx.ExecContext(ctx, k.d.bind(`INSERT INTO meta(name, value) VALUES ('check', ?), ('root_id', ?)
		ON CONFLICT(name) DO UPDATE SET value = excluded.value`), check, []byte(root.ID())); err != nil {
		return fmt.Errorf("keystore: store check value: %w", err)
	}
	return nil
}

// Close closes the keystore file.
func (k *Keystore) Close() error {
	if err := k.db.Close(); err != nil {
		return fmt.Errorf("keystore: close: %w", err)
	}
	return nil
}

// epochAD binds a wrapped epoch keyset to its project and day.
func epochAD(project string, day int64) []byte {
	b := make([]byte, 0, len(epochLabel)+4+len(project)+8)
	b = append(b, epochLabel...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(project)))
	b = append(b, project...)
	return binary.BigEndian.AppendUint64(b, uint64(day))
}

func checkProject(project string) error {
	if !ward.ValidName(project) {
		return ward.FieldError("project", "not a valid project name")
	}
	return nil
}

// EpochKey returns the project's epoch key for the UTC day of t, creating and
// storing it on first use. Keys are cached in memory after first use.
func (k *Keystore) EpochKey(ctx context.Context, project string, t time.Time) (Epoch, error) {
	if err := checkProject(project); err != nil {
		return Epoch{}, err
	}
	day := DayOf(t)
	if day < 0 || day >= LastingDay {
		return Epoch{}, ward.FieldError("time", "outside the supported epoch range")
	}
	return k.epoch(ctx, epochRef{project, day})
}

// epoch returns the epoch key of ref, creating it on first use.
func (k *Keystore) epoch(ctx context.Context, ref epochRef) (Epoch, error) {
	k.mu.RLock()
	e, ok := k.cache[ref]
	k.mu.RUnlock()
	if ok {
		return e, nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if e, ok := k.cache[ref]; ok {
		return e, nil
	}
	e, err := k.loadLocked(ctx, ref)
	if err == nil {
		return e, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return Epoch{}, err
	}
	h, err := keyset.NewHandle(prf.HMACSHA256PRFKeyTemplate())
	if err != nil {
		return Epoch{}, fmt.Errorf("keystore: new epoch key: %w", err)
	}
	var buf bytes.Buffer
	if err := h.WriteWithAssociatedData(keyset.NewBinaryWriter(&buf), rootAEAD{k.root}, epochAD(ref.project, ref.day)); err != nil {
		return Epoch{}, fmt.Errorf("keystore: wrap epoch key: %w", err)
	}
	keyID := h.KeysetInfo().GetPrimaryKeyId()
	// Another process may have created the key meanwhile; theirs wins.
	if _, err := k.db.ExecContext(ctx, k.d.bind(`INSERT INTO epoch_keys(project, day, key_id, wrapped, created_at)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT(project, day) DO NOTHING`),
		ref.project, ref.day, int64(keyID), buf.Bytes(), k.now().UTC().Format(time.RFC3339Nano)); err != nil {
		return Epoch{}, fmt.Errorf("keystore: store epoch key: %w", err)
	}
	e, err = k.loadLocked(ctx, ref)
	if err != nil {
		return Epoch{}, fmt.Errorf("keystore: reload epoch key: %w", err)
	}
	return e, nil
}

// loadLocked reads, unwraps and caches an epoch key; sql.ErrNoRows when the
// keystore holds none. k.mu must be held for writing.
func (k *Keystore) loadLocked(ctx context.Context, ref epochRef) (Epoch, error) {
	var keyID int64
	var wrapped []byte
	if err := k.db.QueryRowContext(ctx, k.d.bind(`SELECT key_id, wrapped FROM epoch_keys WHERE project = ? AND day = ?`),
		ref.project, ref.day).Scan(&keyID, &wrapped); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return Epoch{}, err
		}
		return Epoch{}, fmt.Errorf("keystore: read epoch key: %w", err)
	}
	h, err := keyset.ReadWithAssociatedData(keyset.NewBinaryReader(bytes.NewReader(wrapped)), rootAEAD{k.root}, epochAD(ref.project, ref.day))
	if err != nil {
		return Epoch{}, &ward.Error{Code: CodeIntegrity, Message: fmt.Sprintf("keystore: epoch key of project %s, day %d does not unwrap", ref.project, ref.day)}
	}
	p, err := prf.NewPRFSet(h)
	if err != nil {
		return Epoch{}, fmt.Errorf("keystore: epoch key primitive: %w", err)
	}
	e := Epoch{Project: ref.project, Day: ref.day, KeyID: uint32(keyID), prf: p}
	k.cache[ref] = e
	return e, nil
}

// epochFor returns the epoch key an envelope names, telling a destroyed key
// (CodeKeyDestroyed) apart from one that never existed (CodeIntegrity).
func (k *Keystore) epochFor(ctx context.Context, project string, day int64, keyID uint32) (Epoch, error) {
	ref := epochRef{project, day}
	k.mu.RLock()
	e, ok := k.cache[ref]
	k.mu.RUnlock()
	if !ok {
		k.mu.Lock()
		var err error
		if e, ok = k.cache[ref]; !ok {
			e, err = k.loadLocked(ctx, ref)
		}
		k.mu.Unlock()
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return Epoch{}, err
		}
	}
	if e.prf != nil && e.KeyID == keyID {
		return e, nil
	}
	var n int
	if err := k.db.QueryRowContext(ctx, k.d.bind(`SELECT count(*) FROM destroyed_epochs WHERE project = ? AND day = ? AND key_id = ?`),
		project, day, int64(keyID)).Scan(&n); err != nil {
		return Epoch{}, fmt.Errorf("keystore: read destroyed epochs: %w", err)
	}
	if n > 0 {
		return Epoch{}, &ward.Error{Code: CodeKeyDestroyed, Message: fmt.Sprintf("the epoch key of project %s for %s was destroyed; the data is no longer readable", project, Epoch{Day: day}.ID())}
	}
	return Epoch{}, &ward.Error{Code: CodeIntegrity, Message: "envelope names an epoch key this keystore never held"}
}

// DestroyBefore destroys the project's epoch keys for days before the UTC
// day of t (crypto-shredding) and returns how many it destroyed. Data sealed
// under them, in the store and in every backup of it, becomes unreadable.
// The lasting key is kept.
func (k *Keystore) DestroyBefore(ctx context.Context, project string, t time.Time) (int, error) {
	if err := checkProject(project); err != nil {
		return 0, err
	}
	return k.destroy(ctx, project, DayOf(t))
}

// DestroyProject destroys every epoch key of the project, the lasting key
// included, and returns how many it destroyed.
func (k *Keystore) DestroyProject(ctx context.Context, project string) (int, error) {
	if err := checkProject(project); err != nil {
		return 0, err
	}
	return k.destroy(ctx, project, 1<<62)
}

func (k *Keystore) destroy(ctx context.Context, project string, beforeDay int64) (int, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	tx, err := k.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("keystore: begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	// Keep a tombstone (project, day, key id: no key material) so Open can
	// say "destroyed" rather than "corrupt".
	if _, err := tx.ExecContext(ctx, k.d.bind(`INSERT INTO destroyed_epochs(project, day, key_id, destroyed_at)
		SELECT project, day, key_id, ? FROM epoch_keys WHERE project = ? AND day < ?
		ON CONFLICT DO NOTHING`),
		k.now().UTC().Format(time.RFC3339Nano), project, beforeDay); err != nil {
		return 0, fmt.Errorf("keystore: record destroyed epochs: %w", err)
	}
	res, err := tx.ExecContext(ctx, k.d.bind(`DELETE FROM epoch_keys WHERE project = ? AND day < ?`), project, beforeDay)
	if err != nil {
		return 0, fmt.Errorf("keystore: destroy epoch keys: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("keystore: destroy epoch keys: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("keystore: commit: %w", err)
	}
	for ref := range k.cache {
		if ref.project == project && ref.day < beforeDay {
			delete(k.cache, ref)
		}
	}
	if n > 0 {
		// Old copies of the destroyed rows must not linger in the files.
		if err := k.d.wipe(ctx, k.db); err != nil {
			return int(n), fmt.Errorf("keystore: wipe after destroy: %w", err)
		}
	}
	return int(n), nil
}

// Rewrap rotates the root key: every epoch key is unwrapped with the current
// root key and wrapped again with newRoot, in one transaction, and the check
// value is replaced, so the old root key no longer opens the keystore. Data
// sealed under the epoch keys is untouched and stays readable. It returns how
// many epoch keys it rewrapped.
func (k *Keystore) Rewrap(ctx context.Context, newRoot RootKey) (int, error) {
	if newRoot == nil {
		return 0, &ward.Error{Code: CodeRootKeyMissing, Message: "keystore: no new root key"}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	tx, err := k.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("keystore: begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	type row struct {
		project string
		day     int64
		wrapped []byte
	}
	var rows []row
	rs, err := tx.QueryContext(ctx, k.d.bind(`SELECT project, day, wrapped FROM epoch_keys`))
	if err != nil {
		return 0, fmt.Errorf("keystore: read epoch keys: %w", err)
	}
	for rs.Next() {
		var r row
		if err := rs.Scan(&r.project, &r.day, &r.wrapped); err != nil {
			_ = rs.Close()
			return 0, fmt.Errorf("keystore: read epoch keys: %w", err)
		}
		rows = append(rows, r)
	}
	if err := rs.Close(); err != nil {
		return 0, fmt.Errorf("keystore: read epoch keys: %w", err)
	}
	if err := rs.Err(); err != nil {
		return 0, fmt.Errorf("keystore: read epoch keys: %w", err)
	}
	for _, r := range rows {
		ad := epochAD(r.project, r.day)
		h, err := keyset.ReadWithAssociatedData(keyset.NewBinaryReader(bytes.NewReader(r.wrapped)), rootAEAD{k.root}, ad)
		if err != nil {
			return 0, &ward.Error{Code: CodeIntegrity, Message: fmt.Sprintf("keystore: epoch key of project %s, day %d does not unwrap", r.project, r.day)}
		}
		var buf bytes.Buffer
		if err := h.WriteWithAssociatedData(keyset.NewBinaryWriter(&buf), rootAEAD{newRoot}, ad); err != nil {
			return 0, fmt.Errorf("keystore: rewrap epoch key: %w", err)
		}
		if _, err := tx.ExecContext(ctx, k.d.bind(`UPDATE epoch_keys SET wrapped = ? WHERE project = ? AND day = ?`),
			buf.Bytes(), r.project, r.day); err != nil {
			return 0, fmt.Errorf("keystore: store rewrapped epoch key: %w", err)
		}
	}
	if err := k.writeCheck(ctx, tx, newRoot); err != nil {
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("keystore: commit: %w", err)
	}
	k.root = newRoot
	// Old wrappings must not survive in the files.
	if err := k.d.wipe(ctx, k.db); err != nil {
		return len(rows), fmt.Errorf("keystore: wipe after rewrap: %w", err)
	}
	return len(rows), nil
}

// rootAEAD adapts a RootKey to tink's AEAD interface for keyset wrapping.
type rootAEAD struct{ root RootKey }

func (r rootAEAD) Encrypt(plaintext, associatedData []byte) ([]byte, error) {
	return r.root.Wrap(plaintext, associatedData)
}

func (r rootAEAD) Decrypt(ciphertext, associatedData []byte) ([]byte, error) {
	return r.root.Unwrap(ciphertext, associatedData)
}

// OpenKeystoreDSN opens or creates the keystore in the PostgreSQL database
// named by dsn (postgres://…), which should be a database of its own, apart
// from the data store's, as the keystore file is for `ward dev`. Several
// servers may share it. The root key is checked as by OpenKeystore.
func OpenKeystoreDSN(ctx context.Context, dsn string, root RootKey, now func() time.Time) (*Keystore, error) {
	if root == nil {
		return nil, errNoRoot()
	}
	// pgxpool's parser also accepts (and drops) the pool_* settings a DSN
	// shared with the data store may carry.
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx's message may quote the DSN, password included: keep it out.
		return nil, errors.New("keystore: cannot parse the connection string")
	}
	db := stdlib.OpenDB(*cfg.ConnConfig)
	db.SetMaxOpenConns(4)
	return openKeystore(ctx, db, postgresDialect, root, now)
}
