package storagetest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mediarepo/mediarepo/storage"
)

// AdminStores are the stores the admin suites use, usually all one engine:
// the catalog, moderation, purge, task, lease and access stores checked,
// and the others the cases store rows with.
type AdminStores struct {
	Media        storage.MediaStore
	Thumbs       storage.ThumbnailStore
	Reservations storage.ReservationStore
	Catalog      storage.CatalogStore
	Moderation   storage.ModerationStore
	Purge        storage.PurgeStore
	Tasks        storage.TaskStore
	Leases       storage.LeaseStore
	Access       storage.AccessStore
	Exports      storage.ExportStore
	Transfer     storage.TransferStore
	Totals       storage.TotalsStore
}

// RunAdminStores checks the catalog, moderation, purge, task, lease and
// access contracts against fresh stores from open for each case.
func RunAdminStores(t *testing.T, open func(t *testing.T) AdminStores) {
	runCases(t, open, []testCase[AdminStores]{
		{"find media by every filter", adminFindFilters},
		{"find media ordered and paged", adminFindPaged},
		{"user statistics", adminUserStats},
		{"server usage", adminServerUsage},
		{"media totals by filter", adminMediaTotals},
		{"datastore estimate counts idle media and thumbnails", adminEstimate},
		{"quarantine is of bytes, across media", adminQuarantineByHash},
		{"quarantined bytes cannot be stored again", adminQuarantinedUpload},
		{"a homeserver's quarantine covers its own media only", adminScopedQuarantine},
		{"protected media is never quarantined", adminProtected},
		{"delete media: rows, thumbnails, usage, blobs", adminDeleteMedia},
		{"purged local IDs are never used again; remote ones are", adminTombstones},
		{"delete thumbnails before a time", adminDeleteThumbnails},
		{"a blob is deleted only when unreferenced", adminDeleteBlob},
		{"deleting a blob waits for an upload publishing the same bytes", adminDeleteBlobRace},
		{"tasks", adminTasks},
		{"leases", adminLeases},
		{"last access", adminAccess},
		{"exports and their parts", adminExports},
		{"a media's blurhash", adminBlurhash},
		{"transfer selection: distinct blobs, idle before, paged", adminTransferBlobs},
		{"moving a blob's rows to another datastore", adminMoveBlob},
		{"moving a blob waits for an upload publishing the same bytes", adminMoveBlobRace},
	})
}

// put stores a media row of origin, id, uploader, bytes (its hash is of
// content) and size, created at created.
func put(t *testing.T, s storage.MediaStore, origin, id, user, content string, size int64, created time.Time) *storage.Media {
	t.Helper()
	m := &storage.Media{
		Origin: origin, MediaID: id, ContentType: "image/png", UserID: user,
		SHA256: fakeSum(content), SizeBytes: size, DatastoreID: "local", CreatedAt: time.UnixMilli(created.UnixMilli()),
	}
	if err := s.CreateMedia(context.Background(), m, storage.Quota{}, nil); err != nil {
		t.Fatalf("CreateMedia %s/%s: %v", origin, id, err)
	}
	return m
}

// fakeSum is a 64-hex-digit stand-in digest for content.
func fakeSum(content string) string {
	return fmt.Sprintf("%064x", []byte(content))[:64]
}

func ids(ms []storage.Media) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.MediaID
	}
	return out
}

func find(t *testing.T, s AdminStores, f storage.MediaFilter) ([]string, int64) {
	t.Helper()
	ms, total, err := s.Catalog.FindMedia(context.Background(), f)
	if err != nil {
		t.Fatalf("FindMedia(%+v): %v", f, err)
	}
	return ids(ms), total
}

func adminFindFilters(t *testing.T, s AdminStores) {
	ctx := context.Background()
	day := 24 * time.Hour
	now := time.Now()
	put(t, s.Media, "example.org", "old", "@alice:example.org", "a", 10, now.Add(-3*day))
	put(t, s.Media, "example.org", "new", "@bob:example.org", "b", 2000, now)
	put(t, s.Media, "remote.org", "far", "", "c", 30, now.Add(-2*day))
	put(t, s.Media, "other.org", "twin", "@carol:other.org", "a", 10, now.Add(-day))
	if err := s.Access.RecordAccess(ctx, map[storage.MediaKey]time.Time{{Origin: "example.org", MediaID: "old"}: now}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Moderation.Quarantine(ctx, []string{fakeSum("c")}, "", "@admin:example.org"); err != nil {
		t.Fatal(err)
	}
	if err := s.Moderation.SetProtected(ctx, "example.org", "new", true); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		f    storage.MediaFilter
		want []string
	}{
		{"all", storage.MediaFilter{}, []string{"old", "far", "twin", "new"}},
		{"origins", storage.MediaFilter{Origins: []string{"example.org", "other.org"}}, []string{"old", "twin", "new"}},
		{"not origins", storage.MediaFilter{NotOrigins: []string{"example.org", "other.org"}}, []string{"far"}},
		{"user", storage.MediaFilter{UserID: "@bob:example.org"}, []string{"new"}},
		{"sha256", storage.MediaFilter{SHA256: fakeSum("a")}, []string{"old", "twin"}},
		{"created before", storage.MediaFilter{CreatedBefore: now.Add(-36 * time.Hour)}, []string{"old", "far"}},
		// old was created long ago but accessed now: not idle.
		{"idle since", storage.MediaFilter{IdleSince: now.Add(-12 * time.Hour)}, []string{"far", "twin"}},
		{"larger than", storage.MediaFilter{LargerThan: 20}, []string{"far", "new"}},
		{"quarantined", storage.MediaFilter{Quarantined: true}, []string{"far"}},
		{"not quarantined", storage.MediaFilter{NotQuarantined: true}, []string{"old", "twin", "new"}},
		{"not protected", storage.MediaFilter{NotProtected: true}, []string{"old", "far", "twin"}},
		{"combined", storage.MediaFilter{Origins: []string{"example.org"}, NotProtected: true, LargerThan: 5}, []string{"old"}},
	}
	for _, tt := range tests {
		got, total := find(t, s, tt.f)
		if !slices.Equal(got, tt.want) || total != int64(len(tt.want)) {
			t.Errorf("%s: got %v (total %d), want %v", tt.name, got, total, tt.want)
		}
	}
	ms, _, _ := s.Catalog.FindMedia(ctx, storage.MediaFilter{SHA256: fakeSum("c")})
	if len(ms) != 1 || ms[0].QuarantinedBy != "@admin:example.org" {
		t.Errorf("quarantined media read as %+v, want QuarantinedBy set", ms)
	}
	ms, _, _ = s.Catalog.FindMedia(ctx, storage.MediaFilter{UserID: "@alice:example.org"})
	if len(ms) != 1 || ms[0].LastAccess.UnixMilli() != now.UnixMilli() {
		t.Errorf("accessed media read as %+v, want LastAccess %v", ms, now)
	}
}

