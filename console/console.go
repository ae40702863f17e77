// Package console is the operator console: server-rendered pages (no
// scripts) on which repository admins and homeserver admins see what the
// media repository holds and act on it, through the same admin.Service the
// admin API calls, with the same rules. Signing in takes an admin's access
// token, checked as an admin API request is, and gives a session cookie
// (HttpOnly, SameSite=Strict, Secure behind TLS); every form carries the
// session's CSRF token; every page is sent with a CSP allowing no script.
package console

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/sirupsen/logrus"

	"github.com/mediarepo/mediarepo/admin"
	"github.com/mediarepo/mediarepo/config"
	"github.com/mediarepo/mediarepo/storage"
	"github.com/mediarepo/mediarepo/thumbnails"
)

// Prefix is where the console is served, on every homeserver's Host.
const Prefix = "/_mediarepo/console"

// Thumbnails makes and opens thumbnails (thumbnailer.Service).
type Thumbnails interface {
	Spec(w, h int, method string, animated, acceptsWebP bool) thumbnails.Spec
	Thumbnail(ctx context.Context, m *storage.Media, spec thumbnails.Spec) (*storage.Thumbnail, error)
	Open(ctx context.Context, th *storage.Thumbnail) (io.ReadSeekCloser, error)
	Stored(ctx context.Context, m *storage.Media) ([]storage.Thumbnail, error)
}

// Originals opens a media's bytes (media.Service).
type Originals interface {
	Open(ctx context.Context, m *storage.Media) (io.ReadSeekCloser, error)
}

// Options are the console's dependencies.
type Options struct {
	Admin      *admin.Service
	Thumbnails Thumbnails
	Originals  Originals
	// Config is the config in force, shown (secrets masked) to repository
	// admins.
	Config func() *config.Config
	Log    *logrus.Entry
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// Env is what the HTTP edge knows of a request: its homeserver, and how to
// check an access token as an admin API request is checked.
type Env struct {
	Host         *config.Homeserver
	Authenticate func(ctx context.Context, token string) (admin.Caller, error)
	// TLS is whether the client's connection is TLS (directly or, through a
	// trusted proxy, by X-Forwarded-Proto): the cookie is then Secure.
	TLS bool
}

// Console serves the pages. It is safe for concurrent use.
type Console struct {
	o        Options
	sessions *sessions
	pages    map[string]*template.Template
}

//go:embed templates/*.html templates/console.css
var files embed.FS

// New parses the templates.
func New(o Options) (*Console, error) {
	if o.Admin == nil || o.Thumbnails == nil || o.Originals == nil || o.Config == nil || o.Log == nil {
		return nil, errors.New("console.New: Admin, Thumbnails, Originals, Config and Log are required")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	c := &Console{o: o, sessions: newSessions(o.Now), pages: map[string]*template.Template{}}
	funcs := template.FuncMap{"bytes": func(n int64) string { return humanize.IBytes(uint64(max(n, 0))) }, "mxc": func(m storage.Media) string { return "mxc://" + m.Origin + "/" + m.MediaID },
		"time": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }, "prefix": func() string { return Prefix },
		"args": func(csrf string, m *storage.Media, action, label string) map[string]any {
			return map[string]any{"CSRF": csrf, "M": m, "Action": action, "Label": label}
		}}
	for _, page := range []string{"login", "overview", "recent", "search", "media", "tasks", "config", "error"} {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(files, "templates/layout.html", "templates/"+page+".html")
		if err != nil {
			return nil, fmt.Errorf("console template %s: %w", page, err)
		}
		c.pages[page] = t
	}
	return c, nil
}

// ForgetToken ends the sessions signed in with the token of key
// (homeserver.TokenKey): it was logged out.
func (c *Console) ForgetToken(key string) {
	c.sessions.removeWhere(func(s *session) bool { return s.tokenKey == key })
}

// ForgetUser ends userID's sessions: they logged out of every device.
func (c *Console) ForgetUser(userID string) {
	c.sessions.removeWhere(func(s *session) bool { return s.caller.UserID == userID })
}

// Cookie names: the session, and the login form's own CSRF token (there is
// no session yet to hold it).
const (
	sessionCookie = "mediarepo_console"
	loginCookie   = "mediarepo_console_login"
)

// ServeHTTP serves a console request; env comes from the HTTP edge.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request, env Env) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; img-src 'self'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	// Pages by default, set before any status is written; the stylesheet
	// and images set their own.
	h.Set("Content-Type", "text/html; charset=utf-8")
	path := strings.TrimPrefix(r.URL.Path, Prefix)
	if path == "" {
		http.Redirect(w, r, Prefix+"/", http.StatusFound)
		return
	}
	switch {
	case path == "/console.css" && r.Method == http.MethodGet:
		data, _ := files.ReadFile("templates/console.css")
		h.Set("Content-Type", "text/css; charset=utf-8")
		w.Write(data)
		return
	case path == "/favicon.svg" && r.Method == http.MethodGet:
		h.Set("Content-Type", "image/svg+xml")
		h.Set("Cache-Control", "max-age=86400")
		io.WriteString(w, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#233"/><rect x="4" y="4" width="8" height="8" fill="#3a7"/></svg>`)
		return
	case path == "/login":
		c.login(w, r, env)
		return
	}
	ses := c.session(r, env)
	if ses == nil {
		http.Redirect(w, r, Prefix+"/login", http.StatusSeeOther)
		return
	}
	if r.Method == http.MethodPost && !sameToken(r.PostFormValue("csrf"), ses.csrf) {
		c.fail(w, r, ses, http.StatusForbidden, "This form is out of date or was not sent by the console (CSRF token missing or wrong). Reload the page and try again.")
		return
	}
	c.route(w, r, ses, path)
}

// route dispatches a signed-in request.
func (c *Console) route(w http.ResponseWriter, r *http.Request, ses *session, path string) {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	get, post := r.Method == http.MethodGet || r.Method == http.MethodHead, r.Method == http.MethodPost
	switch {
	case path == "/" && get:
		c.overview(w, r, ses)
	case path == "/recent" && get:
		c.recent(w, r, ses)
	case path == "/search" && get:
		c.search(w, r, ses)
	case path == "/tasks" && get:
		c.tasks(w, r, ses)
	case path == "/config" && get:
		c.config(w, r, ses)
	case path == "/logout" && post:
		c.sessions.remove(ses.id)
		http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: Prefix, MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
		http.Redirect(w, r, Prefix+"/login", http.StatusSeeOther)
	case len(parts) == 3 && parts[0] == "media" && get:
		c.media(w, r, ses, parts[1], parts[2])
	case len(parts) == 4 && parts[0] == "media" && post:
		c.act(w, r, ses, parts[1], parts[2], parts[3])
	case len(parts) == 3 && parts[0] == "thumbnail" && get:
		c.thumbnail(w, r, ses, parts[1], parts[2])
	default:
		c.fail(w, r, ses, http.StatusNotFound, "No such page.")
	}
}

// session returns the request's live session for its homeserver, or nil.
func (c *Console) session(r *http.Request, env Env) *session {
	ck, err := r.Cookie(sessionCookie)
	if err != nil || env.Host == nil {
		return nil
	}
	return c.sessions.get(ck.Value, env.Host.Name)
}

// login shows the sign-in form and checks what it sends: an access token of
// a repository admin or an admin of this homeserver.
func (c *Console) login(w http.ResponseWriter, r *http.Request, env Env) {
	data := map[string]any{"Host": hostName(env)}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodPost:
		ck, err := r.Cookie(loginCookie)
		if err != nil || !sameToken(r.PostFormValue("csrf"), ck.Value) {
			w.WriteHeader(http.StatusForbidden)
			data["Error"] = "The sign-in form is out of date (CSRF token missing or wrong): try again."
			break
		}
		caller, err := env.Authenticate(r.Context(), strings.TrimSpace(r.PostFormValue("token")))
		if err == nil {
			err = c.o.Admin.ServerAdmin(r.Context(), caller)
		}
		if err != nil {
			c.o.Log.WithError(err).WithField("host", hostName(env)).Info("console sign-in refused")
			w.WriteHeader(http.StatusForbidden)
			why := "the homeserver did not accept this access token"
			var ae *admin.Error
			if errors.As(err, &ae) {
				why = ae.Msg
			}
			data["Error"] = "Refused: " + why + ". The console is for repository admins and this homeserver's admins."
			break
		}
		ses := c.sessions.create(caller, env.Host.Name)
		http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: ses.id, Path: Prefix, HttpOnly: true, Secure: env.TLS,
			SameSite: http.SameSiteStrictMode, MaxAge: int(sessionTTL / time.Second)})
		http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: "", Path: Prefix + "/login", MaxAge: -1})
		c.o.Log.WithFields(logrus.Fields{"user_id": caller.UserID, "host": env.Host.Name, "global": caller.Global}).Info("console sign-in")
		http.Redirect(w, r, Prefix+"/", http.StatusSeeOther)
		return
	default:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	token := randomToken()
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: token, Path: Prefix + "/login", HttpOnly: true, Secure: env.TLS, SameSite: http.SameSiteStrictMode})
	data["CSRF"] = token
	c.render(w, "login", data)
}

