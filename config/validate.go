package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"

	"github.com/mediarepo/mediarepo/antivirus"
	"github.com/mediarepo/mediarepo/mxid"
)

// Validate reports every problem in c at once, each prefixed with its key path.
func (c *Config) Validate() error {
	var errs []error
	errs = append(errs, c.Repo.validate("repo")...)
	errs = append(errs, c.Database.validate("database")...)
	errs = append(errs, c.validateHomeservers()...)
	if c.AccessTokens.MaxCacheTimeSeconds < 0 {
		errs = append(errs, errors.New("accessTokens.maxCacheTimeSeconds: must not be negative"))
	}
	for i, a := range c.Admins {
		if !mxid.ValidUserID(a) {
			errs = append(errs, fmt.Errorf("admins[%d]: %q is not a user ID like @alice:example.org", i, a))
		}
	}
	if c.SharedSecretAuth.Enabled && len(c.SharedSecretAuth.Token) < 16 {
		errs = append(errs, errors.New("sharedSecretAuth.token: must be at least 16 characters when sharedSecretAuth.enabled is true"))
	}
	errs = append(errs, c.validateDatastores()...)
	errs = append(errs, c.Uploads.validate("uploads")...)
	errs = append(errs, c.Thumbnails.validate("thumbnails")...)
	errs = append(errs, c.RateLimit.validate("rateLimit")...)
	errs = append(errs, c.Redis.validate("redis")...)
	errs = append(errs, c.URLPreviews.validate("urlPreviews")...)
	if t := c.Timeouts; t.URLPreviewTimeoutSeconds < 1 || t.ClientServerTimeoutSeconds < 1 || t.FederationTimeoutSeconds < 1 ||
		t.BodyIdleSeconds < 1 || t.ShutdownGraceSeconds < 1 {
		errs = append(errs, errors.New("timeouts: every timeout must be at least 1 second"))
	}
	if c.Timeouts.MinBodyBytesPerSecond < 0 {
		errs = append(errs, errors.New("timeouts.minBodyBytesPerSecond: must not be negative (0 means no floor)"))
	}
	if c.Downloads.FailureCacheMinutes < 0 {
		errs = append(errs, errors.New("downloads.failureCacheMinutes: must not be negative"))
	}
	errs = append(errs, cidrErrors("federation.disallowedNetworks", c.Federation.DisallowedNetworks)...)
	errs = append(errs, cidrErrors("federation.allowedNetworks", c.Federation.AllowedNetworks)...)
	for name, addr := range c.Federation.ServerOverrides {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			errs = append(errs, fmt.Errorf("federation.serverOverrides.%s: %q is not host:port", name, addr))
		}
	}
	for i, r := range c.Uploads.Quotas.Users {
		path := fmt.Sprintf("uploads.quotas.users[%d]", i)
		if r.Glob == "" {
			errs = append(errs, fmt.Errorf("%s.glob: required, e.g. \"@*:example.org\"", path))
		}
		if r.MaxBytes < 0 || r.MaxFiles < 0 || r.MaxPending < 0 {
			errs = append(errs, fmt.Errorf("%s: maxBytes, maxFiles and maxPending must not be negative", path))
		}
	}
	if c.Retention.OrphanBlobGraceHours < 0 {
		errs = append(errs, errors.New("retention.orphanBlobGraceHours: must not be negative (0 turns the sweep off)"))
	}
	if c.Retention.OrphanBlobSweepHours < 1 {
		errs = append(errs, errors.New("retention.orphanBlobSweepHours: must be at least 1"))
	}
	if c.Downloads.MaxBytes < 0 {
		errs = append(errs, errors.New("downloads.maxBytes: must not be negative (0 means no limit)"))
	}
	if c.Downloads.ExpireAfterDays < 0 {
		errs = append(errs, errors.New("downloads.expireAfterDays: must not be negative (0 keeps remote media)"))
	}
	if c.Thumbnails.ExpireAfterDays < 0 {
		errs = append(errs, errors.New("thumbnails.expireAfterDays: must not be negative (0 keeps thumbnails)"))
	}
	errs = append(errs, c.validateMetrics()...)
	errs = append(errs, c.Archiving.validate()...)
	errs = append(errs, c.Antivirus.validate()...)
	if b := c.FeatureSupport.MSC2448; b.Enabled {
		if b.XComponents < 1 || b.XComponents > 9 || b.YComponents < 1 || b.YComponents > 9 {
			errs = append(errs, fmt.Errorf("featureSupport.MSC2448: xComponents and yComponents must be 1 to 9, not %d and %d", b.XComponents, b.YComponents))
		}
		if b.ThumbWidth < 1 || b.ThumbHeight < 1 || b.MaxWidth < 1 || b.MaxHeight < 1 {
			errs = append(errs, errors.New("featureSupport.MSC2448: maxWidth, maxHeight, thumbWidth and thumbHeight must be at least 1"))
		}
	}
	return errors.Join(errs...)
}