func adminFindPaged(t *testing.T, s AdminStores) {
	now := time.Now()
	for i, name := range []string{"c", "a", "e", "b", "d"} {
		put(t, s.Media, "example.org", name, "@alice:example.org", name, int64(100-i), now.Add(time.Duration(i)*time.Second))
	}
	tests := []struct {
		f    storage.MediaFilter
		want []string
	}{
		{storage.MediaFilter{}, []string{"c", "a", "e", "b", "d"}},
		{storage.MediaFilter{Desc: true}, []string{"d", "b", "e", "a", "c"}},
		{storage.MediaFilter{Order: storage.ByMediaID}, []string{"a", "b", "c", "d", "e"}},
		{storage.MediaFilter{Order: storage.BySize}, []string{"d", "b", "e", "a", "c"}},
		{storage.MediaFilter{Order: storage.ByMediaID, Offset: 1, Limit: 2}, []string{"b", "c"}},
		{storage.MediaFilter{Order: storage.ByMediaID, Offset: 3}, []string{"d", "e"}},
		// Equal content types: ties go by media ID.
		{storage.MediaFilter{Order: storage.ByContentType, Desc: true}, []string{"a", "b", "c", "d", "e"}},
	}
	for _, tt := range tests {
		got, total := find(t, s, tt.f)
		if !slices.Equal(got, tt.want) || total != 5 {
			t.Errorf("%+v: got %v (total %d), want %v (total 5)", tt.f, got, total, tt.want)
		}
	}
	if _, _, err := s.Catalog.FindMedia(context.Background(), storage.MediaFilter{Order: "size; DROP TABLE media"}); err == nil {
		t.Error("an unknown order was accepted")
	}
}

func adminUserStats(t *testing.T, s AdminStores) {
	ctx := context.Background()
	base := time.UnixMilli(1_700_000_000_000)
	put(t, s.Media, "example.org", "a1", "@alice:example.org", "a1", 10, base)
	put(t, s.Media, "example.org", "a2", "@alice:example.org", "a2", 20, base.Add(time.Hour))
	put(t, s.Media, "example.org", "b1", "@bob:example.org", "b1", 100, base.Add(2*time.Hour))
	put(t, s.Media, "example.org", "n1", "", "n1", 1000, base)                             // no uploader: not a user
	put(t, s.Media, "other.org", "c1", "@carol:other.org", "c1", 5, base)                  // another origin
	put(t, s.Media, "example.org", "x1", "@x_%:example.org", "x1", 1, base.Add(time.Hour)) // LIKE wildcards in the name
	stats := func(f storage.StatsFilter) ([]storage.UserStats, int64) {
		t.Helper()
		f.Origin = "example.org"
		got, total, err := s.Catalog.UserStats(ctx, f)
		if err != nil {
			t.Fatalf("UserStats(%+v): %v", f, err)
		}
		return got, total
	}
	got, total := stats(storage.StatsFilter{})
	want := []storage.UserStats{{UserID: "@alice:example.org", Count: 2, Bytes: 30}, {UserID: "@bob:example.org", Count: 1, Bytes: 100}, {UserID: "@x_%:example.org", Count: 1, Bytes: 1}}
	if !slices.Equal(got, want) || total != 3 {
		t.Errorf("all: %+v (total %d), want %+v", got, total, want)
	}
	if got, _ := stats(storage.StatsFilter{Order: storage.ByMediaBytes, Desc: true, Limit: 1}); len(got) != 1 || got[0].UserID != "@bob:example.org" {
		t.Errorf("largest: %+v, want bob", got)
	}
	if got, total := stats(storage.StatsFilter{Order: storage.ByMediaCount, Desc: true, Offset: 1}); total != 3 || len(got) != 2 || got[0].UserID != "@bob:example.org" {
		t.Errorf("by count, page 2: %+v (total %d)", got, total)
	}
	if got, _ := stats(storage.StatsFilter{Search: "lic"}); len(got) != 1 || got[0].UserID != "@alice:example.org" {
		t.Errorf("search lic: %+v, want alice", got)
	}
	if got, _ := stats(storage.StatsFilter{Search: "_%"}); len(got) != 1 || got[0].UserID != "@x_%:example.org" {
		t.Errorf("search _%%: %+v, want only the user whose name has them", got)
	}
	if got, _ := stats(storage.StatsFilter{Search: "example"}); len(got) != 0 {
		t.Errorf("search matched the server name: %+v", got)
	}
	got, _ = stats(storage.StatsFilter{From: base.Add(time.Hour), Until: base.Add(time.Hour)})
	if want := []storage.UserStats{{UserID: "@alice:example.org", Count: 1, Bytes: 20}, {UserID: "@x_%:example.org", Count: 1, Bytes: 1}}; !slices.Equal(got, want) {
		t.Errorf("from = until = +1h: %+v, want %+v (both bounds inclusive)", got, want)
	}
}

