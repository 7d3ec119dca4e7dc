package main

import (
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/privacy"
)

// readOrder returns order.json, the README's order as a shop submits it,
// with everything the function must not see.
func readOrder(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("order.json")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const tok = "tok_abcdefghijklmnopqrstuvwxyz234567"

func TestScore(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		payload string
		want    response
	}{
		{
			"the README's order",
			`{"order":{"total":1249.5,"currency":"EUR","items":[{"qty":1,"price":1199},{"qty":2,"price":25.25}]},"customer":{"id":"` + tok + `"}}`,
			response{Customer: tok, Score: 45, Flags: []string{"high_total", "expensive_item"}},
		},
		{
			"a small order raises nothing",
			`{"order":{"total":19.98,"currency":"USD","items":[{"qty":2,"price":9.99}]},"customer":{"id":"c1"}}`,
			response{Customer: "c1", Score: 0, Flags: []string{}},
		},
		{
			"cents add up exactly",
			`{"order":{"total":0.3,"currency":"GBP","items":[{"qty":1,"price":0.1},{"qty":1,"price":0.2}]},"customer":{"id":"c1"}}`,
			response{Customer: "c1", Score: 0, Flags: []string{}},
		},
		{
			"everything at once is capped at 100",
			`{"order":{"total":9000,"currency":"XBT","items":[{"qty":12,"price":600}]},"customer":{"id":" "}}`,
			response{Customer: " ", Score: 100, Flags: []string{"very_high_total", "expensive_item", "bulk_quantity", "total_mismatch", "unusual_currency", "no_customer"}},
		},
		{
			"a total without items, no currency, no customer",
			`{"order":{"total":5}}`,
			response{Score: 50, Flags: []string{"no_items", "unusual_currency", "no_customer"}},
		},
		{
			"items that do not add up",
			`{"order":{"total":100,"currency":"EUR","items":[{"qty":10,"price":1}]},"customer":{"id":"c"}}`,
			response{Customer: "c", Score: 40, Flags: []string{"bulk_quantity", "total_mismatch"}},
		},
		{
			"a projected element that lost its fields counts as empty",
			`{"order":{"total":0,"currency":"EUR","items":[null,{"qty":0,"price":0}]},"customer":{"id":"c"}}`,
			response{Customer: "c", Score: 0, Flags: []string{}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := score([]byte(tt.payload))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("score = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestScoreInvalid(t *testing.T) {
	t.Parallel()
	for payload, want := range map[string]string{
		``:                             "empty payload",
		`[1]`:                          "must be a JSON object",
		`{"order":`:                    "must be a JSON object",
		`{}`:                           "no order.total",
		`{"order":{"currency":"EUR"}}`: "no order.total",
		`{"order":{"total":"12"}}`:     "must be a JSON object",
		`{"order":{"total":-1}}`:       "order.total must be between",
		`{"order":{"total":2e9}}`:      "order.total must be between",
		`{"order":{"total":1,"items":[{"qty":1.5,"price":1}]}}`:                    "order.items[0].qty must be a whole number",
		`{"order":{"total":1,"items":[{"qty":1,"price":1},{"qty":-1,"price":1}]}}`: "order.items[1].qty",
		`{"order":{"total":1,"items":[{"qty":1,"price":-0.01}]}}`:                  "order.items[0].price must be between",
		`{"order":{"total":1},"customer":{"id":42}}`:                               "must be a JSON object",
	} {
		got, err := score([]byte(payload))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("score(%s) = %+v, %v; want an error with %q", payload, got, err, want)
		}
	}
}

func TestScoreHugeOrder(t *testing.T) {
	t.Parallel()
	// The largest amounts the function takes neither overflow nor match.
	items := strings.Repeat(`{"qty":1000000,"price":1000000000},`, 100)
	payload := `{"order":{"total":1000000000,"currency":"EUR","items":[` + strings.TrimSuffix(items, ",") + `]},"customer":{"id":"c"}}`
	got, err := score([]byte(payload))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"very_high_total", "expensive_item", "bulk_quantity", "total_mismatch"}
	if got.Score != 100 || !reflect.DeepEqual(got.Flags, want) {
		t.Errorf("score = %+v, want 100 with %v", got, want)
	}
}

// TestProjectionKeepsTheScore applies the example's own ward.json to a full
// order the way ward does at submit: the function scores the projected,
// tokenized payload exactly as the full one, and sees none of the rest.
func TestProjectionKeepsTheScore(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("ward.json")
	if err != nil {
		t.Fatal(err)
	}
	var spec ward.FunctionSpec
	if err := json.Unmarshal(b, &spec); err != nil {
		t.Fatal(err)
	}
	plan, err := privacy.Compile(spec.Input)
	if err != nil {
		t.Fatalf("ward.json input rules: %v", err)
	}
	tokenizer := func(pattern string, value []byte) (string, error) {
		if pattern != "/customer/id" || string(value) != `"cust-42"` {
			t.Errorf("tokenizer called for %s = %s", pattern, value)
		}
		return tok, nil
	}
	fullOrder := readOrder(t)
	res, err := plan.Apply(fullOrder, tokenizer)
	if err != nil {
		t.Fatal(err)
	}
	wantFields := []string{"/order/total", "/order/currency", "/order/items/0/qty", "/order/items/0/price",
		"/order/items/1/qty", "/order/items/1/price", "/customer/id"}
	if !reflect.DeepEqual(res.Fields, wantFields) || !reflect.DeepEqual(res.Tokenized, []string{"/customer/id"}) {
		t.Errorf("stored pointers %q, tokenized %q", res.Fields, res.Tokenized)
	}
	projected := string(res.Payload)
	for _, secret := range []string{"Ada", "ada@example.com", "Square", "4111", "12/29", "cust-42", "o-1001", "TV-55"} {
		if strings.Contains(projected, secret) {
			t.Errorf("projected payload %s holds %q", projected, secret)
		}
	}
	full, err := score(fullOrder)
	if err != nil {
		t.Fatal(err)
	}
	seen, err := score(res.Payload)
	if err != nil {
		t.Fatal(err)
	}
	if seen.Customer != tok || seen.Score != full.Score || !reflect.DeepEqual(seen.Flags, full.Flags) {
		t.Errorf("projected score %+v, full score %+v", seen, full)
	}
	if got, want := received(res.Payload), "customer{id} order{currency items total}"; got != want {
		t.Errorf("received = %q, want %q", got, want)
	}
}

func TestReceived(t *testing.T) {
	t.Parallel()
	for payload, want := range map[string]string{
		string(readOrder(t)):        "card{expiry number} customer{address email id name} order{currency id items total}",
		`{"b":1,"a":{"y":2,"x":3}}`: "a{x y} b",
		`{}`:                        "",
		`[1]`:                       "(not a JSON object)",
		`{"a":null}`:                "a",
	} {
		if got := received([]byte(payload)); got != want {
			t.Errorf("received(%s) = %q, want %q", payload, got, want)
		}
	}
}

func TestResponseJSON(t *testing.T) {
	t.Parallel()
	got, err := score([]byte(`{"order":{"total":1,"currency":"EUR","items":[{"qty":1,"price":1}]},"customer":{"id":"c"}}`))
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"customer":"c","score":0,"flags":[]}`; string(b) != want {
		t.Errorf("result = %s, want %s", b, want)
	}
}

func FuzzScore(f *testing.F) {
	order, err := os.ReadFile("order.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(order)
	f.Add([]byte(`{"order":{"total":1e9,"items":[{"qty":1e6,"price":1e9}]}}`))
	f.Add([]byte(`{"order":{"total":0.1,"items":[{"qty":3,"price":0.0333}]}}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		got, err := score(payload)
		if err != nil {
			return
		}
		if got.Score < 0 || got.Score > maxScore || got.Flags == nil {
			t.Errorf("score(%q) = %+v", payload, got)
		}
	})
}
