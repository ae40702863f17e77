// Package archive is matrix-media-repo's export format and the exports and
// imports made of it: gzip-compressed tar parts, export-part-1.tgz on, the
// last (export-manifest.tgz) holding manifest.json and an index.html a
// person can open. An export of a user's or a server's media is written as
// a task to a datastore taking archives and read back by its secret ID; an
// import takes the parts in any order and imports each media once. It
// imports storage, importer, config and mxid.
package archive

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"mime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/mediarepo/mediarepo/mxid"
)

// Manifest is manifest.json.
type Manifest struct {
	Version int `json:"version"`
	// EntityID is the user ID or server name exported.
	EntityID string `json:"entity_id"`
	// UserID is the entity of version 1 manifests.
	UserID    string             `json:"user_id,omitempty"`
	CreatedTS int64              `json:"created_ts"`
	Media     map[string]*Record `json:"media"` // by mxc:// URI
}

// Record is one media of a manifest.
type Record struct {
	Name        string `json:"name"`      // upload name
	FileName    string `json:"file_name"` // the tar entry holding the bytes
	SizeBytes   int64  `json:"size_bytes"`
	ContentType string `json:"content_type"`
	S3URL       string `json:"s3_url"`
	SHA256      string `json:"sha256"` // hex, of the bytes archived
	Origin      string `json:"origin"`
	MediaID     string `json:"media_id"`
	CreatedTS   int64  `json:"created_ts"`
	Uploader    string `json:"uploader"`
}

// MXC is the URI the record is keyed by.
func (r *Record) MXC() string { return mxid.MXC(r.Origin, r.MediaID) }

// Entity is the manifest's entity, whatever its version.
func (m *Manifest) Entity() string {
	if m.EntityID != "" {
		return m.EntityID
	}
	return m.UserID
}

const (
	manifestName = "manifest.json"
	indexName    = "index.html"
	// ManifestPart is the name of the last part.
	ManifestPart = "export-manifest.tgz"
)

// PartName is the file name of part index (from 1) of an export whose last
// part is last.
func PartName(index int, last bool) string {
	if last {
		return ManifestPart
	}
	return "export-part-" + strconv.Itoa(index) + ".tgz"
}

// Sink stores one finished part: it reads r to its end (or fails).
type Sink func(ctx context.Context, index int, name string, r io.Reader) error

// Writer writes an export as parts to a Sink: media entries into parts of
// about target bytes, then the manifest part. Not safe for concurrent use.
type Writer struct {
	ctx     context.Context
	sink    Sink
	target  int64
	created time.Time
	man     Manifest

	index   int // of the part being written, 0 before the first
	written int64
	part    *partWriter
}

// NewWriter starts an export of entity made at created.
func NewWriter(ctx context.Context, entity string, created time.Time, target int64, sink Sink) *Writer {
	return &Writer{
		ctx: ctx, sink: sink, target: target, created: created,
		man: Manifest{Version: 2, EntityID: entity, CreatedTS: created.UnixMilli(), Media: map[string]*Record{}},
	}
}

// Add archives one media of rec.SizeBytes bytes read from body; it sets
// rec.FileName and rec.SHA256. body having another length fails the export.
func (w *Writer) Add(rec Record, body io.Reader) error {
	if w.part == nil {
		if err := w.startPart(false); err != nil {
			return err
		}
	}
	rec.FileName = rec.Origin + "__" + rec.MediaID + extension(rec.ContentType)
	h := sha256.New()
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: rec.FileName, Mode: 0o644, Size: rec.SizeBytes, ModTime: time.UnixMilli(rec.CreatedTS)}
	if err := w.part.tw.WriteHeader(hdr); err != nil {
		return w.failPart(err)
	}
	n, err := io.Copy(w.part.tw, io.TeeReader(body, h))
	if err == nil && n != rec.SizeBytes {
		err = fmt.Errorf("%s has %d bytes, its record says %d", rec.MXC(), n, rec.SizeBytes)
	}
	if err != nil {
		return w.failPart(err)
	}
	rec.SHA256 = hex.EncodeToString(h.Sum(nil))
	w.man.Media[rec.MXC()] = &rec
	w.written += n
	if w.written >= w.target {
		return w.endPart()
	}
	return nil
}

// Close writes the manifest part (after an empty first part if nothing
// was added) and returns the first error of any part.
func (w *Writer) Close() error {
	if w.index == 0 { // an export of nothing still has part 1
		if err := w.startPart(false); err != nil {
			return err
		}
	}
	if w.part != nil {
		if err := w.endPart(); err != nil {
			return err
		}
	}
	if err := w.startPart(true); err != nil {
		return err
	}
	man, err := json.MarshalIndent(&w.man, "", "  ")
	if err != nil {
		return w.failPart(err)
	}
	var index strings.Builder
	if err := indexPage.Execute(&index, indexData(&w.man)); err != nil {
		return w.failPart(err)
	}
	for _, f := range []struct {
		name string
		body []byte
	}{{manifestName, man}, {indexName, []byte(index.String())}} {
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: 0o644, Size: int64(len(f.body)), ModTime: w.created}
		if err := w.part.tw.WriteHeader(hdr); err != nil {
			return w.failPart(err)
		}
		if _, err := w.part.tw.Write(f.body); err != nil {
			return w.failPart(err)
		}
	}
	return w.endPart()
}

// Abort stops a part being written; its Sink sees an error.
func (w *Writer) Abort() {
	if w.part != nil {
		w.failPart(errors.New("export aborted"))
	}
}

// failPart ends the part being written with err and returns the first
// error (the Sink's, if it failed first).
func (w *Writer) failPart(err error) error {
	p := w.part
	w.part = nil
	p.pw.CloseWithError(err)
	if sinkErr := <-p.done; sinkErr != nil {
		return sinkErr
	}
	return err
}

