package keys

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/store"
)

// plan is what the keys of one algorithm need at one moment.
type plan struct {
	current  *ciam.SigningKey // the key that signs now; nil if none may
	pending  int              // successors published but not active yet
	retire   []retirement     // superseded keys to retire
	create   bool             // a key must be made, active at activeAt
	activeAt time.Time
}

type retirement struct {
	id               string
	retired, expires time.Time
}

func (p *plan) needsWork() bool { return p.create || len(p.retire) > 0 }

// decide works out, from a tenant's published keys, which alg key signs at
// now and what must change. rotate asks for a successor whatever the keys'
// age. Every process decides the same from the same rows.
func decide(rows []*ciam.SigningKey, alg string, now time.Time, cfg config, rotate bool) plan {
	var p plan
	var buf [4]*ciam.SigningKey
	live := buf[:0] // unretired keys active at now
	for _, k := range rows {
		if k.Alg != alg || !k.RetiredAt.IsZero() || !published(k, now) {
			continue
		}
		if k.ActiveAt.After(now) {
			p.pending++
			continue
		}
		live = append(live, k)
	}
	slices.SortFunc(live, func(a, b *ciam.SigningKey) int {
		if c := a.ActiveAt.Compare(b.ActiveAt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	if n := len(live); n > 0 {
		p.current = live[n-1]
	}
	for i := 0; i+1 < len(live); i++ {
		// A process that has not yet loaded the successor may sign with the
		// predecessor until it reloads: until the successor's ActiveAt when it
		// was published ahead (PublishAhead > CacheTTL), or for up to CacheTTL
		// after the successor's creation when it was not (two first keys
		// created at once). The predecessor stays published MaxTokenLifetime
		// after the later of the two.
		succ := live[i+1]
		last := succ.ActiveAt
		if t := succ.CreatedAt.Add(cfg.cacheTTL); t.After(last) {
			last = t
		}
		p.retire = append(p.retire, retirement{id: live[i].ID, retired: succ.ActiveAt, expires: last.Add(cfg.maxLifetime)})
	}
	switch {
	case p.current == nil:
		p.create, p.activeAt = true, now
	case rotate || (p.pending == 0 && !now.Before(p.current.ActiveAt.Add(cfg.rotateEvery))):
		p.create, p.activeAt = true, now.Add(cfg.publishAhead)
	}
	return p
}

// errNeedKey asks maintain to generate a key and run its transaction again.
var errNeedKey = errors.New("keys: a new key is needed")

// maintain brings tenant's alg keys up to date in one transaction: it retires
// superseded keys, creates a first key or a successor (always one with
// rotate), and deletes expired keys; then it reloads the cache. after is
// m.seq as the caller read it before deciding work was needed: when another
// goroutine has done the work since, maintain does nothing.
func (m *Manager) maintain(ctx context.Context, tenant ciam.TenantID, alg string, cfg config, rotate bool, after uint64) (*keySet, *ciam.SigningKey, error) {
	l := m.lock(tenant)
	l.Lock()
	defer l.Unlock()
	var hint plan
	if ks := m.cached(tenant); ks != nil {
		hint = decide(ks.rows, alg, m.now(), cfg, rotate)
		if !rotate && ks.seq > after && !hint.needsWork() && m.now().Before(ks.expires) {
			return ks, nil, nil
		}
	}
	var fresh *material
	var err error
	if hint.create || rotate {
		// Generated outside the transaction: an RSA key takes a while, and a
		// write transaction holds the database's write lock.
		if fresh, err = newMaterial(m.KEK, tenant, alg); err != nil {
			return nil, nil, err
		}
	}
	var created *ciam.SigningKey
	for attempt := 0; ; attempt++ {
		err = m.Store.Tx(ctx, tenant, func(tx store.Tx) error {
			created = nil
			now := m.now().UTC().Truncate(time.Microsecond)
			rows, err := tx.SigningKeys().List(ctx, now)
			if err != nil {
				return err
			}
			p := decide(rows, alg, now, cfg, rotate)
			for _, r := range p.retire {
				err := tx.SigningKeys().Retire(ctx, r.id, r.retired.UTC().Truncate(time.Microsecond), r.expires.UTC().Truncate(time.Microsecond))
				if err != nil && !errors.Is(err, store.ErrNotFound) { // ErrNotFound: retired by another process
					return err
				}
			}
			if p.create {
				if fresh == nil {
					return errNeedKey
				}
				k := fresh.row(tenant, now, p.activeAt.UTC().Truncate(time.Microsecond))
				if err := tx.SigningKeys().Create(ctx, k); err != nil {
					return err
				}
				created = k
			}
			_, err = tx.SigningKeys().DeleteExpired(ctx, now)
			return err
		})
		if errors.Is(err, errNeedKey) && attempt < 2 {
			if fresh, err = newMaterial(m.KEK, tenant, alg); err != nil {
				return nil, nil, err
			}
			continue
		}
		break
	}
	if err != nil {
		return nil, nil, fmt.Errorf("update %s signing keys of tenant %s: %w", alg, tenant, err)
	}
	ks, err := m.reloadLocked(ctx, tenant, cfg)
	if err != nil {
		return nil, nil, err
	}
	return ks, created, nil
}
