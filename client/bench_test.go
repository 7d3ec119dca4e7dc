package client

import (
	"context"
	"net/http"
	"testing"

	"github.com/wardhq/ward"
)

func BenchmarkDecodeTask(b *testing.B) {
	data := []byte(taskJSON)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		var t task
		if err := decodeStrict(data, &t); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeTaskList(b *testing.B) {
	data := []byte(`{"tasks":[` + taskJSON + `,` + taskJSON + `,` + taskJSON + `],"next_cursor":"c"}`)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		var l taskList
		if err := decodeStrict(data, &l); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSubmit is one Submit round trip to a local fake server.
func BenchmarkSubmit(b *testing.B) {
	c := newTestClient(b, newFake(b, fixed(http.StatusAccepted, taskJSON)))
	ctx := context.Background()
	req := ward.SubmitRequest{Function: "resize", Payload: []byte(`{"x":1}`)}
	for b.Loop() {
		if _, err := c.Submit(ctx, "p", req); err != nil {
			b.Fatal(err)
		}
	}
}
