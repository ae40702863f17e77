// Package config owns media-repo.yaml: the structs it decodes into, their
// defaults, loading with precise error positions, and validation. It imports
// only mxid (the identifier grammars) from this module; every other package
// receives the section it needs.
//
// Key names follow matrix-media-repo's config.sample.yaml so an operator moving
// from it can keep their file.
package config

// Config is the whole of media-repo.yaml. It is immutable after Load.
type Config struct {
	// Repo holds listener, logging and proxy settings.
	Repo Repo `yaml:"repo"`
	// Database selects the metadata store: PostgreSQL or the embedded SQLite file.
	Database Database `yaml:"database"`
	// Homeservers are the servers this repo serves media for, selected by Host.
	Homeservers []Homeserver `yaml:"homeservers"`
	// AccessTokens controls how token checks against the homeserver are cached.
	AccessTokens AccessTokens `yaml:"accessTokens"`
	// Admins are user IDs with full access to the repo's admin functions on every homeserver.
	Admins []string `yaml:"admins"`
	// SharedSecretAuth lets a tool authenticate as a repo admin with a fixed token.
	SharedSecretAuth SharedSecretAuth `yaml:"sharedSecretAuth"`
	// Datastores are where blobs are written; forKinds picks one per kind of media.
	Datastores []Datastore `yaml:"datastores"`
	// Uploads limits what users may upload.
	Uploads Uploads `yaml:"uploads"`
	// Downloads limits what is fetched from other servers.
	Downloads Downloads `yaml:"downloads"`
	// Thumbnails controls thumbnail generation.
	Thumbnails Thumbnails `yaml:"thumbnails"`
	// RateLimit limits requests and downloaded bytes per client.
	RateLimit RateLimit `yaml:"rateLimit"`
	// Redis, when enabled, holds the rate-limit buckets for every process.
	Redis Redis `yaml:"redis"`
	// URLPreviews controls /preview_url.
	URLPreviews URLPreviews `yaml:"urlPreviews"`
	// Timeouts bound outbound requests, slow bodies and shutdown.
	Timeouts Timeouts `yaml:"timeouts"`
	// Federation controls fetching media from other servers.
	Federation Federation `yaml:"federation"`
	// Retention removes what nothing needs any more.
	Retention Retention `yaml:"retention"`
	// Quarantine controls how quarantined media is answered and who may
	// quarantine.
	Quarantine Quarantine `yaml:"quarantine"`
	// Archiving controls exports and imports in matrix-media-repo's archive
	// format.
	Archiving Archiving `yaml:"archiving"`
	// Metrics serves Prometheus metrics on a listener of their own.
	Metrics Metrics `yaml:"metrics"`
	// Antivirus scans uploads and fetched remote media with ClamAV's clamd.
	Antivirus Antivirus `yaml:"antivirus"`
	// FeatureSupport turns on unstable features (MSCs), matrix-media-repo's names.
	FeatureSupport FeatureSupport `yaml:"featureSupport"`
	// Console is the operator console in the browser.
	Console Console `yaml:"console"`

	// hosts maps a normalised homeserver name to its entry; built by Load.
	hosts map[string]*Homeserver
	// warnings name accepted keys that are not implemented; filled by Load.
	warnings []string
	// notices say what of the file is left out on purpose (a datastore
	// with enabled: false).
	notices []string
}

// Repo holds listener, logging and proxy settings.
type Repo struct {
	// BindAddress is the IP address to listen on.
	BindAddress string `yaml:"bindAddress"`
	// Port is the TCP port to listen on.
	Port int `yaml:"port"`
	// UseForwardedHost makes the first X-Forwarded-Host value select the homeserver
	// instead of Host. Only safe when the reverse proxy overwrites that header.
	UseForwardedHost bool `yaml:"useForwardedHost"`
	// TrustAnyForwardedAddress trusts X-Forwarded-For from any peer, not only from
	// loopback and private addresses.
	TrustAnyForwardedAddress bool `yaml:"trustAnyForwardedAddress"`
	// LogLevel is one of panic, fatal, error, warn, info, debug, trace.
	LogLevel string `yaml:"logLevel"`
	// JSONLogs writes one JSON object per log line instead of text.
	JSONLogs bool `yaml:"jsonLogs"`
	// FreezeUnauthenticatedMedia makes media created while it is true answer 404 on the
	// unauthenticated /_matrix/media download routes (the spec's media freeze).
	FreezeUnauthenticatedMedia bool `yaml:"freezeUnauthenticatedMedia"`
}

