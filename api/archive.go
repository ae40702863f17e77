package api

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"html/template"
	"net/http"
	"strconv"
	"time"

	"github.com/mediarepo/mediarepo/storage"
)

// matrix-media-repo's export and import routes. Starting an export or an
// import needs a token; reading, listing and deleting an export needs only
// its ID, the secret the export was answered with.

// archiveRoutes are the routes under one admin prefix a.
func (s *Server) archiveRoutes(a string) []route {
	return []route{
		{"POST", a + "/user/{userId}/export", users, s.handleExportUser},
		{"POST", a + "/server/{serverName}/export", users, s.handleExportServer},
		{"GET", a + "/export/{exportId}/view", public, s.handleExportView},
		{"GET", a + "/export/{exportId}/metadata", public, s.handleExportMetadata},
		{"GET", a + "/export/{exportId}/part/{partId}", public, s.handleExportPart},
		{"DELETE", a + "/export/{exportId}", public, s.handleExportDelete},
		{"POST", a + "/import", users, s.handleImport},
		{"POST", a + "/import/{importId}/part", users, s.handleImportPart},
		{"POST", a + "/import/{importId}/close", users, s.handleImportClose},
	}
}

// s3URLs reads s3_urls as matrix-media-repo does: true unless "false".
func s3URLs(r *http.Request) bool { return r.URL.Query().Get("s3_urls") != "false" }

func writeStarted(w http.ResponseWriter, idKey, id string, task int64) {
	writeJSON(w, http.StatusOK, map[string]any{idKey: id, "task_id": task})
}

func (s *Server) handleExportUser(w http.ResponseWriter, r *http.Request) error {
	v, err := vars(r, "userId")
	if err != nil {
		return err
	}
	id, task, err := s.ops.admin.ExportUser(r.Context(), caller(r), v[0], s3URLs(r))
	if err != nil {
		return err
	}
	writeStarted(w, "export_id", id, task)
	return nil
}

func (s *Server) handleExportServer(w http.ResponseWriter, r *http.Request) error {
	v, err := vars(r, "serverName")
	if err != nil {
		return err
	}
	id, task, err := s.ops.admin.ExportServer(r.Context(), caller(r), v[0], s3URLs(r))
	if err != nil {
		return err
	}
	writeStarted(w, "export_id", id, task)
	return nil
}

func (s *Server) handleExportMetadata(w http.ResponseWriter, r *http.Request) error {
	v, err := vars(r, "exportId")
	if err != nil {
		return err
	}
	e, err := s.ops.admin.Export(r.Context(), v[0])
	if errors.Is(err, storage.ErrNotFound) {
		e, err = &storage.Export{}, nil // matrix-media-repo answers an empty export
	}
	if err != nil {
		return err
	}
	parts := make([]map[string]any, len(e.Parts))
	for i, p := range e.Parts {
		parts[i] = map[string]any{"index": p.Index, "size": p.Size, "name": p.Name}
	}
	writeJSON(w, http.StatusOK, map[string]any{"entity": e.Entity, "parts": parts})
	return nil
}

func (s *Server) handleExportPart(w http.ResponseWriter, r *http.Request) error {
	v, err := vars(r, "exportId", "partId")
	if err != nil {
		return err
	}
	index, err := strconv.Atoi(v[1])
	if err != nil || index < 1 {
		return errBadRequest("invalid part index")
	}
	part, body, err := s.ops.admin.ExportPart(r.Context(), v[0], index)
	if err != nil {
		return err
	}
	defer body.Close()
	serveMedia(w, r, body, mediaResponse{
		contentType: "application/gzip", sha256: part.SHA256, disposition: "attachment; filename=" + part.Name,
		cacheControl: "private, no-store",
	})
	return nil
}

func (s *Server) handleExportDelete(w http.ResponseWriter, r *http.Request) error {
	v, err := vars(r, "exportId")
	if err != nil {
		return err
	}
	if err := s.ops.admin.DeleteExport(r.Context(), v[0]); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct{}{})
	return nil
}

func (s *Server) handleImport(w http.ResponseWriter, r *http.Request) error {
	id, task, err := s.ops.admin.StartImport(r.Context(), caller(r), r.Body)
	if err != nil {
		return err
	}
	writeStarted(w, "import_id", id, task)
	return nil
}

func (s *Server) handleImportPart(w http.ResponseWriter, r *http.Request) error {
	v, err := vars(r, "importId")
	if err != nil {
		return err
	}
	if err := s.ops.admin.ImportPart(r.Context(), caller(r), v[0], r.Body); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct{}{})
	return nil
}

func (s *Server) handleImportClose(w http.ResponseWriter, r *http.Request) error {
	v, err := vars(r, "importId")
	if err != nil {
		return err
	}
	if err := s.ops.admin.CloseImport(r.Context(), caller(r), v[0]); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct{}{})
	return nil
}

// viewScript deletes the export from its page; the page's policy allows
// this script alone.
const viewScript = `document.getElementById("delete").addEventListener("click", function () {
  if (!confirm("Delete this export? Its files cannot be downloaded afterwards.")) return;
  fetch(location.pathname.replace(/\/view$/, ""), {method: "DELETE"}).then(function (r) {
    document.getElementById("status").textContent = r.ok ? "Deleted." : "Not deleted: " + r.status;
  });
});`

var viewPage = template.Must(template.New("view").Parse(`<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><meta name="robots" content="noindex"><title>Export of {{.Entity}}</title>
<style>body{font-family:sans-serif;margin:2em}li{margin:.3em 0}</style></head>
<body>
<h1>Export of {{.Entity}}</h1>
<p>Created {{.Created}}. Download every part and unpack them into one folder; open <code>index.html</code> to browse the files.</p>
<ul>
{{range .Parts}}<li><a href="part/{{.Index}}" download="{{.Name}}">{{.Name}}</a> ({{.Size}} bytes)</li>
{{else}}<li>No part is ready yet: reload this page in a moment.</li>
{{end}}</ul>
<p><button id="delete" type="button">Delete this export</button> <span id="status"></span></p>
<script>{{.Script}}</script>
</body>
</html>
`))

func (s *Server) handleExportView(w http.ResponseWriter, r *http.Request) error {
	v, err := vars(r, "exportId")
	if err != nil {
		return err
	}
	e, err := s.ops.admin.Export(r.Context(), v[0])
	if err != nil {
		return err
	}
	sum := sha256.Sum256([]byte(viewScript))
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Robots-Tag", "noindex, nofollow")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; connect-src 'self'; "+
		"script-src 'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'; frame-ancestors 'none'; form-action 'none'")
	return viewPage.Execute(w, map[string]any{
		"Entity": e.Entity, "Created": e.Created.UTC().Format(time.RFC1123), "Parts": e.Parts,
		"Script": template.JS(viewScript),
	})
}
