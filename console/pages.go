package console

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/mediarepo/mediarepo/admin"
	"github.com/mediarepo/mediarepo/config"
	"github.com/mediarepo/mediarepo/mxid"
	"github.com/mediarepo/mediarepo/storage"
	"github.com/mediarepo/mediarepo/thumbnails"
)

// bar is one day of the uploads chart, drawn as SVG by the template.
type bar struct {
	X, Y, H int
	Label   string
	Count   int
}

func (c *Console) overview(w http.ResponseWriter, r *http.Request, ses *session) {
	o, err := c.o.Admin.Overview(r.Context(), ses.caller, ses.host)
	if err != nil {
		c.failErr(w, r, ses, err)
		return
	}
	most := 1
	for _, d := range o.Days {
		most = max(most, d.Count)
	}
	const height = 120
	bars := make([]bar, len(o.Days))
	for i, d := range o.Days {
		h := d.Count * height / most
		bars[i] = bar{X: i * 20, Y: height - h, H: h, Label: d.Day.Format("Jan 2"), Count: d.Count}
	}
	c.show(w, ses, "overview", "Overview", map[string]any{"O": o, "Bars": bars, "ChartHeight": height, "Limit": admin.OverviewUploads,
		"First": bars[0].Label, "Last": bars[len(bars)-1].Label})
}

func (c *Console) recent(w http.ResponseWriter, r *http.Request, ses *session) {
	rows, err := c.o.Admin.RecentMedia(r.Context(), ses.caller, ses.host, 60)
	if err != nil {
		c.failErr(w, r, ses, err)
		return
	}
	c.show(w, ses, "recent", "Recent uploads", map[string]any{"Media": rows})
}

var sha256Pattern = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)

// search finds media by mxc:// URI, user ID, room ID or SHA-256.
func (c *Console) search(w http.ResponseWriter, r *http.Request, ses *session) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	data := map[string]any{"Q": q}
	var rows []storage.Media
	var err error
	switch {
	case q == "":
	case strings.HasPrefix(q, "mxc://"):
		server, id, ok := mxid.ParseMXC(q)
		if !ok {
			data["Error"] = "That is not an mxc:// URI."
			break
		}
		http.Redirect(w, r, Prefix+"/media/"+url.PathEscape(server)+"/"+url.PathEscape(id), http.StatusSeeOther)
		return
	case strings.HasPrefix(q, "@"):
		rows, _, err = c.o.Admin.UserMedia(r.Context(), ses.caller, q, admin.Page{Limit: 200, Order: storage.ByCreated, Desc: true})
	case strings.HasPrefix(q, "!"):
		rows, err = c.o.Admin.RoomMedia(r.Context(), ses.caller, q)
	case sha256Pattern.MatchString(q):
		rows, err = c.o.Admin.SameBytes(r.Context(), ses.caller, q, 200)
	default:
		data["Error"] = "Search by mxc://server/id, @user:server, !room:server or a SHA-256 (64 hex digits)."
	}
	if err != nil {
		data["Error"] = message(err)
		w.WriteHeader(statusOf(err))
	}
	data["Media"] = rows
	data["Searched"] = q != ""
	c.show(w, ses, "search", "Search", data)
}

func statusOf(err error) int {
	var ae *admin.Error
	if errors.As(err, &ae) && ae.Kind == admin.Forbidden {
		return http.StatusForbidden
	}
	return http.StatusBadRequest
}

// media shows one media: its row, the thumbnails made of it, where else
// its bytes are, and the actions.
func (c *Console) media(w http.ResponseWriter, r *http.Request, ses *session, server, id string) {
	m, err := c.o.Admin.MediaInfo(r.Context(), ses.caller, server, id)
	if err != nil {
		c.failErr(w, r, ses, err)
		return
	}
	thumbs, err := c.o.Thumbnails.Stored(r.Context(), m)
	if err != nil {
		c.failErr(w, r, ses, err)
		return
	}
	same, err := c.o.Admin.SameBytes(r.Context(), ses.caller, m.SHA256, 50)
	if err != nil {
		c.failErr(w, r, ses, err)
		return
	}
	var others []storage.Media
	for _, o := range same {
		if o.Origin != m.Origin || o.MediaID != m.MediaID {
			others = append(others, o)
		}
	}
	c.show(w, ses, "media", "mxc://"+m.Origin+"/"+m.MediaID, map[string]any{
		"M": m, "Thumbnails": thumbs, "Others": others, "Done": r.URL.Query().Get("done"),
	})
}

