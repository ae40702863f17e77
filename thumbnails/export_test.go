package thumbnails

import (
	"bytes"
	"io"
)

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

// MP4StreamForTest reads an MP4's header and writes the stream ffmpeg would
// get to w.
func MP4StreamForTest(data []byte, w io.Writer) (width, height int, err error) {
	r := bytes.NewReader(data)
	v, err := readMP4(r, int64(len(data)))
	if err != nil {
		return 0, 0, err
	}
	return v.width, v.height, v.stream(r, w)
}
