package queue

import (
	"context"
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

// plan returns the compiled input rules of a function record. Plans are
// cached by the function's identity and spec; a spec that no longer
// compiles (stored before a rule changed) is a clear error at submit.
func (s *Service) plan(fn ward.Function) (*privacy.Plan, error) {
	key := planKey{fn.Project, fn.Name, fn.UpdatedAt.UnixNano()}
	s.plansMu.Lock()
	p, ok := s.plans[key]
	s.plansMu.Unlock()
	if ok {
		return p, nil
	}
	p, err := privacy.Compile(fn.Spec.Input)
	if err != nil {
		return nil, &ward.Error{Code: ward.CodeOf(err), Field: "function",
			Message: fmt.Sprintf("function %s's input rules do not compile: %v", fn.Name, err)}
	}
	s.plansMu.Lock()
	if len(s.plans) >= maxPlans {
		clear(s.plans)
	}
	s.plans[key] = p
	s.plansMu.Unlock()
	return p, nil
}

// planKey names one version of a function's spec.
type planKey struct {
	project, name string
	updated       int64
}

// maxPlans bounds the plan cache; it is emptied when full.
const maxPlans = 4096

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
func (s *Service) applyInput(t *store.NewTask, fn ward.Function, bt *batchTokens) error {
	p, err := s.plan(fn)
	if err != nil || p.Empty() {
		return err
	}
	if t.Sealed {
		return ward.FieldError("sealed", "function %s has input rules; a sealed payload cannot be projected or tokenized", fn.Name)
	}
	res, err := p.Apply(t.Payload, bt.tokenize)
	if err != nil {
		return err
	}
	t.Payload = res.Payload
	t.Input = &ward.PayloadInfo{Fields: res.Fields, Tokenized: res.Tokenized, Truncated: res.Truncated}
	return nil
}

// vaultLog remembers which tokens were written to the vault on which UTC
// day, so a value submitted again and again is written once a day: often
// enough for retention to count from its last use, rarely enough to stay
// off the submit path.
type vaultLog struct {
	mu  sync.Mutex
	day int64
	m   map[string]bool
}

// maxVaultLog bounds the log; it is emptied when full.
const maxVaultLog = 1 << 17

func (v *vaultLog) recent(project, token string, now time.Time) bool {
	day := now.Unix() / 86400
	k := project + "\x00" + token
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.day == day && v.m[k]
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
		v.day, v.m = day, make(map[string]bool, len(entries))
	}
	for _, e := range entries {
		v.m[e.Project+"\x00"+e.Token] = true
	}
}
