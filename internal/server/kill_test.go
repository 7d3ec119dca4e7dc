package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/client"
)

// devProcess is `ward dev` running as a child process.
type devProcess struct {
	cmd *exec.Cmd
	log *os.File
}

func startDev(t *testing.T, bin, data, addr, cfgPath string) *devProcess {
	t.Helper()
	logf, err := os.OpenFile(filepath.Join(t.TempDir(), "dev.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "dev", "--data", data, "--addr", addr, "--examples", "../../examples", "--grace", "1s")
	cmd.Env = append(os.Environ(), "WARD_CONFIG="+cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &devProcess{cmd: cmd, log: logf}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("ward dev log:\n%s", b)
		}
	})
	// Ready once the examples are built and the API answers /readyz.
	deadline := time.Now().Add(5 * time.Minute)
	for {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("ward dev did not become ready")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestSIGKILLLosesNoTask kills `ward dev` with SIGKILL in the middle of
// 1,000 tasks and starts it again on the same directory: every task ends
// succeeded with the right result.
func TestSIGKILLLosesNoTask(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the ward binary")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go toolchain to build the examples")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "ward")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/ward").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	data, cfgPath, addr := filepath.Join(dir, "data"), filepath.Join(dir, "config.json"), freeAddr(t)
	dev := startDev(t, bin, data, addr, cfgPath)

	cc, err := client.LoadContext(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := client.New(cc.Server, cc.Token)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const total, batch = 1000, 100
	var ids []string
	for b := range total / batch {
		reqs := make([]ward.SubmitRequest, batch)
		for i := range reqs {
			reqs[i] = ward.SubmitRequest{Function: "hello", Payload: json.RawMessage(fmt.Sprintf(`{"name":"k%d"}`, b*batch+i))}
		}
		tasks, err := cl.SubmitBatch(ctx, ward.DefaultProject, reqs)
		if err != nil {
			t.Fatal(err)
		}
		for _, tk := range tasks {
			ids = append(ids, tk.ID)
		}
	}
	// Kill once some, but not all, tasks have finished.
	for {
		list, err := cl.ListTasks(ctx, ward.DefaultProject, client.ListTasksOptions{Status: ward.StatusSucceeded, Limit: ward.MaxPageSize})
		if err != nil {
			t.Fatal(err)
		}
		if n := len(list.Tasks); n >= 50 {
			if n == total {
				t.Fatal("all tasks finished before the kill; the test proves nothing")
			}
			t.Logf("SIGKILL with %d of %d tasks succeeded", n, total)
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := dev.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	dev.cmd.Wait()

	startDev(t, bin, data, addr, cfgPath)
	for i, id := range ids {
		tk, err := cl.AwaitTask(ctx, ward.DefaultProject, id)
		if err != nil {
			t.Fatal(err)
		}
		if tk.Status != ward.StatusSucceeded {
			t.Fatalf("task %d: %s %+v", i, tk.Status, tk.Error)
		}
		res, err := cl.Result(ctx, ward.DefaultProject, id)
		if want := fmt.Sprintf(`{"greeting":"Hello, k%d!"}`, i); err != nil || string(res) != want {
			t.Fatalf("task %d: result %q, want %q (%v)", i, res, want, err)
		}
	}
}