// act runs one of the media page's buttons, then shows the media again.
func (c *Console) act(w http.ResponseWriter, r *http.Request, ses *session, server, id, action string) {
	ctx := r.Context()
	var err error
	switch action {
	case "quarantine":
		_, err = c.o.Admin.QuarantineMedia(ctx, ses.caller, server, id)
	case "unquarantine":
		_, err = c.o.Admin.Unquarantine(ctx, ses.caller, server, id)
	case "pin":
		err = c.o.Admin.SetAttributes(ctx, ses.caller, server, id, admin.PurposePinned)
	case "unpin":
		err = c.o.Admin.SetAttributes(ctx, ses.caller, server, id, admin.PurposeNone)
	case "purge":
		_, err = c.o.Admin.Purge(ctx, ses.caller, admin.PurgeRequest{Scope: admin.PurgeOne, Server: server, MediaID: id})
		if err == nil {
			http.Redirect(w, r, Prefix+"/recent?purged="+url.QueryEscape("mxc://"+server+"/"+id), http.StatusSeeOther)
			return
		}
	default:
		c.fail(w, r, ses, http.StatusNotFound, "No such action.")
		return
	}
	if err != nil {
		c.failErr(w, r, ses, err)
		return
	}
	c.o.Log.WithFields(map[string]any{"user_id": ses.caller.UserID, "action": action, "origin": server, "media_id": id}).Info("console action")
	http.Redirect(w, r, Prefix+"/media/"+url.PathEscape(server)+"/"+url.PathEscape(id)+"?done="+action, http.StatusSeeOther)
}

// inlineTypes are the originals the console may show as they are.
var inlineTypes = map[string]bool{"image/jpeg": true, "image/png": true, "image/gif": true, "image/webp": true}

// thumbnail sends a 96x96 thumbnail of a media the caller may see, or a
// placeholder: quarantined media is never shown.
func (c *Console) thumbnail(w http.ResponseWriter, r *http.Request, ses *session, server, id string) {
	m, err := c.o.Admin.MediaInfo(r.Context(), ses.caller, server, id)
	if err != nil {
		w.WriteHeader(statusOf(err))
		return
	}
	if m.QuarantinedBy != "" {
		placeholder(w, "quarantined")
		return
	}
	th, err := c.o.Thumbnails.Thumbnail(r.Context(), m, c.o.Thumbnails.Spec(96, 96, config.MethodCrop, false, false))
	var blob io.ReadSeekCloser
	contentType := ""
	switch {
	case errors.Is(err, thumbnails.ErrUseOriginal) && inlineTypes[m.ContentType]:
		blob, err = c.o.Originals.Open(r.Context(), m)
		contentType = m.ContentType
	case err == nil:
		blob, err = c.o.Thumbnails.Open(r.Context(), th)
		contentType = th.ContentType
	}
	if err != nil || blob == nil {
		placeholder(w, "no preview")
		return
	}
	defer blob.Close()
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Disposition", "inline")
	io.Copy(w, blob)
}

// placeholder is a grey square saying why there is no picture.
func placeholder(w http.ResponseWriter, text string) {
	w.Header().Set("Content-Type", "image/svg+xml")
	io.WriteString(w, `<svg xmlns="http://www.w3.org/2000/svg" width="96" height="96" viewBox="0 0 96 96">`+
		`<rect width="96" height="96" fill="#ddd"/><text x="48" y="52" font-family="sans-serif" font-size="11" text-anchor="middle" fill="#555">`+
		text+`</text></svg>`)
}

func (c *Console) tasks(w http.ResponseWriter, r *http.Request, ses *session) {
	list, err := c.o.Admin.Tasks(r.Context(), ses.caller, false)
	if err != nil {
		c.failErr(w, r, ses, err)
		return
	}
	c.show(w, ses, "tasks", "Tasks", map[string]any{"Tasks": list})
}

func (c *Console) config(w http.ResponseWriter, r *http.Request, ses *session) {
	if err := admin.RequireGlobal(ses.caller); err != nil {
		c.failErr(w, r, ses, err)
		return
	}
	text, err := maskedConfig(c.o.Config())
	if err != nil {
		c.failErr(w, r, ses, err)
		return
	}
	c.show(w, ses, "config", "Configuration", map[string]any{"YAML": text})
}
