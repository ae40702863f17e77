package thumbnails_test

import (
	"testing"

	"github.com/mediarepo/mediarepo/config"
	"github.com/mediarepo/mediarepo/thumbnails"
)

func TestPick(t *testing.T) {
	spec := config.DefaultThumbnailSizes()
	mmrStyle := []config.ThumbnailSize{{Width: 32, Height: 32}, {Width: 640, Height: 480}}
	tests := map[string]struct {
		sizes  []config.ThumbnailSize
		w, h   int
		method string
		want   config.ThumbnailSize
	}{
		"exact crop":                {spec, 96, 96, "crop", config.ThumbnailSize{Width: 96, Height: 96, Method: "crop"}},
		"smallest covering crop":    {spec, 40, 40, "crop", config.ThumbnailSize{Width: 96, Height: 96, Method: "crop"}},
		"tiny crop":                 {spec, 1, 1, "crop", config.ThumbnailSize{Width: 32, Height: 32, Method: "crop"}},
		"crop larger than any crop": {spec, 300, 300, "crop", config.ThumbnailSize{Width: 96, Height: 96, Method: "crop"}},
		"element image view":        {spec, 800, 600, "scale", config.ThumbnailSize{Width: 800, Height: 600, Method: "scale"}},
		"between scale sizes":       {spec, 400, 300, "scale", config.ThumbnailSize{Width: 640, Height: 480, Method: "scale"}},
		"covering needs both sides": {spec, 330, 100, "scale", config.ThumbnailSize{Width: 640, Height: 480, Method: "scale"}},
		"scale beyond largest":      {spec, 2000, 2000, "scale", config.ThumbnailSize{Width: 800, Height: 600, Method: "scale"}},
		"small scale":               {spec, 32, 32, "scale", config.ThumbnailSize{Width: 320, Height: 240, Method: "scale"}},
		"no size of that method":    {[]config.ThumbnailSize{{Width: 320, Height: 240, Method: "scale"}}, 32, 32, "crop", config.ThumbnailSize{Width: 320, Height: 240, Method: "scale"}},
		"empty method means both":   {mmrStyle, 100, 100, "crop", config.ThumbnailSize{Width: 640, Height: 480, Method: "crop"}},
		"empty method, scale":       {mmrStyle, 20, 20, "scale", config.ThumbnailSize{Width: 32, Height: 32, Method: "scale"}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if got := thumbnails.Pick(tt.sizes, tt.w, tt.h, tt.method); got != tt.want {
				t.Errorf("Pick(%dx%d %s) = %+v, want %+v", tt.w, tt.h, tt.method, got, tt.want)
			}
		})
	}
}

func TestChooseDynamic(t *testing.T) {
	cfg := config.Default().Thumbnails
	cfg.DynamicSizing = true
	tests := map[string]struct {
		w, h   int
		method string
		want   thumbnails.Spec
	}{
		"as asked":              {50, 70, "crop", thumbnails.Spec{Width: 50, Height: 70, Method: "crop"}},
		"capped in proportion":  {1600, 600, "scale", thumbnails.Spec{Width: 800, Height: 300, Method: "scale"}},
		"unknown method scales": {50, 50, "", thumbnails.Spec{Width: 50, Height: 50, Method: "scale"}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if got := thumbnails.Choose(cfg, tt.w, tt.h, tt.method, false); got != tt.want {
				t.Errorf("Choose = %+v, want %+v", got, tt.want)
			}
		})
	}
	cfg.DynamicSizing = false
	if got := thumbnails.Choose(cfg, 50, 70, "crop", true); got != (thumbnails.Spec{Width: 96, Height: 96, Method: "crop", Animated: true}) {
		t.Errorf("Choose without dynamic sizing = %+v, want the picked 96x96 crop", got)
	}
}