func adminServerUsage(t *testing.T, s AdminStores) {
	ctx := context.Background()
	put(t, s.Media, "example.org", "a", "@alice:example.org", "a", 10, time.Now())
	put(t, s.Media, "example.org", "b", "", "b", 5, time.Now())
	put(t, s.Media, "other.org", "c", "", "c", 99, time.Now())
	th := sampleThumbnail(32, 32, "crop", false)
	th.Origin, th.MediaID, th.SizeBytes = "example.org", "a", 3
	if err := s.Thumbs.CreateThumbnail(ctx, th, nil); err != nil {
		t.Fatal(err)
	}
	u, err := s.Catalog.ServerUsage(ctx, "example.org")
	if err != nil {
		t.Fatal(err)
	}
	if want := (storage.ServerUsage{MediaBytes: 15, MediaCount: 2, ThumbnailBytes: 3, ThumbnailCount: 1}); u != want {
		t.Errorf("ServerUsage = %+v, want %+v", u, want)
	}
	if u, _ := s.Catalog.ServerUsage(ctx, "nobody.org"); u != (storage.ServerUsage{}) {
		t.Errorf("usage of an unknown server = %+v, want zeros", u)
	}
}

func adminMediaTotals(t *testing.T, s AdminStores) {
	ctx := context.Background()
	put(t, s.Media, "example.org", "a", "@alice:example.org", "a", 10, time.Now())
	put(t, s.Media, "example.org", "b", "", "b", 5, time.Now())
	put(t, s.Media, "remote.org", "c", "", "c", 99, time.Now())
	put(t, s.Media, "far.org", "d", "", "d", 1, time.Now())
	for _, tc := range []struct {
		f            storage.MediaFilter
		count, bytes int64
	}{
		{storage.MediaFilter{}, 4, 115},
		{storage.MediaFilter{NotOrigins: []string{"example.org"}}, 2, 100},
		{storage.MediaFilter{Origins: []string{"example.org"}, Limit: 1}, 2, 15}, // the page does not count
		{storage.MediaFilter{UserID: "@alice:example.org"}, 1, 10},
		{storage.MediaFilter{Origins: []string{"nobody.org"}}, 0, 0},
	} {
		count, bytes, err := s.Totals.MediaTotals(ctx, tc.f)
		if err != nil || count != tc.count || bytes != tc.bytes {
			t.Errorf("MediaTotals(%+v) = %d, %d, %v; want %d, %d", tc.f, count, bytes, err, tc.count, tc.bytes)
		}
	}
}

func adminEstimate(t *testing.T, s AdminStores) {
	ctx := context.Background()
	now := time.Now()
	put(t, s.Media, "example.org", "a", "", "a", 10, now)
	put(t, s.Media, "example.org", "b", "", "a", 10, now) // same bytes
	put(t, s.Media, "example.org", "c", "", "c", 7, now)
	put(t, s.Media, "example.org", "never", "", "n", 1000, now) // never accessed: not counted
	at := map[storage.MediaKey]time.Time{}
	for _, id := range []string{"a", "b", "c"} {
		at[storage.MediaKey{Origin: "example.org", MediaID: id}] = now.Add(-time.Hour)
	}
	if err := s.Access.RecordAccess(ctx, at); err != nil {
		t.Fatal(err)
	}
	th := sampleThumbnail(32, 32, "crop", false)
	th.Origin, th.MediaID, th.SizeBytes, th.DatastoreID = "example.org", "a", 3, "local"
	if err := s.Thumbs.CreateThumbnail(ctx, th, nil); err != nil {
		t.Fatal(err)
	}
	e, err := s.Catalog.Estimate(ctx, "local", now)
	if err != nil {
		t.Fatal(err)
	}
	want := storage.Estimate{Media: 3, MediaBlobs: 2, MediaBytes: 17, Thumbnails: 1, ThumbnailBlobs: 1, ThumbnailBytes: 3, Blobs: 3, Bytes: 20}
	if e != want {
		t.Errorf("Estimate = %+v, want %+v", e, want)
	}
	if e, _ := s.Catalog.Estimate(ctx, "local", now.Add(-2*time.Hour)); e != (storage.Estimate{}) {
		t.Errorf("nothing idle that long: %+v", e)
	}
}

func adminQuarantineByHash(t *testing.T, s AdminStores) {
	ctx := context.Background()
	put(t, s.Media, "example.org", "a", "", "bad", 10, time.Now())
	put(t, s.Media, "remote.org", "b", "", "bad", 10, time.Now())
	put(t, s.Media, "example.org", "c", "", "good", 10, time.Now())
	n, err := s.Moderation.Quarantine(ctx, []string{fakeSum("bad"), fakeSum("bad"), fakeSum("nothing stored")}, "", "@mod:example.org")
	if err != nil || n != 2 {
		t.Fatalf("Quarantine = %d, %v; want the 2 media with those bytes", n, err)
	}
	for _, k := range []storage.MediaKey{{Origin: "example.org", MediaID: "a"}, {Origin: "remote.org", MediaID: "b"}} {
		if m, err := s.Media.Media(ctx, k.Origin, k.MediaID); err != nil || m.QuarantinedBy != "@mod:example.org" {
			t.Errorf("%v after quarantine: %+v, %v", k, m, err)
		}
	}
	if m, _ := s.Media.Media(ctx, "example.org", "c"); m.QuarantinedBy != "" {
		t.Errorf("other bytes quarantined: %+v", m)
	}
	if n, _ := s.Moderation.Quarantine(ctx, []string{fakeSum("bad")}, "", "@mod:example.org"); n != 0 {
		t.Errorf("quarantining again changed %d rows, want 0", n)
	}
	if n, err := s.Moderation.Unquarantine(ctx, []string{fakeSum("bad")}, "", true); err != nil || n != 2 {
		t.Errorf("Unquarantine = %d, %v; want 2", n, err)
	}
	if m, _ := s.Media.Media(ctx, "remote.org", "b"); m.QuarantinedBy != "" {
		t.Errorf("after unquarantine: %+v", m)
	}
	if n, _ := s.Moderation.Unquarantine(ctx, []string{fakeSum("bad")}, "", true); n != 0 {
		t.Errorf("unquarantining again changed %d rows, want 0", n)
	}
}

