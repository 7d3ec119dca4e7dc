// Package sandboxtest is the conformance suite for sandbox.Sandbox
// implementations (DESIGN §4, the task contract). Run checks a sandbox
// against artifacts the caller supplies, so one suite serves the wasm
// sandbox and the OCI sandbox alike; WasmModules supplies the WebAssembly
// ones, assembled from the WAT sources in modules/ and built from the Go
// programs in testdata/go.
package sandboxtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/sandbox"
)

// Modules are the artifacts the suite runs, each with a behaviour the
// suite relies on. An artifact left zero skips the tests that need it.
type Modules struct {
	Echo     sandbox.Artifact // copies stdin to stdout, exits 0
	Env      sandbox.Artifact // writes its environment to stdout, one NAME=value per line, exits 0
	Loop     sandbox.Artifact // never ends
	Trap     sandbox.Artifact // ends abnormally at once (a wasm trap)
	MemBomb  sandbox.Artifact // grows its memory until refused, then fails
	Flood    sandbox.Artifact // writes to stdout forever, ignoring write errors
	Exit3    sandbox.Artifact // exits with status 3
	LogFlood sandbox.Artifact // writes stdin to stderr 1024 times, each copy split across two writes, exits 0

	GoMemBomb sandbox.Artifact // a Go program allocating and holding memory forever
	GoPanic   sandbox.Artifact // a Go program that panics (exit status 2)
	GoProbe   sandbox.Artifact // testdata/go/goprobe: reports files, /tmp, network and env
	SlowLog   sandbox.Artifact // testdata/go/goslowlog: logs, sleeps stdin's milliseconds, logs again

	// Container-only artifacts.
	ForkBomb      sandbox.Artifact // testdata/golinux/goforkbomb
	Container     sandbox.Artifact // testdata/golinux/gocontainer as ContainerUID, with gosuid setuid root at /suid
	ContainerRoot sandbox.Artifact // the same, as the container's root user

	// ImplicitEnv lists the NAME=value variables the sandbox itself gives
	// every task beside the spec's (e.g. HOME for containers).
	ImplicitEnv []string
}

// Timeouts and limits the suite uses.
const (
	runTimeout    = time.Minute            // for runs that should end on their own
	shortTimeout  = 300 * time.Millisecond // for runs that must be stopped
	timeoutSlack  = time.Second            // how late a stopped run may end
	suiteMemoryMB = 64
)