// Database selects the metadata store.
type Database struct {
	// Postgres is a libpq connection string or URL. Takes precedence over nothing: set
	// either postgres or sqlite, not both.
	Postgres string `yaml:"postgres"`
	// SQLite is the path of the embedded database file, used when postgres is empty.
	SQLite string `yaml:"sqlite"`
	// Pool sizes the connection pool.
	Pool Pool `yaml:"pool"`
}

// Pool sizes the database connection pool.
type Pool struct {
	// MaxConnections is the most connections held open at once.
	MaxConnections int `yaml:"maxConnections"`
	// MaxIdleConnections is the most idle connections kept for reuse.
	MaxIdleConnections int `yaml:"maxIdleConnections"`
}

// Homeserver is one server this repo serves media for.
type Homeserver struct {
	// Name is the homeserver's server_name: the origin in mxc:// URIs and the Host
	// (or X-Forwarded-Host) that selects it.
	Name string `yaml:"name"`
	// CSAPI is the base URL where the homeserver's client-server API is reached;
	// access tokens are checked against its /account/whoami.
	CSAPI string `yaml:"csApi"`
	// SigningKeyPath is the homeserver's signing key file (Synapse's format),
	// used to sign federation requests for remote media. Without it, remote
	// media is fetched over the unauthenticated legacy route only.
	SigningKeyPath string `yaml:"signingKeyPath"`
	// AdminAPIKind is how the homeserver tells its admins: "matrix" (or
	// "dendrite") asks the spec's /_matrix/client/v3/admin/whois, "synapse"
	// Synapse's admin API, which also lists a room's media.
	AdminAPIKind string `yaml:"adminApiKind"`
}

// Admin API kinds.
const (
	AdminAPIMatrix   = "matrix"
	AdminAPISynapse  = "synapse"
	AdminAPIDendrite = "dendrite"
)

// Quarantine controls the answers for quarantined media.
type Quarantine struct {
	// ReplaceThumbnails answers a thumbnail of quarantined media with a
	// replacement image of the size asked for, instead of 404.
	ReplaceThumbnails bool `yaml:"replaceThumbnails"`
	// ReplaceDownloads answers a download of quarantined media with the
	// replacement image (512x512 PNG), instead of 404.
	ReplaceDownloads bool `yaml:"replaceDownloads"`
	// ThumbnailPath is the replacement image; empty draws one.
	ThumbnailPath string `yaml:"thumbnailPath"`
	// AllowLocalAdmins lets homeserver admins quarantine their own
	// homeserver's media; repository admins always may.
	AllowLocalAdmins bool `yaml:"allowLocalAdmins"`
}

// Archiving controls exports (GDPR requests, moves between servers) and
// their import.
type Archiving struct {
	// Enabled serves the export and import routes of the admin API.
	Enabled bool `yaml:"enabled"`
	// SelfService lets users export their own media, and homeserver admins
	// their homeserver's, without a repository admin.
	SelfService bool `yaml:"selfService"`
	// TargetBytesPerPart starts a new part of an export once this many bytes
	// are in the current one.
	TargetBytesPerPart int64 `yaml:"targetBytesPerPart"`
}

// FeatureSupport holds the MSCs that are turned on one by one.
type FeatureSupport struct {
	MSC2448 MSC2448 `yaml:"MSC2448"`
}

// MSC2448 makes a blurhash of each uploaded image, answered with the upload
// (xyz.amorgan.blurhash) and by /_matrix/media/unstable/info.
type MSC2448 struct {
	Enabled bool `yaml:"enabled"`
	// MaxWidth and MaxHeight bound the image the hash is computed from; it
	// is shrunk to ThumbWidth x ThumbHeight first, so they only matter when
	// they are smaller than that.
	MaxWidth  int `yaml:"maxWidth"`
	MaxHeight int `yaml:"maxHeight"`
	// ThumbWidth and ThumbHeight are the size the image is shrunk to first.
	ThumbWidth  int `yaml:"thumbWidth"`
	ThumbHeight int `yaml:"thumbHeight"`
	// XComponents and YComponents are the hash's detail (1 to 9 each).
	XComponents int `yaml:"xComponents"`
	YComponents int `yaml:"yComponents"`
	// Punch is the contrast clients decode with; carried for MMR configs,
	// it does not change the hash.
	Punch int `yaml:"punch"`
}

