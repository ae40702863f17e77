package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/mediarepo/mediarepo/admin"
	"github.com/mediarepo/mediarepo/config"
	"github.com/mediarepo/mediarepo/storage"
)

// Synapse's media admin API, as Synapse documents it, so that synapse-admin
// and moderation bots work unchanged once the proxy sends these paths here.

const synapseAdmin = "/_synapse/admin/v1"

func (s *Server) synapseRoutes() []route {
	a := synapseAdmin
	return []route{
		{"POST", a + "/media/delete", users, s.handleDeleteOld(false)},
		{"POST", a + "/media/{serverName}/delete", users, s.handleDeleteOld(true)},
		{"POST", a + "/media/quarantine/{serverName}/{mediaId}", users, s.synapseMediaAction(s.ops.admin.QuarantineMedia)},
		{"POST", a + "/media/unquarantine/{serverName}/{mediaId}", users, s.synapseMediaAction(s.ops.admin.Unquarantine)},
		{"POST", a + "/media/protect/{mediaId}", users, s.handleProtect(true)},
		{"POST", a + "/media/unprotect/{mediaId}", users, s.handleProtect(false)},
		{"GET", a + "/media/{serverName}/{mediaId}", users, s.handleMediaInfo},
		{"DELETE", a + "/media/{serverName}/{mediaId}", users, s.handleDeleteMedia},
		{"POST", a + "/room/{roomId}/media/quarantine", users, s.handleQuarantineRoom},
		{"POST", a + "/quarantine_media/{roomId}", users, s.handleQuarantineRoom},
		{"POST", a + "/user/{userId}/media/quarantine", users, s.handleQuarantineUser(true)},
		{"POST", a + "/purge_media_cache", users, s.handlePurgeMediaCache},
		{"GET", a + "/users/{userId}/media", users, s.handleUserMedia},
		{"DELETE", a + "/users/{userId}/media", users, s.handleDeleteUserMedia},
		{"GET", a + "/statistics/users/media", users, s.handleUserStats},
	}
}

func errMissingParam(name string) *Error {
	return &Error{Status: 400, Code: "M_MISSING_PARAM", Message: "Missing integer query parameter '" + name + "'"}
}

// synapseInt reads a non-negative integer parameter as Synapse does:
// missing is def (or 400 M_MISSING_PARAM if required), anything else 400
// M_INVALID_PARAM.
func synapseInt(r *http.Request, name string, def int64, required bool) (int64, error) {
	v, present := r.URL.Query()[name]
	if !present {
		if required {
			return 0, errMissingParam(name)
		}
		return def, nil
	}
	n, err := strconv.ParseInt(v[0], 10, 64)
	if err != nil || n < 0 {
		return 0, errInvalidParam("Query parameter " + strconv.Quote(name) + " must be a non-negative integer")
	}
	return n, nil
}

// synapseBool reads a boolean parameter: exactly true or false.
func synapseBool(r *http.Request, name string, def bool) (bool, error) {
	v, present := r.URL.Query()[name]
	if !present {
		return def, nil
	}
	switch v[0] {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, errInvalidParam("Boolean query parameter " + strconv.Quote(name) + " must be one of ['true', 'false']")
}

// synapseEnum reads a parameter that must be one of allowed.
func synapseEnum(r *http.Request, name, def string, allowed ...string) (string, error) {
	v, present := r.URL.Query()[name]
	if !present {
		return def, nil
	}
	for _, a := range allowed {
		if v[0] == a {
			return a, nil
		}
	}
	return "", errInvalidParam("Query parameter " + strconv.Quote(name) + " must be one of the allowed values")
}

func (s *Server) handleDeleteOld(legacy bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if legacy {
			v, err := vars(r, "serverName")
			if err != nil {
				return err
			}
			if config.NormalizeHost(v[0]) != config.NormalizeHost(homeserverFrom(r.Context()).Name) {
				return errBadRequest("Can only delete local media")
			}
		}
		before, err := synapseInt(r, "before_ts", 0, true)
		if err != nil {
			return err
		}
		if err := admin.CheckBeforeTS(before); err != nil {
			return err
		}
		sizeGT, err := synapseInt(r, "size_gt", 0, false)
		if err != nil {
			return err
		}
		keep, err := synapseBool(r, "keep_profiles", true)
		if err != nil {
			return err
		}
		ids, err := s.ops.admin.DeleteOld(r.Context(), caller(r), time.UnixMilli(before), sizeGT, keep)
		return writeDeleted(w, ids, err)
	}
}

func writeDeleted(w http.ResponseWriter, ids []string, err error) error {
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"deleted_media": nonNil(ids), "total": len(ids)})
	return nil
}