// Run runs the conformance suite against sb. It prepares every supplied
// artifact, all at once, then runs its subtests in parallel.
func Run(t *testing.T, sb sandbox.Sandbox, mods Modules) {
	t.Helper()
	ctx := t.Context()
	all := mods.all()
	errs := make(chan error, len(all))
	for _, a := range all {
		go func() {
			if err := sb.Prepare(ctx, a.artifact); err != nil {
				errs <- fmt.Errorf("Prepare(%s): %w", a.name, err)
				return
			}
			errs <- nil
		}()
	}
	for range all {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	s := &suite{sb: sb, mods: mods}
	t.Run("Capabilities", s.capabilities)
	t.Run("PrepareAgain", s.prepareAgain)
	t.Run("EchoRoundTrip", s.echoRoundTrip)
	t.Run("EmptyStdin", s.emptyStdin)
	t.Run("Env", s.env)
	t.Run("ExitStatus", s.exitStatus)
	t.Run("Trap", s.trap)
	t.Run("Timeout", s.timeout)
	t.Run("Cancelled", s.cancelled)
	t.Run("CancelledBeforeStart", s.cancelledBeforeStart)
	t.Run("MemoryLimit", s.memoryLimit)
	t.Run("OutputLimit", s.outputLimit)
	t.Run("LogTruncated", s.logTruncated)
	t.Run("Redaction", s.redaction)
	t.Run("RedactionAtCut", s.redactionAtCut)
	t.Run("LiveLog", s.liveLog)
	t.Run("Concurrency", s.concurrency)
	t.Run("NotPrepared", s.notPrepared)
	t.Run("BadSpec", s.badSpec)
	t.Run("InvalidModule", s.invalidModule)
	t.Run("Files", s.files)
	t.Run("TmpDoesNotPersist", s.tmpDoesNotPersist)
	t.Run("GoMemoryLimit", s.goMemoryLimit)
	t.Run("GoPanic", s.goPanic)
	t.Run("ForkBomb", s.forkBomb)
	t.Run("Container", s.container)
}

type namedArtifact struct {
	name     string
	artifact sandbox.Artifact
}

// all returns the supplied artifacts.
func (m Modules) all() []namedArtifact {
	var out []namedArtifact
	for _, a := range []namedArtifact{
		{"Echo", m.Echo}, {"Env", m.Env}, {"Loop", m.Loop}, {"Trap", m.Trap},
		{"MemBomb", m.MemBomb}, {"Flood", m.Flood}, {"Exit3", m.Exit3}, {"LogFlood", m.LogFlood},
		{"GoMemBomb", m.GoMemBomb}, {"GoPanic", m.GoPanic}, {"GoProbe", m.GoProbe}, {"SlowLog", m.SlowLog},
		{"ForkBomb", m.ForkBomb}, {"Container", m.Container}, {"ContainerRoot", m.ContainerRoot},
	} {
		if supplied(a.artifact) {
			out = append(out, a)
		}
	}
	return out
}

func supplied(a sandbox.Artifact) bool { return a.Digest != "" || a.Code != nil }

type suite struct {
	sb   sandbox.Sandbox
	mods Modules
}

// need skips t unless a was supplied.
func need(t *testing.T, a sandbox.Artifact, name string) {
	t.Helper()
	if !supplied(a) {
		t.Skipf("no %s module supplied", name)
	}
}

// spec returns a Spec for a with the suite's defaults.
func spec(a sandbox.Artifact, stdin string) *sandbox.Spec {
	return &sandbox.Spec{Digest: a.Digest, Stdin: []byte(stdin), MemoryMB: suiteMemoryMB, Timeout: runTimeout}
}

// run runs sp and fails t on an error.
func (s *suite) run(t *testing.T, ctx context.Context, sp *sandbox.Spec) sandbox.Outcome {
	t.Helper()
	out, err := s.sb.Run(ctx, sp)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return out
}

// expect fails t unless out ended with code (empty: success).
func expect(t *testing.T, out sandbox.Outcome, code ward.Code) {
	t.Helper()
	if out.Code != code {
		t.Fatalf("outcome code = %q (%s), want %q; stderr: %.300q", out.Code, out.Message, code, out.Stderr)
	}
	if code != "" && out.Message == "" {
		t.Errorf("outcome %q has no message", code)
	}
	if out.Succeeded() != (code == "") {
		t.Errorf("Succeeded() = %v for code %q", out.Succeeded(), code)
	}
}

func (s *suite) capabilities(t *testing.T) {
	t.Parallel()
	c := s.sb.Capabilities()
	if c.Network {
		t.Error("Capabilities().Network = true; tasks must have no network")
	}
	if c.MaxMemMB < suiteMemoryMB {
		t.Errorf("Capabilities().MaxMemMB = %d, the suite needs %d", c.MaxMemMB, suiteMemoryMB)
	}
	if c.Runtime == "" {
		t.Error("Capabilities().Runtime is empty")
	}
}

func (s *suite) prepareAgain(t *testing.T) {
	t.Parallel()
	need(t, s.mods.Echo, "Echo")
	if err := s.sb.Prepare(t.Context(), s.mods.Echo); err != nil {
		t.Fatalf("preparing a prepared artifact again: %v", err)
	}
	out := s.run(t, t.Context(), spec(s.mods.Echo, "again"))
	expect(t, out, "")
	if string(out.Stdout) != "again" {
		t.Errorf("stdout = %q, want %q", out.Stdout, "again")
	}
}

func (s *suite) echoRoundTrip(t *testing.T) {
	t.Parallel()
	need(t, s.mods.Echo, "Echo")
	stdin := make([]byte, 200<<10)
	for i := range stdin {
		stdin[i] = byte(i*7 + i>>8)
	}
	out := s.run(t, t.Context(), spec(s.mods.Echo, string(stdin)))
	expect(t, out, "")
	if !bytes.Equal(out.Stdout, stdin) {
		t.Errorf("stdout (%d bytes) differs from stdin (%d bytes)", len(out.Stdout), len(stdin))
	}
	if len(out.Stderr) != 0 {
		t.Errorf("stderr = %q, want empty", out.Stderr)
	}
	if out.ExitCode == nil || *out.ExitCode != 0 {
		t.Errorf("ExitCode = %v, want 0", out.ExitCode)
	}
	if out.Usage.PeakMemoryBytes <= 0 {
		t.Errorf("Usage.PeakMemoryBytes = %d, want > 0", out.Usage.PeakMemoryBytes)
	}
	if out.Usage.DurationMs < 0 || out.Usage.CPUMs < 0 {
		t.Errorf("Usage = %+v, want no negative figures", out.Usage)
	}
}

func (s *suite) emptyStdin(t *testing.T) {
	t.Parallel()
	need(t, s.mods.Echo, "Echo")
	out := s.run(t, t.Context(), spec(s.mods.Echo, ""))
	expect(t, out, "")
	if len(out.Stdout) != 0 {
		t.Errorf("stdout = %q, want empty", out.Stdout)
	}
}

func (s *suite) env(t *testing.T) {
	t.Parallel()
	need(t, s.mods.Env, "Env")
	sp := spec(s.mods.Env, "")
	sp.Env = map[string]string{
		"WARD_TASK_ID":  "t_0123",
		"WARD_PROJECT":  "acme",
		"WARD_FUNCTION": "resize",
		"SPACES":        "a b = c",
		"EMPTY":         "",
	}
	out := s.run(t, t.Context(), sp)
	expect(t, out, "")
	got := strings.Split(strings.TrimSuffix(string(out.Stdout), "\n"), "\n")
	slices.Sort(got)
	want := slices.Clone(s.mods.ImplicitEnv)
	for k, v := range sp.Env {
		want = append(want, k+"="+v)
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("environment = %q, want exactly %q (nothing from the host)", got, want)
	}
}

func (s *suite) exitStatus(t *testing.T) {
	t.Parallel()
	need(t, s.mods.Exit3, "Exit3")
	out := s.run(t, t.Context(), spec(s.mods.Exit3, ""))
	expect(t, out, ward.CodeExitStatus)
	if out.ExitCode == nil || *out.ExitCode != 3 {
		t.Errorf("ExitCode = %v, want 3", out.ExitCode)
	}
}

func (s *suite) trap(t *testing.T) {
	t.Parallel()
	need(t, s.mods.Trap, "Trap")
	out := s.run(t, t.Context(), spec(s.mods.Trap, ""))
	expect(t, out, ward.CodeTrap)
	if len(out.Message) > 1000 {
		t.Errorf("trap message is %d bytes; keep it short", len(out.Message))
	}
}

// runAsync runs sp in a goroutine and returns a channel with its result.
func (s *suite) runAsync(ctx context.Context, sp *sandbox.Spec) <-chan result {
	done := make(chan result, 1)
	go func() {
		out, err := s.sb.Run(ctx, sp)
		done <- result{out, err}
	}()
	return done
}

type result struct {
	out sandbox.Outcome
	err error
}

// await returns the result from done, failing t if it does not come
// within limit. This is a correctness bound (a run must be stopped), kept
// lenient, not a speed measurement.
func await(t *testing.T, done <-chan result, limit time.Duration) sandbox.Outcome {
	t.Helper()
	timer := time.NewTimer(limit)
	defer timer.Stop()
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatalf("Run: %v", r.err)
		}
		return r.out
	case <-timer.C:
		t.Fatalf("the run did not end within %s", limit)
		return sandbox.Outcome{}
	}
}