// Antivirus is the ClamAV clamd that media is scanned with as it arrives.
type Antivirus struct {
	// Enabled scans every upload and every fetched remote media.
	Enabled bool `yaml:"enabled"`
	// ClamdAddress is "tcp://host:port" or "unix:///path/to/clamd.ctl".
	ClamdAddress string `yaml:"clamdAddress"`
	// FailOpen lets media through, with a warning, when clamd cannot scan
	// it; otherwise (the default) such uploads are refused with 503.
	FailOpen bool `yaml:"failOpen"`
	// TimeoutSeconds bounds connecting to clamd and waiting for a verdict.
	TimeoutSeconds int `yaml:"timeoutSeconds"`
}

// Metrics is the Prometheus listener.
type Metrics struct {
	// Enabled serves GET /metrics on BindAddress:Port, never on the public
	// listener.
	Enabled     bool   `yaml:"enabled"`
	BindAddress string `yaml:"bindAddress"`
	Port        int    `yaml:"port"`
}

// AccessTokens controls access-token caching.
type AccessTokens struct {
	// MaxCacheTimeSeconds is how long a valid token is trusted without asking the
	// homeserver again. 0 disables the cache.
	MaxCacheTimeSeconds int `yaml:"maxCacheTimeSeconds"`
	// AllowQueryParameter accepts ?access_token= as well as the Authorization header.
	// Deprecated by the spec (removed in v1.20) and leaks tokens into proxy logs.
	AllowQueryParameter bool `yaml:"allowQueryParameter"`
}

// SharedSecretAuth lets a tool act as a repo admin on every homeserver.
type SharedSecretAuth struct {
	// Enabled turns shared-secret auth on.
	Enabled bool `yaml:"enabled"`
	// Token is the secret, sent as a Bearer access token.
	Token string `yaml:"token"`
}

// Datastore kinds, as in matrix-media-repo.
const (
	KindLocalMedia  = "local_media"
	KindRemoteMedia = "remote_media"
	KindThumbnails  = "thumbnails"
	KindArchives    = "archives"
	kindAll         = "all"
)

// Datastore is one place blobs are written to.
type Datastore struct {
	// Type is the backend; "file" is a directory on local disk.
	Type string `yaml:"type"`
	// ID names the datastore in the database; it must never change once used.
	ID string `yaml:"id"`
	// ForKinds lists what new blobs go here: local_media, remote_media, thumbnails,
	// archives, or all. An empty list makes the datastore read-only.
	ForKinds []string `yaml:"forKinds"`
	// Opts are the backend's options.
	Opts DatastoreOpts `yaml:"opts"`
	// Enabled false leaves the datastore out entirely, as matrix-media-repo
	// before v1.3 did; unset means enabled.
	Enabled *bool `yaml:"enabled"`
}

// DatastoreOpts are a datastore backend's options: path for file, the rest
// for s3 (matrix-media-repo's names).
type DatastoreOpts struct {
	// Path is the directory of a file datastore.
	Path string `yaml:"path"`
	// Endpoint is the S3 endpoint, host[:port] without a scheme.
	Endpoint     string `yaml:"endpoint"`
	AccessKeyID  string `yaml:"accessKeyId"`
	AccessSecret string `yaml:"accessSecret"`
	// SSL talks HTTPS to the endpoint; unset is true.
	SSL          *bool  `yaml:"ssl"`
	BucketName   string `yaml:"bucketName"`
	Region       string `yaml:"region"`
	StorageClass string `yaml:"storageClass"`
	// PrefixLength puts objects under the first that many characters of
	// their hash and a slash.
	PrefixLength int `yaml:"prefixLength"`
	// PublicBaseURL is where the bucket's objects can be fetched by
	// clients (a CDN, a public bucket): downloads of media shown inline are
	// redirected there where a route may redirect.
	PublicBaseURL string `yaml:"publicBaseUrl"`
	// RedirectWhenCached is matrix-media-repo's: mediarepo keeps no copy of
	// S3 objects, so it redirects whenever it may.
	RedirectWhenCached bool `yaml:"redirectWhenCached"`
	// PresignedRedirectSeconds, if positive, redirects downloads the public
	// base URL does not take to presigned URLs valid that long.
	PresignedRedirectSeconds int `yaml:"presignedRedirectSeconds"`
	// TempPath holds uploads on their way to the bucket.
	TempPath string `yaml:"tempPath"`
	// MultipartUploads sends large blobs in parts; unset is true.
	MultipartUploads *bool `yaml:"multipartUploads"`
}

