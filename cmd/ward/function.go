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
	"runtime"
	"slices"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/client"
	"github.com/wardhq/ward/internal/gobuild"
	"github.com/wardhq/ward/internal/image"
	"github.com/wardhq/ward/internal/privacy"
	"github.com/wardhq/ward/internal/registry"
	"github.com/wardhq/ward/internal/specfile"
)

// maxCodeBytes is the server's cap on uploaded modules (docs/api.md);
// ward.MaxImageBytes is its cap on image archives.
const maxCodeBytes = 64 << 20

// wasmHeader starts every WebAssembly binary module: "\0asm", version 1.
var wasmHeader = []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}

// deployFlags are the spec fields deploy can change, and where its spec
// file is.
type deployFlags struct {
	memory, timeout, concurrency, retries, backoff, payloadMax int
	submitRate, resultMax, logMax                              int
	fields, tokenize                                           []string
	strict                                                     bool
	specPath                                                   string // --spec: the spec file, instead of looking beside the code
	runtime                                                    string // --runtime: wasm or oci
	arch                                                       string // --arch: the runners' architecture, for oci builds and pulls
	image                                                      string // --image: a registry reference to pull instead of PATH
	insecure                                                   bool   // --insecure-registry: plain HTTP to the registry
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
	set("submit-rate", &spec.Limits.SubmitRate, d.submitRate)
	set("result-max", &spec.Limits.MaxResultKB, d.resultMax)
	set("log-max", &spec.Limits.MaxLogKB, d.logMax)
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
		Use:   "deploy NAME [PATH] [--image REF]",
		Short: "Create or update a function and upload its code",
		Long: `Deploy the code at PATH as function NAME. For a wasm function (the default),
PATH is a WebAssembly module (.wasm) or the directory of a Go main package,
which is built for GOOS=wasip1 with the local Go toolchain (cached under the
user cache directory).

For an oci function (--runtime oci, or a .tar PATH), PATH is a container image
archive — an OCI image layout or a 'docker save' archive, as a .tar — or the
directory of a Go main package, which is built into a static Linux executable
(for --arch, default this machine's) and wrapped in a single-layer image with
the executable as /task and its command: no Docker or base image needed. The
server verifies every layer against its digest and answers with the image's
manifest digest. With --image REF instead of PATH, the image is pulled from its
registry (host/repo:tag or host/repo@sha256:…, the credentials of 'docker
login') for linux/--arch, checked against its digest, and uploaded: the
function is pinned to that manifest digest, never to the tag.

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
  ward deploy fraud fraud.wasm --spec fraud.yaml
  ward deploy thumbs ./cmd/thumbs --runtime oci --memory 256
  ward deploy report report-image.tar
  ward deploy report --image registry.example.com/report@sha256:4f1c…`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, path := args[0], ""
			switch {
			case len(args) == 2 && d.image != "":
				return usagef("give PATH or --image, not both")
			case len(args) == 2:
				path = args[1]
			case d.image == "":
				return usagef("deploy needs PATH, or --image REF")
			}
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
			changed := cmd.Flags().Changed
			if changed("runtime") && d.runtime != string(ward.RuntimeWasm) && d.runtime != string(ward.RuntimeOCI) {
				return usagef("--runtime must be %s or %s", ward.RuntimeWasm, ward.RuntimeOCI)
			}
			// The code's runtime: --runtime, else the spec file's, else oci
			// for an archive, else wasm. The code is read or built before
			// anything is sent.
			rt := ward.Runtime(d.runtime)
			switch {
			case d.image != "":
				if changed("runtime") && rt != ward.RuntimeOCI {
					return usagef("--image deploys a container image: the runtime is %s", ward.RuntimeOCI)
				}
				rt = ward.RuntimeOCI
			case !changed("runtime"):
				rt = file.Apply(ward.FunctionSpec{}).Runtime
				if rt == "" && filepath.Ext(path) == ".tar" {
					rt = ward.RuntimeOCI
				}
			}
			ctx := cmd.Context()
			var code []byte
			switch {
			case d.image != "":
				code, err = g.pullImage(ctx, d.image, d.arch, d.insecure)
			case rt == ward.RuntimeOCI:
				code, err = g.loadImage(ctx, path, d.arch)
			default:
				code, err = g.loadCode(ctx, path)
			}
			if err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			spec, err := currentSpec(ctx, c, g.cfg.Project, name)
			if err != nil {
				return err
			}
			spec = d.apply(file.Apply(spec), changed)
			if rt != "" {
				spec.Runtime = rt
			}
			// The server checks the rules too; checking here first leaves a
			// function untouched by a spec it would refuse.
			if _, err := privacy.Compile(spec.Input); err != nil {
				return err
			}
			if _, err := c.PutFunction(ctx, g.cfg.Project, name, spec); err != nil {
				return err
			}
			upload := c.UploadCode
			if rt == ward.RuntimeOCI {
				upload = c.UploadImage
			}
			up, err := upload(ctx, g.cfg.Project, name, code)
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
	f.IntVar(&d.submitRate, "submit-rate", 0, "most tasks accepted per second, per server, 0 = unlimited (limits.submit_rate)")
	f.IntVar(&d.resultMax, "result-max", 0, "largest result in KiB; more fails output_limit (limits.max_result_kb, default 1024)")
	f.IntVar(&d.logMax, "log-max", 0, "log kept per run in KiB; the rest is dropped (limits.max_log_kb, default 1024)")
	f.StringSliceVar(&d.fields, "fields", nil, "JSON Pointers of the payload fields the tasks see, comma-separated; the rest is dropped (input.fields)")
	f.StringSliceVar(&d.tokenize, "tokenize", nil, "JSON Pointers whose values the tasks see only as tokens, comma-separated (input.tokenize)")
	f.BoolVar(&d.strict, "strict", false, "refuse payloads holding anything outside --fields (input.strict); --strict=false turns it off")
	f.StringVar(&d.specPath, "spec", "", "the spec file (.json, .yaml or .yml) instead of ward.json or ward.yaml beside the code")
	f.StringVar(&d.runtime, "runtime", "", "the sandbox the function runs in: wasm or oci (a container); default wasm, or oci for a .tar PATH")
	f.StringVar(&d.arch, "arch", runtime.GOARCH, "the runners' CPU architecture, for Go packages deployed with --runtime oci and for --image")
	f.StringVar(&d.image, "image", "", "pull this container image (host/repo:tag or host/repo@sha256:…) from its registry instead of reading PATH")
	f.BoolVar(&d.insecure, "insecure-registry", false, "reach the --image registry over plain HTTP (a local registry)")
	return cmd
}