func (s *suite) timeout(t *testing.T) {
	t.Parallel()
	need(t, s.mods.Loop, "Loop")
	sp := spec(s.mods.Loop, "")
	sp.Timeout = shortTimeout
	out := await(t, s.runAsync(t.Context(), sp), shortTimeout+timeoutSlack)
	expect(t, out, ward.CodeTimeout)
	if out.ExitCode != nil {
		t.Errorf("ExitCode = %d for a timed-out run, want none", *out.ExitCode)
	}
}

func (s *suite) cancelled(t *testing.T) {
	t.Parallel()
	need(t, s.mods.Loop, "Loop")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := s.runAsync(ctx, spec(s.mods.Loop, ""))
	stop := time.AfterFunc(shortTimeout, cancel)
	defer stop.Stop()
	out := await(t, done, shortTimeout+timeoutSlack)
	expect(t, out, ward.CodeCancelled)
}

func (s *suite) cancelledBeforeStart(t *testing.T) {
	t.Parallel()
	need(t, s.mods.Echo, "Echo")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	out := await(t, s.runAsync(ctx, spec(s.mods.Echo, "never")), timeoutSlack)
	expect(t, out, ward.CodeCancelled)
	if len(out.Stdout) != 0 {
		t.Errorf("a cancelled run produced stdout %q", out.Stdout)
	}
}

