package main

import "testing"

func TestDistinctListeners(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		public, internal string
		ok               bool
	}{
		{"127.0.0.1:7070", "127.0.0.1:7071", true},
		{"127.0.0.1:7070", "10.0.0.5:7070", true}, // another address, same port
		{"127.0.0.1:0", "127.0.0.1:0", true},      // each gets its own port
		{"127.0.0.1:7070", "127.0.0.1:7070", false},
		{":7070", "10.0.0.5:7070", false}, // the public one listens on every address
		{"10.0.0.5:7070", "0.0.0.0:7070", false},
		{"127.0.0.1:7070", "", false},
		{"127.0.0.1:7070", "7071", false},
	} {
		err := distinctListeners(tc.public, tc.internal)
		if (err == nil) != tc.ok {
			t.Errorf("distinctListeners(%q, %q) = %v, want ok %v", tc.public, tc.internal, err, tc.ok)
		}
		if err != nil {
			if _, usage := err.(usageError); !usage {
				t.Errorf("distinctListeners(%q, %q): %T, want a usage error", tc.public, tc.internal, err)
			}
		}
	}
}
