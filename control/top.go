package control

// TopKey is one of a zone's most-denied keys, from a bounded heavy-hitters
// sketch (Space-Saving): Count overestimates the true count by at most
// Error.
type TopKey struct {
	KeyHash string `json:"key_hash"`
	// Key is the raw key when the zone has log_key; APIKey the API key's
	// name when the request carried a verified one.
	Key    string `json:"key,omitempty"`
	APIKey string `json:"api_key,omitempty"`
	Count  uint64 `json:"count"`
	Error  uint64 `json:"error"`
}

// TopKeys is GET /zones/{zone}/top's body.
type TopKeys struct {
	Zone string `json:"zone"`
	// Total is the number of denials the sketch has seen since start.
	Total uint64   `json:"total"`
	Keys  []TopKey `json:"keys"`
}

// KeyRef names a key of a zone: by its raw value, or by the hex hash the
// store keeps it under (as top keys and key overrides report it). Exactly
// one is set.
type KeyRef struct {
	Raw  string
	Hash string
}