func (s *suite) memoryLimit(t *testing.T) {
	t.Parallel()
	need(t, s.mods.MemBomb, "MemBomb")
	const limitMB = 16
	sp := spec(s.mods.MemBomb, "")
	sp.MemoryMB = limitMB
	out := s.run(t, t.Context(), sp)
	expect(t, out, ward.CodeMemoryLimit)
	if peak := out.Usage.PeakMemoryBytes; peak <= 0 || peak > limitMB<<20 {
		t.Errorf("Usage.PeakMemoryBytes = %d, want within (0, %d]", peak, limitMB<<20)
	}
}

func (s *suite) outputLimit(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		mod    sandbox.Artifact
		stdin  int
		limit  int
		code   ward.Code
		stdout int // expected length of stdout
	}{
		{"flood never stops on its own", s.mods.Flood, 0, 10000, ward.CodeOutputLimit, 10000},
		{"echo one byte over", s.mods.Echo, 1001, 1000, ward.CodeOutputLimit, 1000},
		{"echo exactly at the limit", s.mods.Echo, 1000, 1000, "", 1000},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			need(t, tc.mod, tc.name)
			sp := spec(tc.mod, strings.Repeat("r", tc.stdin))
			sp.StdoutLimit = tc.limit
			out := await(t, s.runAsync(t.Context(), sp), runTimeout)
			expect(t, out, tc.code)
			if len(out.Stdout) != tc.stdout {
				t.Errorf("len(Stdout) = %d, want %d", len(out.Stdout), tc.stdout)
			}
		})
	}
}

func (s *suite) logTruncated(t *testing.T) {
	t.Parallel()
	need(t, s.mods.LogFlood, "LogFlood")
	const line = "0123456789abcdef\n"
	cases := []struct {
		name      string
		limit     int
		want      string
		truncated bool
	}{
		{"over the limit", 1000, strings.Repeat(line, 1024)[:1000], true},
		{"under the limit", 1024*len(line) + 1, strings.Repeat(line, 1024), false},
		{"exactly at the limit", 1024 * len(line), strings.Repeat(line, 1024), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sp := spec(s.mods.LogFlood, line)
			sp.StderrLimit = tc.limit
			out := s.run(t, t.Context(), sp)
			expect(t, out, "") // a long log is not a failure
			want := tc.want
			if tc.truncated {
				want += sandbox.TruncatedMarker
			}
			if string(out.Stderr) != want {
				t.Errorf("stderr (%d bytes) = …%q, want %d bytes ending …%q",
					len(out.Stderr), tail(out.Stderr), len(want), tail([]byte(want)))
			}
		})
	}
}

func tail(b []byte) []byte { return b[max(0, len(b)-60):] }

func (s *suite) redaction(t *testing.T) {
	t.Parallel()
	need(t, s.mods.LogFlood, "LogFlood")
	// LogFlood splits each copy in the middle, inside the token.
	const line = "user=alice token=hunter2-secret-value end\n"
	sp := spec(s.mods.LogFlood, line)
	sp.Redact = []string{"hunter2-secret-value", "alice", ""}
	out := s.run(t, t.Context(), sp)
	expect(t, out, "")
	want := strings.Repeat("user=[REDACTED] token=[REDACTED] end\n", 1024)
	if string(out.Stderr) != want {
		t.Errorf("stderr = %.200q…, want %.200q…", out.Stderr, want)
	}
	if string(out.Stdout) != "" {
		t.Errorf("stdout = %q, want empty", out.Stdout)
	}
}

