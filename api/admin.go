package api

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/mediarepo/mediarepo/admin"
	"github.com/mediarepo/mediarepo/config"
	"github.com/mediarepo/mediarepo/mxid"
	"github.com/mediarepo/mediarepo/storage"
)

// matrix-media-repo's admin API: parse, call the admin service, answer in
// its shapes. Who may do what is the service's.

// mmrPrefixes are where matrix-media-repo has its unstable routes.
var mmrPrefixes = []string{"/_matrix/media/unstable", "/_matrix/media/unstable/io.t2bot.media"}

// mmrRoutes are matrix-media-repo's admin and unstable routes, under both
// prefixes. Literal segments come before parameters, as its router has them.
func (s *Server) mmrRoutes() []route {
	var out []route
	for _, p := range mmrPrefixes {
		a := p + "/admin"
		out = append(out,
			route{"POST", a + "/purge/remote", users, s.handlePurgeRemote},
			route{"POST", a + "/purge_remote", users, s.handlePurgeRemote},
			route{"POST", a + "/purge/old", users, s.purgeHandler(admin.PurgeOld)},
			route{"POST", a + "/purge/quarantined", users, s.purgeHandler(admin.PurgeQuarantined)},
			route{"POST", a + "/purge/user/{userId}", users, s.purgeHandler(admin.PurgeUser)},
			route{"POST", a + "/purge/room/{roomId}", users, s.purgeHandler(admin.PurgeRoom)},
			route{"POST", a + "/purge/server/{serverName}", users, s.purgeHandler(admin.PurgeServer)},
			route{"POST", a + "/purge/{serverName}/{mediaId}", users, s.purgeHandler(admin.PurgeOne)},
			route{"DELETE", p + "/download/{serverName}/{mediaId}", users, s.purgeHandler(admin.PurgeOne)},
			route{"POST", a + "/quarantine/room/{roomId}", users, s.handleQuarantineRoom},
			route{"POST", a + "/quarantine/user/{userId}", users, s.handleQuarantineUser(false)},
			route{"POST", a + "/quarantine/server/{serverName}", users, s.handleQuarantineServer},
			route{"POST", a + "/quarantine/{serverName}/{mediaId}", users, s.handleQuarantineMedia},
			route{"GET", a + "/datastores", users, s.handleDatastores},
			route{"GET", a + "/datastores/{id}/size_estimate", users, s.handleSizeEstimate},
			route{"POST", a + "/datastores/{src}/transfer_to/{dst}", users, s.handleTransfer},
			route{"POST", a + "/antivirus/rescan", users, s.handleRescan},
			route{"GET", a + "/usage/{serverName}", users, s.handleServerUsage},
			route{"GET", a + "/usage/{serverName}/users", users, s.handleUsersUsage},
			route{"GET", a + "/usage/{serverName}/uploads", users, s.handleUploadsUsage},
			route{"GET", a + "/usage/{serverName}/users-stats", users, s.handleUserStats},
			route{"GET", a + "/tasks/all", users, s.handleTasks(false)},
			route{"GET", a + "/tasks/unfinished", users, s.handleTasks(true)},
			route{"GET", a + "/tasks/{taskId}", users, s.handleTask},
			route{"GET", a + "/media/{serverName}/{mediaId}/attributes", users, s.handleAttributes},
			route{"POST", a + "/media/{serverName}/{mediaId}/attributes", users, s.handleSetAttributes},
			route{"GET", p + "/info/{serverName}/{mediaId}", users, s.handleInfo},
			route{"GET", a + "/federation/test/{serverName}", users, s.handleFederationTest},
		)
		out = append(out, s.archiveRoutes(a)...)
	}
	for _, p := range []string{"/_matrix/client/unstable", "/_matrix/client/unstable/io.t2bot.media"} {
		out = append(out,
			route{"POST", p + "/admin/purge_media_cache", users, s.handlePurgeRemote},
			route{"POST", p + "/admin/quarantine_media/{roomId}", users, s.handleQuarantineRoom},
		)
	}
	return out
}

// caller is the admin.Caller of an authenticated request. The shared
// secret is no homeserver token: it is never sent to a homeserver.
func caller(r *http.Request) admin.Caller {
	u := userFrom(r.Context())
	c := admin.Caller{UserID: u.UserID, Host: homeserverFrom(r.Context()), Global: u.RepoAdmin}
	if u.UserID != "" {
		c.Token = u.token
	}
	return c
}

