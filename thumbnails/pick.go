package thumbnails

import (
	"math"

	"github.com/mediarepo/mediarepo/config"
)

// Choose turns a client's request (a box of w x h and a method) into the Spec
// to generate or look up. With dynamic sizing the request itself is used,
// shrunk proportionally to fit the largest configured size; otherwise the
// best configured size is picked (see Pick).
func Choose(cfg config.Thumbnails, w, h int, method string, animated bool) Spec {
	if method != config.MethodCrop {
		method = config.MethodScale
	}
	if !cfg.DynamicSizing {
		s := Pick(cfg.Sizes, w, h, method)
		return Spec{Width: s.Width, Height: s.Height, Method: s.Method, Animated: animated}
	}
	largest := cfg.Sizes[0]
	for _, s := range cfg.Sizes {
		if s.Width*s.Height > largest.Width*largest.Height {
			largest = s
		}
	}
	k := math.Min(1, math.Min(float64(largest.Width)/float64(w), float64(largest.Height)/float64(h)))
	return Spec{
		Width:    max(1, int(math.Round(float64(w)*k))),
		Height:   max(1, int(math.Round(float64(h)*k))),
		Method:   method,
		Animated: animated,
	}
}

// Pick returns the configured size that best serves a request for a w x h box
// with method: among sizes of that method (or, if there are none, of any
// method) the smallest that covers the box, or else the largest. A size with
// an empty method offers both. The result always has a method set.
func Pick(sizes []config.ThumbnailSize, w, h int, method string) config.ThumbnailSize {
	var same, all []config.ThumbnailSize
	for _, s := range sizes {
		for _, m := range []string{config.MethodCrop, config.MethodScale} {
			if s.Method != "" && s.Method != m {
				continue
			}
			c := config.ThumbnailSize{Width: s.Width, Height: s.Height, Method: m}
			all = append(all, c)
			if m == method {
				same = append(same, c)
			}
		}
	}
	cands := same
	if len(cands) == 0 {
		cands = all
	}
	var best config.ThumbnailSize
	covered := false
	for _, c := range cands {
		area := c.Width * c.Height
		covers := c.Width >= w && c.Height >= h
		switch {
		case best.Width == 0,
			covers && !covered,
			covers && covered && area < best.Width*best.Height,
			!covers && !covered && area > best.Width*best.Height:
			best, covered = c, covers
		}
	}
	return best
}
