// Command vault shows ward's data protection from inside a task: it reads a
// payload that may have been sealed by the client (task.Payload unseals it
// transparently) and a secret, API_KEY, that the task receives as a file.
//
// Given a JSON object such as {"card":"4111 1111 1111 1111","amount":42} it
// returns {"ok":true,"fields":2,"key_len":L,"sealed":S}: how many top-level
// fields the payload has, the length of the API key in bytes, and whether the
// payload arrived sealed. The result never contains the key.
//
// On purpose, and only to demonstrate redaction, it also writes the key to
// its log (stderr): ward replaces every secret value in a stored log with
// [REDACTED], so 'ward task log ID' shows the line without the key. Real
// task code should not log secrets in the first place.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"

	"github.com/wardhq/ward/task"
	_ "github.com/wardhq/ward/task/unseal" // task.Payload opens sealed payloads
)

// secretName is the secret the function needs.
const secretName = "API_KEY"

// response is the result.
type response struct {
	OK     bool `json:"ok"`
	Fields int  `json:"fields"`
	KeyLen int  `json:"key_len"`
	Sealed bool `json:"sealed"`
}

// errNoKey is returned when the API key is missing or empty.
var errNoKey = errors.New("secret " + secretName + " is not set: run 'ward secret set " + secretName + "' (or with --function vault)")

// handle checks the payload and the key and builds the response. The
// payload must be a JSON object; the key must not be empty.
func handle(payload, apiKey []byte, sealed bool) (response, error) {
	if len(apiKey) == 0 {
		return response{}, errNoKey
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(payload, &fields); err != nil || fields == nil {
		return response{}, errors.New(`payload must be a JSON object like {"card":"4111 1111 1111 1111","amount":42}`)
	}
	return response{OK: true, Fields: len(fields), KeyLen: len(apiKey), Sealed: sealed}, nil
}

// logLine is the demonstration log line. It holds the key exactly as
// delivered, so the platform's redaction, which matches the stored value,
// masks all of it.
func logLine(apiKey []byte, r response) string {
	return fmt.Sprintf("calling upstream with api key %s for %d field(s), sealed=%t", apiKey, r.Fields, r.Sealed)
}

// readKey returns the API key, or errNoKey when the secret does not exist.
func readKey() ([]byte, error) {
	key, err := task.Secret(secretName)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errNoKey
	}
	return key, err
}

func main() {
	// Payload opens a sealed payload with the function's sealing key (the
	// secret ward-sealing-key); an envelope that does not open fails here.
	payload, err := task.Payload()
	if err != nil {
		task.Fail(err)
	}
	key, err := readKey()
	if err != nil {
		task.Fail(err)
	}
	resp, err := handle(payload, key, task.Sealed())
	if err != nil {
		task.Fail(err)
	}
	task.Logf("%s", logLine(key, resp))
	if err := task.Result(resp); err != nil {
		task.Fail(err)
	}
}