// UseSSL is the ssl option, true unless set false.
func (o *DatastoreOpts) UseSSL() bool { return o.SSL == nil || *o.SSL }

// Multipart is the multipartUploads option, true unless set false.
func (o *DatastoreOpts) Multipart() bool { return o.MultipartUploads == nil || *o.MultipartUploads }

// For reports whether new blobs of kind go to this datastore.
func (d *Datastore) For(kind string) bool {
	for _, k := range d.ForKinds {
		if k == kind || k == kindAll {
			return true
		}
	}
	return false
}

// DatastoreFor returns the ID of the first datastore new blobs of kind go to.
// Thumbnails and remote media without a datastore of their own go with local
// media (Validate makes sure one takes local_media).
func (c *Config) DatastoreFor(kind string) string {
	for i := range c.Datastores {
		if c.Datastores[i].For(kind) {
			return c.Datastores[i].ID
		}
	}
	if kind != KindLocalMedia {
		return c.DatastoreFor(KindLocalMedia)
	}
	return ""
}

// Uploads limits uploads.
type Uploads struct {
	// MaxBytes is the largest upload accepted; 0 means no limit.
	MaxBytes int64 `yaml:"maxBytes"`
	// MinBytes is the smallest upload accepted.
	MinBytes int64 `yaml:"minBytes"`
	// ReportedMaxBytes is the m.upload.size announced to clients: 0 means maxBytes,
	// -1 means announce no limit.
	ReportedMaxBytes int64 `yaml:"reportedMaxBytes"`
	// MaxPending is how many media IDs a user may have reserved with
	// /_matrix/media/v1/create and not uploaded yet; 0 means no limit.
	MaxPending int `yaml:"maxPending"`
	// MaxAgeSeconds is how long a reserved media ID waits for its upload.
	MaxAgeSeconds int `yaml:"maxAgeSeconds"`
	// Quotas limit what each user may store.
	Quotas Quotas `yaml:"quotas"`
}

// Quotas limit what each user may store.
type Quotas struct {
	// Enabled turns the rules on.
	Enabled bool `yaml:"enabled"`
	// Users are rules by user ID glob; the first that matches applies.
	Users []QuotaRule `yaml:"users"`
}

// QuotaRule limits the users whose ID matches Glob (* matches anything).
type QuotaRule struct {
	// Glob matches user IDs, e.g. "@*:example.org".
	Glob string `yaml:"glob"`
	// MaxBytes is the total size of a user's uploads; 0 means no limit.
	MaxBytes int64 `yaml:"maxBytes"`
	// MaxFiles is the number of a user's uploads; 0 means no limit.
	MaxFiles int64 `yaml:"maxFiles"`
	// MaxPending replaces uploads.maxPending for these users; 0 means the default.
	MaxPending int `yaml:"maxPending"`
}

// Quota returns the rule for userID, if quotas are on and one matches.
func (q *Quotas) Quota(userID string) (QuotaRule, bool) {
	if !q.Enabled {
		return QuotaRule{}, false
	}
	for _, r := range q.Users {
		if globMatch(r.Glob, userID) {
			return r, true
		}
	}
	return QuotaRule{}, false
}