func (s *Server) handleDeleteMedia(w http.ResponseWriter, r *http.Request) error {
	v, err := vars(r, "serverName", "mediaId")
	if err != nil {
		return err
	}
	ids, err := s.ops.admin.DeleteLocal(r.Context(), caller(r), v[0], v[1])
	return writeDeleted(w, ids, err)
}

// synapseMediaAction serves a Synapse route on {serverName}/{mediaId} that
// answers {}: act's count is not shown.
func (s *Server) synapseMediaAction(act func(ctx context.Context, c admin.Caller, server, mediaID string) (int64, error)) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		v, err := vars(r, "serverName", "mediaId")
		if err != nil {
			return err
		}
		if _, err := act(r.Context(), caller(r), v[0], v[1]); err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, struct{}{})
		return nil
	}
}

func (s *Server) handleProtect(protect bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		v, err := vars(r, "mediaId")
		if err != nil {
			return err
		}
		if err := s.ops.admin.SetProtected(r.Context(), caller(r), v[0], protect); err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, struct{}{})
		return nil
	}
}

func (s *Server) handlePurgeMediaCache(w http.ResponseWriter, r *http.Request) error {
	before, err := synapseInt(r, "before_ts", 0, true)
	if err != nil {
		return err
	}
	if err := admin.CheckBeforeTS(before); err != nil {
		return err
	}
	n, err := s.ops.admin.PurgeRemoteCache(r.Context(), caller(r), time.UnixMilli(before))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]int{"deleted": n})
	return nil
}

func (s *Server) handleMediaInfo(w http.ResponseWriter, r *http.Request) error {
	v, err := vars(r, "serverName", "mediaId")
	if err != nil {
		return err
	}
	m, err := s.ops.admin.MediaInfo(r.Context(), caller(r), v[0], v[1])
	if err != nil {
		return err
	}
	info := s.synapseMedia(m)
	if _, local := s.conf().Homeserver(m.Origin); local {
		info["media_origin"], info["filesystem_id"] = nil, nil
	} else {
		info["media_origin"], info["filesystem_id"] = m.Origin, m.SHA256
		info["user_id"], info["safe_from_quarantine"] = nil, nil
	}
	writeJSON(w, http.StatusOK, map[string]any{"media_info": info})
	return nil
}

// synapseMedia is Synapse's object for one local media.
func (s *Server) synapseMedia(m *storage.Media) map[string]any {
	var lastAccess, uploadName, quarantinedBy any
	if !m.LastAccess.IsZero() {
		lastAccess = m.LastAccess.UnixMilli()
	}
	if m.UploadName != "" {
		uploadName = m.UploadName
	}
	if m.QuarantinedBy != "" {
		quarantinedBy = m.QuarantinedBy
	}
	return map[string]any{
		"media_id": m.MediaID, "media_type": m.ContentType, "media_length": m.SizeBytes,
		"upload_name": uploadName, "created_ts": m.CreatedAt.UnixMilli(), "url_cache": nil,
		"last_access_ts": lastAccess, "quarantined_by": quarantinedBy, "safe_from_quarantine": m.Protected,
		"user_id": m.UserID, "authenticated": m.Authenticated, "sha256": m.SHA256,
	}
}

// userMediaPage reads Synapse's paging of a user's media: newest first
// unless order_by or dir says otherwise.
func userMediaPage(r *http.Request) (admin.Page, error) {
	var p admin.Page
	from, err := synapseInt(r, "from", 0, false)
	if err != nil {
		return p, err
	}
	limit, err := synapseInt(r, "limit", 100, false)
	if err != nil {
		return p, err
	}
	q := r.URL.Query()
	_, hasOrder := q["order_by"]
	_, hasDir := q["dir"]
	order, err := synapseEnum(r, "order_by", string(storage.ByCreated), string(storage.ByMediaID), string(storage.ByUploadName),
		string(storage.ByCreated), string(storage.ByLastAccess), string(storage.BySize), string(storage.ByContentType),
		string(storage.ByQuarantined), string(storage.ByProtected))
	if err != nil {
		return p, err
	}
	dir, err := synapseEnum(r, "dir", "f", "f", "b")
	if err != nil {
		return p, err
	}
	p = admin.Page{From: int(from), Limit: int(limit), Order: storage.MediaOrder(order), Desc: dir == "b"}
	if !hasOrder && !hasDir {
		p.Desc = true
	}
	if p.Limit == 0 {
		p.Limit = -1 // limit=0 asks for none
	}
	return p, nil
}

