package sealed

import (
	"context"

	"github.com/wardhq/ward/internal/seal"
	"github.com/wardhq/ward/internal/store"
)

// alertAD binds an alert rule's signing secret to its project and name.
func alertAD(project, name string) seal.AD {
	return seal.AD{Project: project, Record: "alert:" + name, Field: "secret"}
}

// PutAlert seals the rule's signing secret under the project's lasting key.
func (s *Store) PutAlert(ctx context.Context, p *store.PutAlertParams) (store.PutAlertResult, error) {
	if len(p.Secret) == 0 {
		return s.Store.PutAlert(ctx, p)
	}
	env, err := s.ks.SealLasting(ctx, p.Project, alertAD(p.Project, p.Name), p.Secret)
	if err != nil {
		return store.PutAlertResult{}, err
	}
	sealed := *p
	sealed.Secret = env
	return s.Store.PutAlert(ctx, &sealed)
}

// GetAlert opens the rule's signing secret.
func (s *Store) GetAlert(ctx context.Context, project, name string) (store.AlertRecord, error) {
	rec, err := s.Store.GetAlert(ctx, project, name)
	if err != nil {
		return store.AlertRecord{}, err
	}
	if rec.Secret, err = s.openAlertSecret(ctx, &rec); err != nil {
		return store.AlertRecord{}, err
	}
	return rec, nil
}

// ListAlerts opens each rule's signing secret.
func (s *Store) ListAlerts(ctx context.Context, project string) ([]store.AlertRecord, error) {
	recs, err := s.Store.ListAlerts(ctx, project)
	if err != nil {
		return nil, err
	}
	for i := range recs {
		if recs[i].Secret, err = s.openAlertSecret(ctx, &recs[i]); err != nil {
			return nil, err
		}
	}
	return recs, nil
}

func (s *Store) openAlertSecret(ctx context.Context, rec *store.AlertRecord) ([]byte, error) {
	if len(rec.Secret) == 0 {
		return rec.Secret, nil
	}
	return s.ks.Open(ctx, rec.Project, alertAD(rec.Project, rec.Name), rec.Secret)
}
