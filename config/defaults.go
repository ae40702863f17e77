package config

// DefaultSQLitePath is used when neither database.postgres nor database.sqlite is set.
const DefaultSQLitePath = "./data/media-repo.db"

// Default returns the configuration used for every key the file leaves out.
func Default() *Config {
	return &Config{
		Repo: Repo{
			BindAddress:                "127.0.0.1",
			Port:                       8000,
			LogLevel:                   "info",
			FreezeUnauthenticatedMedia: true,
		},
		Database: Database{
			Pool: Pool{MaxConnections: 25, MaxIdleConnections: 5},
		},
		AccessTokens: AccessTokens{MaxCacheTimeSeconds: 60},
		Uploads:      Uploads{MaxBytes: 104857600, MaxPending: 5, MaxAgeSeconds: 86400},
		Downloads:    Downloads{MaxBytes: 104857600, FailureCacheMinutes: 5},
		URLPreviews: URLPreviews{
			MaxPageSizeBytes: 10485760, NumWords: 50, MaxLength: 200, NumTitleWords: 30, MaxTitleLength: 150,
			FilePreviewTypes: []string{"image/*"}, NumWorkers: 10,
			DefaultLanguage: "en-US,en", UserAgent: "mediarepo (Matrix URL previews)", ExpireAfterDays: 7,
		},
		Timeouts: Timeouts{
			URLPreviewTimeoutSeconds: 10, ClientServerTimeoutSeconds: 30, FederationTimeoutSeconds: 120,
			BodyIdleSeconds: 60, MinBodyBytesPerSecond: 1024, ShutdownGraceSeconds: 30,
		},
		Retention:  Retention{OrphanBlobGraceHours: 24, OrphanBlobSweepHours: 24},
		Quarantine: Quarantine{ReplaceThumbnails: true, AllowLocalAdmins: true},
		Archiving:  Archiving{Enabled: true, TargetBytesPerPart: 209715200},
		Antivirus:  Antivirus{ClamdAddress: "unix:///run/clamav/clamd.ctl", TimeoutSeconds: 30},
		Console:    Console{Enabled: true},
		FeatureSupport: FeatureSupport{MSC2448: MSC2448{MaxWidth: 1024, MaxHeight: 1024, ThumbWidth: 64, ThumbHeight: 64,
			XComponents: 4, YComponents: 3, Punch: 1}},
		Metrics: Metrics{BindAddress: "127.0.0.1", Port: 9000},
		RateLimit: RateLimit{
			Enabled: true, RequestsPerSecond: 20, Burst: 100,
			Buckets: RateLimitBuckets{Downloads: DownloadBucket{
				CapacityBytes: 524288000, DrainBytesPerMinute: 5242880, OverflowLimitBytes: 104857600,
			}},
		},
		Thumbnails: Thumbnails{
			MaxSourceBytes:      10485760,
			MaxPixels:           32_000_000,
			MaxAnimationPixels:  100_000_000,
			MaxFrames:           1000,
			NumWorkers:          4,
			DecodeConcurrency:   4,
			DecodeMemoryBytes:   192 << 20,
			Sizes:               DefaultThumbnailSizes(),
			Pregenerate:         DefaultPregenerate(),
			Types:               []string{"image/jpeg", "image/png", "image/apng", "image/gif", "image/webp", "image/bmp", "image/tiff", "image/heic", "image/avif"},
			AllowAnimated:       true,
			MaxAnimateSizeBytes: 10485760,
			MaxAnimatePixels:    25_000_000,
			StillFrame:          0,
			JPEGQuality:         85,
			WebPQuality:         80,
			FFmpeg: FFmpeg{
				Path: "ffmpeg", TimeoutSeconds: 20, CPUSeconds: 15, MemoryBytes: 1 << 30, MaxAudioSeconds: 900,
			},
		},
	}
}

// DefaultThumbnailSizes are the spec's recommended sizes.
func DefaultThumbnailSizes() []ThumbnailSize {
	return []ThumbnailSize{
		{32, 32, MethodCrop}, {96, 96, MethodCrop},
		{320, 240, MethodScale}, {640, 480, MethodScale}, {800, 600, MethodScale},
	}
}

// DefaultPregenerate are the thumbnail requests the common clients make the
// moment a picture is posted: Element Web's timeline image (800x600 scale),
// the mobile clients' smaller timeline and reply previews (320x240 scale),
// and avatars and room icons at their drawn size times the screen's pixel
// ratio (up to 96x96 crop).
func DefaultPregenerate() []ThumbnailSize {
	return []ThumbnailSize{{96, 96, MethodCrop}, {320, 240, MethodScale}, {800, 600, MethodScale}}
}

// mmrOnly lists keys that matrix-media-repo understands and mediarepo does not
// implement yet. They are accepted with one warning each so an operator's
// existing file keeps loading. "[]" stands for any list index; a key listed
// here covers everything below it.
var mmrOnly = map[string]bool{
	"repo.logDirectory":                     true,
	"repo.logColors":                        true,
	"federation.backoffAt":                  true,
	"homeservers[].backoffAt":               true,
	"accessTokens.useLocalAppserviceConfig": true,
	"accessTokens.appservices":              true,
	"urlPreviews.oEmbed":                    true,
	"urlPreviews.proxyUrl":                  true,
	"uploads.allowedTypes":                  true,
	"uploads.exclusions":                    true,
	"uploads.storagePaths":                  true,
	"downloads.numWorkers":                  true,
	"downloads.cache":                       true,
	"downloads.defaultRangeChunkSizeBytes":  true,
	"thumbnails":                            true,
	"identicons":                            true,
	"plugins":                               true,
	"sentry":                                true,
	"tasks":                                 true,
	"pgo":                                   true,
	"tracing":                               true,
	"signingKeys":                           true,
}
