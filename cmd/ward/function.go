package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/client"
	"github.com/wardhq/ward/internal/gobuild"
	"github.com/wardhq/ward/internal/privacy"
	"github.com/wardhq/ward/internal/specfile"
)

// maxCodeBytes is the server's cap on uploaded code (docs/api.md).
const maxCodeBytes = 64 << 20

// wasmHeader starts every WebAssembly binary module: "\0asm", version 1.
var wasmHeader = []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}

// deployFlags are the spec fields deploy can change, and where its spec
// file is.
type deployFlags struct {
	memory, timeout, concurrency, retries, backoff, payloadMax int
	fields, tokenize                                           []string
	strict                                                     bool
	specPath                                                   string // --spec: the spec file, instead of looking beside the code
}

// apply changes the fields of spec whose flags were given.
func (d deployFlags) apply(spec ward.FunctionSpec, changed func(string) bool) ward.FunctionSpec {
	set := func(flag string, dst *int, v int) {
		if changed(flag) {
			*dst = v
		}
	}
	set("memory", &spec.Limits.MemoryMB, d.memory)
	set("timeout", &spec.Limits.TimeoutS, d.timeout)
	set("concurrency", &spec.Limits.MaxConcurrency, d.concurrency)
	set("payload-max", &spec.Limits.MaxPayloadKB, d.payloadMax)
	set("retries", &spec.Retries.MaxAttempts, d.retries)
	set("backoff", &spec.Retries.BackoffS, d.backoff)
	if changed("fields") {
		spec.Input.Fields = nonEmpty(d.fields)
	}
	if changed("tokenize") {
		spec.Input.Tokenize = nonEmpty(d.tokenize)
	}
	if changed("strict") {
		spec.Input.Strict = d.strict
	}
	return spec
}

// nonEmpty returns list, or nil when it has no elements (an empty --fields
// clears the list).
func nonEmpty(list []string) []string {
	if len(list) == 0 {
		return nil
	}
	return slices.Clone(list)
}

// checkPointers checks the syntax of the input pointers deploy was given,
// before any code is built; whether they fit together (a tokenized pointer
// inside the fields, strict with fields) is checked once the whole spec is
// known.
func (d deployFlags) checkPointers(file *specfile.File) error {
	check := func(source string, list []string) error {
		for i, s := range list {
			if _, err := privacy.ParsePointer(s); err != nil {
				return ward.Errorf(ward.CodeInvalidArgument, "%s[%d]: %s", source, i, err)
			}
		}
		return nil
	}
	if file != nil {
		in := file.Apply(ward.FunctionSpec{}).Input
		if err := check(file.Path()+": input.fields", in.Fields); err != nil {
			return err
		}
		if err := check(file.Path()+": input.tokenize", in.Tokenize); err != nil {
			return err
		}
	}
	if err := check("--fields", d.fields); err != nil {
		return err
	}
	return check("--tokenize", d.tokenize)
}

// deployResult is what deploy prints: the code upload answer, the name and
// the spec file used, if any.
type deployResult struct {
	Name     string `json:"name"`
	SpecFile string `json:"spec_file,omitempty"`
	ward.CodeUploadResponse
}

