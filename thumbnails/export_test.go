package thumbnails

// PreShrinkForTest exposes preShrink to the black-box tests.
var PreShrinkForTest = preShrink