func adminQuarantinedUpload(t *testing.T, s AdminStores) {
	ctx := context.Background()
	if _, err := s.Moderation.Quarantine(ctx, []string{fakeSum("bad")}, "", "@mod:example.org"); err != nil {
		t.Fatal(err)
	}
	published := false
	m := &storage.Media{Origin: "example.org", MediaID: "new", ContentType: "image/png", UserID: "@alice:example.org",
		SHA256: fakeSum("bad"), SizeBytes: 3, DatastoreID: "local", CreatedAt: time.Now()}
	err := s.Media.CreateMedia(ctx, m, storage.Quota{}, func(context.Context) error { published = true; return nil })
	if !errors.Is(err, storage.ErrQuarantined) || published {
		t.Fatalf("CreateMedia of quarantined bytes = %v (published %v), want ErrQuarantined and nothing published", err, published)
	}
	if u, _ := s.Media.Usage(ctx, "@alice:example.org"); u != (storage.Usage{}) {
		t.Errorf("a refused upload counted: %+v", u)
	}
}

func adminScopedQuarantine(t *testing.T, s AdminStores) {
	ctx := context.Background()
	put(t, s.Media, "example.org", "a", "", "bad", 10, time.Now())
	put(t, s.Media, "other.org", "b", "", "bad", 10, time.Now())
	if n, err := s.Moderation.Quarantine(ctx, []string{fakeSum("bad")}, "example.org", "@admin:example.org"); err != nil || n != 1 {
		t.Fatalf("Quarantine scoped to example.org = %d, %v; want its 1 media", n, err)
	}
	if m, _ := s.Media.Media(ctx, "other.org", "b"); m.QuarantinedBy != "" {
		t.Errorf("another origin's media with the same bytes was quarantined: %+v", m)
	}
	if m, _ := s.Media.Media(ctx, "example.org", "a"); m.QuarantinedBy != "@admin:example.org" {
		t.Errorf("scoped quarantine not applied: %+v", m)
	}
	upload := func(origin, id string) error {
		return s.Media.CreateMedia(ctx, &storage.Media{Origin: origin, MediaID: id, ContentType: "image/png",
			SHA256: fakeSum("bad"), SizeBytes: 10, DatastoreID: "local", CreatedAt: time.Now()}, storage.Quota{}, nil)
	}
	if err := upload("example.org", "again"); !errors.Is(err, storage.ErrQuarantined) {
		t.Errorf("upload of the bytes to example.org = %v, want ErrQuarantined", err)
	}
	if err := upload("other.org", "fine"); err != nil {
		t.Errorf("upload of the bytes to other.org = %v, want it stored", err)
	}
	// A repository admin's quarantine then covers the rest.
	if n, _ := s.Moderation.Quarantine(ctx, []string{fakeSum("bad")}, "", "@root:example.org"); n != 2 {
		t.Errorf("global quarantine covered %d more, want 2 (other.org's)", n)
	}
	if n, _ := s.Moderation.Unquarantine(ctx, []string{fakeSum("bad")}, "example.org", false); n != 0 {
		t.Errorf("lifting the scoped quarantine under a global one uncovered %d, want 0", n)
	}
	if n, _ := s.Moderation.Unquarantine(ctx, []string{fakeSum("bad")}, "", true); n != 3 {
		t.Errorf("lifting every quarantine uncovered %d, want 3", n)
	}
}

func adminProtected(t *testing.T, s AdminStores) {
	ctx := context.Background()
	put(t, s.Media, "example.org", "pinned", "", "x", 10, time.Now())
	put(t, s.Media, "example.org", "twin", "", "x", 10, time.Now())
	if err := s.Moderation.SetProtected(ctx, "example.org", "pinned", true); err != nil {
		t.Fatal(err)
	}
	if m, _ := s.Media.Media(ctx, "example.org", "pinned"); !m.Protected {
		t.Errorf("after SetProtected: %+v", m)
	}
	// Its bytes are shared: quarantining them would take it down too.
	if n, err := s.Moderation.Quarantine(ctx, []string{fakeSum("x")}, "", "@mod:example.org"); err != nil || n != 0 {
		t.Errorf("Quarantine of protected bytes = %d, %v; want 0", n, err)
	}
	if err := s.Moderation.SetProtected(ctx, "example.org", "pinned", false); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.Moderation.Quarantine(ctx, []string{fakeSum("x")}, "", "@mod:example.org"); n != 2 {
		t.Errorf("after unprotecting, Quarantine = %d, want 2", n)
	}
	if err := s.Moderation.SetProtected(ctx, "example.org", "nope", true); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("SetProtected of unknown media = %v, want ErrNotFound", err)
	}
}

