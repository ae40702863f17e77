package memlimit_test

import (
	"testing"

	"github.com/mediarepo/mediarepo/storage"
	"github.com/mediarepo/mediarepo/storage/memlimit"
	"github.com/mediarepo/mediarepo/storage/storagetest"
)

func TestLimiter(t *testing.T) {
	storagetest.RunLimiter(t, func(t *testing.T) storage.Limiter { return memlimit.New() })
}