// vars returns the route variables named, unescaped.
func vars(r *http.Request, names ...string) ([]string, error) {
	out := make([]string, len(names))
	for i, n := range names {
		v, _, err := pathVar(r, n)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

// mmrTime reads a millisecond timestamp parameter as matrix-media-repo
// does: absent is def, anything but a base-10 integer is a 400.
func mmrTime(r *http.Request, name string, def time.Time) (time.Time, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}, errBadRequest("Error parsing " + name + ": " + err.Error())
	}
	return time.UnixMilli(ms), nil
}

// mmrBool reads a boolean parameter as matrix-media-repo does (Go's
// ParseBool: 1, t, true, 0, f, false...).
func mmrBool(r *http.Request, name string, def bool) (bool, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, errBadRequest("Error parsing " + name + ": " + err.Error())
	}
	return b, nil
}

func errBadRequest(msg string) *Error { return &Error{Status: 400, Code: "M_UNKNOWN", Message: msg} }

func (s *Server) handlePurgeRemote(w http.ResponseWriter, r *http.Request) error {
	if r.URL.Query().Get("before_ts") == "" {
		return errBadRequest("Missing before_ts argument")
	}
	before, err := mmrTime(r, "before_ts", time.Time{})
	if err != nil {
		return err
	}
	affected, err := s.ops.admin.Purge(r.Context(), caller(r), admin.PurgeRequest{Scope: admin.PurgeRemote, Before: before})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]int{"total_removed": len(affected)})
	return nil
}

// purgeHandler serves an MMR purge of scope.
func (s *Server) purgeHandler(scope admin.Scope) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		v, err := vars(r, "serverName", "mediaId", "userId", "roomId")
		if err != nil {
			return err
		}
		before, err := mmrTime(r, "before_ts", time.Time{})
		if err != nil {
			return err
		}
		includeLocal, err := mmrBool(r, "include_local", false)
		if err != nil {
			return err
		}
		req := admin.PurgeRequest{Scope: scope, Server: v[0], MediaID: v[1], UserID: v[2], RoomID: v[3], Before: before, IncludeLocal: includeLocal}
		affected, err := s.ops.admin.Purge(r.Context(), caller(r), req)
		if err != nil {
			return err
		}
		if scope == admin.PurgeOne {
			writeJSON(w, http.StatusOK, map[string]bool{"purged": true})
			return nil
		}
		writeJSON(w, http.StatusOK, map[string]any{"purged": true, "affected": nonNil(affected)})
		return nil
	}
}

func nonNil(xs []string) []string {
	if xs == nil {
		return []string{}
	}
	return xs
}

func writeQuarantined(w http.ResponseWriter, n int64, err error) error {
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]int64{"num_quarantined": n})
	return nil
}

func (s *Server) handleQuarantineMedia(w http.ResponseWriter, r *http.Request) error {
	v, err := vars(r, "serverName", "mediaId")
	if err != nil {
		return err
	}
	n, err := s.ops.admin.QuarantineMedia(r.Context(), caller(r), v[0], v[1])
	return writeQuarantined(w, n, err)
}

func (s *Server) handleQuarantineRoom(w http.ResponseWriter, r *http.Request) error {
	v, err := vars(r, "roomId")
	if err != nil {
		return err
	}
	n, err := s.ops.admin.QuarantineRoom(r.Context(), caller(r), v[0])
	return writeQuarantined(w, n, err)
}

// handleQuarantineUser quarantines a user's uploads: on any origin (MMR)
// or of their own homeserver (Synapse, localOnly).
func (s *Server) handleQuarantineUser(localOnly bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		v, err := vars(r, "userId")
		if err != nil {
			return err
		}
		n, err := s.ops.admin.QuarantineUser(r.Context(), caller(r), v[0], localOnly)
		return writeQuarantined(w, n, err)
	}
}

func (s *Server) handleQuarantineServer(w http.ResponseWriter, r *http.Request) error {
	v, err := vars(r, "serverName")
	if err != nil {
		return err
	}
	n, err := s.ops.admin.QuarantineServer(r.Context(), caller(r), v[0])
	return writeQuarantined(w, n, err)
}

