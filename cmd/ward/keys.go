package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/server"
)

// defaultDataDir is the data directory `ward dev` uses without --data.
const defaultDataDir = ".ward"

// rotation is the JSON answer of `keys rotate`.
type rotation struct {
	DataDir    string `json:"data_dir"`
	EpochKeys  int    `json:"epoch_keys"`
	KeyFile    string `json:"key_file,omitempty"`
	NewRootKey string `json:"new_root_key,omitempty"`
}

func newKeysCmd(g *globals) *cobra.Command {
	cmd := groupCmd("keys", "Maintain a data directory's encryption keys (offline)")
	cmd.Long = `ward encrypts what it stores with per-project epoch keys kept in a keystore
apart from the data (keystore.db in the keys directory: DIR/keys, or the
directory given to 'ward dev --keys'), each wrapped under one root key: the
file root.key there, or $WARD_ROOT_KEY (base64) when it is set. These
commands work on the directories themselves, not through the API: the
server must be stopped.`
	var dataDir, keysDir, keystoreDSN string
	rotate := &cobra.Command{
		Use:   "rotate [--data DIR] [--keys KEYS]",
		Short: "Replace the root key: rewrap every epoch key under a new one (server stopped)",
		Long: `Replace the root key of the data directory DIR: every epoch key is rewrapped
under a new root key in one transaction. No data is rewritten, and all of it
stays readable with the new key. Use it on a schedule, or when the root key
may have been seen by someone it should not have been.

Where the root key lives decides what happens to the new one:
  - keys/root.key (no WARD_ROOT_KEY set): the file is replaced.
  - WARD_ROOT_KEY set to the current key: the new key is printed once, on
    stdout; nothing else keeps it.

Procedure:
  1. Stop the ward server using DIR (rotate refuses while it runs).
  2. Back up DIR/keys/ (and the current WARD_ROOT_KEY, if you use one) to a
     place apart from the backups of the data.
  3. Run 'ward keys rotate --data DIR', with WARD_ROOT_KEY set to the
     current key if the server uses one.
  4. With WARD_ROOT_KEY: store the printed key where the old one was kept and
     replace the old one with it.
  5. Start the server (with the new WARD_ROOT_KEY) and verify: it starts, an
     old task's result reads back ('ward task result ID'), a new task runs.
     If anything fails, stop it and restore the backup of step 2.
  6. Destroy the backup of step 2: with it, the old root key still opens the
     old keystore.`,
		Example: `  ward keys rotate
  ward keys rotate --data /var/lib/ward
  WARD_ROOT_KEY="$OLD_KEY" ward keys rotate --data /var/lib/ward -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if st, err := os.Stat(dataDir); errors.Is(err, os.ErrNotExist) {
				return ward.Errorf(ward.CodeNotFound, "no data directory at %s (--data)", dataDir)
			} else if err != nil {
				return err
			} else if !st.IsDir() {
				return ward.Errorf(ward.CodeInvalidArgument, "%s is not a directory (--data)", dataDir)
			}
			r, err := server.RotateRootKey(cmd.Context(), dataDir, keysDir, keystoreDSN, g.getenv("WARD_ROOT_KEY"))
			if err != nil {
				return err
			}
			out := rotation{DataDir: dataDir, EpochKeys: r.EpochKeys, KeyFile: r.KeyFile, NewRootKey: r.NewRootKey}
			if g.cfg.Output == outputJSON {
				return writeJSON(g.stdout, out)
			}
			if r.NewRootKey != "" {
				fmt.Fprintf(g.stdout, "Rewrapped %d epoch key(s) of %s under a new root key. The new WARD_ROOT_KEY, shown once:\n\n%s\n\n", r.EpochKeys, dataDir, r.NewRootKey)
				fmt.Fprintln(g.stdout, "Store it now where the old key was kept and replace the old key with it; start")
				fmt.Fprintln(g.stdout, "the server with WARD_ROOT_KEY set to it. The old key no longer opens the keystore.")
				return nil
			}
			fmt.Fprintf(g.stdout, "Rewrapped %d epoch key(s) of %s under a new root key, now in %s.\n", r.EpochKeys, dataDir, r.KeyFile)
			fmt.Fprintln(g.stdout, "Start the server and verify it, then destroy any backup of the old keys.")
			return nil
		},
	}
	rotate.Flags().StringVar(&dataDir, "data", defaultDataDir, "the data directory, as given to 'ward dev --data'")
	rotate.Flags().StringVar(&keysDir, "keys", "", "the keys directory, as given to 'ward dev --keys' (default DIR/keys)")
	rotate.Flags().StringVar(&keystoreDSN, "keystore", "", "the keystore's PostgreSQL URL, as given to 'ward dev --keystore' (stop every server sharing it first)")
	cmd.AddCommand(rotate)
	return cmd
}