func (a *Antivirus) validate() []error {
	if !a.Enabled {
		return nil
	}
	var errs []error
	if _, _, err := antivirus.ParseAddress(a.ClamdAddress); err != nil {
		errs = append(errs, fmt.Errorf("antivirus.clamdAddress: %w", err))
	}
	if a.TimeoutSeconds < 1 {
		errs = append(errs, fmt.Errorf("antivirus.timeoutSeconds: %d, want at least 1", a.TimeoutSeconds))
	}
	return errs
}

func (a *Archiving) validate() []error {
	if a.TargetBytesPerPart < 1<<20 {
		return []error{fmt.Errorf("archiving.targetBytesPerPart: %d is below 1 MiB (1048576); parts that small help nobody", a.TargetBytesPerPart)}
	}
	return nil
}

func (c *Config) validateMetrics() []error {
	m := c.Metrics
	if !m.Enabled {
		return nil
	}
	var errs []error
	if m.Port < 0 || m.Port > 65535 {
		errs = append(errs, fmt.Errorf("metrics.port: %d is not a TCP port", m.Port))
	}
	if net.ParseIP(m.BindAddress) == nil {
		errs = append(errs, fmt.Errorf("metrics.bindAddress: %q is not an IP address", m.BindAddress))
	}
	if m.Port != 0 && m.Port == c.Repo.Port {
		errs = append(errs, fmt.Errorf("metrics.port: %d is repo.port; metrics need a listener of their own", m.Port))
	}
	return errs
}

func (r *Repo) validate(path string) []error {
	var errs []error
	if strings.TrimSpace(r.BindAddress) == "" {
		errs = append(errs, fmt.Errorf("%s.bindAddress: must not be empty", path))
	}
	if r.Port < 0 || r.Port > 65535 {
		errs = append(errs, fmt.Errorf("%s.port: %d is not a TCP port (0-65535)", path, r.Port))
	}
	switch strings.ToLower(r.LogLevel) {
	case "panic", "fatal", "error", "warn", "warning", "info", "debug", "trace":
	default:
		errs = append(errs, fmt.Errorf("%s.logLevel: %q is not one of panic, fatal, error, warn, info, debug, trace", path, r.LogLevel))
	}
	return errs
}

func (d *Database) validate(path string) []error {
	var errs []error
	if d.Postgres != "" && d.SQLite != "" {
		errs = append(errs, fmt.Errorf("%s: set postgres or sqlite, not both", path))
	}
	if d.Pool.MaxConnections < 1 {
		errs = append(errs, fmt.Errorf("%s.pool.maxConnections: must be at least 1", path))
	}
	if d.Pool.MaxIdleConnections < 0 {
		errs = append(errs, fmt.Errorf("%s.pool.maxIdleConnections: must not be negative", path))
	}
	return errs
}