// loadSpecFile reads the spec file named by --spec, else the one found
// beside the code at path; it returns nil when there is none.
func loadSpecFile(specPath, path string) (*specfile.File, error) {
	if specPath == "" && path == "" {
		return nil, nil // --image: nothing to look beside
	}
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
	b, built, err := g.goBuild(ctx, path, "wasip1", gobuild.Wasm)
	if built || err != nil {
		return b, err
	}
	if b, err = readCodeFile(path, maxCodeBytes); err != nil {
		return nil, err
	}
	if !bytes.HasPrefix(b, wasmHeader) {
		return nil, ward.Errorf(ward.CodeInvalidModule, "%s is not a WebAssembly module (no \\0asm version 1 header)", path)
	}
	return b, nil
}

// goBuild builds path with build when it is a Go package directory, for
// target (named in the "Building" line), in the user's build cache, with
// only warnings logged; built is false, with no error, when path is a file.
func (g *globals) goBuild(ctx context.Context, path, target string, build func(context.Context, gobuild.Options) ([]byte, error)) (b []byte, built bool, err error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, false, ward.Errorf(ward.CodeInvalidArgument, "deploy: %v", err)
	}
	if !st.IsDir() {
		return nil, false, nil
	}
	cacheDir := ""
	if dir, err := g.cacheDir(); err == nil {
		cacheDir = filepath.Join(dir, "ward", "gobuild")
	}
	logger := slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if g.stderrTTY {
		fmt.Fprintf(g.stderr, "Building %s for %s…\n", path, target)
	}
	if b, err = build(ctx, gobuild.Options{Dir: path, CacheDir: cacheDir, Logger: logger}); err != nil {
		return nil, true, fmt.Errorf("building %s: %w", path, err)
	}
	return b, true, nil
}

// readCodeFile reads the code file at path, refusing one over max bytes.
func readCodeFile(path string, max int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, ward.Errorf(ward.CodeInvalidArgument, "deploy: %v", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, int64(max)+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if len(b) > max {
		return nil, ward.Errorf(ward.CodeBodyTooLarge, "%s is larger than %d MiB", path, max>>20)
	}
	return b, nil
}

// loadImage reads an image archive (.tar) or builds a Go package directory
// into a static Linux executable wrapped in a single-layer image.
func (g *globals) loadImage(ctx context.Context, path, arch string) ([]byte, error) {
	exe, built, err := g.goBuild(ctx, path, "linux/"+arch, func(ctx context.Context, opts gobuild.Options) ([]byte, error) {
		return gobuild.Linux(ctx, opts, arch)
	})
	if err != nil {
		return nil, err
	}
	if !built {
		return readCodeFile(path, ward.MaxImageBytes)
	}
	img, err := image.Build(image.BuildOptions{
		Files:      []image.File{{Path: "/task", Mode: 0o755, Data: exe}},
		Entrypoint: []string{"/task"},
		Arch:       arch,
	})
	if err != nil {
		return nil, fmt.Errorf("building the image of %s: %w", path, err)
	}
	return img.Archive, nil
}

// pullImage fetches an image from its registry as an OCI layout archive.
func (g *globals) pullImage(ctx context.Context, ref, arch string, insecure bool) ([]byte, error) {
	if g.stderrTTY {
		fmt.Fprintf(g.stderr, "Pulling %s for linux/%s…\n", ref, arch)
	}
	archive, _, err := registry.Pull(ctx, ref, registry.Options{Platform: "linux/" + arch, Insecure: insecure})
	if err != nil {
		return nil, fmt.Errorf("pulling the image: %w", err)
	}
	return archive, nil
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