func hostName(env Env) string {
	if env.Host == nil {
		return ""
	}
	return env.Host.Name
}

// page is what every signed-in page's layout shows.
type page struct {
	Title  string
	Host   string
	User   string
	Global bool
	CSRF   string
	Data   any
}

func (c *Console) show(w http.ResponseWriter, ses *session, name, title string, data any) {
	user := ses.caller.UserID
	if user == "" {
		user = "shared secret"
	}
	c.render(w, name, page{Title: title, Host: ses.host, User: user, Global: ses.caller.Global, CSRF: ses.csrf, Data: data})
}

func (c *Console) render(w http.ResponseWriter, name string, data any) {
	if err := c.pages[name].Execute(w, data); err != nil {
		c.o.Log.WithError(err).WithField("page", name).Warn("console page not rendered")
	}
}

// fail shows an error page with status.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, ses *session, status int, msg string) {
	w.WriteHeader(status)
	c.show(w, ses, "error", http.StatusText(status), map[string]any{"Status": status, "Message": msg})
}

// failErr shows what an admin.Service error says, with its status.
func (c *Console) failErr(w http.ResponseWriter, r *http.Request, ses *session, err error) {
	status := http.StatusInternalServerError
	var ae *admin.Error
	if errors.As(err, &ae) {
		status = map[admin.Kind]int{admin.Forbidden: 403, admin.Invalid: 400, admin.NotFound: 404, admin.Unsupported: 501, admin.Upstream: 502}[ae.Kind]
	} else {
		c.o.Log.WithError(err).Warn("console request failed")
	}
	c.fail(w, r, ses, status, message(err))
}

// message is what an error may tell the user: an admin.Error's message, or
// a generic line (details are logged, not shown).
func message(err error) string {
	var ae *admin.Error
	if errors.As(err, &ae) {
		return ae.Msg
	}
	return "something went wrong; the server's log has the details"
}