// partWriter is a part in the writing: tar into gzip into a pipe the Sink
// reads in its own goroutine, which finish waits for.
type partWriter struct {
	pw   *io.PipeWriter
	gz   *gzip.Writer
	tw   *tar.Writer
	done chan error
}

func (w *Writer) startPart(last bool) error {
	w.index++
	w.written = 0
	name := PartName(w.index, last)
	pr, pw := io.Pipe()
	gz := gzip.NewWriter(pw)
	gz.Name = strings.TrimSuffix(name, ".tgz") + ".tar"
	gz.ModTime = w.created
	p := &partWriter{pw: pw, gz: gz, tw: tar.NewWriter(gz), done: make(chan error, 1)}
	index := w.index
	go func() {
		err := w.sink(w.ctx, index, name, pr)
		pr.CloseWithError(cmpErr(err, errors.New("the part's store stopped reading")))
		p.done <- err
	}()
	w.part = p
	return nil
}

func cmpErr(err, def error) error {
	if err != nil {
		return err
	}
	return def
}

func (w *Writer) endPart() error {
	p := w.part
	w.part = nil
	err := errors.Join(p.tw.Close(), p.gz.Close())
	if err != nil {
		p.pw.CloseWithError(err)
	} else {
		p.pw.Close()
	}
	return errors.Join(err, <-p.done)
}

// extension is the file name extension for a content type: the common
// ones by hand (mime's tables vary by machine), others from mime.
func extension(contentType string) string {
	ct, _, _ := mime.ParseMediaType(contentType)
	if ext, ok := extensions[ct]; ok {
		return ext
	}
	exts, _ := mime.ExtensionsByType(ct)
	if len(exts) == 0 {
		return ""
	}
	sort.Strings(exts)
	return exts[0]
}

var extensions = map[string]string{
	"image/png": ".png", "image/jpeg": ".jpg", "image/gif": ".gif", "image/webp": ".webp", "image/apng": ".apng",
	"image/avif": ".avif", "image/heic": ".heic", "image/bmp": ".bmp", "image/tiff": ".tiff", "image/svg+xml": ".svg",
	"video/mp4": ".mp4", "video/webm": ".webm", "video/quicktime": ".mov", "audio/ogg": ".ogg", "audio/mpeg": ".mp3",
	"audio/mp4": ".m4a", "audio/webm": ".weba", "audio/wav": ".wav", "audio/flac": ".flac", "text/plain": ".txt",
	"text/html": ".html", "application/pdf": ".pdf", "application/json": ".json", "application/zip": ".zip",
	"application/octet-stream": "",
}

type indexRow struct {
	MXC, Name, FileName, ContentType, Uploader string
	Size                                       int64
	Created                                    string
}

func indexData(m *Manifest) map[string]any {
	rows := make([]indexRow, 0, len(m.Media))
	for _, r := range m.Media {
		rows = append(rows, indexRow{
			MXC: r.MXC(), Name: r.Name, FileName: r.FileName, ContentType: r.ContentType, Uploader: r.Uploader,
			Size: r.SizeBytes, Created: time.UnixMilli(r.CreatedTS).UTC().Format("2006-01-02 15:04:05 MST"),
		})
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].MXC < rows[j].MXC })
	return map[string]any{
		"Entity": m.Entity(), "Created": time.UnixMilli(m.CreatedTS).UTC().Format("2006-01-02 15:04:05 MST"), "Media": rows,
	}
}

// indexPage is index.html: what the archive holds, linking each file (all
// parts unpacked into one directory).
var indexPage = template.Must(template.New(indexName).Parse(`<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Media of {{.Entity}}</title>
<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}</style>
</head>
<body>
<h1>Media of {{.Entity}}</h1>
<p>Exported {{.Created}}: {{len .Media}} files. Unpack every part of the export into one folder for the links to work.</p>
<table>
<tr><th>File</th><th>Name</th><th>Type</th><th>Bytes</th><th>Uploaded</th><th>By</th><th>Matrix URI</th></tr>
{{range .Media}}<tr><td><a href="{{.FileName}}">{{.FileName}}</a></td><td>{{.Name}}</td><td>{{.ContentType}}</td><td>{{.Size}}</td><td>{{.Created}}</td><td>{{.Uploader}}</td><td>{{.MXC}}</td></tr>
{{end}}</table>
</body>
</html>
`))

// ReadPart reads one part: fn is called with each regular file, its
// body readable until fn returns.
func ReadPart(r io.Reader, fn func(name string, size int64, body io.Reader) error) error {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return fmt.Errorf("not a gzip-compressed archive part: %w", err)
	}
	defer gz.Close()
	tr := tar.NewReader(gz)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("not a tar archive part: %w", err)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		if err := fn(hdr.Name, hdr.Size, tr); err != nil {
			return err
		}
	}
}

// maxManifestBytes bounds manifest.json, which is read into memory: about
// two million media.
const maxManifestBytes = 1 << 30

// FindManifest returns the manifest of a part, or nil if it has none.
func FindManifest(r io.Reader) (*Manifest, error) {
	var found *Manifest
	err := ReadPart(r, func(name string, size int64, body io.Reader) error {
		if name != manifestName || found != nil {
			return nil
		}
		if size > maxManifestBytes {
			return fmt.Errorf("manifest.json has %d bytes, more than %d", size, int64(maxManifestBytes))
		}
		var m Manifest
		if err := json.NewDecoder(body).Decode(&m); err != nil {
			return fmt.Errorf("manifest.json: %w", err)
		}
		if m.Media == nil {
			m.Media = map[string]*Record{}
		}
		found = &m
		return nil
	})
	return found, err
}
