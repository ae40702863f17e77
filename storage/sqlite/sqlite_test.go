package sqlite_test

import (
	"testing"

	"github.com/mediarepo/mediarepo/storage/sqlite"
	"github.com/mediarepo/mediarepo/storage/storagetest"
)

func TestMetadataStore(t *testing.T) {
	storagetest.RunMetadataStores(t, func(t *testing.T) *sqlite.Store {
		return storagetest.OpenSQLite(t)
	})
}
