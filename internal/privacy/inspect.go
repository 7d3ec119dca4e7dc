package privacy

// Pointers lists the concrete pointers of the scalar values and empty
// containers payload holds, in document order, at most MaxReported
// (truncated says the list was cut). Null array elements are left out: in a
// projected payload they may stand in for elements that were dropped. It
// tells what a stored payload holds without showing any value, and fails
// with code payload_not_json when payload is not valid JSON.
func Pointers(payload []byte) (fields []string, truncated bool, err error) {
	w := getWalker(payload, nil, false)
	defer putWalker(w)
	w.skipNullElements = true
	i := skipWS(payload, 0)
	if i == len(payload) {
		return nil, false, errNotJSON()
	}
	end := w.leaves(i)
	if end < 0 || skipWS(payload, end) != len(payload) {
		return nil, false, errNotJSON()
	}
	return spans(string(w.arena), w.fieldSpan), w.truncated, nil
}
