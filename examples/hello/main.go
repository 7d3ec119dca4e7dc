// Command hello is the smallest ward function: given {"name":"Ada"} it
// returns {"greeting":"Hello, Ada!"}. A missing or blank name greets
// "world"; a payload that is not a JSON object fails the task.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/wardhq/ward/task"
)

// request is the payload.
type request struct {
	Name string `json:"name"`
}

// response is the result.
type response struct {
	Greeting string `json:"greeting"`
}

// greet builds the response for a raw payload.
func greet(payload []byte) (response, error) {
	var req request
	if len(bytes.TrimSpace(payload)) > 0 {
		if err := json.Unmarshal(payload, &req); err != nil {
			return response{}, fmt.Errorf("payload must be a JSON object like {\"name\":\"Ada\"}: %w", err)
		}
	}
	name := strings.TrimSpace(req.Name)
	if name == "" {
		name = "world"
	}
	return response{Greeting: "Hello, " + name + "!"}, nil
}

func main() {
	payload, err := task.Payload()
	if err != nil {
		task.Fail(err)
	}
	resp, err := greet(payload)
	if err != nil {
		task.Fail(err)
	}
	if err := task.Result(resp); err != nil {
		task.Fail(err)
	}
}