func (s *Server) handleDatastores(w http.ResponseWriter, r *http.Request) error {
	list, err := s.ops.admin.Datastores(caller(r))
	if err != nil {
		return err
	}
	out := map[string]any{}
	for _, ds := range list {
		out[ds.ID] = map[string]string{"type": ds.Type, "uri": datastoreURI(ds)}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// datastoreURI is where a datastore keeps its blobs, as MMR shows it.
func datastoreURI(ds config.Datastore) string {
	if ds.Type == "s3" {
		return "s3://" + ds.Opts.Endpoint + "/" + ds.Opts.BucketName
	}
	return ds.Opts.Path
}

func (s *Server) handleSizeEstimate(w http.ResponseWriter, r *http.Request) error {
	v, err := vars(r, "id")
	if err != nil {
		return err
	}
	before, err := mmrTime(r, "before_ts", time.Now())
	if err != nil {
		return err
	}
	e, err := s.ops.admin.Estimate(r.Context(), caller(r), v[0], before)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, estimateJSON(e))
	return nil
}

// estimateJSON is matrix-media-repo's size estimate of a datastore.
func estimateJSON(e storage.Estimate) map[string]int64 {
	return map[string]int64{
		"thumbnails_affected": e.Thumbnails, "thumbnail_hashes_affected": e.ThumbnailBlobs, "thumbnail_bytes": e.ThumbnailBytes,
		"media_affected": e.Media, "media_hashes_affected": e.MediaBlobs, "media_bytes": e.MediaBytes,
		"total_hashes_affected": e.Blobs, "total_bytes": e.Bytes,
	}
}

func (s *Server) handleTransfer(w http.ResponseWriter, r *http.Request) error {
	v, err := vars(r, "src", "dst")
	if err != nil {
		return err
	}
	before, err := mmrTime(r, "before_ts", time.Now())
	if err != nil {
		return err
	}
	e, id, err := s.ops.admin.Transfer(r.Context(), caller(r), v[0], v[1], before)
	if err != nil {
		return err
	}
	out := estimateJSON(e)
	out["task_id"] = id
	writeJSON(w, http.StatusOK, out)
	return nil
}

// handleRescan serves POST …/admin/antivirus/rescan[?before_ts=MS], our
// own: matrix-media-repo has no virus scanning.
func (s *Server) handleRescan(w http.ResponseWriter, r *http.Request) error {
	before, err := mmrTime(r, "before_ts", time.Now())
	if err != nil {
		return err
	}
	id, err := s.ops.admin.Rescan(r.Context(), caller(r), before)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"task_id": id})
	return nil
}

func (s *Server) handleServerUsage(w http.ResponseWriter, r *http.Request) error {
	v, err := vars(r, "serverName")
	if err != nil {
		return err
	}
	u, err := s.ops.admin.ServerUsage(r.Context(), caller(r), v[0])
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"raw_bytes":  map[string]int64{"total": u.MediaBytes + u.ThumbnailBytes, "media": u.MediaBytes, "thumbnails": u.ThumbnailBytes},
		"raw_counts": map[string]int64{"total": u.MediaCount + u.ThumbnailCount, "media": u.MediaCount, "thumbnails": u.ThumbnailCount},
	})
	return nil
}

func (s *Server) handleUsersUsage(w http.ResponseWriter, r *http.Request) error {
	v, err := vars(r, "serverName")
	if err != nil {
		return err
	}
	usage, err := s.ops.admin.UsersUsage(r.Context(), caller(r), v[0], r.URL.Query()["user_id"])
	if err != nil {
		return err
	}
	out := map[string]any{}
	for id, u := range usage {
		out[id] = map[string]any{
			"raw_bytes":  map[string]int64{"total": u.Bytes, "media": u.Bytes},
			"raw_counts": map[string]int64{"total": u.Count, "media": u.Count},
			"uploaded":   u.Uploaded,
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) handleUploadsUsage(w http.ResponseWriter, r *http.Request) error {
	v, err := vars(r, "serverName")
	if err != nil {
		return err
	}
	rows, err := s.ops.admin.Uploads(r.Context(), caller(r), v[0], r.URL.Query()["mxc"])
	if err != nil {
		return err
	}
	out := map[string]any{}
	for uri, m := range rows {
		out[uri] = map[string]any{
			"size_bytes": m.SizeBytes, "uploaded_by": m.UserID, "datastore_id": m.DatastoreID,
			"datastore_location": m.SHA256, "sha256_hash": m.SHA256, "quarantined": m.QuarantinedBy != "",
			"upload_name": m.UploadName, "content_type": m.ContentType, "created_ts": m.CreatedAt.UnixMilli(),
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) handleTasks(unfinished bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		tasks, err := s.ops.admin.Tasks(r.Context(), caller(r), unfinished)
		if err != nil {
			return err
		}
		out := make([]any, len(tasks))
		for i := range tasks {
			out[i] = taskJSON(&tasks[i])
		}
		writeJSON(w, http.StatusOK, out)
		return nil
	}
}

func (s *Server) handleTask(w http.ResponseWriter, r *http.Request) error {
	v, err := vars(r, "taskId")
	if err != nil {
		return err
	}
	id, err := strconv.ParseInt(v[0], 10, 64)
	if err != nil {
		return errBadRequest("invalid task ID")
	}
	t, err := s.ops.admin.Task(r.Context(), caller(r), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, taskJSON(t))
	return nil
}

// taskJSON is matrix-media-repo's task object.
func taskJSON(t *storage.Task) map[string]any {
	end := int64(0)
	if !t.End.IsZero() {
		end = t.End.UnixMilli()
	}
	out := map[string]any{
		"task_id": t.ID, "task_name": t.Name, "params": jsonRaw(t.Params),
		"start_ts": t.Start.UnixMilli(), "end_ts": end, "is_finished": end > 0, "error_message": t.Error,
	}
	if t.Progress != "" {
		out["progress"] = jsonRaw(t.Progress) // ours: what a long task has done so far
	}
	return out
}

func (s *Server) handleAttributes(w http.ResponseWriter, r *http.Request) error {
	v, err := vars(r, "serverName", "mediaId")
	if err != nil {
		return err
	}
	purpose, err := s.ops.admin.Attributes(r.Context(), caller(r), v[0], v[1])
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"purpose": purpose})
	return nil
}

func (s *Server) handleSetAttributes(w http.ResponseWriter, r *http.Request) error {
	v, err := vars(r, "serverName", "mediaId")
	if err != nil {
		return err
	}
	var body struct {
		Purpose string `json:"purpose"`
	}
	if err := readJSON(r, &body); err != nil {
		return err
	}
	if err := s.ops.admin.SetAttributes(r.Context(), caller(r), v[0], v[1], body.Purpose); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"purpose": body.Purpose})
	return nil
}

