package api

import (
	"context"
	"errors"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"

	"github.com/sirupsen/logrus"

	"github.com/mediarepo/mediarepo/federation"
	"github.com/mediarepo/mediarepo/media"
	"github.com/mediarepo/mediarepo/mxid"
	"github.com/mediarepo/mediarepo/storage"
	"github.com/mediarepo/mediarepo/thumbnails"
)

// requireServer checks the X-Matrix signature of a federation request: the
// origin's key is fetched from its /_matrix/key/v2/server, and the signature
// must cover the method, the raw request URI, the origin and us as the
// destination. Anything else is 401.
//
// Signed requests skip the per-IP limit (one large homeserver is one IP), but
// only once verified: a request whose key would have to be fetched, and one
// that fails verification, is charged to its IP first, so forged headers
// cannot make this server fetch keys at will.
func (s *Server) requireServer(next handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if s.federation == nil {
			return errUnrecognized(http.StatusNotFound)
		}
		ctx := r.Context()
		ip := "ip:" + stateFrom(ctx).ip
		us := homeserverFrom(ctx).Name
		x, err := federation.ParseXMatrix(r.Header.Get("Authorization"))
		if err != nil {
			return s.refuseUnsigned(ctx, ip, err)
		}
		if x.Destination != "" && x.Destination != us {
			return s.refuseUnsigned(ctx, ip, errors.New("destination is not this server"))
		}
		if !s.federation.HasKey(x.Origin, x.Key) {
			if err := s.allow(ctx, ip); err != nil {
				return err
			}
		}
		key, err := s.federation.ServerKey(ctx, x.Origin, x.Key)
		if err != nil {
			return errUnauthorized(err)
		}
		if err := federation.VerifyRequest(x, key, r.Method, r.URL.RequestURI(), us); err != nil {
			return s.refuseUnsigned(ctx, ip, err)
		}
		st := stateFrom(ctx)
		st.extra = logrus.Fields{"origin": x.Origin}
		return next(w, r)
	}
}

// refuseUnsigned answers a request that failed verification, charged to its
// IP: 429 once that is over its limit, else 401.
func (s *Server) refuseUnsigned(ctx context.Context, ip string, err error) error {
	if lerr := s.allow(ctx, ip); lerr != nil {
		return lerr
	}
	return errUnauthorized(err)
}

func errUnauthorized(err error) *Error {
	return &Error{Status: 401, Code: "M_UNAUTHORIZED", Message: "Federation request not signed correctly", Err: err}
}

// handleFederationDownload serves GET /_matrix/federation/v1/media/download/{mediaId}:
// local media only, as multipart/mixed (JSON, then the bytes), never a redirect.
func (s *Server) handleFederationDownload(w http.ResponseWriter, r *http.Request) error {
	m, err := s.federationMedia(r)
	if err != nil {
		return err
	}
	blob, err := s.media.Open(r.Context(), m)
	if err != nil {
		return err
	}
	defer blob.Close()
	s.paceWrite(w, m.SizeBytes)
	return writeMultipartOriginal(w, blob, m)
}

// writeMultipartOriginal answers with m's own bytes as the second part.
func writeMultipartOriginal(w http.ResponseWriter, blob io.Reader, m *storage.Media) error {
	ct := media.ContentType(m.ContentType)
	return writeMultipartMedia(w, blob, ct, contentDisposition(ct, m.UploadName))
}

// handleFederationThumbnail serves GET /_matrix/federation/v1/media/thumbnail/{mediaId}.
func (s *Server) handleFederationThumbnail(w http.ResponseWriter, r *http.Request) error {
	spec, err := s.thumbnailSpec(w, r)
	if err != nil {
		return err
	}
	m, err := s.federationMedia(r)
	if err != nil {
		return err
	}
	th, err := s.thumbs.Thumbnail(r.Context(), m, spec)
	if errors.Is(err, thumbnails.ErrUseOriginal) {
		blob, err := s.media.Open(r.Context(), m)
		if err != nil {
			return err
		}
		defer blob.Close()
		s.paceWrite(w, m.SizeBytes)
		return writeMultipartOriginal(w, blob, m)
	}
	if err != nil {
		return err
	}
	blob, err := s.thumbs.Open(r.Context(), th)
	if err != nil {
		return err
	}
	defer blob.Close()
	s.paceWrite(w, th.SizeBytes)
	return writeMultipartMedia(w, blob, th.ContentType, "inline; filename=thumbnail."+extension(th.ContentType))
}

// federationMedia finds the route's {mediaId} among the local media of the
// homeserver the Host selects; remote media is never served here.
func (s *Server) federationMedia(r *http.Request) (*storage.Media, error) {
	mediaID, _, err := pathVar(r, "mediaId")
	if err != nil {
		return nil, err
	}
	if err := checkDownloadParams(r); err != nil {
		return nil, err
	}
	if !mxid.ValidMediaID(mediaID) {
		return nil, errNotFound("Media not found (malformed media ID)")
	}
	origin := homeserverFrom(r.Context()).Name
	m, err := s.media.Find(r.Context(), media.Request{Origin: origin, MediaID: mediaID, Local: origin, Wait: uploadWait(r)})
	if err != nil {
		return nil, err
	}
	if m.QuarantinedBy != "" {
		return nil, &Error{Status: 404, Code: "M_NOT_FOUND", Message: "Media not found", Err: errQuarantined}
	}
	return m, nil
}

// writeMultipartMedia answers with the spec's two parts: {} and the blob.
func writeMultipartMedia(w http.ResponseWriter, blob io.Reader, contentType, disposition string) error {
	mw := multipart.NewWriter(w)
	w.Header().Set("Content-Type", "multipart/mixed; boundary="+mw.Boundary())
	w.Header().Set("Cache-Control", cacheAuthenticated)
	meta, err := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"application/json"}})
	if err != nil {
		return err
	}
	meta.Write([]byte("{}"))
	part, err := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {contentType}, "Content-Disposition": {disposition}})
	if err != nil {
		return err
	}
	if _, err := io.Copy(part, blob); err != nil {
		return err
	}
	return mw.Close()
}
