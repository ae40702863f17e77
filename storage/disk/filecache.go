package disk

import (
	"container/list"
	"io"
	"os"
	"sync"
)

// fileCache keeps small blobs' files open between requests, like nginx's
// open_file_cache. Serving a cached blob costs one pread instead of open,
// fcntl, epoll_ctl, two lseeks, sendfile and close: on a busy server most
// requests are for small, popular media (avatars, thumbnails).
//
// Each entry is reference-counted: an evicted or deleted file is closed only
// when its last reader is done.
type fileCache struct {
	mu      sync.Mutex
	max     int
	entries map[string]*list.Element // of *cachedFile
	lru     list.List                // front is most recent
}

type cachedFile struct {
	sum     string
	f       *os.File
	size    int64
	refs    int
	dropped bool // no longer in the cache; close when refs reaches 0
}

func newFileCache(max int) *fileCache {
	return &fileCache{max: max, entries: make(map[string]*list.Element)}
}

// get returns a reader for sum if its file is cached.
func (c *fileCache) get(sum string) (io.ReadSeekCloser, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[sum]
	if !ok {
		return nil, false
	}
	c.lru.MoveToFront(el)
	cf := el.Value.(*cachedFile)
	cf.refs++
	return c.reader(cf), true
}

// add caches f (of size bytes) for sum and returns a reader for it. If sum
// was cached meanwhile, f is closed and the cached file used.
func (c *fileCache) add(sum string, f *os.File, size int64) io.ReadSeekCloser {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[sum]; ok {
		f.Close()
		cf := el.Value.(*cachedFile)
		cf.refs++
		return c.reader(cf)
	}
	cf := &cachedFile{sum: sum, f: f, size: size, refs: 1}
	c.entries[sum] = c.lru.PushFront(cf)
	for c.lru.Len() > c.max {
		c.dropLocked(c.lru.Back())
	}
	return c.reader(cf)
}

// remove drops sum from the cache, e.g. because the blob was deleted.
func (c *fileCache) remove(sum string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[sum]; ok {
		c.dropLocked(el)
	}
}

// closeAll drops every entry; files in use close when released.
func (c *fileCache) closeAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.lru.Len() > 0 {
		c.dropLocked(c.lru.Back())
	}
}

func (c *fileCache) dropLocked(el *list.Element) {
	cf := c.lru.Remove(el).(*cachedFile)
	delete(c.entries, cf.sum)
	cf.dropped = true
	if cf.refs == 0 {
		cf.f.Close()
	}
}

func (c *fileCache) release(cf *cachedFile) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cf.refs--
	if cf.refs == 0 && cf.dropped {
		cf.f.Close()
	}
}

func (c *fileCache) reader(cf *cachedFile) io.ReadSeekCloser {
	return &cachedReader{SectionReader: io.NewSectionReader(cf.f, 0, cf.size), cache: c, cf: cf}
}

// cachedReader reads a shared file with ReadAt, so readers never disturb each
// other's offsets. Close releases the reference once.
type cachedReader struct {
	*io.SectionReader
	cache *fileCache
	cf    *cachedFile
	once  sync.Once
}

func (r *cachedReader) Close() error {
	r.once.Do(func() { r.cache.release(r.cf) })
	return nil
}
