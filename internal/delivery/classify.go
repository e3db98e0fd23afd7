package delivery

// Classify is what one attempt's outcome makes of an event:
//
//   - Delivered for a 2xx answer;
//   - Refused for a 4xx answer that retrying cannot change (the app's own
//     decision, for example 400, 401, 403, 404, 409, 413, 422);
//   - Received (still owed, to be retried) for a transport error (err not
//     nil, or no status), a 1xx or 3xx answer, 408, 425, 429, any 5xx, and
//     any status outside 100–599.
//
// The caller answers OSS by the same rule, so the answer and the record
// agree.
func Classify(status int, err error) State {
	switch {
	case err != nil || status == 0:
		return Received
	case status >= 200 && status <= 299:
		return Delivered
	case status == 408, status == 425, status == 429:
		return Received
	case status >= 400 && status <= 499:
		return Refused
	default:
		return Received
	}
}
