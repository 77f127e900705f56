package cc

import (
	"context"
	"errors"
	"slices"

	"github.com/pandoplatform/pando"
)

// A change made of several records (an applied manifest: app, processes,
// env, routes, bindings, their audit events) runs in one CCDB transaction,
// so it lands whole or not at all. The transaction rides in the context:
// the helpers on such a path reach the CCDB through a.db(ctx) (on SQLite a
// write through a.store inside the transaction would wait for the
// transaction's own connection), and syncApp inside it only notes the app,
// to be synced once the transaction has committed: the runtime never hears
// of a change that is then rolled back.

// txKey is the context key of the transaction inTx started.
type txKey struct{}

// txState is the transaction inTx started and the apps to sync after it.
type txState struct {
	store pando.Store
	sync  []string
}

func txFrom(ctx context.Context) (*txState, bool) {
	st, ok := ctx.Value(txKey{}).(*txState)
	return st, ok
}

// db is the store to use under ctx: the transaction inTx started, or the
// CCDB itself.
func (a *API) db(ctx context.Context) pando.Store {
	if st, ok := txFrom(ctx); ok {
		return st.store
	}
	return a.store
}

// inTx runs fn in one transaction (joining the one ctx already carries):
// every a.db write in fn lands if fn returns nil, none otherwise. The apps
// synced in fn are synced after the commit. fn must not start work that
// outlives it with its ctx.
func (a *API) inTx(ctx context.Context, fn func(ctx context.Context) error) error {
	if _, ok := txFrom(ctx); ok {
		return fn(ctx)
	}
	st := &txState{}
	err := a.store.InTx(ctx, func(tx pando.Store) error {
		st.store = tx
		return fn(context.WithValue(ctx, txKey{}, st))
	})
	if err != nil {
		return err
	}
	var errs []error
	for _, guid := range st.sync {
		errs = append(errs, a.syncApp(ctx, guid))
	}
	return errors.Join(errs...)
}

// deferSync notes appGUID for the sync after ctx's transaction, if ctx
// carries one.
func deferSync(ctx context.Context, appGUID string) bool {
	st, ok := txFrom(ctx)
	if ok && !slices.Contains(st.sync, appGUID) {
		st.sync = append(st.sync, appGUID)
	}
	return ok
}