// handleInfo serves GET {U}/info/{server}/{id}: what is known of a media,
// for any user who may download it.
func (s *Server) handleInfo(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if v := q.Get("allow_remote"); v != "" && v != "true" && v != "false" {
		return errInvalidParam("allow_remote must be true or false")
	}
	m, err := s.requestedMedia(r, true)
	if err != nil {
		return err
	}
	out := map[string]any{
		"content_uri": mxid.MXC(m.Origin, m.MediaID), "content_type": m.ContentType, "size": m.SizeBytes,
		"hashes": map[string]string{"sha256": m.SHA256},
	}
	if m.Blurhash != "" {
		out[blurhashKey] = m.Blurhash
	}
	if w, h, ok := s.thumbs.Dimensions(r.Context(), m); ok {
		out["width"], out["height"] = w, h
	}
	if stored, err := s.thumbs.Stored(r.Context(), m); err == nil && len(stored) > 0 {
		list := make([]map[string]any, len(stored))
		for i, th := range stored {
			list[i] = map[string]any{"width": th.Width, "height": th.Height, "ready": true, "content_type": th.ContentType, "size": th.SizeBytes}
		}
		out["thumbnails"] = list
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// handleFederationTest serves GET {A}/federation/test/{serverName}: can
// this repository reach that server over federation?
func (s *Server) handleFederationTest(w http.ResponseWriter, r *http.Request) error {
	if err := admin.RequireGlobal(caller(r)); err != nil {
		return err
	}
	v, err := vars(r, "serverName")
	if err != nil {
		return err
	}
	if !mxid.ValidServerName(v[0]) {
		return errBadRequest("Invalid server name")
	}
	if s.federation == nil {
		return &Error{Status: 501, Code: "M_UNRECOGNIZED", Message: "Federation is off in this repository"}
	}
	res, err := s.federation.Version(r.Context(), v[0])
	if err != nil {
		return &Error{Status: 502, Code: "M_UNKNOWN", Message: "Federation with " + v[0] + " failed: " + err.Error(), Err: err}
	}
	writeJSON(w, http.StatusOK, map[string]any{"base_url": res.BaseURL, "hostname": res.Hostname, "versions_response": res.Versions})
	return nil
}

// adminError turns the admin service's refusals into Matrix errors.
func adminError(err error) (*Error, bool) {
	var ae *admin.Error
	if !errors.As(err, &ae) {
		return nil, false
	}
	e := &Error{Message: ae.Msg, Err: err}
	switch ae.Kind {
	case admin.Forbidden:
		e.Status, e.Code = 403, "M_FORBIDDEN"
	case admin.Invalid:
		e.Status, e.Code = 400, "M_UNKNOWN"
	case admin.NotFound:
		e.Status, e.Code = 404, "M_NOT_FOUND"
	case admin.Unsupported:
		e.Status, e.Code = 501, "M_UNRECOGNIZED"
	default:
		e.Status, e.Code = 502, "M_UNKNOWN"
	}
	return e, true
}
