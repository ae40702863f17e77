// Package thumbnails will own all image work: reading dimensions before
// decoding, enforcing pixel limits, scaling and cropping, and encoding. It
// takes an io.Reader and returns bytes, and imports only config from this
// module. It is empty until the thumbnail issue lands; the routes that will use
// it answer 404 M_UNRECOGNIZED meanwhile.
package thumbnails
