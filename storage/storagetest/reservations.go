package storagetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/mediarepo/mediarepo/storage"
)

// reservationStores is one store seen as the two interfaces the reservation
// cases use: completing a reservation creates a media row.
type reservationStores struct {
	res   storage.ReservationStore
	media storage.MediaStore
}

// RunReservationStore checks the ReservationStore contract against a fresh
// store from open for each case; open returns one store as both interfaces.
func RunReservationStore(t *testing.T, open func(t *testing.T) (storage.ReservationStore, storage.MediaStore)) {
	openBoth := func(t *testing.T) reservationStores {
		r, m := open(t)
		return reservationStores{r, m}
	}
	runCases(t, openBoth, []testCase[reservationStores]{
		{"lifecycle", reservationLifecycle},
		{"expired reservations", reservationsExpire},
		{"pending limit holds under concurrency", reservationLimitRace},
		{"quota applies to completion", reservationQuota},
	})
}

func reservation(id, user string, expires time.Time) *storage.Pending {
	now := time.UnixMilli(time.Now().UnixMilli())
	return &storage.Pending{Origin: "example.org", MediaID: id, UserID: user, CreatedAt: now, ExpiresAt: expires}
}

func reservationLifecycle(t *testing.T, s reservationStores) {
	ctx := context.Background()
	later := time.Now().Add(time.Hour)
	if err := s.res.CreatePending(ctx, reservation("res1", "@a:example.org", later), 5); err != nil {
		t.Fatalf("CreatePending: %v", err)
	}
	p, err := s.res.Pending(ctx, "example.org", "res1")
	if err != nil || p.UserID != "@a:example.org" || !p.ExpiresAt.Equal(time.UnixMilli(later.UnixMilli())) {
		t.Fatalf("Pending = %+v, %v", p, err)
	}
	if err := s.res.CreatePending(ctx, reservation("res1", "@b:example.org", later), 5); !errors.Is(err, storage.ErrExists) {
		t.Errorf("second reservation of one ID = %v, want ErrExists", err)
	}
	m := mediaOf("res1", "@b:example.org", 4)
	if err := s.res.CompleteUpload(ctx, m, storage.Quota{}, nil); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("CompleteUpload by another user = %v, want ErrNotFound", err)
	}
	m.UserID = "@a:example.org"
	if err := s.res.CompleteUpload(ctx, m, storage.Quota{}, nil); err != nil {
		t.Fatalf("CompleteUpload: %v", err)
	}
	if got, err := s.media.Media(ctx, "example.org", "res1"); err != nil || got.SHA256 != m.SHA256 {
		t.Errorf("Media after completion = %+v, %v", got, err)
	}
	if _, err := s.res.Pending(ctx, "example.org", "res1"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Pending after completion = %v, want ErrNotFound", err)
	}
	if err := s.res.CompleteUpload(ctx, m, storage.Quota{}, nil); !errors.Is(err, storage.ErrExists) {
		t.Errorf("second CompleteUpload = %v, want ErrExists", err)
	}
	if err := s.res.CreatePending(ctx, reservation("res1", "@a:example.org", later), 5); !errors.Is(err, storage.ErrExists) {
		t.Errorf("reserving an uploaded ID = %v, want ErrExists", err)
	}
}

func reservationsExpire(t *testing.T, s reservationStores) {
	ctx := context.Background()
	past := time.Now().Add(-time.Minute)
	if err := s.res.CreatePending(ctx, reservation("old", "@a:example.org", past), 5); err != nil {
		t.Fatal(err)
	}
	if _, err := s.res.Pending(ctx, "example.org", "old"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Pending of an expired reservation = %v, want ErrNotFound", err)
	}
	if err := s.res.CompleteUpload(ctx, mediaOf("old", "@a:example.org", 4), storage.Quota{}, nil); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("CompleteUpload of an expired reservation = %v, want ErrNotFound", err)
	}
	s.res.CreatePending(ctx, reservation("fresh", "@a:example.org", time.Now().Add(time.Hour)), 5)
	n, err := s.res.DeleteExpiredPending(ctx, time.Now())
	if err != nil || n != 1 {
		t.Errorf("DeleteExpiredPending = %d, %v; want 1", n, err)
	}
	if _, err := s.res.Pending(ctx, "example.org", "fresh"); err != nil {
		t.Errorf("an unexpired reservation was swept: %v", err)
	}
}

func reservationLimitRace(t *testing.T, s reservationStores) {
	ctx := context.Background()
	later := time.Now().Add(time.Hour)
	const limit, tries = 3, 12
	errs := concurrently(tries, func(i int) error {
		return s.res.CreatePending(ctx, reservation(fmt.Sprintf("p%d", i), "@a:example.org", later), limit)
	})
	if ok := successes(t, errs, storage.ErrLimitExceeded); ok != limit {
		t.Errorf("%d reservations made, want exactly %d", ok, limit)
	}
	err := s.res.CreatePending(ctx, reservation("one-more", "@a:example.org", later), limit)
	var le *storage.LimitError
	if !errors.As(err, &le) || !le.Until.Equal(time.UnixMilli(later.UnixMilli())) {
		t.Errorf("over the limit = %v, want a LimitError until the oldest reservation expires (%v)", err, later)
	}
	// Another user is not affected.
	if err := s.res.CreatePending(ctx, reservation("other", "@b:example.org", later), limit); err != nil {
		t.Errorf("other user: %v", err)
	}
}

func reservationQuota(t *testing.T, s reservationStores) {
	ctx := context.Background()
	if err := s.media.CreateMedia(ctx, mediaOf("big", "@a:example.org", 100), storage.Quota{}, nil); err != nil {
		t.Fatal(err)
	}
	s.res.CreatePending(ctx, reservation("res", "@a:example.org", time.Now().Add(time.Hour)), 0)
	if err := s.res.CompleteUpload(ctx, mediaOf("res", "@a:example.org", 1), storage.Quota{MaxBytes: 100}, nil); !errors.Is(err, storage.ErrQuotaExceeded) {
		t.Errorf("CompleteUpload over quota = %v, want ErrQuotaExceeded", err)
	}
	if _, err := s.res.Pending(ctx, "example.org", "res"); err != nil {
		t.Errorf("a refused completion consumed the reservation: %v", err)
	}
}
