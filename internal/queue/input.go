package queue

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/privacy"
	"github.com/wardhq/ward/internal/store"
)

// Tokens makes the MACs deterministic tokens are formatted from;
// *seal.Keystore implements it.
type Tokens interface {
	TokenMAC(ctx context.Context, project, pattern string, value []byte) ([]byte, error)
}

// deployed is a function record as submissions use it: with its input
// rules compiled, once per load of the record.
type deployed struct {
	ward.Function
	plan    *privacy.Plan
	planErr error // the rules stored do not compile (stored before a rule changed)
}

// loadFunction reads a function record and compiles its input rules.
func (s *Service) loadFunction(ctx context.Context, k projectKey) (deployed, error) {
	fn, err := s.st.GetFunction(ctx, k.project, k.name)
	if err != nil {
		return deployed{}, err
	}
	d := deployed{Function: fn}
	if d.plan, err = privacy.Compile(fn.Spec.Input); err != nil {
		d.planErr = &ward.Error{Code: ward.CodeOf(err), Field: "function",
			Message: fmt.Sprintf("function %s's input rules do not compile: %v", fn.Name, err)}
	}
	return d, nil
}

// batchTokens collects the token vault entries of one submission: each
// distinct token once.
type batchTokens struct {
	s       *Service
	ctx     context.Context
	project string
	seen    map[string]bool
	entries []store.TokenValue
}

// tokenize is the privacy.Tokenizer of one submission.
func (b *batchTokens) tokenize(pattern string, value []byte) (string, error) {
	if b.s.tokens == nil {
		return "", &ward.Error{Code: ward.CodeInternal, Message: "tokenization is not configured"}
	}
	mac, err := b.s.tokens.TokenMAC(b.ctx, b.project, pattern, value)
	if err != nil {
		return "", err
	}
	tok := privacy.FormatToken(mac)
	if !b.seen[tok] && !b.s.vaulted.recent(b.project, tok, b.s.now()) {
		if b.seen == nil {
			b.seen = map[string]bool{}
		}
		b.seen[tok] = true
		b.entries = append(b.entries, store.TokenValue{Project: b.project, Token: tok, Value: append([]byte(nil), value...)})
	}
	return tok, nil
}

// applyInput projects and tokenizes a new task's payload by its function's
// input rules, before anything is stored.
func (s *Service) applyInput(t *store.NewTask, fn deployed, bt *batchTokens) error {
	p := fn.plan
	if fn.planErr != nil || p.Empty() {
		return fn.planErr
	}
	if t.Sealed {
		return ward.FieldError("sealed", "function %s has input rules; a sealed payload cannot be projected or tokenized", fn.Name)
	}
	res, err := p.Apply(t.Payload, bt.tokenize)
	if err != nil {
		return err
	}
	t.Payload = res.Payload
	// The record keeps which pointers were tokenized; which ones the payload
	// holds is read from the payload itself when someone asks (Describe),
	// which keeps a long list of pointers off every task row.
	t.Input = &ward.PayloadInfo{Tokenized: res.Tokenized, Truncated: res.TokenizedTruncated}
	return nil
}

// Describe fills in the pointers a task's stored payload holds (never its
// values) when its function had input rules: read from the stored payload,
// so a payload already purged leaves the list empty.
func (s *Service) Describe(ctx context.Context, rec *store.TaskRecord) error {
	if rec.Input == nil || len(rec.Input.Fields) > 0 || rec.Sealed {
		return nil
	}
	b, err := s.st.GetTaskBody(ctx, rec.Project, rec.ID, store.BodyPayload)
	if errors.Is(err, ward.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	fields, truncated, err := privacy.Pointers(b)
	clear(b)
	if err != nil {
		return fmt.Errorf("queue: task %s: stored payload: %w", rec.ID, err)
	}
	info := *rec.Input
	info.Fields, info.Truncated = fields, info.Truncated || truncated
	rec.Input = &info
	return nil
}

// vaultLog remembers which tokens were written to the vault on which UTC
// day, so a value submitted again and again is written once a day: often
// enough for retention to count from its last use, rarely enough to stay
// off the submit path.
type vaultLog struct {
	mu  sync.Mutex
	day int64
	m   map[vaultKey]bool
}

// vaultKey names a vault entry.
type vaultKey struct{ project, token string }

// maxVaultLog bounds the log; it is emptied when full.
const maxVaultLog = 1 << 17

func (v *vaultLog) recent(project, token string, now time.Time) bool {
	day := now.Unix() / 86400
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.day == day && v.m[vaultKey{project, token}]
}

// written records tokens the store has accepted.
func (v *vaultLog) written(entries []store.TokenValue, now time.Time) {
	if len(entries) == 0 {
		return
	}
	day := now.Unix() / 86400
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.day != day || v.m == nil || len(v.m) >= maxVaultLog {
		v.day, v.m = day, make(map[vaultKey]bool, len(entries))
	}
	for _, e := range entries {
		v.m[vaultKey{e.Project, e.Token}] = true
	}
}