func (s *suite) redactionAtCut(t *testing.T) {
	t.Parallel()
	need(t, s.mods.LogFlood, "LogFlood")
	const secret = "hunter2-secret-value"
	const line = "key:" + secret + "\n"
	// Cut the log in the middle of the third copy of the secret.
	sp := spec(s.mods.LogFlood, line)
	sp.Redact = []string{secret}
	sp.StderrLimit = 2*len(line) + len("key:") + 8
	out := s.run(t, t.Context(), sp)
	expect(t, out, "")
	if !bytes.HasSuffix(out.Stderr, []byte(sandbox.TruncatedMarker)) {
		t.Fatalf("stderr = %q, want it truncated with the marker", out.Stderr)
	}
	log := strings.TrimSuffix(string(out.Stderr), sandbox.TruncatedMarker)
	if strings.Contains(log, secret[:4]) {
		t.Errorf("stderr %q shows part of a redacted value", log)
	}
	if !strings.HasPrefix(log, strings.Repeat("key:[REDACTED]\n", 2)) {
		t.Errorf("stderr %q lost the text before the cut", log)
	}
	if len(log) > sp.StderrLimit {
		t.Errorf("stderr is %d bytes before the marker, over the limit of %d", len(log), sp.StderrLimit)
	}
}

// liveLog checks that LogSink sees lines while the run goes on, redacted:
// SlowLog logs, then sleeps far longer than the test waits, and the run is
// cancelled once the sink has the lines. Were they handed over only at the
// end, the run would end by its timeout instead.
func (s *suite) liveLog(t *testing.T) {
	t.Parallel()
	need(t, s.mods.SlowLog, "SlowLog")
	const secret = "hunter2-secret-value"
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	lines := make(chan string, 16)
	sp := spec(s.mods.SlowLog, "600000") // ten minutes
	sp.Timeout = 20 * time.Second        // far beyond the wait; ends the run should the sink stay silent
	sp.Files = map[string][]byte{"secrets/token": []byte(secret)}
	sp.Redact = []string{secret}
	sp.LogSink = func(b []byte) {
		for l := range strings.Lines(string(b)) {
			lines <- l
		}
	}
	done := s.runAsync(ctx, sp)
	want := []string{"first line\n", "secret token=[REDACTED]\n"}
	for i, w := range want {
		select {
		case got := <-lines:
			if got != w {
				t.Fatalf("line %d from the sink = %q, want %q", i, got, w)
			}
		case r := <-done:
			t.Fatalf("the run ended (%q, %v) before the sink had line %d", r.out.Code, r.err, i)
		}
	}
	cancel()
	out := await(t, done, time.Minute)
	expect(t, out, ward.CodeCancelled)
	if !strings.HasPrefix(string(out.Stderr), strings.Join(want, "")) || strings.Contains(string(out.Stderr), secret) {
		t.Errorf("stored log = %q, want it to start with the streamed lines, redacted", out.Stderr)
	}
}

func (s *suite) concurrency(t *testing.T) {
	t.Parallel()
	need(t, s.mods.Echo, "Echo")
	need(t, s.mods.Env, "Env")
	const n = 50
	type check struct {
		done <-chan result
		want string
	}
	checks := make([]check, n)
	for i := range checks {
		if i%2 == 0 {
			stdin := fmt.Sprintf("run %d %s", i, strings.Repeat("x", i*100))
			checks[i] = check{s.runAsync(t.Context(), spec(s.mods.Echo, stdin)), stdin}
			continue
		}
		sp := spec(s.mods.Env, "")
		sp.Env = map[string]string{"WARD_TASK_ID": fmt.Sprintf("t_%d", i)}
		checks[i] = check{s.runAsync(t.Context(), sp), fmt.Sprintf("WARD_TASK_ID=t_%d\n", i)}
	}
	for i, c := range checks {
		out := await(t, c.done, 5*runTimeout)
		expect(t, out, "")
		got := string(out.Stdout)
		if i%2 == 1 {
			got = s.withoutImplicitEnv(got)
		}
		if got != c.want {
			t.Errorf("run %d: stdout = %.80q, want %.80q", i, got, c.want)
		}
	}
}