func newDeployCmd(g *globals) *cobra.Command {
	var d deployFlags
	cmd := &cobra.Command{
		Use:   "deploy NAME PATH",
		Short: "Create or update a function and upload its code",
		Long: `Deploy the code at PATH as function NAME. PATH is a WebAssembly module (.wasm)
or the directory of a Go main package, which is built for GOOS=wasip1 with the
local Go toolchain (cached under the user cache directory).

The function's spec is created or updated first, in three layers: the
function's current spec on the server (the server's defaults for a new
function), then the spec file, then the flags. Every setting not given keeps
its value from the layer below. Then the code is uploaded; the new digest and
version are printed.

The spec file is ward.json or ward.yaml in PATH (a directory) or beside it (a
.wasm file), or the file --spec names. It holds the function spec as the API
takes it (docs/api.md), in JSON or in YAML with the same field names:

  limits:  {memory_mb: 128, timeout_s: 60, max_concurrency: 4, max_payload_kb: 512}
  retries: {max_attempts: 3, backoff_s: 5}
  input:
    fields: [/order/total, /order/items/*/price, /customer/id]
    tokenize: [/customer/id]
    strict: false
    schema: {type: object, required: [order]}
  retention_days: 30

A field the spec does not know is an error. An "input" section replaces the
function's input rules as a whole; null sets a field back to the default.
YAML is read as YAML 1.2: only true and false are booleans.

Input rules decide what of a payload a function's tasks see; ward applies them
at submit, before the payload is stored. --fields lists the JSON Pointers
(RFC 6901; "*" is every element of an array) kept, everything else is
dropped; --tokenize lists pointers whose values the tasks see only as tokens
(tok_…), which an owner can turn back with 'ward detokenize' or --detokenize;
--strict refuses a payload that holds anything outside --fields. Both lists
are comma-separated and repeatable ('"/a,b"' in double quotes for a key with
a comma); --fields '' clears a list, --strict=false turns strict off.`,
		Example: `  ward deploy hello ./examples/hello
  ward deploy resize resize.wasm --memory 256 --timeout 60 --retries 3
  ward deploy fraud ./examples/fraud --fields /order,/customer/id --tokenize /customer/id --strict
  ward deploy fraud fraud.wasm --spec fraud.yaml`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, path := args[0], args[1]
			if !ward.ValidName(name) {
				return usagef("%q is not a valid function name (lowercase letters, digits and '-', 1-63 characters)", name)
			}
			file, err := loadSpecFile(d.specPath, path)
			if err != nil {
				return err
			}
			if err := d.checkPointers(file); err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			code, err := g.loadCode(ctx, path)
			if err != nil {
				return err
			}
			spec, err := currentSpec(ctx, c, g.cfg.Project, name)
			if err != nil {
				return err
			}
			spec = d.apply(file.Apply(spec), cmd.Flags().Changed)
			// The server checks the rules too; checking here first leaves a
			// function untouched by a spec it would refuse.
			if _, err := privacy.Compile(spec.Input); err != nil {
				return err
			}
			if _, err := c.PutFunction(ctx, g.cfg.Project, name, spec); err != nil {
				return err
			}
			up, err := c.UploadCode(ctx, g.cfg.Project, name, code)
			if err != nil {
				return err
			}
			res := deployResult{Name: name, CodeUploadResponse: up}
			if file != nil {
				res.SpecFile = file.Path()
			}
			if g.cfg.Output == outputJSON {
				return writeJSON(g.stdout, res)
			}
			t := newTable(g.stdout)
			t.row("Function:", name)
			t.row("Digest:", up.Digest)
			t.row("Version:", strconv.Itoa(up.Version))
			t.row("Size:", strconv.FormatInt(up.Size, 10))
			if res.SpecFile != "" {
				t.row("Spec file:", res.SpecFile)
			}
			return t.flush()
		},
	}
	f := cmd.Flags()
	f.IntVar(&d.memory, "memory", 0, "memory limit in MiB (limits.memory_mb)")
	f.IntVar(&d.timeout, "timeout", 0, "timeout of one run in seconds (limits.timeout_s)")
	f.IntVar(&d.concurrency, "concurrency", 0, "most tasks running at once, 0 = unlimited (limits.max_concurrency)")
	f.IntVar(&d.retries, "retries", 0, "attempts per task, the first run included (retries.max_attempts)")
	f.IntVar(&d.backoff, "backoff", 0, "base of the exponential retry backoff in seconds (retries.backoff_s)")
	f.IntVar(&d.payloadMax, "payload-max", 0, "largest payload in KiB (limits.max_payload_kb)")
	f.StringSliceVar(&d.fields, "fields", nil, "JSON Pointers of the payload fields the tasks see, comma-separated; the rest is dropped (input.fields)")
	f.StringSliceVar(&d.tokenize, "tokenize", nil, "JSON Pointers whose values the tasks see only as tokens, comma-separated (input.tokenize)")
	f.BoolVar(&d.strict, "strict", false, "refuse payloads holding anything outside --fields (input.strict); --strict=false turns it off")
	f.StringVar(&d.specPath, "spec", "", "the spec file (.json, .yaml or .yml) instead of ward.json or ward.yaml beside the code")
	return cmd
}

