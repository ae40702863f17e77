package s3_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"testing"

	"github.com/mediarepo/mediarepo/storage"
	"github.com/mediarepo/mediarepo/storage/storagetest"
)

// BenchmarkBlobs writes and reads blobs of three sizes on S3 (SeaweedFS on
// loopback) and, as the reference of the same run, on the disk datastore:
// what mediarepo's upload and download paths do with a blob store.
func BenchmarkBlobs(b *testing.B) {
	stores := map[string]storage.BlobStore{"disk": storagetest.OpenDisk(b), "s3": shared.Open(b, nil)}
	ctx := context.Background()
	for _, size := range []int{64 << 10, 1 << 20, 16 << 20} {
		data := make([]byte, size)
		rand.Read(data)
		for _, name := range []string{"disk", "s3"} {
			st := stores[name]
			b.Run(fmt.Sprintf("write/%s/%dKiB", name, size>>10), func(b *testing.B) {
				b.SetBytes(int64(size))
				for i := 0; b.Loop(); i++ {
					data[0], data[1] = byte(i), byte(i>>8) // new bytes each time
					if _, _, err := storage.Put(ctx, st, bytes.NewReader(data)); err != nil {
						b.Fatal(err)
					}
				}
			})
			sum, _, err := storage.Put(ctx, st, bytes.NewReader(data))
			if err != nil {
				b.Fatal(err)
			}
			b.Run(fmt.Sprintf("read/%s/%dKiB", name, size>>10), func(b *testing.B) {
				b.SetBytes(int64(size))
				for b.Loop() {
					r, err := st.Open(ctx, sum)
					if err != nil {
						b.Fatal(err)
					}
					io.Copy(io.Discard, r)
					r.Close()
				}
			})
		}
	}
}