// withoutImplicitEnv drops the lines of the sandbox's own variables from
// an Env run's output.
func (s *suite) withoutImplicitEnv(stdout string) string {
	var b strings.Builder
	for line := range strings.Lines(stdout) {
		if !slices.Contains(s.mods.ImplicitEnv, strings.TrimSuffix(line, "\n")) {
			b.WriteString(line)
		}
	}
	return b.String()
}

func (s *suite) notPrepared(t *testing.T) {
	t.Parallel()
	a := ArtifactOf([]byte("sandboxtest: code that was never prepared"))
	_, err := s.sb.Run(t.Context(), spec(a, ""))
	if code := ward.CodeOf(err); code != ward.CodeNotFound {
		t.Errorf("Run of an unprepared digest: err = %v (code %q), want code %q", err, code, ward.CodeNotFound)
	}
	if !errors.Is(err, ward.ErrNotFound) {
		t.Errorf("errors.Is(%v, ward.ErrNotFound) = false", err)
	}
}

// badSpec checks that Run refuses caps out of range and a malformed
// environment with invalid_argument naming the field, before running.
func (s *suite) badSpec(t *testing.T) {
	t.Parallel()
	need(t, s.mods.Echo, "Echo")
	maxMem := s.sb.Capabilities().MaxMemMB
	cases := []struct {
		name  string
		edit  func(*sandbox.Spec)
		field string
	}{
		{"memory zero", func(sp *sandbox.Spec) { sp.MemoryMB = 0 }, "memory_mb"},
		{"memory over the maximum", func(sp *sandbox.Spec) { sp.MemoryMB = maxMem + 1 }, "memory_mb"},
		{"no timeout", func(sp *sandbox.Spec) { sp.Timeout = 0 }, "timeout"},
		{"negative timeout", func(sp *sandbox.Spec) { sp.Timeout = -time.Second }, "timeout"},
		{"negative stdout limit", func(sp *sandbox.Spec) { sp.StdoutLimit = -1 }, "stdout_limit"},
		{"negative stderr limit", func(sp *sandbox.Spec) { sp.StderrLimit = -1 }, "stderr_limit"},
		{"negative tmp limit", func(sp *sandbox.Spec) { sp.TmpLimit = -1 }, "tmp_limit"},
		{"env name with =", func(sp *sandbox.Spec) { sp.Env = map[string]string{"A=B": "c"} }, "env"},
		{"empty env name", func(sp *sandbox.Spec) { sp.Env = map[string]string{"": "c"} }, "env"},
		{"env name with NUL", func(sp *sandbox.Spec) { sp.Env = map[string]string{"A\x00": "c"} }, "env"},
		{"env value with NUL", func(sp *sandbox.Spec) { sp.Env = map[string]string{"A": "b\x00c"} }, "env"},
	}
	for _, tc := range cases {
		sp := spec(s.mods.Echo, "x")
		tc.edit(sp)
		out, err := s.sb.Run(t.Context(), sp)
		var we *ward.Error
		if !errors.As(err, &we) || we.Code != ward.CodeInvalidArgument || we.Field != tc.field {
			t.Errorf("%s: Run = %q, %v; want invalid_argument on %s", tc.name, out.Code, err, tc.field)
		}
	}
	if _, err := s.sb.Run(t.Context(), nil); ward.CodeOf(err) != ward.CodeInvalidArgument {
		t.Errorf("Run(nil) = %v, want invalid_argument", err)
	}
}

func (s *suite) invalidModule(t *testing.T) {
	t.Parallel()
	for _, code := range [][]byte{
		[]byte("sandboxtest: this is not code"),
		{},
		bytes.Repeat([]byte{0xff}, 4096),
	} {
		err := s.sb.Prepare(t.Context(), ArtifactOf(code))
		if c := ward.CodeOf(err); c != ward.CodeInvalidModule {
			t.Errorf("Prepare(%.20q): err = %v (code %q), want code %q", code, err, c, ward.CodeInvalidModule)
		}
		if err != nil && len(err.Error()) > 500 {
			t.Errorf("Prepare(%.20q): error message is %d bytes; keep it short", code, len(err.Error()))
		}
	}
}