// loadSpecFile reads the spec file named by --spec, else the one found
// beside the code at path; it returns nil when there is none.
func loadSpecFile(specPath, path string) (*specfile.File, error) {
	if specPath == "" {
		found, err := specfile.Find(path)
		if err != nil || found == "" {
			return nil, err
		}
		specPath = found
	}
	return specfile.Read(specPath)
}

// currentSpec returns the function's spec, or a zero spec (server defaults)
// if the function does not exist yet.
func currentSpec(ctx context.Context, c *client.Client, project, name string) (ward.FunctionSpec, error) {
	f, err := c.GetFunction(ctx, project, name)
	if errors.Is(err, ward.ErrNotFound) {
		return ward.FunctionSpec{}, nil
	}
	if err != nil {
		return ward.FunctionSpec{}, err
	}
	return f.Spec, nil
}

// loadCode reads a .wasm file or builds a Go package directory.
func (g *globals) loadCode(ctx context.Context, path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, ward.Errorf(ward.CodeInvalidArgument, "deploy: %v", err)
	}
	if st.IsDir() {
		cacheDir := ""
		if dir, err := g.cacheDir(); err == nil {
			cacheDir = filepath.Join(dir, "ward", "gobuild")
		}
		logger := slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		if g.stderrTTY {
			fmt.Fprintf(g.stderr, "Building %s for wasip1…\n", path)
		}
		b, err := gobuild.Wasm(ctx, gobuild.Options{Dir: path, CacheDir: cacheDir, Logger: logger})
		if err != nil {
			return nil, fmt.Errorf("building %s: %w", path, err)
		}
		return b, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, ward.Errorf(ward.CodeInvalidArgument, "deploy: %v", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxCodeBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if len(b) > maxCodeBytes {
		return nil, ward.Errorf(ward.CodeBodyTooLarge, "%s is larger than %d MiB", path, maxCodeBytes>>20)
	}
	if !bytes.HasPrefix(b, wasmHeader) {
		return nil, ward.Errorf(ward.CodeInvalidModule, "%s is not a WebAssembly module (no \\0asm version 1 header)", path)
	}
	return b, nil
}

func newFunctionCmd(g *globals) *cobra.Command {
	cmd := groupCmd("function", "List, show and delete functions")
	list := &cobra.Command{
		Use:     "list",
		Short:   "List the project's functions",
		Example: `  ward function list`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			fs, err := c.ListFunctions(cmd.Context(), g.cfg.Project)
			if err != nil {
				return err
			}
			if g.cfg.Output == outputJSON {
				return writeJSON(g.stdout, map[string][]ward.Function{"functions": nonNil(fs)})
			}
			return writeFunctions(g.stdout, fs)
		},
	}
	get := &cobra.Command{
		Use:     "get NAME",
		Short:   "Show a function's spec and code",
		Example: `  ward function get hello -o json`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			f, err := c.GetFunction(cmd.Context(), g.cfg.Project, args[0])
			if err != nil {
				return err
			}
			if g.cfg.Output == outputJSON {
				return writeJSON(g.stdout, f)
			}
			return writeFunction(g.stdout, f)
		},
	}
	del := &cobra.Command{
		Use:     "delete NAME",
		Short:   "Delete a function (its tasks stay)",
		Example: `  ward function delete hello`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			if err := c.DeleteFunction(cmd.Context(), g.cfg.Project, args[0]); err != nil {
				return err
			}
			if g.cfg.Output != outputJSON {
				fmt.Fprintf(g.stdout, "Deleted function %s\n", safe(args[0]))
			}
			return nil
		},
	}
	cmd.AddCommand(list, get, del)
	return cmd
}
