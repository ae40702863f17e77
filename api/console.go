package api

import (
	"context"
	"net/http"
	"strings"

	"github.com/mediarepo/mediarepo/admin"
	"github.com/mediarepo/mediarepo/console"
)

// handleConsole hands a request under console.Prefix to the operator
// console, with its homeserver and the admin API's token check.
func (s *Server) handleConsole(w http.ResponseWriter, r *http.Request) error {
	hs := homeserverFrom(r.Context())
	env := console.Env{
		Host: hs,
		TLS:  r.TLS != nil || (trustedProxy(remoteAddr(r.RemoteAddr)) && strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")),
		Authenticate: func(ctx context.Context, token string) (admin.Caller, error) {
			if token == "" {
				return admin.Caller{}, errMissingToken()
			}
			u, err := s.authenticate(ctx, token)
			if err != nil {
				return admin.Caller{}, err
			}
			c := admin.Caller{UserID: u.UserID, Host: hs, Global: u.RepoAdmin}
			if u.UserID != "" {
				c.Token = token
			}
			return c, nil
		},
	}
	s.ops.console.ServeHTTP(w, r, env)
	return nil
}
