// Command canary is the task of the server's canary test: it reads every
// channel a task has (payload, sealed or not; config; secrets), writes all
// of it to its log and its result, and fails its first attempt so the test
// also covers a retry.
package main

import (
	"errors"
	"os"
	"sort"

	"github.com/wardhq/ward/task"
	_ "github.com/wardhq/ward/task/unseal"
)

func main() {
	payload, err := task.Payload()
	if err != nil {
		task.Fail(err)
	}
	cfg, err := task.Config()
	if err != nil {
		task.Fail(err)
	}
	secrets := map[string]string{}
	entries, _ := os.ReadDir(os.Getenv(task.EnvSecretsDir))
	for _, e := range entries {
		if e.Name() == task.SealingKeySecret {
			continue
		}
		v, err := task.Secret(e.Name())
		if err != nil {
			task.Fail(err)
		}
		secrets[e.Name()] = string(v)
	}
	names := make([]string, 0, len(secrets))
	for n := range secrets {
		names = append(names, n)
	}
	sort.Strings(names)
	task.Logf("attempt %d, payload %s", task.Attempt(), payload)
	for _, n := range names {
		task.Logf("secret %s = %s", n, secrets[n])
	}
	for k, v := range cfg {
		task.Logf("config %s = %s", k, v)
	}
	if task.Attempt() == 1 {
		task.Fail(errors.New("first attempt fails on purpose"))
	}
	if err := task.Result(map[string]any{"payload": string(payload), "config": cfg, "secret_count": len(secrets)}); err != nil {
		task.Fail(err)
	}
}