func (c *Config) validateHomeservers() []error {
	if len(c.Homeservers) == 0 {
		return []error{errors.New("homeservers: at least one homeserver is required")}
	}
	var errs []error
	seen := map[string]int{}
	for i, hs := range c.Homeservers {
		path := fmt.Sprintf("homeservers[%d]", i)
		if !mxid.ValidServerName(hs.Name) {
			errs = append(errs, fmt.Errorf("%s.name: %q is not a server name like example.org or example.org:8448 (letters, digits, dots and hyphens, or an IP literal)", path, hs.Name))
		} else if j, dup := seen[NormalizeHost(hs.Name)]; dup {
			errs = append(errs, fmt.Errorf("%s.name: %q is already used by homeservers[%d]", path, hs.Name, j))
		} else {
			seen[NormalizeHost(hs.Name)] = i
		}
		u, err := url.Parse(hs.CSAPI)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("%s.csApi: must be an absolute http(s) URL, got %q", path, hs.CSAPI))
		}
		switch hs.AdminAPIKind {
		case "", AdminAPIMatrix, AdminAPISynapse, AdminAPIDendrite:
		default:
			errs = append(errs, fmt.Errorf("%s.adminApiKind: %q is not matrix, synapse or dendrite", path, hs.AdminAPIKind))
		}
	}
	return errs
}

func (c *Config) validateDatastores() []error {
	if len(c.Datastores) == 0 {
		return []error{errors.New("datastores: at least one datastore is required")}
	}
	var errs []error
	ids := map[string]int{}
	local := false
	for i, ds := range c.Datastores {
		path := fmt.Sprintf("datastores[%d]", i)
		switch ds.Type {
		case "file":
			if ds.Opts.Path == "" {
				errs = append(errs, fmt.Errorf("%s.opts.path: required for a file datastore", path))
			}
		case "s3":
			errs = append(errs, ds.Opts.validateS3(path+".opts")...)
		default:
			errs = append(errs, fmt.Errorf("%s.type: %q is not a datastore type (file, s3)", path, ds.Type))
		}
		if ds.ID == "" {
			errs = append(errs, fmt.Errorf("%s.id: required; it names the datastore in the database and must never change", path))
		} else if j, dup := ids[ds.ID]; dup {
			errs = append(errs, fmt.Errorf("%s.id: %q is already used by datastores[%d]", path, ds.ID, j))
		} else {
			ids[ds.ID] = i
		}
		for j, k := range ds.ForKinds {
			switch k {
			case KindLocalMedia, KindRemoteMedia, KindThumbnails, KindArchives, kindAll:
			default:
				errs = append(errs, fmt.Errorf("%s.forKinds[%d]: %q is not one of local_media, remote_media, thumbnails, archives, all", path, j, k))
			}
		}
		local = local || ds.For(KindLocalMedia)
	}
	if !local {
		errs = append(errs, errors.New("datastores: no datastore has local_media (or all) in forKinds, so uploads have nowhere to go"))
	}
	return errs
}

func (o *DatastoreOpts) validateS3(path string) []error {
	var errs []error
	if o.Endpoint == "" {
		errs = append(errs, fmt.Errorf("%s.endpoint: required for an s3 datastore (host[:port], e.g. s3.eu-central-1.amazonaws.com)", path))
	} else if strings.Contains(o.Endpoint, "://") || strings.Contains(o.Endpoint, "/") {
		errs = append(errs, fmt.Errorf("%s.endpoint: %q must be host[:port] without a scheme or path (ssl picks https)", path, o.Endpoint))
	}
	if o.BucketName == "" {
		errs = append(errs, fmt.Errorf("%s.bucketName: required for an s3 datastore", path))
	}
	if (o.AccessKeyID == "") != (o.AccessSecret == "") {
		errs = append(errs, fmt.Errorf("%s.accessKeyId: accessKeyId and accessSecret go together (both empty: anonymous)", path))
	}
	if o.PrefixLength < 0 || o.PrefixLength > 64 {
		errs = append(errs, fmt.Errorf("%s.prefixLength: %d is not between 0 and 64", path, o.PrefixLength))
	}
	if o.PresignedRedirectSeconds < 0 || o.PresignedRedirectSeconds > 7*24*3600 {
		errs = append(errs, fmt.Errorf("%s.presignedRedirectSeconds: %d is not between 0 and 604800 (S3's limit)", path, o.PresignedRedirectSeconds))
	}
	if o.PublicBaseURL != "" {
		if u, err := url.Parse(o.PublicBaseURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			errs = append(errs, fmt.Errorf("%s.publicBaseUrl: %q is not an http(s) URL", path, o.PublicBaseURL))
		}
	}
	if o.Path != "" {
		errs = append(errs, fmt.Errorf("%s.path: an s3 datastore has no path (tempPath holds uploads on their way)", path))
	}
	return errs
}

