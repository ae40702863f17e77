package postgres_test

import (
	"testing"

	"github.com/mediarepo/mediarepo/storage"
	"github.com/mediarepo/mediarepo/storage/storagetest"
)

func TestMetadataStore(t *testing.T) {
	storagetest.RunMetadataStore(t, func(t *testing.T) storage.MetadataStore {
		return storagetest.OpenPostgres(t)
	})
}
