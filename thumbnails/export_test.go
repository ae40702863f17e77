package thumbnails

import "bytes"

// PreShrinkForTest exposes preShrink to the black-box tests.
var PreShrinkForTest = preShrink

// DecodeCostForTest is the memory GenerateAll admits for decoding data to
// make spec.
func (g *Generator) DecodeCostForTest(data []byte, spec Spec) (int64, error) {
	info, err := inspect(bytes.NewReader(data))
	if err != nil {
		return 0, err
	}
	s := &Source{g: g, info: info, size: int64(len(data)), specs: []Spec{spec}, animated: map[Spec]bool{}, scale: 1}
	return s.plan(), nil
}