func (u *Uploads) validate(path string) []error {
	var errs []error
	if u.MaxBytes < 0 {
		errs = append(errs, fmt.Errorf("%s.maxBytes: must not be negative (0 means no limit)", path))
	}
	if u.MinBytes < 0 {
		errs = append(errs, fmt.Errorf("%s.minBytes: must not be negative", path))
	}
	if u.MaxBytes > 0 && u.MinBytes > u.MaxBytes {
		errs = append(errs, fmt.Errorf("%s.minBytes: %d is larger than maxBytes %d", path, u.MinBytes, u.MaxBytes))
	}
	if u.MaxPending < 0 {
		errs = append(errs, fmt.Errorf("%s.maxPending: must not be negative (0 means no limit)", path))
	}
	if u.MaxAgeSeconds < 1 {
		errs = append(errs, fmt.Errorf("%s.maxAgeSeconds: must be at least 1", path))
	}
	if u.ReportedMaxBytes < -1 {
		errs = append(errs, fmt.Errorf("%s.reportedMaxBytes: must be -1, 0 or positive", path))
	}
	return errs
}

func (t *Thumbnails) validate(path string) []error {
	var errs []error
	positive := map[string]int64{
		"maxPixels": t.MaxPixels, "maxAnimationPixels": t.MaxAnimationPixels,
		"maxFrames": int64(t.MaxFrames), "numWorkers": int64(t.NumWorkers),
		"decodeConcurrency": int64(t.DecodeConcurrency), "decodeMemoryBytes": t.DecodeMemoryBytes,
	}
	for _, k := range []string{"maxPixels", "maxAnimationPixels", "maxFrames", "numWorkers", "decodeConcurrency", "decodeMemoryBytes"} {
		if positive[k] < 1 {
			errs = append(errs, fmt.Errorf("%s.%s: must be at least 1", path, k))
		}
	}
	if t.MaxSourceBytes < 0 || t.MaxAnimateSizeBytes < 0 || t.MaxAnimatePixels < 0 {
		errs = append(errs, fmt.Errorf("%s: maxSourceBytes, maxAnimateSizeBytes and maxAnimatePixels must not be negative (0 means no limit)", path))
	}
	if len(t.Sizes) == 0 {
		errs = append(errs, fmt.Errorf("%s.sizes: at least one size is required", path))
	}
	errs = append(errs, validateSizes(path+".sizes", t.Sizes)...)
	errs = append(errs, validateSizes(path+".pregenerate", t.Pregenerate)...)
	if t.StillFrame < 0 || t.StillFrame > 1 {
		errs = append(errs, fmt.Errorf("%s.stillFrame: must be between 0 and 1", path))
	}
	if t.JPEGQuality < 1 || t.JPEGQuality > 100 {
		errs = append(errs, fmt.Errorf("%s.jpegQuality: must be 1-100", path))
	}
	if t.WebPQuality < 1 || t.WebPQuality > 100 {
		errs = append(errs, fmt.Errorf("%s.webpQuality: must be 1-100", path))
	}
	f := t.FFmpeg
	if f.Path == "" {
		errs = append(errs, fmt.Errorf("%s.ffmpeg.path: must not be empty", path))
	}
	for _, kv := range []struct {
		key   string
		value int64
	}{{"timeoutSeconds", int64(f.TimeoutSeconds)}, {"cpuSeconds", int64(f.CPUSeconds)},
		{"memoryBytes", f.MemoryBytes}, {"maxAudioSeconds", int64(f.MaxAudioSeconds)}} {
		if kv.value < 1 { // in a fixed order: the operator reads them top to bottom
			errs = append(errs, fmt.Errorf("%s.ffmpeg.%s: must be at least 1", path, kv.key))
		}
	}
	if f.MemoryBytes > 0 && f.MemoryBytes < 64<<20 {
		errs = append(errs, fmt.Errorf("%s.ffmpeg.memoryBytes: ffmpeg needs at least 67108864 (64 MiB)", path))
	}
	return errs
}

