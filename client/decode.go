package client

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/wardhq/ward"
)

// validator is a decoded answer that can tell whether it is plausible.
type validator interface {
	validate() error
}

// keyed is a validator whose JSON object must contain some keys (lists: an
// empty object is not an empty list).
type keyed interface {
	requiredKeys() []string
}

// decodeStrict decodes data, which must be exactly one JSON object, into v
// and validates it.
func decodeStrict(data []byte, v validator) error {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return errors.New("not a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decoding JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("data after the JSON object")
	}
	if k, ok := v.(keyed); ok {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(data, &m); err != nil {
			return fmt.Errorf("decoding JSON: %w", err)
		}
		for _, key := range k.requiredKeys() {
			if _, ok := m[key]; !ok {
				return fmt.Errorf("missing field %q", key)
			}
		}
	}
	return v.validate()
}

type project ward.Project

func (p *project) validate() error { return checkProject(ward.Project(*p)) }

func checkProject(p ward.Project) error {
	if p.Name == "" {
		return errors.New("project without a name")
	}
	return nil
}

type projectList struct {
	Projects []ward.Project `json:"projects"`
}

func (l *projectList) requiredKeys() []string { return []string{"projects"} }
func (l *projectList) validate() error {
	for i, p := range l.Projects {
		if err := checkProject(p); err != nil {
			return fmt.Errorf("projects[%d]: %w", i, err)
		}
	}
	return nil
}

type createdToken ward.CreateTokenResponse

func (t *createdToken) validate() error {
	if t.Token == "" || t.ID == "" {
		return errors.New("token or id missing")
	}
	return nil
}

type function ward.Function

func (f *function) validate() error { return checkFunction(ward.Function(*f)) }

func checkFunction(f ward.Function) error {
	if f.Name == "" {
		return errors.New("function without a name")
	}
	return nil
}

type functionList struct {
	Functions []ward.Function `json:"functions"`
}

func (l *functionList) requiredKeys() []string { return []string{"functions"} }
func (l *functionList) validate() error {
	for i, f := range l.Functions {
		if err := checkFunction(f); err != nil {
			return fmt.Errorf("functions[%d]: %w", i, err)
		}
	}
	return nil
}

type codeUpload ward.CodeUploadResponse

func (u *codeUpload) validate() error {
	if u.Digest == "" {
		return errors.New("no digest")
	}
	return nil
}

type config ward.Config

func (c *config) validate() error { return nil }

type task ward.Task

func (t *task) validate() error { return checkTask(ward.Task(*t)) }

func checkTask(t ward.Task) error {
	if !validID(t.ID) {
		return errors.New("task without a valid id")
	}
	if !t.Status.Valid() {
		return fmt.Errorf("task %s has an unknown status", t.ID)
	}
	return nil
}

func checkTasks(ts []ward.Task) error {
	for i, t := range ts {
		if err := checkTask(t); err != nil {
			return fmt.Errorf("tasks[%d]: %w", i, err)
		}
	}
	return nil
}

type taskList ward.TaskList

func (l *taskList) requiredKeys() []string { return []string{"tasks"} }
func (l *taskList) validate() error        { return checkTasks(l.Tasks) }

type taskBatch ward.BatchSubmitResponse

func (l *taskBatch) requiredKeys() []string { return []string{"tasks"} }
func (l *taskBatch) validate() error        { return checkTasks(l.Tasks) }

type health struct {
	Status string `json:"status"`
}

func (h *health) validate() error {
	if h.Status != "ok" {
		return errors.New(`status is not "ok"`)
	}
	return nil
}

// validID reports whether s looks like a ward ID: 1–128 ASCII letters,
// digits, '_' and '-'. IDs come back from the server and go into paths and
// messages, so anything else is refused.
func validID(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