// probe runs GoProbe and returns its report.
func (s *suite) probe(t *testing.T, sp *sandbox.Spec) map[string]string {
	t.Helper()
	out := s.run(t, t.Context(), sp)
	expect(t, out, "")
	return report(out.Stdout)
}

func (s *suite) probeSpec() *sandbox.Spec {
	sp := spec(s.mods.GoProbe, "")
	sp.Files = map[string][]byte{
		"payload":         []byte(`{"order":42}`),
		"config.json":     []byte(`{}`),
		"secrets/api-key": []byte("k-123"),
	}
	sp.TmpLimit = 1 << 20
	sp.Env = map[string]string{"PROBE_TMP_BYTES": fmt.Sprint(2 << 20), "WARD_TASK_ID": "t_probe"}
	return sp
}

func (s *suite) files(t *testing.T) {
	t.Parallel()
	need(t, s.mods.GoProbe, "GoProbe")
	report := s.probe(t, s.probeSpec())
	isErr := func(v string) bool { return strings.HasPrefix(v, "error") }
	checks := []struct {
		key  string
		ok   func(string) bool
		want string
	}{
		{"payload", func(v string) bool { return v == `"{\"order\":42}"` }, "the payload file's contents"},
		{"secret", func(v string) bool { return v == `"k-123"` }, "the secret file's contents"},
		{"wardls", func(v string) bool { return v == "config.json,payload,secrets/" }, "config.json,payload,secrets/"},
		{"wardcreate", isErr, "an error: /ward is read-only"},
		{"wardmodify", isErr, "an error: /ward is read-only"},
		{"wardremove", isErr, "an error: /ward is read-only"},
		{"tmp", func(v string) bool { return v == "ok" }, "ok: /tmp is writable"},
		{"tmpops", func(v string) bool { return v == "ok" }, "ok: mkdir, rename, readdir, remove work in /tmp"},
		{"tmpbig", isErr, "an error: /tmp is capped at 1 MiB"},
		{"tmpafter", func(v string) bool { return v == "ok" }, "ok: removing a file frees /tmp space"},
		{"rootwrite", isErr, "an error: nothing outside /tmp is writable"},
		{"passwd", isErr, "an error: no host file system"},
		{"root", func(v string) bool { return isErr(v) || !strings.Contains(v, "etc") }, "no host directories in /"},
		{"dial", func(v string) bool { return v == "error" }, "error: no network"},
		{"env", func(v string) bool {
			vars := strings.Split(v, ",")
			slices.Sort(vars)
			want := append([]string{"PROBE_TMP_BYTES=2097152", "WARD_TASK_ID=t_probe"}, s.mods.ImplicitEnv...)
			slices.Sort(want)
			return slices.Equal(vars, want)
		}, "only the spec's env"},
	}
	for _, c := range checks {
		v, ok := report[c.key]
		if !ok || !c.ok(v) {
			t.Errorf("probe %s = %q, want %s", c.key, v, c.want)
		}
	}
}

func (s *suite) tmpDoesNotPersist(t *testing.T) {
	t.Parallel()
	need(t, s.mods.GoProbe, "GoProbe")
	for i := range 2 {
		if got := s.probe(t, s.probeSpec())["stale"]; got != "no" {
			t.Errorf("run %d: /tmp/marker from an earlier run: stale = %q, want no", i, got)
		}
	}
}

func (s *suite) goMemoryLimit(t *testing.T) {
	t.Parallel()
	need(t, s.mods.GoMemBomb, "GoMemBomb")
	sp := spec(s.mods.GoMemBomb, "")
	sp.MemoryMB = 32
	out := s.run(t, t.Context(), sp)
	expect(t, out, ward.CodeMemoryLimit)
	if peak := out.Usage.PeakMemoryBytes; peak > 32<<20 {
		t.Errorf("Usage.PeakMemoryBytes = %d, over the 32 MiB limit", peak)
	}
}

func (s *suite) goPanic(t *testing.T) {
	t.Parallel()
	need(t, s.mods.GoPanic, "GoPanic")
	out := s.run(t, t.Context(), spec(s.mods.GoPanic, ""))
	expect(t, out, ward.CodeExitStatus)
	if out.ExitCode == nil || *out.ExitCode != 2 {
		t.Errorf("ExitCode = %v, want 2 (a Go panic)", out.ExitCode)
	}
	if !bytes.Contains(out.Stderr, []byte("failing on purpose")) {
		t.Errorf("stderr = %.300q, want the panic message", out.Stderr)
	}
}