// validateSizes checks the boxes of a list of thumbnail sizes.
func validateSizes(path string, sizes []ThumbnailSize) []error {
	var errs []error
	for i, sz := range sizes {
		if sz.Width < 1 || sz.Height < 1 || sz.Width > 10000 || sz.Height > 10000 {
			errs = append(errs, fmt.Errorf("%s[%d]: width and height must be 1-10000, got %dx%d", path, i, sz.Width, sz.Height))
		}
		if sz.Method != "" && sz.Method != MethodScale && sz.Method != MethodCrop {
			errs = append(errs, fmt.Errorf("%s[%d].method: %q is not scale or crop", path, i, sz.Method))
		}
	}
	return errs
}

func (r *RateLimit) validate(path string) []error {
	if !r.Enabled {
		return nil
	}
	var errs []error
	if r.RequestsPerSecond <= 0 {
		errs = append(errs, fmt.Errorf("%s.requestsPerSecond: must be positive when rate limiting is enabled", path))
	}
	if r.Burst < 1 {
		errs = append(errs, fmt.Errorf("%s.burst: must be at least 1", path))
	}
	d := r.Buckets.Downloads
	if d.CapacityBytes < 0 || d.OverflowLimitBytes < 0 || d.DrainBytesPerMinute < 0 {
		errs = append(errs, fmt.Errorf("%s.buckets.downloads: values must not be negative", path))
	}
	if d.CapacityBytes > 0 && d.DrainBytesPerMinute == 0 {
		errs = append(errs, fmt.Errorf("%s.buckets.downloads.drainBytesPerMinute: must be positive when capacityBytes is set", path))
	}
	return errs
}

func (u *URLPreviews) validate(path string) []error {
	var errs []error
	for _, f := range []struct {
		name string
		v    int
	}{{"numWords", u.NumWords}, {"maxLength", u.MaxLength}, {"numTitleWords", u.NumTitleWords},
		{"maxTitleLength", u.MaxTitleLength}, {"numWorkers", u.NumWorkers}} {
		if f.v < 1 {
			errs = append(errs, fmt.Errorf("%s.%s: must be at least 1", path, f.name))
		}
	}
	if u.ExpireAfterDays < 0 {
		errs = append(errs, fmt.Errorf("%s.expireAfterDays: must not be negative (0 keeps answers forever)", path))
	}
	if u.MaxPageSizeBytes < 1 {
		errs = append(errs, fmt.Errorf("%s.maxPageSizeBytes: must be at least 1", path))
	}
	errs = append(errs, cidrErrors(path+".disallowedNetworks", u.DisallowedNetworks)...)
	errs = append(errs, cidrErrors(path+".allowedNetworks", u.AllowedNetworks)...)
	return errs
}

func cidrErrors(path string, cidrs []string) []error {
	var errs []error
	for i, c := range cidrs {
		if _, err := netip.ParsePrefix(c); err != nil {
			errs = append(errs, fmt.Errorf("%s[%d]: %q is not a CIDR range like 10.0.0.0/8", path, i, c))
		}
	}
	return errs
}

func (r *Redis) validate(path string) []error {
	if !r.Enabled {
		return nil
	}
	var errs []error
	if len(r.Shards) == 0 {
		errs = append(errs, fmt.Errorf("%s.shards: at least one shard is required when redis is enabled", path))
	}
	names := map[string]bool{}
	for i, s := range r.Shards {
		if s.Name == "" || names[s.Name] {
			errs = append(errs, fmt.Errorf("%s.shards[%d].name: must be set and unique", path, i))
		}
		names[s.Name] = true
		if s.Addr == "" {
			errs = append(errs, fmt.Errorf("%s.shards[%d].addr: required (host:port)", path, i))
		}
	}
	if r.DatabaseNumber < 0 {
		errs = append(errs, fmt.Errorf("%s.databaseNumber: must not be negative", path))
	}
	return errs
}
