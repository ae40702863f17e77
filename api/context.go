package api

import (
	"context"

	"github.com/sirupsen/logrus"

	"github.com/mediarepo/mediarepo/config"
	"github.com/mediarepo/mediarepo/homeserver"
)

type ctxKey int

const (
	keyState ctxKey = iota
	keyHomeserver
	keyUser
)

// requestState is what a request's handlers report back to the access log.
type requestState struct {
	log     *logrus.Entry
	host    string // the selected homeserver's name
	userID  string
	err     *Error // the error response sent, if any
	aborted bool   // the client hung up; nothing was sent
}

// user is the authenticated requester.
type user struct {
	homeserver.Identity
	// RepoAdmin is true for the shared secret and for users listed in admins.
	RepoAdmin bool
}

func withState(ctx context.Context, st *requestState) context.Context {
	return context.WithValue(ctx, keyState, st)
}

func stateFrom(ctx context.Context) *requestState {
	st, _ := ctx.Value(keyState).(*requestState)
	if st == nil {
		return &requestState{log: logrus.NewEntry(logrus.New())}
	}
	return st
}

// logFrom returns the request's logger, carrying its request_id.
func logFrom(ctx context.Context) *logrus.Entry { return stateFrom(ctx).log }

func withHomeserver(ctx context.Context, hs *config.Homeserver) context.Context {
	return context.WithValue(ctx, keyHomeserver, hs)
}

// homeserverFrom returns the homeserver the request's host selected; the host
// middleware guarantees there is one on every routed request.
func homeserverFrom(ctx context.Context) *config.Homeserver {
	hs, _ := ctx.Value(keyHomeserver).(*config.Homeserver)
	return hs
}

func withUser(ctx context.Context, u *user) context.Context {
	return context.WithValue(ctx, keyUser, u)
}

// userFrom returns the authenticated user, or nil on public routes.
func userFrom(ctx context.Context) *user {
	u, _ := ctx.Value(keyUser).(*user)
	return u
}
