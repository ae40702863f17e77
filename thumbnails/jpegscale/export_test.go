package jpegscale

import "context"

// PeakCoefficient decodes data at full size and returns the largest
// magnitude of a dequantised coefficient in it.
func PeakCoefficient(data []byte) (int32, error) {
	var peak int32
	d := &decoder{ctx: context.Background(), data: data, n: 8, peak: &peak}
	err := d.decode()
	return peak, err
}
