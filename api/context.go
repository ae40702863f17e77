package api

import (
	"context"

	"github.com/sirupsen/logrus"

	"github.com/mediarepo/mediarepo/config"
	"github.com/mediarepo/mediarepo/homeserver"
)

type ctxKey int

const keyState ctxKey = 0

// requestState holds the request-scoped values: what the middleware resolved
// (homeserver, user) and what handlers report back to the access log. One
// pointer in the context instead of a context layer per value keeps the hot
// path free of request copies.
type requestState struct {
	id      string
	ip      string // the client's address, from clientIP
	base    *logrus.Logger
	log     *logrus.Entry // made on first use
	hs      *config.Homeserver
	route   string // the route's path template, once routed
	user    *user
	extra   logrus.Fields // more fields for the access line
	err     *Error        // the error response sent, if any
	aborted bool          // the client hung up; nothing was sent
}

// user is the authenticated requester.
type user struct {
	homeserver.Identity
	// RepoAdmin is true for the shared secret and for users listed in admins.
	RepoAdmin bool
	// token is the access token, for calls made on the user's behalf (admin
	// checks, logout); never logged.
	token string
}

func withState(ctx context.Context, st *requestState) context.Context {
	return context.WithValue(ctx, keyState, st)
}

// stateFrom returns the request's state; withRequestLog always sets one.
func stateFrom(ctx context.Context) *requestState {
	return ctx.Value(keyState).(*requestState)
}

// logFrom returns the request's logger, carrying its request_id.
func logFrom(ctx context.Context) *logrus.Entry {
	st := stateFrom(ctx)
	if st.log == nil {
		st.log = st.base.WithField("request_id", st.id)
	}
	return st.log
}

// homeserverFrom returns the homeserver the request's host selected; the host
// middleware guarantees there is one on every routed request.
func homeserverFrom(ctx context.Context) *config.Homeserver { return stateFrom(ctx).hs }

// userFrom returns the authenticated user, or nil on public routes.
func userFrom(ctx context.Context) *user { return stateFrom(ctx).user }
