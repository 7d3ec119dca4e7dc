package main

import (
	"encoding/json"
	"testing"
)

func TestGreet(t *testing.T) {
	t.Parallel()
	tests := []struct {
		payload string
		want    string
	}{
		{`{"name":"Ada"}`, "Hello, Ada!"},
		{`{"name":"  Grace  "}`, "Hello, Grace!"},
		{`{"name":"Zoë 🌍"}`, "Hello, Zoë 🌍!"},
		{`{"name":""}`, "Hello, world!"},
		{`{"name":" \t"}`, "Hello, world!"},
		{`{}`, "Hello, world!"},
		{`{"other":1}`, "Hello, world!"},
		{`null`, "Hello, world!"},
		{``, "Hello, world!"},
		{"  \n", "Hello, world!"},
	}
	for _, tt := range tests {
		got, err := greet([]byte(tt.payload))
		if err != nil {
			t.Errorf("greet(%q): %v", tt.payload, err)
			continue
		}
		if got.Greeting != tt.want {
			t.Errorf("greet(%q) = %q, want %q", tt.payload, got.Greeting, tt.want)
		}
	}
}

func TestGreetInvalid(t *testing.T) {
	t.Parallel()
	for _, payload := range []string{`{"name":`, `"Ada"`, `[1]`, `{"name":42}`, `name=Ada`} {
		if got, err := greet([]byte(payload)); err == nil {
			t.Errorf("greet(%q) = %+v, want an error", payload, got)
		}
	}
}

func TestResponseJSON(t *testing.T) {
	t.Parallel()
	b, err := json.Marshal(response{Greeting: "Hello, Ada!"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `{"greeting":"Hello, Ada!"}`; got != want {
		t.Errorf("response JSON = %s, want %s", got, want)
	}
}