func (s *Server) handleUserMedia(w http.ResponseWriter, r *http.Request) error {
	v, err := vars(r, "userId")
	if err != nil {
		return err
	}
	p, err := userMediaPage(r)
	if err != nil {
		return err
	}
	var rows []storage.Media
	var total int64
	if p.Limit >= 0 {
		rows, total, err = s.ops.admin.UserMedia(r.Context(), caller(r), v[0], p)
	} else {
		_, total, err = s.ops.admin.UserMedia(r.Context(), caller(r), v[0], admin.Page{Limit: 1})
	}
	if err != nil {
		return err
	}
	list := make([]map[string]any, len(rows))
	for i := range rows {
		list[i] = s.synapseMedia(&rows[i])
	}
	out := map[string]any{"media": list, "total": total}
	if next := p.From + len(rows); p.Limit > 0 && int64(p.From+p.Limit) < total {
		out["next_token"] = next
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) handleDeleteUserMedia(w http.ResponseWriter, r *http.Request) error {
	v, err := vars(r, "userId")
	if err != nil {
		return err
	}
	p, err := userMediaPage(r)
	if err != nil {
		return err
	}
	if p.Limit < 0 {
		return writeDeleted(w, nil, nil)
	}
	ids, err := s.ops.admin.DeleteUserMedia(r.Context(), caller(r), v[0], p)
	return writeDeleted(w, ids, err)
}

// handleUserStats serves Synapse's statistics/users/media for the Host and
// matrix-media-repo's usage/{server}/users-stats.
func (s *Server) handleUserStats(w http.ResponseWriter, r *http.Request) error {
	server, hasServer, err := pathVar(r, "serverName")
	if err != nil {
		return err
	}
	if !hasServer {
		server = homeserverFrom(r.Context()).Name
	}
	f, err := statsFilter(r)
	if err != nil {
		return err
	}
	f.Origin = server
	none := f.Limit < 0 // limit=0: the total only
	if none {
		f.Limit = 1
	}
	users, total, err := s.ops.admin.UserStats(r.Context(), caller(r), f)
	if err != nil {
		return err
	}
	if none {
		users, f.Limit = nil, 0
	}
	list := make([]map[string]any, len(users))
	for i, u := range users {
		// Display names live on the homeserver; the user ID stands in, as
		// matrix-media-repo answers.
		list[i] = map[string]any{"user_id": u.UserID, "displayname": u.UserID, "media_count": u.Count, "media_length": u.Bytes}
	}
	out := map[string]any{"users": list, "total": total}
	if f.Limit > 0 && int64(f.Offset+f.Limit) < total {
		out["next_token"] = f.Offset + len(users)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// statsFilter reads the parameters of the per-user statistics.
func statsFilter(r *http.Request) (storage.StatsFilter, error) {
	var f storage.StatsFilter
	order, err := synapseEnum(r, "order_by", "user_id", "user_id", "displayname", "media_length", "media_count")
	if err != nil {
		return f, err
	}
	if order == "displayname" {
		order = "user_id" // the display name is the user ID here
	}
	dir, err := synapseEnum(r, "dir", "f", "f", "b")
	if err != nil {
		return f, err
	}
	from, err := synapseInt(r, "from", 0, false)
	if err != nil {
		return f, err
	}
	limit, err := synapseInt(r, "limit", 100, false)
	if err != nil {
		return f, err
	}
	fromTS, err := synapseInt(r, "from_ts", 0, false)
	if err != nil {
		return f, err
	}
	untilTS, err := synapseInt(r, "until_ts", -1, false)
	if err != nil {
		return f, err
	}
	if untilTS >= 0 && untilTS <= fromTS {
		return f, errInvalidParam("Query parameter until_ts must be greater than from_ts")
	}
	q := r.URL.Query()
	if term, ok := q["search_term"]; ok && term[0] == "" {
		return f, errInvalidParam("Query parameter search_term cannot be an empty string")
	}
	f = storage.StatsFilter{Order: storage.StatsOrder(order), Desc: dir == "b", Offset: int(from), Limit: int(limit), Search: q.Get("search_term")}
	if fromTS > 0 {
		f.From = time.UnixMilli(fromTS)
	}
	if untilTS >= 0 {
		f.Until = time.UnixMilli(untilTS)
	}
	if limit == 0 {
		f.Limit = -1
	}
	return f, nil
}

// readJSON decodes a small JSON request body into v; an empty body leaves
// v as it is.
func readJSON(r *http.Request, v any) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err != nil {
		return err
	}
	if len(body) == 0 {
		return nil
	}
	if err := json.Unmarshal(body, v); err != nil {
		return &Error{Status: 400, Code: "M_NOT_JSON", Message: "Content not JSON."}
	}
	return nil
}

// jsonRaw embeds stored JSON text as it is, or {} if it is not JSON.
func jsonRaw(s string) json.RawMessage {
	if !json.Valid([]byte(s)) {
		return json.RawMessage("{}")
	}
	return json.RawMessage(s)
}