func adminDeleteMedia(t *testing.T, s AdminStores) {
	ctx := context.Background()
	a := put(t, s.Media, "example.org", "a", "@alice:example.org", "shared", 10, time.Now())
	put(t, s.Media, "example.org", "b", "@alice:example.org", "shared", 10, time.Now())
	c := put(t, s.Media, "example.org", "c", "@alice:example.org", "own", 5, time.Now())
	th := sampleThumbnail(32, 32, "crop", false)
	th.Origin, th.MediaID, th.DatastoreID = "example.org", "a", "thumbs"
	if err := s.Thumbs.CreateThumbnail(ctx, th, nil); err != nil {
		t.Fatal(err)
	}
	removed, blobs, err := s.Purge.DeleteMedia(ctx, []storage.MediaKey{{Origin: "example.org", MediaID: "a"}, {Origin: "example.org", MediaID: "c"}, {Origin: "example.org", MediaID: "unknown"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(removed); !slices.Equal(got, []string{"a", "c"}) {
		t.Errorf("removed %v, want [a c]", got)
	}
	wantBlobs := []storage.BlobRef{{DatastoreID: "local", SHA256: a.SHA256}, {DatastoreID: "local", SHA256: c.SHA256}, {DatastoreID: "thumbs", SHA256: th.SHA256}}
	slices.SortFunc(blobs, cmpRef)
	slices.SortFunc(wantBlobs, cmpRef)
	if !slices.Equal(blobs, wantBlobs) {
		t.Errorf("blobs %v, want %v", blobs, wantBlobs)
	}
	if _, err := s.Media.Media(ctx, "example.org", "a"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("deleted media still found: %v", err)
	}
	if ths, _ := s.Thumbs.Thumbnails(ctx, "example.org", "a"); len(ths) != 0 {
		t.Errorf("thumbnails of deleted media kept: %+v", ths)
	}
	if _, err := s.Media.Media(ctx, "example.org", "b"); err != nil {
		t.Errorf("media sharing the bytes went too: %v", err)
	}
	if u, _ := s.Media.Usage(ctx, "@alice:example.org"); u != (storage.Usage{Bytes: 10, Files: 1}) {
		t.Errorf("usage after deleting two = %+v, want the one left", u)
	}
}

func cmpRef(x, y storage.BlobRef) int {
	return cmp.Or(strings.Compare(x.DatastoreID, y.DatastoreID), strings.Compare(x.SHA256, y.SHA256))
}

func adminTombstones(t *testing.T, s AdminStores) {
	ctx := context.Background()
	put(t, s.Media, "example.org", "local1", "", "x", 1, time.Now())
	put(t, s.Media, "remote.org", "remote1", "", "y", 1, time.Now())
	if _, _, err := s.Purge.DeleteMedia(ctx, []storage.MediaKey{{Origin: "example.org", MediaID: "local1"}, {Origin: "remote.org", MediaID: "remote1"}}, []string{"example.org"}); err != nil {
		t.Fatal(err)
	}
	again := &storage.Media{Origin: "example.org", MediaID: "local1", ContentType: "text/plain", SHA256: fakeSum("z"), SizeBytes: 1, DatastoreID: "local", CreatedAt: time.Now()}
	if err := s.Media.CreateMedia(ctx, again, storage.Quota{}, nil); !errors.Is(err, storage.ErrExists) {
		t.Errorf("CreateMedia of a purged local ID = %v, want ErrExists", err)
	}
	p := &storage.Pending{Origin: "example.org", MediaID: "local1", UserID: "@alice:example.org", CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
	if err := s.Reservations.CreatePending(ctx, p, 0); !errors.Is(err, storage.ErrExists) {
		t.Errorf("CreatePending of a purged local ID = %v, want ErrExists", err)
	}
	// Remote media is cached: it is fetched again after a purge.
	refetch := &storage.Media{Origin: "remote.org", MediaID: "remote1", ContentType: "text/plain", SHA256: fakeSum("y"), SizeBytes: 1, DatastoreID: "local", CreatedAt: time.Now()}
	if err := s.Media.CreateMedia(ctx, refetch, storage.Quota{}, nil); err != nil {
		t.Errorf("CreateMedia of purged remote media = %v, want it stored again", err)
	}
}

func adminDeleteThumbnails(t *testing.T, s AdminStores) {
	ctx := context.Background()
	old := time.UnixMilli(time.Now().Add(-48 * time.Hour).UnixMilli())
	for i, created := range []time.Time{old, time.Now()} {
		th := sampleThumbnail(32*(i+1), 32, "crop", false)
		th.SHA256, th.CreatedAt = fakeSum(fmt.Sprint("thumb", i)), created
		if err := s.Thumbs.CreateThumbnail(ctx, th, nil); err != nil {
			t.Fatal(err)
		}
	}
	blobs, err := s.Purge.DeleteThumbnails(ctx, nil, time.Now().Add(-24*time.Hour))
	if err != nil || len(blobs) != 1 || blobs[0].SHA256 != fakeSum("thumb0") {
		t.Fatalf("DeleteThumbnails = %v, %v; want the old one's blob", blobs, err)
	}
	th := sampleThumbnail(1, 1, "crop", false)
	if left, _ := s.Thumbs.Thumbnails(ctx, th.Origin, th.MediaID); len(left) != 1 || left[0].Width != 64 {
		t.Errorf("left %+v, want the new one", left)
	}
	key := &storage.MediaKey{Origin: th.Origin, MediaID: th.MediaID}
	if blobs, err := s.Purge.DeleteThumbnails(ctx, key, time.Now().Add(time.Minute)); err != nil || len(blobs) != 1 {
		t.Errorf("DeleteThumbnails of one media = %v, %v", blobs, err)
	}
}

func adminDeleteBlob(t *testing.T, s AdminStores) {
	ctx := context.Background()
	m := put(t, s.Media, "example.org", "a", "", "x", 1, time.Now())
	ref := storage.BlobRef{DatastoreID: "local", SHA256: m.SHA256}
	ran := false
	del := func(context.Context) error { ran = true; return nil }
	if ok, err := s.Purge.DeleteBlob(ctx, ref, del); ok || ran || err != nil {
		t.Errorf("DeleteBlob of a referenced blob = %v, %v (ran %v); want it kept", ok, err, ran)
	}
	// The same bytes in another datastore are another blob.
	if ok, err := s.Purge.DeleteBlob(ctx, storage.BlobRef{DatastoreID: "elsewhere", SHA256: m.SHA256}, del); !ok || !ran || err != nil {
		t.Errorf("DeleteBlob of an unreferenced blob = %v, %v (ran %v); want it deleted", ok, err, ran)
	}
	failing := func(context.Context) error { return errors.New("disk on fire") }
	if ok, err := s.Purge.DeleteBlob(ctx, storage.BlobRef{DatastoreID: "elsewhere", SHA256: m.SHA256}, failing); ok || err == nil {
		t.Errorf("DeleteBlob whose delete fails = %v, %v; want the error", ok, err)
	}
}

// duringPublish stores m and, while its upload holds the blob's lock to
// publish the bytes, starts call: call must wait for the upload (fail the
// test if it returns within 200 ms); its result is returned once it does.
func duringPublish[R any](t *testing.T, s AdminStores, m *storage.Media, call func() R) R {
	t.Helper()
	ctx := context.Background()
	publishing, release := make(chan struct{}), make(chan struct{})
	uploaded := make(chan error, 1)
	go func() {
		uploaded <- s.Media.CreateMedia(ctx, m, storage.Quota{}, func(context.Context) error {
			close(publishing)
			<-release
			return nil
		})
	}()
	<-publishing
	done := make(chan R, 1)
	go func() { done <- call() }()
	select {
	case r := <-done:
		t.Fatalf("%+v while an upload was publishing the same bytes, want it to wait", r)
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	if err := <-uploaded; err != nil {
		t.Fatal(err)
	}
	return <-done
}

// adminDeleteBlobRace: an upload publishing bytes while they are being
// deleted. The delete must either run before the upload's row exists (and
// the upload then publishes the bytes again) or see the row and keep them.
func adminDeleteBlobRace(t *testing.T, s AdminStores) {
	type result struct {
		ran bool
		err error
	}
	m := &storage.Media{Origin: "example.org", MediaID: "up", ContentType: "image/png", SHA256: fakeSum("x"), SizeBytes: 1, DatastoreID: "local", CreatedAt: time.Now()}
	r := duringPublish(t, s, m, func() result {
		ok, err := s.Purge.DeleteBlob(context.Background(), storage.BlobRef{DatastoreID: "local", SHA256: m.SHA256}, func(context.Context) error { return nil })
		return result{ok, err}
	})
	if r.ran || r.err != nil {
		t.Errorf("DeleteBlob after the upload = %+v, want the blob kept", r)
	}
}

func adminTasks(t *testing.T, s AdminStores) {
	ctx := context.Background()
	start := time.UnixMilli(time.Now().UnixMilli())
	a := &storage.Task{Name: "storage_migration", Params: `{"before_ts":1}`, Start: start}
	b := &storage.Task{Name: "export_data", Params: `{}`, Start: start}
	for _, task := range []*storage.Task{a, b} {
		if err := s.Tasks.CreateTask(ctx, task); err != nil || task.ID == 0 {
			t.Fatalf("CreateTask = %v, id %d", err, task.ID)
		}
	}
	if a.ID == b.ID {
		t.Fatal("two tasks got one ID")
	}
	end := start.Add(time.Second)
	if err := s.Tasks.FinishTask(ctx, a.ID, end, "it broke"); err != nil {
		t.Fatal(err)
	}
	all, err := s.Tasks.Tasks(ctx, false)
	if err != nil || len(all) != 2 || all[0].ID != a.ID || !all[0].End.Equal(end) || all[0].Error != "it broke" || all[0].Params != a.Params {
		t.Errorf("Tasks = %+v, %v", all, err)
	}
	if open, _ := s.Tasks.Tasks(ctx, true); len(open) != 1 || open[0].ID != b.ID || !open[0].End.IsZero() {
		t.Errorf("unfinished = %+v, want only the second", open)
	}
	if got, err := s.Tasks.Task(ctx, b.ID); err != nil || got.Name != "export_data" || !got.Start.Equal(start) || got.Progress != "" {
		t.Errorf("Task = %+v, %v", got, err)
	}
	if err := s.Tasks.SetTaskProgress(ctx, b.ID, `{"blobs":3}`); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Tasks.Task(ctx, b.ID); err != nil || got.Progress != `{"blobs":3}` {
		t.Errorf("Task after SetTaskProgress = %+v, %v", got, err)
	}
	if _, err := s.Tasks.Task(ctx, 987654); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("unknown task = %v, want ErrNotFound", err)
	}
}

func adminLeases(t *testing.T, s AdminStores) {
	ctx := context.Background()
	now := time.Now()
	acquire := func(holder string, at time.Time) bool {
		t.Helper()
		ok, err := s.Leases.AcquireLease(ctx, "purge", holder, at, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !acquire("a", now) {
		t.Fatal("a free lease was refused")
	}
	if acquire("b", now.Add(30*time.Second)) {
		t.Error("b took a's running lease")
	}
	if !acquire("a", now.Add(50*time.Second)) {
		t.Error("a could not renew its lease")
	}
	if acquire("b", now.Add(100*time.Second)) {
		t.Error("b took a's renewed lease")
	}
	if h, err := s.Leases.LeaseHolderOf(ctx, "purge", now.Add(100*time.Second)); err != nil || h != "a" {
		t.Errorf("LeaseHolderOf = %q, %v; want a", h, err)
	}
	if h, err := s.Leases.LeaseHolderOf(ctx, "purge", now.Add(111*time.Second)); err != nil || h != "" {
		t.Errorf("LeaseHolderOf after it ran out = %q, %v; want none", h, err)
	}
	if !acquire("b", now.Add(111*time.Second)) {
		t.Error("b could not take an expired lease")
	}
	if err := s.Leases.ReleaseLease(ctx, "purge", "a"); err != nil {
		t.Fatal(err)
	}
	if acquire("a", now.Add(112*time.Second)) {
		t.Error("a's release of a lease it lost freed b's")
	}
	if err := s.Leases.ReleaseLease(ctx, "purge", "b"); err != nil {
		t.Fatal(err)
	}
	if !acquire("a", now.Add(113*time.Second)) {
		t.Error("a released lease stayed taken")
	}
	errs := concurrently(8, func(i int) error {
		ok, err := s.Leases.AcquireLease(ctx, "race", fmt.Sprint("holder", i), now, time.Minute)
		if err == nil && !ok {
			return storage.ErrExists
		}
		return err
	})
	if n := successes(t, errs, storage.ErrExists); n != 1 {
		t.Errorf("%d of 8 racing holders got the lease, want 1", n)
	}
}

func adminAccess(t *testing.T, s AdminStores) {
	ctx := context.Background()
	put(t, s.Media, "example.org", "a", "", "a", 1, time.Now())
	k := storage.MediaKey{Origin: "example.org", MediaID: "a"}
	later := time.UnixMilli(time.Now().UnixMilli())
	if err := s.Access.RecordAccess(ctx, map[storage.MediaKey]time.Time{k: later, {Origin: "example.org", MediaID: "gone"}: later}); err != nil {
		t.Fatal(err)
	}
	if err := s.Access.RecordAccess(ctx, map[storage.MediaKey]time.Time{k: later.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if m, _ := s.Media.Media(ctx, "example.org", "a"); !m.LastAccess.Equal(later) {
		t.Errorf("LastAccess = %v, want %v (an older record does not win)", m.LastAccess, later)
	}
}

func adminExports(t *testing.T, s AdminStores) {
	ctx := context.Background()
	created := time.UnixMilli(time.Now().UnixMilli())
	e := &storage.Export{ID: "abc123", Entity: "@alice:example.org", TaskID: 7, Created: created}
	if err := s.Exports.CreateExport(ctx, e); err != nil {
		t.Fatal(err)
	}
	if err := s.Exports.CreateExport(ctx, e); err == nil {
		t.Error("a second export with one ID was recorded")
	}
	published := false
	parts := []storage.ExportPart{
		{Index: 2, Name: "export-manifest.tgz", Size: 20, SHA256: fakeSum("manifest"), DatastoreID: "local"},
		{Index: 1, Name: "export-part-1.tgz", Size: 10, SHA256: fakeSum("part"), DatastoreID: "local"},
	}
	for i, p := range parts {
		publish := func(context.Context) error { published = true; return nil }
		if i == 1 {
			publish = nil
		}
		if err := s.Exports.AddExportPart(ctx, e.ID, p, publish); err != nil {
			t.Fatal(err)
		}
	}
	if !published {
		t.Error("AddExportPart did not publish")
	}
	failed := storage.ExportPart{Index: 3, Name: "x", SHA256: fakeSum("failed"), DatastoreID: "local"}
	if err := s.Exports.AddExportPart(ctx, e.ID, failed, func(context.Context) error { return errors.New("disk on fire") }); err == nil {
		t.Error("AddExportPart recorded a part whose publish failed")
	}
	got, err := s.Exports.Export(ctx, e.ID)
	if err != nil || got.Entity != e.Entity || got.TaskID != 7 || !got.Created.Equal(created) || len(got.Parts) != 2 ||
		got.Parts[0] != parts[1] || got.Parts[1] != parts[0] {
		t.Fatalf("Export = %+v, %v", got, err)
	}
	// Parts are references: the blob sweep and purges keep their blobs.
	if ok, err := s.Purge.DeleteBlob(ctx, storage.BlobRef{DatastoreID: "local", SHA256: fakeSum("part")}, func(context.Context) error { return nil }); ok || err != nil {
		t.Errorf("DeleteBlob of an export part's blob = %v, %v; want it kept", ok, err)
	}
	if _, err := s.Exports.Export(ctx, "nope"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("unknown export = %v, want ErrNotFound", err)
	}
	refs, err := s.Exports.DeleteExport(ctx, e.ID)
	slices.SortFunc(refs, cmpRef)
	want := []storage.BlobRef{{DatastoreID: "local", SHA256: fakeSum("manifest")}, {DatastoreID: "local", SHA256: fakeSum("part")}}
	slices.SortFunc(want, cmpRef)
	if err != nil || !slices.Equal(refs, want) {
		t.Errorf("DeleteExport = %v, %v; want %v", refs, err, want)
	}
	if _, err := s.Exports.Export(ctx, e.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("deleted export = %v, want ErrNotFound", err)
	}
	if ok, err := s.Purge.DeleteBlob(ctx, storage.BlobRef{DatastoreID: "local", SHA256: fakeSum("part")}, func(context.Context) error { return nil }); !ok || err != nil {
		t.Errorf("DeleteBlob after the export went = %v, %v; want deleted", ok, err)
	}
	if refs, err := s.Exports.DeleteExport(ctx, "nope"); err != nil || len(refs) != 0 {
		t.Errorf("DeleteExport of an unknown export = %v, %v", refs, err)
	}
}

// transferFixture stores, in datastore "local": an old media and a recent
// one sharing bytes "shared", an old one alone ("old"), a thumbnail of the
// old media ("thumb"), an export part ("part"), and one media in another
// datastore. It returns the time between old and recent.
func transferFixture(t *testing.T, s AdminStores) time.Time {
	ctx := context.Background()
	now := time.Now()
	put(t, s.Media, "example.org", "oldtwin", "", "shared", 6, now.Add(-48*time.Hour))
	put(t, s.Media, "example.org", "newtwin", "", "shared", 6, now)
	put(t, s.Media, "example.org", "old", "", "old", 3, now.Add(-48*time.Hour))
	elsewhere := &storage.Media{Origin: "example.org", MediaID: "far", ContentType: "image/png", SHA256: fakeSum("far"),
		SizeBytes: 3, DatastoreID: "s3", CreatedAt: now.Add(-48 * time.Hour)}
	if err := s.Media.CreateMedia(ctx, elsewhere, storage.Quota{}, nil); err != nil {
		t.Fatal(err)
	}
	th := &storage.Thumbnail{Origin: "example.org", MediaID: "old", Width: 32, Height: 32, Method: "crop",
		ContentType: "image/jpeg", SHA256: fakeSum("thumb"), SizeBytes: 5, DatastoreID: "local", CreatedAt: now}
	if err := s.Thumbs.CreateThumbnail(ctx, th, nil); err != nil {
		t.Fatal(err)
	}
	e := &storage.Export{ID: "exp", Entity: "@alice:example.org", Created: now.Add(-48 * time.Hour)}
	if err := s.Exports.CreateExport(ctx, e); err != nil {
		t.Fatal(err)
	}
	part := storage.ExportPart{Index: 1, Name: "export-part-1.tgz", Size: 4, SHA256: fakeSum("part"), DatastoreID: "local"}
	if err := s.Exports.AddExportPart(ctx, e.ID, part, nil); err != nil {
		t.Fatal(err)
	}
	return now.Add(-24 * time.Hour)
}

func transferBlobs(t *testing.T, s AdminStores, before time.Time, after string, limit int) []storage.TransferBlob {
	t.Helper()
	got, err := s.Transfer.TransferBlobs(context.Background(), "local", before, after, limit)
	if err != nil {
		t.Fatalf("TransferBlobs: %v", err)
	}
	return got
}

func adminTransferBlobs(t *testing.T, s AdminStores) {
	cut := transferFixture(t, s)
	var all []storage.TransferBlob
	for content, size := range map[string]int64{"old": 3, "part": 4, "shared": 6, "thumb": 5} {
		all = append(all, storage.TransferBlob{SHA256: fakeSum(content), Size: size})
	}
	slices.SortFunc(all, func(a, b storage.TransferBlob) int { return cmp.Compare(a.SHA256, b.SHA256) })
	if got := transferBlobs(t, s, time.Now().Add(time.Minute), "", 100); !slices.Equal(got, all) {
		t.Errorf("everything = %v, want %v (each blob once, nothing of another datastore)", got, all)
	}
	// Paged by SHA-256: two, then the rest after the second.
	first := transferBlobs(t, s, time.Now().Add(time.Minute), "", 2)
	rest := transferBlobs(t, s, time.Now().Add(time.Minute), first[len(first)-1].SHA256, 100)
	if !slices.Equal(append(first, rest...), all) {
		t.Errorf("paged = %v then %v, want %v", first, rest, all)
	}
	// Idle before the cut: the old media (and its thumbnail), the shared
	// bytes through their old row, the old export's part.
	if got := transferBlobs(t, s, cut, "", 100); !slices.Equal(got, all) {
		t.Errorf("idle before the cut = %v, want %v", got, all)
	}
	if got := transferBlobs(t, s, time.Now().Add(-72*time.Hour), "", 100); len(got) != 0 {
		t.Errorf("idle before everything = %v, want none", got)
	}
}

func adminMoveBlob(t *testing.T, s AdminStores) {
	ctx := context.Background()
	cut := transferFixture(t, s)
	// Before the cut only the old row of the shared bytes moves; the recent
	// one keeps the blob referenced in "local".
	if n, err := s.Transfer.MoveBlob(ctx, fakeSum("shared"), "local", "s3", cut); err != nil || n != 1 {
		t.Fatalf("MoveBlob(shared, before the cut) = %d, %v; want 1 row", n, err)
	}
	for id, want := range map[string]string{"oldtwin": "s3", "newtwin": "local"} {
		if m, err := s.Media.Media(ctx, "example.org", id); err != nil || m.DatastoreID != want {
			t.Errorf("%s after the move = %+v, %v; want datastore %s", id, m, err, want)
		}
	}
	if ok, _ := s.Purge.DeleteBlob(ctx, storage.BlobRef{DatastoreID: "local", SHA256: fakeSum("shared")}, func(context.Context) error { return nil }); ok {
		t.Error("the shared bytes were deleted from local while a row there still references them")
	}
	later := time.Now().Add(time.Minute)
	for _, c := range []struct {
		content string
		rows    int64
	}{{"shared", 1}, {"old", 1}, {"thumb", 1}, {"part", 1}, {"far", 0}} {
		if n, err := s.Transfer.MoveBlob(ctx, fakeSum(c.content), "local", "s3", later); err != nil || n != c.rows {
			t.Errorf("MoveBlob(%s) = %d, %v; want %d rows", c.content, n, err, c.rows)
		}
	}
	if got := transferBlobs(t, s, later, "", 100); len(got) != 0 {
		t.Errorf("left in local after moving everything: %v", got)
	}
	if th, _ := s.Thumbs.Thumbnails(ctx, "example.org", "old"); len(th) != 1 || th[0].DatastoreID != "s3" {
		t.Errorf("thumbnail after the move = %+v, want in s3", th)
	}
	if e, err := s.Exports.Export(ctx, "exp"); err != nil || e.Parts[0].DatastoreID != "s3" {
		t.Errorf("export part after the move = %+v, %v; want in s3", e, err)
	}
	for _, content := range []string{"shared", "old", "thumb", "part"} {
		ref := storage.BlobRef{DatastoreID: "local", SHA256: fakeSum(content)}
		if ok, err := s.Purge.DeleteBlob(ctx, ref, func(context.Context) error { return nil }); !ok || err != nil {
			t.Errorf("DeleteBlob(local %s) after the move = %v, %v; want deleted", content, ok, err)
		}
		ref.DatastoreID = "s3"
		if ok, _ := s.Purge.DeleteBlob(ctx, ref, func(context.Context) error { return nil }); ok {
			t.Errorf("DeleteBlob(s3 %s) ran; its rows are there now", content)
		}
	}
}

// adminMoveBlobRace: an upload publishing bytes into the source while they
// are being moved. The move must wait, and then move the new row too.
func adminMoveBlobRace(t *testing.T, s AdminStores) {
	type result struct {
		n   int64
		err error
	}
	m := &storage.Media{Origin: "example.org", MediaID: "up", ContentType: "image/png", SHA256: fakeSum("x"), SizeBytes: 1, DatastoreID: "local", CreatedAt: time.Now().Add(-time.Hour)}
	r := duringPublish(t, s, m, func() result {
		n, err := s.Transfer.MoveBlob(context.Background(), m.SHA256, "local", "s3", time.Now())
		return result{n, err}
	})
	if r.n != 1 || r.err != nil {
		t.Errorf("MoveBlob after the upload = %+v, want the new row moved", r)
	}
}

// WaitTask waits up to ten seconds for task id to end and returns it.
func WaitTask(t testing.TB, s storage.TaskStore, id int64) *storage.Task {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		task, err := s.Task(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if !task.End.IsZero() {
			return task
		}
	}
	t.Fatalf("task %d did not end", id)
	return nil
}

func adminBlurhash(t *testing.T, s AdminStores) {
	ctx := context.Background()
	bh, ok := s.Media.(storage.BlurhashStore)
	if !ok {
		t.Skip("the media store keeps no blurhashes")
	}
	m := put(t, s.Media, "example.org", "img", "", "pixels", 6, time.Now())
	if got, _ := s.Media.Media(ctx, m.Origin, m.MediaID); got.Blurhash != "" {
		t.Errorf("new media has blurhash %q", got.Blurhash)
	}
	if err := bh.SetBlurhash(ctx, m.Origin, m.MediaID, "LEHV6nWB2yk8pyo0adR*.7kCMdnj"); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Media.Media(ctx, m.Origin, m.MediaID); err != nil || got.Blurhash != "LEHV6nWB2yk8pyo0adR*.7kCMdnj" {
		t.Errorf("blurhash = %q, %v", got.Blurhash, err)
	}
	if found, _ := find(t, s, storage.MediaFilter{Origins: []string{"example.org"}}); len(found) != 1 {
		t.Errorf("FindMedia with the blurhash column = %v", found)
	}
}
