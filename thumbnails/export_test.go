package thumbnails

import "bytes"

// PreShrinkForTest exposes preShrink to the black-box tests.
var PreShrinkForTest = preShrink

// DecodeCostForTest is the memory GenerateAll admits for decoding data to a
// still.
func DecodeCostForTest(data []byte) (int64, error) {
	info, err := inspect(bytes.NewReader(data))
	if err != nil {
		return 0, err
	}
	return decodeCost(info, false), nil
}
