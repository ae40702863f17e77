package api

import (
	"cmp"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// maxRanges bounds the ranges one response carries; a request for more gets
// the whole body, as Apache's MaxRanges does. Without it, "bytes=0-0," 200 000
// times turns a 1 MiB file into a 28 MB multipart answer.
const maxRanges = 16

// byteRange is an inclusive range of offsets.
type byteRange struct{ start, end int64 }

// limitRanges rewrites r's Range header so that http.ServeContent sends at
// most maxRanges ranges of a body of size bytes, overlapping and adjacent
// ones merged, and returns how many bytes the answer will carry: what a
// download bucket is charged. A header it cannot read is left to
// ServeContent, and charged as the whole body.
func limitRanges(r *http.Request, size int64) int64 {
	h := r.Header.Get("Range")
	if h == "" || r.Header.Get("If-Range") != "" {
		return size
	}
	spec, ok := strings.CutPrefix(h, "bytes=")
	if !ok {
		return size
	}
	var ranges []byteRange
	for part := range strings.SplitSeq(spec, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		br, ok := parseRange(part, size)
		if !ok {
			return size
		}
		if br.start < size { // unsatisfiable parts are dropped, as ServeContent does
			ranges = append(ranges, br)
		}
	}
	if len(ranges) == 0 {
		return size // ServeContent answers 416 or the whole body
	}
	merged := mergeRanges(ranges)
	if len(merged) > maxRanges {
		r.Header.Del("Range")
		return size
	}
	var b strings.Builder
	var n int64
	b.WriteString("bytes=")
	for i, br := range merged {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(br.start, 10) + "-" + strconv.FormatInt(br.end, 10))
		n += br.end - br.start + 1
	}
	r.Header.Set("Range", b.String())
	return n
}

// parseRange reads one "a-b", "a-" or "-n" of a body of size bytes, clamped
// to the body.
func parseRange(s string, size int64) (byteRange, bool) {
	first, last, ok := strings.Cut(s, "-")
	if !ok {
		return byteRange{}, false
	}
	first, last = strings.TrimSpace(first), strings.TrimSpace(last)
	if first == "" { // suffix: the last n bytes
		n, err := strconv.ParseInt(last, 10, 64)
		if err != nil || n <= 0 {
			return byteRange{}, false
		}
		return byteRange{max(size-n, 0), size - 1}, true
	}
	start, err := strconv.ParseInt(first, 10, 64)
	if err != nil || start < 0 {
		return byteRange{}, false
	}
	end := size - 1
	if last != "" {
		if end, err = strconv.ParseInt(last, 10, 64); err != nil || end < start {
			return byteRange{}, false
		}
		end = min(end, size-1)
	}
	return byteRange{start, end}, true
}

// mergeRanges sorts ranges and merges those that overlap or touch.
func mergeRanges(ranges []byteRange) []byteRange {
	slices.SortFunc(ranges, func(a, b byteRange) int { return cmp.Compare(a.start, b.start) })
	out := ranges[:1]
	for _, br := range ranges[1:] {
		last := &out[len(out)-1]
		if br.start <= last.end+1 {
			last.end = max(last.end, br.end)
			continue
		}
		out = append(out, br)
	}
	return out
}