// globMatch reports whether s matches pattern, where * matches any run of
// characters (slashes included: they are legal in user IDs) and nothing else
// is special.
func globMatch(pattern, s string) bool {
	star, retry := -1, 0
	p, i := 0, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, retry = p, i
			p++
		case p < len(pattern) && pattern[p] == s[i]:
			p++
			i++
		case star >= 0:
			retry++
			p, i = star+1, retry
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// RateLimit limits requests and downloaded bytes per client IP (and per user
// when authenticated).
type RateLimit struct {
	// Enabled turns rate limiting on.
	Enabled bool `yaml:"enabled"`
	// RequestsPerSecond is the sustained request rate allowed.
	RequestsPerSecond float64 `yaml:"requestsPerSecond"`
	// Burst is how many requests may come at once before the rate applies.
	Burst int `yaml:"burst"`
	// Buckets are byte budgets.
	Buckets RateLimitBuckets `yaml:"buckets"`
}

// RateLimitBuckets are leaky buckets of bytes.
type RateLimitBuckets struct {
	// Downloads limits the bytes of media and thumbnails served per client IP.
	Downloads DownloadBucket `yaml:"downloads"`
}

// DownloadBucket is a leaky bucket of downloaded bytes.
type DownloadBucket struct {
	// CapacityBytes is the bucket's size; 0 turns the bucket off.
	CapacityBytes int64 `yaml:"capacityBytes"`
	// DrainBytesPerMinute is how fast it empties.
	DrainBytesPerMinute int64 `yaml:"drainBytesPerMinute"`
	// OverflowLimitBytes is how far one download may take it past its capacity.
	OverflowLimitBytes int64 `yaml:"overflowLimitBytes"`
}

// URLPreviews controls /preview_url, which makes this server fetch pages
// users name: every connection goes through the network policy below.
type URLPreviews struct {
	// Enabled turns the endpoint on; off, it answers 404 M_UNRECOGNIZED.
	Enabled bool `yaml:"enabled"`
	// MaxPageSizeBytes caps a page or image, counted after decompression.
	MaxPageSizeBytes int64 `yaml:"maxPageSizeBytes"`
	// PreviewUnsafeCertificates skips TLS certificate checks.
	PreviewUnsafeCertificates bool `yaml:"previewUnsafeCertificates"`
	// NumWords caps the words of a description.
	NumWords int `yaml:"numWords"`
	// MaxLength caps the characters of a description.
	MaxLength int `yaml:"maxLength"`
	// NumTitleWords caps the words of a title.
	NumTitleWords int `yaml:"numTitleWords"`
	// MaxTitleLength caps the characters of a title.
	MaxTitleLength int `yaml:"maxTitleLength"`
	// FilePreviewTypes are the non-HTML types previewed as files (images).
	FilePreviewTypes []string `yaml:"filePreviewTypes"`
	// NumWorkers bounds previews fetched at once.
	NumWorkers int `yaml:"numWorkers"`
	// DisallowedNetworks are refused in addition to the built-in list of
	// loopback, private, link-local and reserved networks.
	DisallowedNetworks []string `yaml:"disallowedNetworks"`
	// AllowedNetworks, if not empty, are the only networks reached; an entry
	// at least as specific as a disallowed one overrides it.
	AllowedNetworks []string `yaml:"allowedNetworks"`
	// DefaultLanguage is sent as Accept-Language when the client sends none.
	DefaultLanguage string `yaml:"defaultLanguage"`
	// UserAgent is sent with every preview request.
	UserAgent string `yaml:"userAgent"`
	// ExpireAfterDays is how long a cached answer is kept; 0 keeps them forever.
	ExpireAfterDays int `yaml:"expireAfterDays"`
}

// Timeouts bound outbound requests, slow bodies and shutdown.
type Timeouts struct {
	// URLPreviewTimeoutSeconds bounds fetching one preview (page and image).
	URLPreviewTimeoutSeconds int `yaml:"urlPreviewTimeoutSeconds"`
	// ClientServerTimeoutSeconds bounds a call to a homeserver (token checks).
	ClientServerTimeoutSeconds int `yaml:"clientServerTimeoutSeconds"`
	// FederationTimeoutSeconds bounds fetching one piece of remote media.
	FederationTimeoutSeconds int `yaml:"federationTimeoutSeconds"`
	// BodyIdleSeconds is the longest a request body may stall between two
	// reads, or a response between two writes, before the request fails.
	BodyIdleSeconds int `yaml:"bodyIdleSeconds"`
	// MinBodyBytesPerSecond is the slowest a body may come in or go out on
	// average, after the first bodyIdleSeconds; 0 means no floor.
	MinBodyBytesPerSecond int64 `yaml:"minBodyBytesPerSecond"`
	// ShutdownGraceSeconds is how long requests in flight get to finish on
	// SIGTERM before their connections are closed.
	ShutdownGraceSeconds int `yaml:"shutdownGraceSeconds"`
}

// Redis is a Redis ring shared by every mediarepo process.
type Redis struct {
	// Enabled uses Redis for rate-limit buckets instead of process memory.
	Enabled bool `yaml:"enabled"`
	// DatabaseNumber is the Redis database to use.
	DatabaseNumber int `yaml:"databaseNumber"`
	// Shards are the Redis servers of the ring.
	Shards []RedisShard `yaml:"shards"`
}

// RedisShard is one Redis server.
type RedisShard struct {
	// Name identifies the shard in the ring; it must be unique.
	Name string `yaml:"name"`
	// Addr is host:port.
	Addr string `yaml:"addr"`
}

// Retention removes what nothing needs any more.
type Retention struct {
	// OrphanBlobGraceHours: blobs no media or thumbnail refers to (left by
	// crashes, refused uploads, lost races) are deleted once they are this
	// old; 0 turns the sweep off.
	OrphanBlobGraceHours int `yaml:"orphanBlobGraceHours"`
	// OrphanBlobSweepHours is how often the datastores are swept for them.
	OrphanBlobSweepHours int `yaml:"orphanBlobSweepHours"`
}

// Downloads limits remote downloads.
type Downloads struct {
	// MaxBytes is the largest remote file fetched; 0 means no limit.
	MaxBytes int64 `yaml:"maxBytes"`
	// FailureCacheMinutes is how long a failed remote fetch is remembered.
	FailureCacheMinutes int `yaml:"failureCacheMinutes"`
	// ExpireAfterDays removes cached remote media not downloaded for this
	// many days (it is fetched again when asked for); 0 keeps it.
	ExpireAfterDays int `yaml:"expireAfterDays"`
}

// Federation controls fetching media from other servers.
type Federation struct {
	// IgnoredHosts are servers whose media is never fetched or served.
	IgnoredHosts []string `yaml:"ignoredHosts"`
	// DisallowedNetworks are refused in addition to the built-in list.
	DisallowedNetworks []string `yaml:"disallowedNetworks"`
	// AllowedNetworks, if not empty, are the only networks reached; an entry
	// at least as specific as a disallowed one overrides it.
	AllowedNetworks []string `yaml:"allowedNetworks"`
	// CustomCAFiles are PEM files of extra CAs trusted for federation TLS.
	CustomCAFiles []string `yaml:"customCAFiles"`
	// ServerOverrides maps server names to host:port, skipping discovery; the
	// certificate is still checked for the server name.
	ServerOverrides map[string]string `yaml:"serverOverrides"`
}

// Thumbnail methods.
const (
	MethodScale = "scale"
	MethodCrop  = "crop"
)

// Thumbnails controls thumbnail generation.
type Thumbnails struct {
	// MaxSourceBytes is the largest original that is thumbnailed; 0 means no limit.
	MaxSourceBytes int64 `yaml:"maxSourceBytes"`
	// MaxPixels is the most pixels (width x height) an original may have;
	// larger ones get 413 M_TOO_LARGE, checked before decoding.
	MaxPixels int64 `yaml:"maxPixels"`
	// MaxAnimationPixels bounds frames x width x height of an animated original.
	MaxAnimationPixels int64 `yaml:"maxAnimationPixels"`
	// MaxFrames bounds the frames of an animated original.
	MaxFrames int `yaml:"maxFrames"`
	// NumWorkers is how many uploads have their thumbnails generated in the
	// background at once.
	NumWorkers int `yaml:"numWorkers"`
	// DecodeConcurrency is how many originals are decoded at once in all,
	// background work and requests together, whatever the number of CPUs.
	DecodeConcurrency int `yaml:"decodeConcurrency"`
	// DecodeMemoryBytes bounds the memory all decodes in flight may hold,
	// estimated from each image's header before it is decoded; an image that
	// alone needs more gets 413 M_TOO_LARGE.
	DecodeMemoryBytes int64 `yaml:"decodeMemoryBytes"`
	// Sizes are, without dynamicSizing, the only sizes served: the best match
	// for a request is picked. All of a media's are made from one decode.
	Sizes []ThumbnailSize `yaml:"sizes"`
	// ExpireAfterDays removes thumbnails made this many days ago (they are
	// made again when asked for); 0 keeps them.
	ExpireAfterDays int `yaml:"expireAfterDays"`
	// Pregenerate are the requests clients make first, whose thumbnails are
	// made right after an upload (each the size of sizes that serves it);
	// the other sizes are made when first asked for. Empty: none.
	Pregenerate []ThumbnailSize `yaml:"pregenerate"`
	// DynamicSizing generates any requested size, capped at the largest of sizes.
	DynamicSizing bool `yaml:"dynamicSizing"`
	// Types are the content types, sniffed from the bytes, that are thumbnailed.
	Types []string `yaml:"types"`
	// AllowAnimated permits animated thumbnails of animated originals.
	AllowAnimated bool `yaml:"allowAnimated"`
	// DefaultAnimated answers requests without the animated parameter with an
	// animated thumbnail where possible.
	DefaultAnimated bool `yaml:"defaultAnimated"`
	// MaxAnimateSizeBytes: larger originals get a still thumbnail even when an
	// animated one is asked for; 0 means no limit.
	MaxAnimateSizeBytes int64 `yaml:"maxAnimateSizeBytes"`
	// MaxAnimatePixels: originals with more pixels in all their frames
	// (frames x width x height) get a still thumbnail even when an animated
	// one is asked for; 0 means no limit.
	MaxAnimatePixels int64 `yaml:"maxAnimatePixels"`
	// StillFrame picks the frame of an animation a still thumbnail shows, from 0
	// (first) to 1 (last).
	StillFrame float64 `yaml:"stillFrame"`
	// JPEGQuality is the quality (1-100) of JPEG thumbnails.
	JPEGQuality int `yaml:"jpegQuality"`
	// PreferWebP makes thumbnails WebP for clients whose Accept header names
	// image/webp; others keep JPEG, PNG and GIF. Animated thumbnails are WebP
	// where that is smaller than the GIF.
	PreferWebP bool `yaml:"preferWebp"`
	// WebPQuality is the quality (1-100) of WebP thumbnails.
	WebPQuality int `yaml:"webpQuality"`
	// FFmpeg makes the stills of the video/* and the waveforms of the
	// audio/* types listed in types.
	FFmpeg FFmpeg `yaml:"ffmpeg"`
}

// Console is the operator console, served under /_mediarepo/console/ on
// every homeserver's Host, to its admins and the repository's.
type Console struct {
	// Enabled serves the console.
	Enabled bool `yaml:"enabled"`
}

// FFmpeg is how ffmpeg runs: a process of its own per video or audio, its
// input on a pipe, no protocol but the pipe, within these limits.
type FFmpeg struct {
	// Path is the ffmpeg binary: a path, or a name looked up in PATH.
	Path string `yaml:"path"`
	// TimeoutSeconds is the wall-clock time one run may take.
	TimeoutSeconds int `yaml:"timeoutSeconds"`
	// CPUSeconds is the CPU time one run may use (RLIMIT_CPU).
	CPUSeconds int `yaml:"cpuSeconds"`
	// MemoryBytes is the address space one run may map (RLIMIT_AS).
	MemoryBytes int64 `yaml:"memoryBytes"`
	// MaxAudioSeconds is how much of an audio file its waveform shows.
	MaxAudioSeconds int `yaml:"maxAudioSeconds"`
}

// ThumbnailSize is one size to generate.
type ThumbnailSize struct {
	// Width of the box, in pixels.
	Width int `yaml:"width"`
	// Height of the box, in pixels.
	Height int `yaml:"height"`
	// Method is scale (fit inside the box) or crop (fill the box). Empty means
	// both, as in matrix-media-repo.
	Method string `yaml:"method"`
}

// Homeserver returns the configured homeserver that host names, after
// normalisation (see NormalizeHost).
func (c *Config) Homeserver(host string) (*Homeserver, bool) {
	hs, ok := c.hosts[NormalizeHost(host)]
	return hs, ok
}

// IsAdmin reports whether userID is listed in admins.
func (c *Config) IsAdmin(userID string) bool {
	for _, a := range c.Admins {
		if a == userID {
			return true
		}
	}
	return false
}

// ReportedUploadSize is the m.upload.size value to announce, or -1 for none.
func (u *Uploads) ReportedUploadSize() int64 {
	switch {
	case u.ReportedMaxBytes < 0:
		return -1
	case u.ReportedMaxBytes > 0:
		return u.ReportedMaxBytes
	case u.MaxBytes > 0:
		return u.MaxBytes
	default:
		return -1
	}
}

func (c *Config) buildHosts() {
	c.hosts = make(map[string]*Homeserver, len(c.Homeservers))
	for i := range c.Homeservers {
		c.hosts[NormalizeHost(c.Homeservers[i].Name)] = &c.Homeservers[i]
	}
}