// report parses key=value lines.
func report(stdout []byte) map[string]string {
	out := map[string]string{}
	for line := range strings.Lines(string(stdout)) {
		k, v, _ := strings.Cut(strings.TrimSuffix(line, "\n"), "=")
		out[k] = v
	}
	return out
}

// forkBombPids is more processes than any sandbox lets one task have.
const forkBombPids = 1024

func (s *suite) forkBomb(t *testing.T) {
	t.Parallel()
	need(t, s.mods.ForkBomb, "ForkBomb")
	sp := spec(s.mods.ForkBomb, "")
	sp.MemoryMB = 512 // so the process limit, not memory, stops it
	out := s.run(t, t.Context(), sp)
	expect(t, out, "")
	r := report(out.Stdout)
	t.Logf("fork bomb: started %s processes, then: %s", r["started"], r["error"])
	n, err := strconv.Atoi(r["started"])
	if err != nil || n >= forkBombPids {
		t.Errorf("started = %q, want fewer than %d processes", r["started"], forkBombPids)
	}
	if e := r["error"]; e == "" || e == "none" {
		t.Errorf("error = %q, want starting a process refused", e)
	}
	// The bomb is gone with its run: the next run starts normally.
	need(t, s.mods.Echo, "Echo")
	if out := s.run(t, t.Context(), spec(s.mods.Echo, "after")); string(out.Stdout) != "after" {
		t.Errorf("a run after the fork bomb: stdout %q, code %q", out.Stdout, out.Code)
	}
}

func (s *suite) container(t *testing.T) {
	t.Parallel()
	zeroCaps := func(v string) bool { return strings.Trim(v, "0") == "" && v != "" }
	isErr := func(v string) bool { return strings.HasPrefix(v, "error") }
	common := []struct {
		key  string
		ok   func(string) bool
		want string
	}{
		{"capeff", zeroCaps, "no effective capabilities"},
		{"nonewprivs", func(v string) bool { return v == "1" }, "no_new_privs set"},
		{"seccomp", func(v string) bool { return v == "2" }, "a seccomp filter (mode 2)"},
		{"rootwrite", isErr, "an error: the root file system is read-only"},
		{"procwrite", isErr, "an error: /proc/sys is read-only"},
		{"kcore", func(v string) bool { return isErr(v) || v == "read 0 bytes" }, "nothing: /proc/kcore is masked"},
		{"pid1", func(v string) bool { return v == "/probe" }, "the task itself is process 1 (its own pid namespace)"},
		{"mount", isErr, "an error: no mounting"},
		{"unshare", isErr, "an error: no new namespaces"},
		{"chroot", isErr, "an error: no chroot"},
		{"mknod", isErr, "an error: no device nodes"},
		{"sethostname", isErr, "an error: the host name is not the task's to change"},
		{"suid_capeff", zeroCaps, "the setuid-root program has no capabilities"},
	}
	cases := []struct {
		name string
		mod  sandbox.Artifact
		uid  string
	}{
		{"as a user", s.mods.Container, strconv.Itoa(ContainerUID)},
		{"as root", s.mods.ContainerRoot, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			need(t, tc.mod, "Container")
			out := s.run(t, t.Context(), spec(tc.mod, ""))
			expect(t, out, "")
			r := report(out.Stdout)
			for _, c := range common {
				if v, ok := r[c.key]; !ok || !c.ok(v) {
					t.Errorf("%s = %q, want %s", c.key, v, c.want)
				}
			}
			if tc.uid != "" {
				// The setuid bit gains nothing: the program keeps the
				// caller's ids.
				for _, k := range []string{"uid", "euid", "suid_uid", "suid_euid"} {
					if r[k] != tc.uid {
						t.Errorf("%s = %q, want %s", k, r[k], tc.uid)
					}
				}
			}
			if r["suid_euid"] != r["euid"] {
				t.Errorf("suid_euid = %q, want the caller's %q", r["suid_euid"], r["euid"])
			}
		})
	}
}
