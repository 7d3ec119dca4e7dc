package privacy

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/wardhq/ward"
)

// orderPayload is a realistic order of about 4 KB.
func orderPayload() []byte {
	var b strings.Builder
	b.WriteString(`{"customer":{"id":"cus_8f3a2b1c","email":"jane.doe@example.com","name":"Jane Doe",` +
		`"phone":"+33 6 12 34 56 78","address":{"street":"12 rue de la Paix","city":"Paris","zip":"75002","country":"FR"}},`)
	b.WriteString(`"order":{"id":"ord_20240611_0042","created":"2024-06-11T10:42:00Z","currency":"EUR","items":[`)
	for i := range 20 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"sku":"SKU-%05d","qty":%d,"price":%d.%02d,"description":"Item %d: hand-made ceramic mug, 350 ml, glazed stoneware, dishwasher safe, blue and white pattern, gift box"}`,
			1000+i*7, 1+i%3, 5+i, (i*13)%100, i)
	}
	b.WriteString(`],"total":1234.56,"shipping":{"method":"express","cost":9.90}},`)
	b.WriteString(`"metadata":{"source":"web","campaign":"summer-sale","tags":["gift","priority","fragile"],` +
		`"notes":"Please leave the parcel with the concierge if nobody answers the door. Thank you!","client":"shop-frontend/3.14.1"}}`)
	return []byte(b.String())
}

var benchInput = ward.Input{
	Fields:   []string{"/order/id", "/order/items/*/sku", "/order/items/*/qty", "/order/total", "/customer/id"},
	Tokenize: []string{"/customer/id"},
}

func TestOrderPayload(t *testing.T) {
	t.Parallel()
	payload := orderPayload()
	if !json.Valid(payload) || len(payload) < 3500 || len(payload) > 4600 {
		t.Fatalf("payload: %d bytes, valid %v", len(payload), json.Valid(payload))
	}
	r, err := mustCompile(t, benchInput).Apply(payload, hmacToken)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"customer":{"id":"` + tok("/customer/id", `"cus_8f3a2b1c"`) + `"},"order":{"id":"ord_20240611_0042","items":[{"sku":"SKU-01000","qty":1},`
	if !strings.HasPrefix(string(r.Payload), want) || !strings.HasSuffix(string(r.Payload), `{"sku":"SKU-01133","qty":2}],"total":1234.56}}`) {
		t.Fatalf("projection: %s", r.Payload)
	}
	if len(r.Fields) != 43 || len(r.Tokenized) != 1 {
		t.Fatalf("%d fields, %d tokenized", len(r.Fields), len(r.Tokenized))
	}
}

func BenchmarkApply(b *testing.B) {
	payload := orderPayload()
	plan := mustCompile(b, benchInput)
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := plan.Apply(payload, hmacToken); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkApplySubmitFixture is Apply as BenchmarkSubmitInput/rules of
// internal/api runs it: the 4 KB order of its testdata (33 items) under its
// rules, which keep 69 values.
func BenchmarkApplySubmitFixture(b *testing.B) {
	payload, err := os.ReadFile("../api/testdata/order-4k.json")
	if err != nil {
		b.Skip("no fixture:", err)
	}
	plan := mustCompile(b, ward.Input{
		Fields:   []string{"/order/total", "/order/currency", "/order/items/*/qty", "/order/items/*/price", "/customer/id"},
		Tokenize: []string{"/customer/id"},
	})
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := plan.Apply(payload, hmacToken); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValidOnly is json.Valid alone on BenchmarkApply's payload: what
// Apply ran before walking the payload, until its walk checked the syntax
// itself.
func BenchmarkValidOnly(b *testing.B) {
	payload := orderPayload()
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		if !json.Valid(payload) {
			b.Fatal("invalid")
		}
	}
}

// BenchmarkValid is the validating scanner Apply walks with, alone.
func BenchmarkValid(b *testing.B) {
	payload := orderPayload()
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		if !valid(payload) {
			b.Fatal("invalid")
		}
	}
}

// BenchmarkTokenizer is the cost of the HMAC tokenizer alone, part of
// BenchmarkApply.
func BenchmarkTokenizer(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := hmacToken("/customer/id", []byte(`"cus_8f3a2b1c"`)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDetokenize(b *testing.B) {
	var rec recorder
	r, err := mustCompile(b, ward.Input{Tokenize: []string{"/customer/id", "/customer/email", "/order/items/*/sku"}}).Apply(orderPayload(), rec.tokenize)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(r.Payload)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Detokenize(r.Payload, rec.orig); err != nil {
			b.Fatal(err)
		}
	}
}
