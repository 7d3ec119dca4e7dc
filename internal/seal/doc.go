// Package seal owns ward's keys and the envelope encryption of record fields.
//
// # Key hierarchy
//
//	root key (RootKey: a 0600 key file, WARD_ROOT_KEY, later a KMS)
//	  └─ project epoch keys: one AES-256-GCM tink keyset per (project, UTC day),
//	     stored wrapped by the root key in the keystore, a SQLite file of its own
//	       └─ data keys: a fresh AES-256-GCM key per sealed field, wrapped by the
//	          epoch key and stored inside the envelope next to the ciphertext
//
// The root key never touches data; it only wraps epoch keys (and a check value
// that detects a wrong root key at open). Rotating the root key (Keystore.Rewrap)
// rewraps the epoch keys and leaves every envelope untouched.
//
// # Associated data
//
// Every field is sealed under an AD{Project, Record, Field}, encoded with
// length prefixes so no two distinct ADs encode alike. The AD, together with
// the envelope header (format version, epoch day, epoch key id), is the
// associated data of both the data ciphertext and the wrapped data key, so an
// envelope copied to another project, record or field, or altered in any byte,
// fails to open with an integrity error instead of yielding garbage. Each
// wrapped epoch keyset is bound the same way to its (project, day).
//
// # Crypto-shredding
//
// Keys live apart from the data they protect. Destroying a project's epoch
// keys (Keystore.DestroyBefore for retention, Keystore.DestroyProject on
// deletion) makes every envelope sealed under them unreadable, including the
// copies in old backups of the data store. The keystore runs with SQLite's
// secure_delete and truncates its write-ahead log after a destruction, so the
// destroyed key bytes do not linger in the live keystore files. A backup of
// the keystore itself, taken before the destruction, still holds the keys:
// keystore backups must follow the same retention as the data, or be
// excluded from long-lived backups.
package seal
