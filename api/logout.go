package api

import (
	"net/http"

	"github.com/mediarepo/mediarepo/bus"
	"github.com/mediarepo/mediarepo/homeserver"
)

// Logout is relayed to the homeserver, and the token (with /all, every token
// of its user) is dropped from every process's cache at once: a logged-out
// token must stop downloading now, not when its cache entry expires.

// handleLogout serves POST /_matrix/client/{r0,v3}/logout[/all].
func (s *Server) handleLogout(all bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		token, err := s.accessToken(r)
		if err != nil {
			return err
		}
		if s.isSharedSecret(token) { // never sent to a homeserver
			return errBadRequest("The shared secret is not a session and cannot be logged out")
		}
		ctx := r.Context()
		hs := homeserverFrom(ctx)
		// Whose tokens /all ends, asked before they stop working.
		id, idErr := s.auth.WhoAmI(ctx, hs, token)
		reply, err := s.ops.logout.Logout(ctx, hs, token, all)
		if err != nil {
			return err
		}
		if reply.Status == http.StatusOK || reply.Status == http.StatusUnauthorized {
			s.forgetToken(r, homeserver.TokenKey(hs, token))
			if all && idErr == nil {
				s.publish(r, bus.User, id.UserID)
			}
		}
		if reply.ContentType != "" {
			w.Header().Set("Content-Type", reply.ContentType)
		}
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(reply.Status)
		w.Write(reply.Body)
		return nil
	}
}

func (s *Server) forgetToken(r *http.Request, key string) { s.publish(r, bus.Token, key) }

// publish tells every process; this one has heard when it returns.
func (s *Server) publish(r *http.Request, topic, payload string) {
	if err := s.ops.bus.Publish(r.Context(), topic, payload); err != nil {
		logFrom(r.Context()).WithError(err).Warn("other processes not told of a logout; their token caches expire it")
	}
}
