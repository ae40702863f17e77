package api

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/gorilla/mux"

	"github.com/mediarepo/mediarepo/console"
)

// access says who may call a route.
type access int

const (
	public         access = iota // anyone; the legacy unauthenticated routes
	users                        // a valid access token, not a guest
	usersAndGuests               // a valid access token, guests too
	servers                      // a valid X-Matrix signature of another server
)

// legacyVersions are the /_matrix/media versions Synapse accepts.
var legacyVersions = []string{"r0", "v1", "v3"}

// route is one entry of the table of paths.
type route struct {
	method  string
	path    string
	access  access
	handler handlerFunc
}

// routes is the one table of paths. Every GET route answers HEAD too.
func (s *Server) routes(r *mux.Router) {
	// The router tries routes in order: the authenticated download, by far the
	// most requested, goes first.
	const c = "/_matrix/client/v1/media"
	table := []route{
		{"GET", c + "/download/{serverName}/{mediaId}", usersAndGuests, s.handleDownload},
		{"GET", c + "/download/{serverName}/{mediaId}/{fileName}", usersAndGuests, s.handleDownload},
		{"GET", c + "/thumbnail/{serverName}/{mediaId}", usersAndGuests, s.handleThumbnail},
		{"GET", c + "/config", users, s.handleConfig},
		{"GET", c + "/preview_url", users, s.handlePreview},
	}
	table = append(table, route{"GET", "/_matrix/media/unstable/org.matrix.msc4034/usage", users, s.handleUsage})
	const f = "/_matrix/federation/v1/media"
	table = append(table,
		route{"GET", f + "/download/{mediaId}", servers, s.handleFederationDownload},
		route{"GET", f + "/thumbnail/{mediaId}", servers, s.handleFederationThumbnail},
	)
	// MSC2246's create exists only as v1.
	table = append(table, route{"POST", "/_matrix/media/v1/create", users, s.handleCreate})
	for _, v := range legacyVersions {
		p := "/_matrix/media/" + v
		table = append(table,
			route{"POST", p + "/upload", users, s.handleUpload},
			route{"PUT", p + "/upload/{serverName}/{mediaId}", users, s.handleUploadTo},
			route{"GET", p + "/download/{serverName}/{mediaId}", public, s.handleDownloadLegacy},
			route{"GET", p + "/download/{serverName}/{mediaId}/{fileName}", public, s.handleDownloadLegacy},
			route{"GET", p + "/thumbnail/{serverName}/{mediaId}", public, s.handleThumbnailLegacy},
			route{"GET", p + "/config", users, s.handleConfig},
			route{"GET", p + "/preview_url", users, s.handlePreview},
		)
	}

	if s.ops.admin != nil {
		table = append(table, s.mmrRoutes()...)
		table = append(table, s.synapseRoutes()...)
	}
	if s.ops.logout != nil {
		for _, v := range []string{"r0", "v3"} {
			p := "/_matrix/client/" + v + "/logout"
			table = append(table, route{"POST", p, public, s.handleLogout(false)}, route{"POST", p + "/all", public, s.handleLogout(true)})
		}
	}
	if s.ops.console != nil {
		r.PathPrefix(console.Prefix).Handler(s.handle(named(console.Prefix, s.handleConsole)))
	}
	for _, rt := range table {
		h := named(rt.path, rt.handler)
		switch rt.access {
		case users:
			h = s.requireUser(h, false)
		case usersAndGuests:
			h = s.requireUser(h, true)
		case servers:
			h = s.requireServer(h)
		}
		methods := []string{rt.method}
		if rt.method == http.MethodGet {
			methods = append(methods, http.MethodHead)
		}
		r.Handle(rt.path, s.handle(h)).Methods(methods...)
	}
}

// named records the route's path template for the access metrics, before
// anything else runs.
func named(path string, next handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		stateFrom(r.Context()).route = path
		return next(w, r)
	}
}

// pathVar returns the route variable name unescaped, and whether the route has
// it. The router matches the escaped path so that %2F in a file name stays
// inside its segment.
func pathVar(r *http.Request, name string) (string, bool, error) {
	v, ok := mux.Vars(r)[name]
	if !ok || !strings.Contains(v, "%") {
		return v, ok, nil
	}
	u, err := url.PathUnescape(v)
	if err != nil {
		return "", true, errInvalidParam("Malformed percent-encoding in the path")
	}
	return u, true, nil
}
