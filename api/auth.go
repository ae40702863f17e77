package api

import (
	"context"
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/mediarepo/mediarepo/mxid"
	"github.com/sirupsen/logrus"
)

// requireUser checks the access token against the selected homeserver (or the
// shared secret) before next runs, so auth always comes before parameters.
func (s *Server) requireUser(next handlerFunc, allowGuests bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		token, err := s.accessToken(r)
		if err != nil {
			return err
		}
		u, err := s.authenticate(r.Context(), token)
		if err != nil {
			return err
		}
		stateFrom(r.Context()).user = u
		if u.IsGuest && !allowGuests {
			return errGuestForbidden()
		}
		return next(w, r)
	}
}

// authenticate finds who token belongs to on the request's homeserver (or
// that it is the shared secret).
func (s *Server) authenticate(ctx context.Context, token string) (*user, error) {
	u := &user{token: token}
	if s.isSharedSecret(token) {
		u.RepoAdmin = true
		return u, nil
	}
	hs := homeserverFrom(ctx)
	id, err := s.auth.WhoAmI(ctx, hs, token)
	if err != nil {
		return nil, err
	}
	// A homeserver answers for its own users only: anything else would
	// charge quotas to, or act as, a user of another tenant.
	if !strings.EqualFold(mxid.UserServer(id.UserID), hs.Name) {
		logFrom(ctx).WithFields(logrus.Fields{"user_id": id.UserID, "server_name": hs.Name}).
			Warn("homeserver answered whoami with a user of another server; token refused")
		return nil, &Error{Status: 403, Code: "M_FORBIDDEN", Message: "This access token belongs to a user of another server"}
	}
	u.Identity = id
	u.RepoAdmin = s.conf().IsAdmin(id.UserID)
	if err := s.allow(ctx, "user:"+id.UserID); err != nil {
		return nil, err
	}
	return u, nil
}

// accessToken reads the Bearer token, or the deprecated access_token query
// parameter where the config still allows it.
func (s *Server) accessToken(r *http.Request) (string, error) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, token, _ := strings.Cut(h, " ")
		token = strings.TrimSpace(token)
		if !strings.EqualFold(scheme, "Bearer") || token == "" {
			return "", errMissingToken()
		}
		return token, nil
	}
	if s.conf().AccessTokens.AllowQueryParameter {
		if token := r.URL.Query().Get("access_token"); token != "" {
			return token, nil
		}
	}
	return "", errMissingToken()
}

func (s *Server) isSharedSecret(token string) bool {
	ss := s.conf().SharedSecretAuth
	return ss.Enabled && ss.Token != "" && subtle.ConstantTimeCompare([]byte(token), []byte(ss.Token)) == 1
}
